import type { SubjectKey } from '../../core/subject-key.js';
import type { IssuedCertificate } from '../../core/certificate.js';
import type { Page } from '../../core/page.js';
import type { Queryable } from '../database.js';
import { decodeCursor, pageOf } from '../keyset.js';
import { certificateFromRow } from '../row-mappers.js';
import { certificateColumns, type InventoryCertificateRow } from './inventory-columns.js';

/** A certificate as the key inventory reads it: its key, its holder and its lifetime. */
export interface KeyedCertificate {
  serial: string;
  der: Uint8Array;
  spkiSha256: string;
  accountId?: string;
  group?: string;
  notAfter: Date;
  createdAt: Date;
}

/** What one batch learned about one key (the key inventory folds a batch per key before it writes). */
export interface SubjectKeyFacts {
  spkiSha256: string;
  kind: string;
  /** Its earliest certificate in the batch, and that certificate's holder. */
  firstSerial: string;
  firstAccountId?: string;
  firstGroup?: string;
  firstSeenAt: Date;
  /** More than one account (or group) among its certificates in the batch. */
  sharedAccounts: boolean;
  sharedGroups: boolean;
  lastNotAfter: Date;
}

export interface KeyCursor {
  at: Date;
  serial: string;
}

interface SubjectKeyRow {
  spki_sha256: string;
  kind: string;
  first_serial: string;
  first_seen_at: Date;
  last_not_after: Date;
  shared_accounts: boolean;
  shared_groups: boolean;
}

const KEY_COLUMNS = 'spki_sha256, kind, first_serial, first_seen_at, last_not_after, shared_accounts, shared_groups';

function keyFromRow(row: SubjectKeyRow): SubjectKey {
  return {
    spkiSha256: row.spki_sha256,
    kind: row.kind,
    firstSerial: row.first_serial,
    firstSeenAt: new Date(row.first_seen_at),
    lastNotAfter: new Date(row.last_not_after),
    sharedAccounts: row.shared_accounts,
    sharedGroups: row.shared_groups,
  };
}

/**
 * The key inventory's table (subject_keys, migration 0014) and the walk that fills it: certificates in
 * (created_at, serial) order (certificates_created), from a cursor kept in inventory_cursors. Writing a batch
 * and moving the cursor is one statement; every column is written so that a batch read twice (a job that
 * lost its lease, a cursor held back) changes nothing.
 */
export class SubjectKeyRepository {
  constructor(private readonly db: Queryable) {}

  async cursor(name: string): Promise<KeyCursor | undefined> {
    const { rows } = await this.db.query<{ at: Date; serial: string }>('SELECT at, serial FROM inventory_cursors WHERE name = $1', [name]);
    const row = rows[0];
    return row === undefined ? undefined : { at: new Date(row.at), serial: row.serial };
  }

  /** Certificates stored after `after` (all from the start when undefined), in (created_at, serial) order. */
  async certificatesAfter(after: KeyCursor | undefined, limit: number): Promise<KeyedCertificate[]> {
    const params: unknown[] = [limit];
    let where = '';
    if (after !== undefined) {
      params.push(after.at, after.serial);
      where = 'WHERE (created_at, serial) > ($2, $3)';
    }
    const { rows } = await this.db.query<{
      serial: string;
      der: Uint8Array;
      spki_sha256: string;
      account_id: string | null;
      group_name: string | null;
      not_after: Date;
      created_at: Date;
    }>(`SELECT serial, der, spki_sha256, account_id, group_name, not_after, created_at FROM certificates ${where} ORDER BY created_at, serial LIMIT $1`, params);
    return rows.map((row) => ({
      serial: row.serial,
      der: row.der,
      spkiSha256: row.spki_sha256,
      ...(row.account_id === null ? {} : { accountId: row.account_id }),
      ...(row.group_name === null ? {} : { group: row.group_name }),
      notAfter: new Date(row.not_after),
      createdAt: new Date(row.created_at),
    }));
  }

