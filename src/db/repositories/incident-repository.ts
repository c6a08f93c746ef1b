import type { Actor } from '../../core/audit.js';
import { REASON_CODES as REASON_NAMES, type RevocationReason } from '../../core/certificate.js';
import { CaError } from '../../core/errors.js';
import { REVOKE_MODES, type BlockedKeyUse, type ExpiryBounds, type Incident, type IncidentSelection, type OpenIncident, type RevokeMode, type SelectionCount } from '../../core/incident.js';
import type { Page } from '../../core/page.js';
import type { Queryable } from '../database.js';
import { decodeCursor, pageOf } from '../keyset.js';
import { selectMatchingSql, type SearchCriteria } from './certificate-search-repository.js';
import { UNIQUE_VIOLATION, sqlError } from '../row-mappers.js';

/**
 * Incidents (migration 0016): the incident, the certificates it covers, the keys it blocks, the renewals it
 * refused, and the reads its status and sweep make. Lookups of certificates by serial from a batch or from
 * incident rows are LATERAL subqueries with OFFSET 0 (keyed-joins.ts): keyed lookups, never a scan.
 */

const COLUMNS =
  'id, name, reason, revoke_mode, drill, renew_by, explanation_url, selection, affected, short_lived, blocked_keys, declared_at, declared_by, closed_at, closed_by';

interface IncidentRow {
  id: string;
  name: string;
  reason: number;
  revoke_mode: string;
  drill: boolean;
  renew_by: Date;
  explanation_url: string | null;
  selection: unknown;
  affected: number;
  short_lived: number;
  blocked_keys: number;
  declared_at: Date;
  declared_by: string;
  closed_at: Date | null;
  closed_by: string | null;
}

function corrupt(what: string): CaError {
  return new CaError('serverInternal', `unexpected value in the database: ${what}`);
}

function selectionOf(value: unknown): IncidentSelection {
  const selection = (typeof value === 'string' ? JSON.parse(value) : value) as IncidentSelection | null;
  if (selection === null || typeof selection !== 'object' || !['filter', 'serials', 'key'].includes(selection.kind)) throw corrupt('incident selection');
  return selection;
}

function incidentFromRow(row: IncidentRow): Incident {
  if (!(REVOKE_MODES as readonly string[]).includes(row.revoke_mode)) throw corrupt(`incident revoke mode ${row.revoke_mode}`);
  return {
    id: row.id,
    name: row.name,
    reason: row.reason as RevocationReason,
    revoke: row.revoke_mode as RevokeMode,
    drill: row.drill,
    renewBy: new Date(row.renew_by),
    ...(row.explanation_url === null ? {} : { explanationUrl: row.explanation_url }),
    selection: selectionOf(row.selection),
    affected: Number(row.affected),
    shortLived: Number(row.short_lived),
    blockedKeys: Number(row.blocked_keys),
    declaredAt: new Date(row.declared_at),
    declaredBy: row.declared_by as Actor,
    ...(row.closed_at === null ? {} : { closedAt: new Date(row.closed_at) }),
    ...(row.closed_by === null ? {} : { closedBy: row.closed_by as Actor }),
  };
}

/** A certificate an incident covers, as its declaration records it. */
export interface IncidentMember {
  serial: string;
  /** '' for a certificate recorded with no group. */
  group: string;
  issuerId: string;
  notAfter: Date;
  shortLived: boolean;
}

/** What a selection's certificates record: `c`'s columns as incident_certificates holds them. */
const MEMBER_COLUMNS = `c.serial, coalesce(c.group_name, '') AS group_name, c.issuer_id, c.not_after, c.no_rev_avail AS short_lived`;

/** Counts of one group of an incident (group '' holds certificates with no group). */
export interface IncidentGroupCounts {
  group: string;
  affected: number;
  shortLived: number;
  replaced: number;
  revoked: number;
  expired: number;
  outstanding: number;
  blocked: number;
}

/** How many of each happened in each bucket of `bucketMs` from the declaration (bucket 0 starts there). */
export interface IncidentSeriesRow {
  kind: 'replaced' | 'revoked' | 'blocked';
  bucket: number;
  count: number;
}

export type IncidentCertificateState = 'outstanding' | 'replaced' | 'revoked' | 'expired' | 'short-lived';

