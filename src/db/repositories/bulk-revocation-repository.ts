import type { Actor } from '../../core/audit.js';
import type { BulkRevokedCertificate, BulkRun, BulkRunState, CrlScope, LeftOutCertificate } from '../../core/bulk-revocation.js';
import type { RevocationReason } from '../../core/certificate.js';
import { CaError } from '../../core/errors.js';
import type { Queryable } from '../database.js';

/**
 * Bulk revocation runs (migration 0016): the run, its items in the bytewise serial order chunks walk, and the
 * chunk statements. Every lookup of certificates by a batch of serials is a LATERAL subquery with OFFSET 0
 * (keyed-joins.ts): a keyed lookup per serial whatever the statistics say, never a scan of certificates.
 */

const RUN_COLUMNS =
  'id, origin, label, reason, invalidity_date, actor, state, total, short_lived, short_lived_until, unknown, cursor, revoked, skipped, chunks, scopes, token, created_at, finished_at, published_at';

interface RunRow {
  id: string;
  origin: string;
  label: string;
  reason: number;
  invalidity_date: Date | null;
  actor: string;
  state: string;
  total: number;
  short_lived: number;
  short_lived_until: Date | null;
  unknown: number;
  cursor: string | null;
  revoked: number;
  skipped: number;
  chunks: number;
  scopes: unknown;
  token: number | string;
  created_at: Date;
  finished_at: Date | null;
  published_at: Date | null;
}

const STATES: readonly string[] = ['running', 'publishing', 'done'];
const REASONS: readonly number[] = [0, 1, 2, 3, 4, 5, 6, 8, 9, 10];

function corrupt(what: string): CaError {
  return new CaError('serverInternal', `unexpected value in the database: ${what}`);
}

function scopesOf(value: unknown): CrlScope[] {
  if (!Array.isArray(value)) throw corrupt('bulk_revocations.scopes');
  return value.map((pair: unknown) => {
    if (!Array.isArray(pair) || typeof pair[0] !== 'string' || typeof pair[1] !== 'number') throw corrupt('bulk_revocations.scopes');
    return { issuerId: pair[0], shard: pair[1] };
  });
}

/** A run as stored, and the fencing token of whoever last worked on it. */
export interface StoredRun {
  run: BulkRun;
  cursor: string | undefined;
  token: number;
}

function runFromRow(row: RunRow): StoredRun {
  if (!STATES.includes(row.state)) throw corrupt(`bulk run state ${row.state}`);
  if (!REASONS.includes(row.reason)) throw corrupt(`bulk run reason ${row.reason}`);
  const run: BulkRun = {
    id: row.id,
    origin: row.origin,
    label: row.label,
    reason: row.reason as RevocationReason,
    actor: row.actor as Actor,
    state: row.state as BulkRunState,
    total: Number(row.total),
    shortLived: Number(row.short_lived),
    unknown: Number(row.unknown),
    revoked: Number(row.revoked),
    skipped: Number(row.skipped),
    chunks: Number(row.chunks),
    scopes: scopesOf(row.scopes),
    createdAt: row.created_at,
    ...(row.invalidity_date === null ? {} : { invalidityDate: row.invalidity_date }),
    ...(row.short_lived_until === null ? {} : { shortLivedUntil: row.short_lived_until }),
    ...(row.finished_at === null ? {} : { finishedAt: row.finished_at }),
    ...(row.published_at === null ? {} : { publishedAt: row.published_at }),
  };
  return { run, cursor: row.cursor ?? undefined, token: Number(row.token) };
}

/** What one page of a plan added. */
export interface PlannedPage {
  /** Serials that will be revoked. */
  added: number;
  shortLived: number;
  shortLivedUntil: Date | undefined;
  /** Serials that name no certificate. */
  unknown: number;
}

export class BulkRevocationRepository {
  constructor(private readonly db: Queryable) {}

  /** Creates the run (state running, no items yet); false when a run of that origin exists (nothing written). */
  async insertRun(run: Pick<BulkRun, 'id' | 'origin' | 'label' | 'reason' | 'invalidityDate' | 'actor' | 'createdAt'>): Promise<boolean> {
    const { rows } = await this.db.query<{ id: string }>(
      `INSERT INTO bulk_revocations (id, origin, label, reason, invalidity_date, actor, state, total, short_lived, unknown, created_at)
       VALUES ($1, $2, $3, $4, $5, $6, 'running', 0, 0, 0, $7)
       ON CONFLICT ON CONSTRAINT bulk_revocations_origin DO NOTHING
       RETURNING id`,
      [run.id, run.origin, run.label, run.reason, run.invalidityDate ?? null, run.actor, run.createdAt],
    );
    return rows.length > 0;
  }