  /**
   * Folds a batch's facts into subject_keys and, in the same statement, moves the cursor `name` to
   * `cursor` (never backwards). A key already known to another account (group) than this batch's first one
   * becomes shared.
   */
  async record(name: string, facts: readonly SubjectKeyFacts[], cursor: KeyCursor | undefined): Promise<void> {
    const iso = (date: Date): string => date.toISOString();
    await this.db.query(
      `WITH k AS (
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::boolean[], $7::boolean[], $8::text[], $9::text[])
           AS k (spki_sha256, kind, first_serial, first_account_id, first_group, shared_accounts, shared_groups, last_not_after, first_seen_at)
       ), keys AS (
         INSERT INTO subject_keys (spki_sha256, kind, first_serial, first_account_id, first_group, shared_accounts, shared_groups, last_not_after, first_seen_at)
         SELECT spki_sha256, kind, first_serial, first_account_id, first_group, shared_accounts, shared_groups, last_not_after::timestamptz, first_seen_at::timestamptz
         FROM k
         ON CONFLICT (spki_sha256) DO UPDATE SET
           shared_accounts = subject_keys.shared_accounts OR EXCLUDED.shared_accounts
             OR subject_keys.first_account_id IS DISTINCT FROM EXCLUDED.first_account_id,
           shared_groups = subject_keys.shared_groups OR EXCLUDED.shared_groups
             OR subject_keys.first_group IS DISTINCT FROM EXCLUDED.first_group,
           last_not_after = greatest(subject_keys.last_not_after, EXCLUDED.last_not_after)
         RETURNING 1
       )
       INSERT INTO inventory_cursors (name, at, serial)
       SELECT $10, $11::timestamptz, $12::text WHERE $12::text IS NOT NULL
       ON CONFLICT (name) DO UPDATE SET at = EXCLUDED.at, serial = EXCLUDED.serial
         WHERE (inventory_cursors.at, inventory_cursors.serial) < (EXCLUDED.at, EXCLUDED.serial)`,
      [
        facts.map((f) => f.spkiSha256),
        facts.map((f) => f.kind),
        facts.map((f) => f.firstSerial),
        facts.map((f) => f.firstAccountId ?? null),
        facts.map((f) => f.firstGroup ?? null),
        facts.map((f) => f.sharedAccounts),
        facts.map((f) => f.sharedGroups),
        facts.map((f) => iso(f.lastNotAfter)),
        facts.map((f) => iso(f.firstSeenAt)),
        name,
        cursor === undefined ? null : iso(cursor.at),
        cursor?.serial ?? null,
      ],
    );
  }

  /** Every key kind in the table: a skip scan of subject_keys_kind, one probe per distinct kind. */
  async kinds(): Promise<string[]> {
    const { rows } = await this.db.query<{ kind: string | null }>(
      `WITH RECURSIVE kinds AS (
         (SELECT kind FROM subject_keys ORDER BY kind LIMIT 1)
         UNION ALL
         SELECT (SELECT s.kind FROM subject_keys s WHERE s.kind > k.kind ORDER BY s.kind LIMIT 1) FROM kinds k WHERE k.kind IS NOT NULL
       )
       SELECT kind FROM kinds WHERE kind IS NOT NULL`,
    );
    return rows.map((row) => row.kind!);
  }

  /**
   * Keys of these kinds still in use at `at` (a certificate not yet expired), by (kind, key); `groups`: only
   * keys with a certificate in one of these groups.
   */
  async ofKinds(kinds: readonly string[], at: Date, groups: readonly string[] | undefined, page: { cursor?: string; limit: number }): Promise<Page<SubjectKey>> {
    const params: unknown[] = [page.limit + 1, [...kinds], at];
    const where = ['k.kind = ANY($2::text[])', 'k.last_not_after > $3'];
    if (groups !== undefined) {
      params.push([...groups]);
      where.push(`EXISTS (SELECT 1 FROM certificates c WHERE c.spki_sha256 = k.spki_sha256 AND c.group_name = ANY($${params.length}::text[]))`);
    }
    if (page.cursor !== undefined) {
      const [kind, spki] = decodeCursor(page.cursor, ['string', 'string'] as const);
      params.push(kind, spki);
      where.push(`(k.kind, k.spki_sha256) > ($${params.length - 1}, $${params.length})`);
    }
    const { rows } = await this.db.query<SubjectKeyRow>(
      `SELECT ${KEY_COLUMNS.split(', ').map((c) => `k.${c}`).join(', ')} FROM subject_keys k WHERE ${where.join(' AND ')} ORDER BY k.kind, k.spki_sha256 LIMIT $1`,
      params,
    );
    return pageOf(rows, page.limit, keyFromRow, (row) => [row.kind, row.spki_sha256]);
  }