/** A certificate of an incident with what became of it. */
export interface IncidentCertificateRecord extends IncidentMember {
  identifiers: string[];
  status: 'valid' | 'revoked';
  revokedAt?: Date;
  replacedBy?: string;
  replacedAt?: Date;
}

/*
 * incident_certificates.serial is COLLATE "C" (migration 0016: bytewise order for keyset walks), certificates.serial
 * the database default. A comparison of the two takes "C", which certificates_pkey cannot answer: every lookup
 * of a member's certificate would be a sequential scan (measured: 100,000 members, the outbox statement ran
 * for over 10 minutes). Those lookups therefore compare under the default collation (`COLLATE "default"`);
 * the serials are lower-case hex, equal under either.
 */
export class IncidentRepository {
  constructor(private readonly db: Queryable) {}

  /** Stores a new incident; CaError('conflict') naming the one that holds the name when it is taken. */
  async insert(incident: Incident): Promise<void> {
    try {
      await this.db.query(
        `INSERT INTO incidents (${COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8::text::jsonb, $9, $10, $11, $12, $13, NULL, NULL)`,
        [
          incident.id,
          incident.name,
          incident.reason,
          incident.revoke,
          incident.drill,
          incident.renewBy,
          incident.explanationUrl ?? null,
          JSON.stringify(incident.selection),
          incident.affected,
          incident.shortLived,
          incident.blockedKeys,
          incident.declaredAt,
          incident.declaredBy,
        ],
      );
    } catch (error) {
      if (sqlError(error).code === UNIQUE_VIOLATION) throw new CaError('conflict', `an incident named "${incident.name}" already exists; nothing was declared`);
      throw error;
    }
  }

  async findByName(name: string): Promise<Incident | undefined> {
    const { rows } = await this.db.query<IncidentRow>(`SELECT ${COLUMNS} FROM incidents WHERE name = $1`, [name]);
    return rows[0] === undefined ? undefined : incidentFromRow(rows[0]);
  }

  /** Newest first, keyset on (declared_at, id) (DESIGN.md rule 9). */
  async list(page: { cursor?: string; limit: number }): Promise<Page<Incident>> {
    const params: unknown[] = [page.limit + 1];
    let where = '';
    if (page.cursor !== undefined) {
      const [at, id] = decodeCursor(page.cursor, ['date', 'string'] as const);
      params.push(at, id);
      where = 'WHERE (declared_at, id) < ($2, $3)';
    }
    const { rows } = await this.db.query<IncidentRow>(`SELECT ${COLUMNS} FROM incidents ${where} ORDER BY declared_at DESC, id DESC LIMIT $1`, params);
    return pageOf(rows, page.limit, incidentFromRow, (row) => [new Date(row.declared_at).toISOString(), row.id]);
  }

  /** Open incidents, oldest first: what every instance holds in memory, and the sweep's work list. */
  async open(): Promise<Incident[]> {
    const { rows } = await this.db.query<IncidentRow>(`SELECT ${COLUMNS} FROM incidents WHERE closed_at IS NULL ORDER BY declared_at, id`);
    return rows.map(incidentFromRow);
  }

  /** Every blocked key with the incident that blocked it (closed ones included: a compromised key stays so). */
  async blockedKeys(): Promise<{ spkiSha256: string; incidentId: string; incidentName: string }[]> {
    const { rows } = await this.db.query<{ spki_sha256: string; id: string; name: string }>(
      'SELECT k.spki_sha256, i.id, i.name FROM incident_blocked_keys k JOIN incidents i ON i.id = k.incident_id ORDER BY i.declared_at, i.id',
    );
    return rows.map((row) => ({ spkiSha256: row.spki_sha256, incidentId: row.id, incidentName: row.name }));
  }

  /** Adds certificates to an incident being declared; how many were new. */
  async addMembers(incidentId: string, members: readonly IncidentMember[]): Promise<number> {
    if (members.length === 0) return 0;
    const result = await this.db.query(
      `INSERT INTO incident_certificates (incident_id, serial, group_name, issuer_id, not_after, short_lived)
       SELECT $1, m.serial, m.group_name, m.issuer_id, m.not_after::timestamptz, m.short_lived
       FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::boolean[]) AS m (serial, group_name, issuer_id, not_after, short_lived)
       ON CONFLICT DO NOTHING`,
      [incidentId, members.map((m) => m.serial), members.map((m) => m.group), members.map((m) => m.issuerId), members.map((m) => m.notAfter.toISOString()), members.map((m) => m.shortLived)],
    );
    return result.rowCount;
  }