  /**
   * Adds a page of serials to a run being planned: the certificates they name (a serial given twice, or in
   * an earlier page, once), short-lived ones flagged. One statement.
   */
  async addItems(runId: string, serials: readonly string[]): Promise<PlannedPage> {
    const { rows } = await this.db.query<{ given: number; found: number; added: number; short_lived: number; short_lived_until: Date | null }>(
      `WITH s AS (SELECT DISTINCT serial FROM unnest($2::text[]) AS s (serial)),
       found AS (
         SELECT c.serial, c.no_rev_avail, c.not_after
         FROM s CROSS JOIN LATERAL (SELECT serial, no_rev_avail, not_after FROM certificates WHERE serial = s.serial OFFSET 0) AS c),
       inserted AS (
         INSERT INTO bulk_revocation_items (run_id, serial, short_lived, not_after)
         SELECT $1, serial, no_rev_avail, not_after FROM found
         ON CONFLICT DO NOTHING
         RETURNING short_lived, not_after)
       SELECT (SELECT count(*) FROM s)::int AS given, (SELECT count(*) FROM found)::int AS found,
         (SELECT count(*) FROM inserted WHERE NOT short_lived)::int AS added,
         (SELECT count(*) FROM inserted WHERE short_lived)::int AS short_lived,
         (SELECT max(not_after) FROM inserted WHERE short_lived) AS short_lived_until`,
      [runId, [...serials]],
    );
    const row = rows[0]!;
    return {
      added: Number(row.added),
      shortLived: Number(row.short_lived),
      shortLivedUntil: row.short_lived_until === null ? undefined : new Date(row.short_lived_until),
      unknown: Number(row.given) - Number(row.found),
    };
  }

  /** The planned totals of a run. */
  async setTotals(runId: string, totals: { total: number; shortLived: number; shortLivedUntil: Date | undefined; unknown: number }): Promise<void> {
    await this.db.query('UPDATE bulk_revocations SET total = $2, short_lived = $3, short_lived_until = $4, unknown = $5 WHERE id = $1', [
      runId,
      totals.total,
      totals.shortLived,
      totals.shortLivedUntil ?? null,
      totals.unknown,
    ]);
  }

  async findById(id: string): Promise<StoredRun | undefined> {
    const { rows } = await this.db.query<RunRow>(`SELECT ${RUN_COLUMNS} FROM bulk_revocations WHERE id = $1`, [id]);
    return rows[0] === undefined ? undefined : runFromRow(rows[0]);
  }

  async findByOrigin(origin: string): Promise<StoredRun | undefined> {
    const { rows } = await this.db.query<RunRow>(`SELECT ${RUN_COLUMNS} FROM bulk_revocations WHERE origin = $1`, [origin]);
    return rows[0] === undefined ? undefined : runFromRow(rows[0]);
  }

  /** Runs whose origin starts with `prefix` (an incident's), oldest first; few per incident. */
  async findByOriginPrefix(prefix: string): Promise<BulkRun[]> {
    const { rows } = await this.db.query<RunRow>(
      `SELECT ${RUN_COLUMNS} FROM bulk_revocations WHERE origin >= $1 AND origin < $2 ORDER BY created_at, id`,
      [prefix, `${prefix}\u{10FFFF}`],
    );
    return rows.map((row) => runFromRow(row).run);
  }

  /** Runs not done, oldest first (the job's work list). */
  async pending(limit: number): Promise<StoredRun[]> {
    const { rows } = await this.db.query<RunRow>(`SELECT ${RUN_COLUMNS} FROM bulk_revocations WHERE state <> 'done' ORDER BY created_at, id LIMIT $1`, [limit]);
    return rows.map(runFromRow);
  }

  /**
   * Takes a running run for one chunk, inside the chunk's transaction: locks its row (the chunks of a run
   * commit one after another, across instances), and only if no holder of a higher lease token worked on it
   * and it is still at `cursor`. Undefined when either changed: another instance moved on.
   */
  async claimChunk(runId: string, token: number, cursor: string | undefined): Promise<StoredRun | undefined> {
    const { rows } = await this.db.query<RunRow>(
      `UPDATE bulk_revocations SET token = $2
       WHERE id = $1 AND state = 'running' AND token <= $2 AND coalesce(cursor, '') = $3
       RETURNING ${RUN_COLUMNS}`,
      [runId, token, cursor ?? ''],
    );
    return rows[0] === undefined ? undefined : runFromRow(rows[0]);
  }

  /** The next chunk's serials after `cursor`, short-lived ones left out, in bytewise order. */
  async nextSerials(runId: string, cursor: string | undefined, limit: number): Promise<string[]> {
    const { rows } = await this.db.query<{ serial: string }>(
      `SELECT serial FROM bulk_revocation_items WHERE run_id = $1 AND serial > $2 AND NOT short_lived ORDER BY serial LIMIT $3`,
      [runId, cursor ?? '', limit],
    );
    return rows.map((row) => row.serial);
  }