  /**
   * Keys certified for more than one account or group and still in use at `at`, by key. With `groups`, the
   * sharing is judged among the certificates of those groups alone: a group's administrator learns nothing
   * of other groups' certificates (policy/admin-rbac.ts).
   */
  async shared(at: Date, groups: readonly string[] | undefined, page: { cursor?: string; limit: number }): Promise<Page<SubjectKey>> {
    const params: unknown[] = [page.limit + 1, at];
    const where = ['(k.shared_accounts OR k.shared_groups)', 'k.last_not_after > $2'];
    if (groups !== undefined) {
      params.push([...groups]);
      where.push(`(SELECT count(DISTINCT coalesce(c.account_id, '')) > 1 OR count(DISTINCT c.group_name) > 1
                   FROM certificates c WHERE c.spki_sha256 = k.spki_sha256 AND c.group_name = ANY($${params.length}::text[]))`);
    }
    if (page.cursor !== undefined) {
      const [spki] = decodeCursor(page.cursor, ['string'] as const);
      params.push(spki);
      where.push(`k.spki_sha256 > $${params.length}`);
    }
    const { rows } = await this.db.query<SubjectKeyRow>(
      `SELECT ${KEY_COLUMNS.split(', ').map((c) => `k.${c}`).join(', ')} FROM subject_keys k WHERE ${where.join(' AND ')} ORDER BY k.spki_sha256 LIMIT $1`,
      params,
    );
    return pageOf(rows, page.limit, keyFromRow, (row) => [row.spki_sha256]);
  }

  /**
   * The newest `perKey` certificates of each key (in `groups` only, when given), with how many it has and
   * how many distinct accounts and groups hold them; certificates_spki_sha256 per key.
   */
  async certificatesOf(
    spkis: readonly string[],
    groups: readonly string[] | undefined,
    perKey: number,
  ): Promise<Map<string, { certificates: IssuedCertificate[]; count: number; accounts: number; groups: number }>> {
    const scope = (alias: string, n: number): string => (groups === undefined ? '' : `AND ${alias}.group_name = ANY($${n}::text[])`);
    const scoped = groups === undefined ? [] : [[...groups]];
    const certificates = await this.db.query<InventoryCertificateRow & { key: string }>(
      `SELECT s.key, ${certificateColumns('c')}
       FROM unnest($1::text[]) AS s (key)
       CROSS JOIN LATERAL (SELECT ${certificateColumns('x')} FROM certificates x
                           WHERE x.spki_sha256 = s.key ${scope('x', 3)}
                           ORDER BY x.created_at DESC, x.serial DESC LIMIT $2) AS c`,
      [[...spkis], perKey, ...scoped],
    );
    const counts = await this.db.query<{ key: string; n: number; accounts: number; groups: number }>(
      `SELECT s.key, count(c.serial)::int AS n, count(DISTINCT coalesce(c.account_id, ''))::int AS accounts,
         count(DISTINCT coalesce(c.group_name, ''))::int AS groups
       FROM unnest($1::text[]) AS s (key) JOIN certificates c ON c.spki_sha256 = s.key ${scope('c', 2)}
       GROUP BY s.key`,
      [[...spkis], ...scoped],
    );
    const out = new Map<string, { certificates: IssuedCertificate[]; count: number; accounts: number; groups: number }>();
    for (const spki of spkis) out.set(spki, { certificates: [], count: 0, accounts: 0, groups: 0 });
    for (const row of certificates.rows) out.get(row.key)!.certificates.push(certificateFromRow(row));
    for (const row of counts.rows) Object.assign(out.get(row.key)!, { count: Number(row.n), accounts: Number(row.accounts), groups: Number(row.groups) });
    return out;
  }
}