  /**
   * Records every certificate matching `criteria` (valid ones: the caller's criteria say so) as the
   * incident's, in one INSERT ... SELECT, and counts them as a blast radius does (selectionCounts).
   */
  async addSelected(incidentId: string, criteria: SearchCriteria, bounds: ExpiryBounds, now: Date): Promise<SelectionCount[]> {
    const selected = selectMatchingSql(criteria, now, MEMBER_COLUMNS);
    if (selected === undefined) return [];
    const n = selected.values.length;
    return this.counted(
      `WITH m AS (
         INSERT INTO incident_certificates (incident_id, serial, group_name, issuer_id, not_after, short_lived)
         SELECT $${n + 4}, s.serial, s.group_name, s.issuer_id, s.not_after, s.short_lived FROM (${selected.sql}) AS s
         RETURNING group_name, issuer_id, not_after, short_lived)`,
      [...selected.values, bounds.within7Days, bounds.within30Days, bounds.within90Days, incidentId],
      n,
    );
  }

  /** The certificates matching `criteria`, counted by group, issuer, short-lived and expiry bucket; nothing changes. */
  async selectionCounts(criteria: SearchCriteria, bounds: ExpiryBounds, now: Date): Promise<SelectionCount[]> {
    const selected = selectMatchingSql(criteria, now, MEMBER_COLUMNS);
    if (selected === undefined) return [];
    return this.counted(`WITH m AS (${selected.sql})`, [...selected.values, bounds.within7Days, bounds.within30Days, bounds.within90Days], selected.values.length);
  }

  /** `m` (group_name, issuer_id, not_after, short_lived) counted; the three bounds are the parameters after the first `n`. */
  private async counted(withM: string, values: unknown[], n: number): Promise<SelectionCount[]> {
    const { rows } = await this.db.query<{ group_name: string; issuer_id: string; short_lived: boolean; expiry: SelectionCount['expiry']; count: number; latest: Date }>(
      `${withM}
       SELECT m.group_name, m.issuer_id, m.short_lived,
         CASE WHEN m.not_after <= $${n + 1} THEN 'within7Days' WHEN m.not_after <= $${n + 2} THEN 'within30Days' WHEN m.not_after <= $${n + 3} THEN 'within90Days' ELSE 'later' END AS expiry,
         count(*)::int AS count, max(m.not_after) AS latest
       FROM m GROUP BY 1, 2, 3, 4`,
      values,
    );
    return rows.map((row) => ({ group: row.group_name, issuerId: row.issuer_id, shortLived: row.short_lived, expiry: row.expiry, count: Number(row.count), latestNotAfter: new Date(row.latest) }));
  }

  /** keyCompromise: every affected certificate's subject key goes on the blocklist; how many keys are new to it. */
  async blockMemberKeys(incidentId: string): Promise<number> {
    const result = await this.db.query(
      `INSERT INTO incident_blocked_keys (spki_sha256, incident_id)
       SELECT DISTINCT c.spki_sha256, $1
       FROM incident_certificates ic CROSS JOIN LATERAL (SELECT spki_sha256 FROM certificates WHERE serial = ic.serial COLLATE "default" OFFSET 0) AS c
       WHERE ic.incident_id = $1
       ON CONFLICT DO NOTHING`,
      [incidentId],
    );
    return result.rowCount;
  }

  async setCounts(incidentId: string, counts: { affected: number; shortLived: number; blockedKeys: number }): Promise<void> {
    await this.db.query('UPDATE incidents SET affected = $2, short_lived = $3, blocked_keys = $4 WHERE id = $1', [incidentId, counts.affected, counts.shortLived, counts.blockedKeys]);
  }

  /** Closes an open incident; undefined when it was already closed (a compare-and-set). */
  async close(incidentId: string, at: Date, by: Actor): Promise<Incident | undefined> {
    const { rows } = await this.db.query<IncidentRow>(
      `UPDATE incidents SET closed_at = $2, closed_by = $3 WHERE id = $1 AND closed_at IS NULL RETURNING ${COLUMNS}`,
      [incidentId, at, by],
    );
    return rows[0] === undefined ? undefined : incidentFromRow(rows[0]);
  }