  /**
   * Of `serials`, the certificates a revocation would change now (valid, and publishing their revocation),
   * with their issuer: what a chunk read ahead signs before it is revoked. Each looked up by its serial.
   */
  async candidates(serials: readonly string[]): Promise<{ serial: string; issuerId: string }[]> {
    const { rows } = await this.db.query<{ serial: string; issuer_id: string }>(
      `SELECT c.serial, c.issuer_id FROM unnest($1::text[]) AS s (serial)
       CROSS JOIN LATERAL (SELECT serial, issuer_id, status, no_rev_avail FROM certificates WHERE serial = s.serial OFFSET 0) AS c
       WHERE c.status = 'valid' AND NOT c.no_rev_avail`,
      [[...serials]],
    );
    return rows.map((row) => ({ serial: row.serial, issuerId: row.issuer_id }));
  }

  /**
   * valid -> revoked for the certificates of `serials` that are still valid and publish their revocation
   * (noRevAvail ones never do, RFC 9608): one compare-and-set statement, so a certificate revoked meanwhile
   * by anyone is left as it is and reported as skipped by the caller. One job runs the chunks of every
   * run one after another, so no two bulk statements wait on each other's rows.
   */
  async revoke(serials: readonly string[], at: Date, reason: RevocationReason, invalidityDate: Date | undefined): Promise<BulkRevokedCertificate[]> {
    const { rows } = await this.db.query<{ serial: string; issuer_id: string; crl_shard: number; not_after: Date; group_name: string | null }>(
      `UPDATE certificates c SET status = 'revoked', revoked_at = $2, revocation_reason = $3, invalidity_date = $4
       FROM unnest($1::text[]) AS due (serial)
       WHERE c.serial = due.serial AND c.status = 'valid' AND NOT c.no_rev_avail
       RETURNING c.serial, c.issuer_id, c.crl_shard, c.not_after, c.group_name`,
      [[...serials], at, reason, invalidityDate ?? null],
    );
    return rows.map((row) => ({
      serial: row.serial,
      issuerId: row.issuer_id,
      crlShard: Number(row.crl_shard),
      status: 'revoked' as const,
      revokedAt: at,
      revocationReason: reason,
      ...(invalidityDate === undefined ? {} : { invalidityDate }),
      notAfter: new Date(row.not_after),
      ...(row.group_name === null ? {} : { group: row.group_name }),
    }));
  }

  /** After a chunk: the cursor, the counts and the scopes it touched, in the chunk's transaction. */
  async advance(runId: string, chunk: { cursor: string; revoked: number; skipped: number; scopes: readonly CrlScope[] }): Promise<void> {
    await this.db.query(
      `UPDATE bulk_revocations SET cursor = $2, revoked = revoked + $3, skipped = skipped + $4, chunks = chunks + 1,
         scopes = (SELECT coalesce(jsonb_agg(DISTINCT e), '[]'::jsonb) FROM jsonb_array_elements(scopes || $5::text::jsonb) AS e)
       WHERE id = $1`,
      [runId, chunk.cursor, chunk.revoked, chunk.skipped, JSON.stringify(chunk.scopes.map((s) => [s.issuerId, s.shard]))],
    );
  }

  /** running -> publishing once no chunk is left (the caller holds the row: claimChunk). */
  async finishRevoking(runId: string, at: Date): Promise<void> {
    await this.db.query(`UPDATE bulk_revocations SET state = 'publishing', finished_at = $2 WHERE id = $1 AND state = 'running'`, [runId, at]);
  }

  /** publishing -> done once the CRLs of its scopes are published; undefined if it was not publishing. */
  async markPublished(runId: string, at: Date, token: number): Promise<StoredRun | undefined> {
    const { rows } = await this.db.query<RunRow>(
      `UPDATE bulk_revocations SET state = 'done', published_at = $2, token = greatest(token, $3)
       WHERE id = $1 AND state = 'publishing' AND token <= $3
       RETURNING ${RUN_COLUMNS}`,
      [runId, at, token],
    );
    return rows[0] === undefined ? undefined : runFromRow(rows[0]);
  }

  /** The short-lived certificates a run left out, by serial after `after` (keyset, DESIGN.md rule 9). */
  async leftOut(runId: string, after: string | undefined, limit: number): Promise<LeftOutCertificate[]> {
    const { rows } = await this.db.query<{ serial: string; not_after: Date }>(
      `SELECT serial, not_after FROM bulk_revocation_items WHERE run_id = $1 AND serial > $2 AND short_lived ORDER BY serial LIMIT $3`,
      [runId, after ?? '', limit],
    );
    return rows.map((row) => ({ serial: row.serial, notAfter: new Date(row.not_after) }));
  }
}