  /** The open incidents (among `open`) that cover each serial, answered in the order given. */
  async coveringMany(serials: readonly string[], open: readonly string[]): Promise<string[][]> {
    const { rows } = await this.db.query<{ serial: string; incident_id: string }>(
      `SELECT s.serial, ic.incident_id
       FROM unnest($1::text[]) AS s (serial)
       CROSS JOIN LATERAL (SELECT incident_id FROM incident_certificates WHERE serial = s.serial AND incident_id = ANY($2::text[]) OFFSET 0) AS ic`,
      [[...serials], [...open]],
    );
    const by = new Map<string, string[]>();
    for (const row of rows) by.set(row.serial, [...(by.get(row.serial) ?? []), row.incident_id]);
    return serials.map((serial) => by.get(serial) ?? []);
  }

  /**
   * Newly issued certificates replacing certificates of open incidents: the one each names in `replaces`
   * (RFC 9773 §5), or else its lineage predecessor (migration 0014). The first replacement of a
   * certificate is the one recorded. Returns what was recorded.
   */
  async recordReplacements(items: readonly { serial: string; replaces?: string; at: Date }[]): Promise<{ incidentId: string; serial: string; replacedBy: string }[]> {
    if (items.length === 0) return [];
    const { rows } = await this.db.query<{ incident_id: string; serial: string; replaced_by: string }>(
      // Driven by the new certificates, each replaced one found by its serial (keyed-joins.ts). Written as a
      // join of incident_certificates with the new certificates, the planner went the other way while the
      // table's statistics were those of before an incident's declaration: every member of the open
      // incidents read, and the certificates' lookups run again for each (380 ms for six issuances against
      // an incident of 10,000, on every issuance while it was open).
      `WITH n AS MATERIALIZED (
         SELECT x.serial, x.at, coalesce(x.replaces, c.predecessor_serial) AS old
         FROM unnest($1::text[], $2::text[], $3::text[]) AS x (serial, replaces, at)
         CROSS JOIN LATERAL (SELECT predecessor_serial FROM certificates WHERE serial = x.serial OFFSET 0) AS c),
       t AS MATERIALIZED (
         SELECT m.incident_id, m.serial AS old, n.serial, n.at
         FROM n CROSS JOIN LATERAL (
           SELECT incident_id, serial FROM incident_certificates
           WHERE serial = n.old AND replaced_by IS NULL AND incident_id IN (SELECT id FROM incidents WHERE closed_at IS NULL) OFFSET 0) AS m)
       UPDATE incident_certificates ic SET replaced_by = t.serial, replaced_at = t.at::timestamptz
       FROM t
       WHERE ic.incident_id = t.incident_id AND ic.serial = t.old AND ic.replaced_by IS NULL
       RETURNING ic.incident_id, ic.serial, ic.replaced_by`,
      [items.map((i) => i.serial), items.map((i) => i.replaces ?? null), items.map((i) => i.at.toISOString())],
    );
    return rows.map((row) => ({ incidentId: row.incident_id, serial: row.serial, replacedBy: row.replaced_by }));
  }

  /** A renewal refused for presenting a blocked key (counted as a blocked renewal). */
  async recordBlock(block: { incidentId: string; at: Date; kind: BlockedKeyUse; spkiSha256: string; accountId?: string; group?: string }): Promise<void> {
    await this.db.query('INSERT INTO incident_blocks (incident_id, at, kind, spki_sha256, account_id, group_name) VALUES ($1, $2, $3, $4, $5, $6)', [
      block.incidentId,
      block.at,
      block.kind,
      block.spkiSha256,
      block.accountId ?? null,
      block.group ?? '',
    ]);
  }

  /** The incident's serials after `after`, by serial (keyset): what a revocation of all of them selects. */
  async memberSerials(incidentId: string, after: string | undefined, limit: number): Promise<string[]> {
    const { rows } = await this.db.query<{ serial: string }>(
      'SELECT serial FROM incident_certificates WHERE incident_id = $1 AND serial > $2 ORDER BY serial LIMIT $3',
      [incidentId, after ?? '', limit],
    );
    return rows.map((row) => row.serial);
  }

  /**
   * Replaced certificates of the incident that are still valid and in no bulk revocation that is still
   * revoking: what `when-replaced` revokes next (noRevAvail ones excepted: never revoked).
   */
  async replacedUnrevoked(incidentId: string, limit: number): Promise<string[]> {
    const { rows } = await this.db.query<{ serial: string }>(
      `SELECT ic.serial FROM incident_certificates ic
       CROSS JOIN LATERAL (SELECT status FROM certificates WHERE serial = ic.serial COLLATE "default" OFFSET 0) AS c
       WHERE ic.incident_id = $1 AND ic.replaced_at IS NOT NULL AND NOT ic.short_lived AND c.status = 'valid'
         AND NOT EXISTS (
           SELECT 1 FROM bulk_revocation_items i JOIN bulk_revocations r ON r.id = i.run_id
           WHERE i.serial = ic.serial AND r.state = 'running')
       ORDER BY ic.serial LIMIT $2`,
      [incidentId, limit],
    );
    return rows.map((row) => row.serial);
  }

  /** Counts by group at `now` (one statement: one snapshot), with the blocked renewals of each group. */
  async groupCounts(incidentId: string, now: Date): Promise<IncidentGroupCounts[]> {
    const { rows } = await this.db.query<{
      group_name: string;
      affected: number;
      short_lived: number;
      replaced: number;
      revoked: number;
      expired: number;
      outstanding: number;
      blocked: number;
    }>(
      `WITH counted AS (
         SELECT ic.group_name,
           count(*) AS affected,
           count(*) FILTER (WHERE ic.short_lived) AS short_lived,
           count(*) FILTER (WHERE ic.replaced_at IS NOT NULL) AS replaced,
           count(*) FILTER (WHERE c.status = 'revoked') AS revoked,
           count(*) FILTER (WHERE c.status = 'valid' AND c.not_after <= $2) AS expired,
           count(*) FILTER (WHERE c.status = 'valid' AND c.not_after > $2 AND ic.replaced_at IS NULL) AS outstanding
         FROM incident_certificates ic JOIN certificates c ON c.serial = ic.serial COLLATE "default"
         WHERE ic.incident_id = $1
         GROUP BY ic.group_name),
       blocked AS (SELECT group_name, count(*) AS n FROM incident_blocks WHERE incident_id = $1 GROUP BY group_name)
       SELECT coalesce(k.group_name, b.group_name) AS group_name, coalesce(k.affected, 0)::int AS affected,
         coalesce(k.short_lived, 0)::int AS short_lived, coalesce(k.replaced, 0)::int AS replaced, coalesce(k.revoked, 0)::int AS revoked,
         coalesce(k.expired, 0)::int AS expired, coalesce(k.outstanding, 0)::int AS outstanding, coalesce(b.n, 0)::int AS blocked
       FROM counted k FULL JOIN blocked b ON b.group_name = k.group_name
       ORDER BY 1`,
      [incidentId, now],
    );
    return rows.map((row) => ({
      group: row.group_name,
      affected: Number(row.affected),
      shortLived: Number(row.short_lived),
      replaced: Number(row.replaced),
      revoked: Number(row.revoked),
      expired: Number(row.expired),
      outstanding: Number(row.outstanding),
      blocked: Number(row.blocked),
    }));
  }

  /** Replacements, revocations and blocked renewals per bucket of `bucketMs` from `from` (the declaration). */
  async series(incidentId: string, from: Date, bucketMs: number): Promise<IncidentSeriesRow[]> {
    const bucket = (column: string): string => `floor(extract(epoch FROM (${column} - $2::timestamptz)) * 1000 / $3)::bigint`;
    const { rows } = await this.db.query<{ kind: IncidentSeriesRow['kind']; bucket: number | string; n: number }>(
      `SELECT 'replaced' AS kind, ${bucket('ic.replaced_at')} AS bucket, count(*)::int AS n
         FROM incident_certificates ic WHERE ic.incident_id = $1 AND ic.replaced_at IS NOT NULL GROUP BY 2
       UNION ALL
       SELECT 'revoked', ${bucket('c.revoked_at')}, count(*)::int
         FROM incident_certificates ic JOIN certificates c ON c.serial = ic.serial COLLATE "default"
         WHERE ic.incident_id = $1 AND c.status = 'revoked' GROUP BY 2
       UNION ALL
       SELECT 'blocked', ${bucket('b.at')}, count(*)::int FROM incident_blocks b WHERE b.incident_id = $1 GROUP BY 2`,
      [incidentId, from, bucketMs],
    );
    return rows.map((row) => ({ kind: row.kind, bucket: Math.max(0, Number(row.bucket)), count: Number(row.n) }));
  }

  /** The incident's certificates in one state, by serial after `after` (keyset, DESIGN.md rule 9). */
  async certificates(incidentId: string, state: IncidentCertificateState | undefined, now: Date, page: { cursor?: string; limit: number }): Promise<Page<IncidentCertificateRecord>> {
    const after = page.cursor === undefined ? '' : decodeCursor(page.cursor, ['string'] as const)[0];
    const where: Record<IncidentCertificateState, string> = {
      outstanding: `c.status = 'valid' AND c.not_after > $4 AND ic.replaced_at IS NULL`,
      replaced: 'ic.replaced_at IS NOT NULL',
      revoked: `c.status = 'revoked'`,
      expired: `c.status = 'valid' AND c.not_after <= $4`,
      'short-lived': 'ic.short_lived',
    };
    const { rows } = await this.db.query<{
      serial: string;
      group_name: string;
      issuer_id: string;
      not_after: Date;
      short_lived: boolean;
      replaced_by: string | null;
      replaced_at: Date | null;
      status: string;
      revoked_at: Date | null;
      identifiers: unknown;
    }>(
      `SELECT ic.serial, ic.group_name, ic.issuer_id, ic.not_after, ic.short_lived, ic.replaced_by, ic.replaced_at, c.status, c.revoked_at, c.identifiers
       FROM incident_certificates ic
       CROSS JOIN LATERAL (SELECT status, revoked_at, identifiers, not_after FROM certificates WHERE serial = ic.serial COLLATE "default" OFFSET 0) AS c
       WHERE ic.incident_id = $1 AND ic.serial > $2 AND $4::timestamptz IS NOT NULL AND ${state === undefined ? 'true' : where[state]}
       ORDER BY ic.serial LIMIT $3`,
      [incidentId, after, page.limit + 1, now],
    );
    return pageOf(
      rows,
      page.limit,
      (row) => ({
        serial: row.serial,
        group: row.group_name,
        issuerId: row.issuer_id,
        notAfter: new Date(row.not_after),
        shortLived: row.short_lived,
        identifiers: identifierValues(row.identifiers),
        status: row.status === 'revoked' ? ('revoked' as const) : ('valid' as const),
        ...(row.revoked_at === null ? {} : { revokedAt: new Date(row.revoked_at) }),
        ...(row.replaced_by === null ? {} : { replacedBy: row.replaced_by }),
        ...(row.replaced_at === null ? {} : { replacedAt: new Date(row.replaced_at) }),
      }),
      (row) => [row.serial],
    );
  }

  /** The owners (contacts) of these groups. */
  async owners(groups: readonly string[]): Promise<Map<string, string[]>> {
    if (groups.length === 0) return new Map();
    const { rows } = await this.db.query<{ name: string; contacts: unknown }>('SELECT name, contacts FROM groups WHERE name = ANY($1::text[])', [[...groups]]);
    return new Map(rows.map((row) => [row.name, Array.isArray(row.contacts) ? row.contacts.filter((c): c is string => typeof c === 'string') : []]));
  }

  /** Certificates by serial (for a serials list): what a declaration records, or nothing for an unknown serial. */
  async certificateFacts(serials: readonly string[]): Promise<Map<string, IncidentMember & { status: 'valid' | 'revoked' }>> {
    const { rows } = await this.db.query<{ serial: string; group_name: string | null; issuer_id: string; not_after: Date; no_rev_avail: boolean; status: string }>(
      `SELECT c.serial, c.group_name, c.issuer_id, c.not_after, c.no_rev_avail, c.status
       FROM unnest($1::text[]) AS s (serial)
       CROSS JOIN LATERAL (SELECT serial, group_name, issuer_id, not_after, no_rev_avail, status FROM certificates WHERE serial = s.serial OFFSET 0) AS c`,
      [[...serials]],
    );
    return new Map(
      rows.map((row) => [
        row.serial,
        {
          serial: row.serial,
          group: row.group_name ?? '',
          issuerId: row.issuer_id,
          notAfter: new Date(row.not_after),
          shortLived: row.no_rev_avail,
          status: row.status === 'revoked' ? ('revoked' as const) : ('valid' as const),
        },
      ]),
    );
  }

  /**
   * Puts the incident in the notification outbox (migration 0014) once: one `incident-declared` event per
   * affected certificate, with a pending delivery to every webhook of its group (and every global one)
   * subscribed to the type, and the incident marked notified — one statement, so a crash repeats it or
   * finds it done. The body is the outbox's (core/webhook.ts) with the incident's deadline and explanation.
   * A certificate already told of an incident (the outbox's one event per certificate and type) is not told
   * again. Returns how many events were new.
   */
  async notifyOwners(incident: Incident, at: Date): Promise<number> {
    const iso = (column: string): string => `to_char(${column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;
    const { rows } = await this.db.query<{ events: number }>(
      `WITH i AS (UPDATE incidents SET notified_at = $2 WHERE id = $1 AND notified_at IS NULL RETURNING id),
       ev AS (
         INSERT INTO notification_events (id, type, serial, group_name, account_id, not_after, body, created_at)
         SELECT e.id, 'incident-declared', ic.serial, nullif(ic.group_name, ''), c.account_id, ic.not_after,
           jsonb_build_object(
             'id', e.id, 'type', 'incident-declared', 'createdAt', $3::text,
             'incident', jsonb_strip_nulls(jsonb_build_object('name', $4::text, 'reason', $5::text, 'renewBy', $6::text, 'explanationUrl', $7::text, 'drill', $8::boolean)),
             'certificate', jsonb_strip_nulls(jsonb_build_object(
               'serial', ic.serial, 'identifiers', (SELECT jsonb_agg((x ->> 'type') || ':' || (x ->> 'value')) FROM jsonb_array_elements(c.identifiers) AS x),
               'notBefore', ${iso('c.not_before')}, 'notAfter', ${iso('ic.not_after')}, 'issuer', ic.issuer_id, 'profile', c.profile, 'account', c.account_id, 'labels', c.labels)),
             'group', CASE WHEN ic.group_name = '' THEN NULL ELSE jsonb_build_object('name', ic.group_name,
               'owners', coalesce((SELECT g.contacts FROM groups g WHERE g.name = ic.group_name), '[]'::jsonb)) END
           )::text, $2
         FROM i JOIN incident_certificates ic ON ic.incident_id = i.id
         CROSS JOIN LATERAL (SELECT 'evt_' || substr(md5(i.id || ':' || ic.serial), 1, 22) AS id) AS e
         CROSS JOIN LATERAL (SELECT account_id, identifiers, not_before, profile, labels FROM certificates WHERE serial = ic.serial COLLATE "default" OFFSET 0) AS c
         ON CONFLICT ON CONSTRAINT notification_events_once DO NOTHING
         RETURNING id, type, group_name),
       deliveries AS (
         INSERT INTO notification_deliveries (event_id, webhook_id, status, attempts, next_attempt_at, created_at)
         SELECT ev.id, w.id, 'pending', 0, $2, $2
         FROM ev JOIN webhooks w
           ON w.removed_at IS NULL AND (w.group_name IS NULL OR w.group_name = ev.group_name) AND w.events @> jsonb_build_array(ev.type)
         RETURNING event_id)
       SELECT (SELECT count(*) FROM ev)::int AS events`,
      [
        incident.id,
        at,
        at.toISOString(),
        incident.name,
        Object.entries(REASON_NAMES).find(([, code]) => code === incident.reason)?.[0] ?? String(incident.reason),
        incident.renewBy.toISOString(),
        incident.explanationUrl ?? null,
        incident.drill,
      ],
    );
    return Number(rows[0]?.events ?? 0);
  }

  /** The open incidents' view for the ACME hot path (OpenIncident). */
  async openSummaries(): Promise<OpenIncident[]> {
    return (await this.open()).map((i) => ({
      id: i.id,
      name: i.name,
      declaredAt: i.declaredAt,
      renewBy: i.renewBy,
      drill: i.drill,
      revoke: i.revoke,
      ...(i.explanationUrl === undefined ? {} : { explanationUrl: i.explanationUrl }),
    }));
  }
}

function identifierValues(value: unknown): string[] {
  const list = typeof value === 'string' ? (JSON.parse(value) as unknown) : value;
  return Array.isArray(list) ? list.map((item) => String((item as { value?: unknown }).value ?? '')) : [];
}
