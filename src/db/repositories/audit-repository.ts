import type { AuditCheckpoint, AuditDraft, AuditEntry, AuditFilter, AuditOutcome, Actor } from '../../core/audit.js';
import { CaError } from '../../core/errors.js';
import type { Queryable } from '../database.js';
import { UNIQUE_VIOLATION, sqlError } from '../errors.js';
import { decodeCursor, pageOf } from '../keyset.js';

/**
 * The audit log's tables (migrations/0010): entries appended unsealed by the change they record, the hash
 * chain the sealer links them into, and the signed checkpoints of its head. Implements the AuditStore of
 * src/inventory/audit-log.ts. Entries are never updated or deleted here: nothing in Chancery removes them.
 */

const ENTRY_COLUMNS = 'id, at, actor, action, subject, outcome, request_id, group_name, details';
const qualifiedEntry = (alias: string): string =>
  ENTRY_COLUMNS.split(', ')
    .map((column) => `${alias}.${column}`)
    .join(', ');

interface EntryRow {
  id: number | bigint | string;
  at: Date;
  actor: string;
  action: string;
  subject: string;
  outcome: string;
  request_id: string | null;
  group_name: string | null;
  details: string | null;
}

interface SealRow {
  seq: number | bigint | string | null;
  prev_hash: Uint8Array | null;
  hash: Uint8Array | null;
}

interface CheckpointRow {
  seq: number | bigint | string;
  hash: Uint8Array;
  at: Date;
  key_name: string;
  signature: Uint8Array;
}

/** A chain position and the entry it holds (undefined when the entry row is gone). */
export interface AuditChainRow {
  seq: number;
  entryId: number;
  prevHash: string;
  hash: string;
  entry: AuditEntry | undefined;
}

/** One position to write: the sealer's output. */
export interface AuditSealRow {
  seq: number;
  entryId: number;
  prevHash: string;
  hash: string;
}

function corrupt(what: string): CaError {
  return new CaError('serverInternal', `unexpected value in the database: ${what}`);
}

function integer(value: number | bigint | string, what: string): number {
  const number = Number(value);
  if (!Number.isSafeInteger(number)) throw corrupt(`${what} ${String(value)}`);
  return number;
}

const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');

function outcome(value: string): AuditOutcome {
  if (value === 'ok' || value === 'refused') return value;
  throw corrupt(`audit outcome ${JSON.stringify(value)}`);
}

function entryFromRow(row: EntryRow, seal?: SealRow): AuditEntry {
  if (!(row.at instanceof Date)) throw corrupt('audit entry time');
  return {
    id: integer(row.id, 'audit entry id'),
    at: row.at,
    // Stored as written by AuditDraft's producers; not re-checked against the Actor shapes (an old row
    // must stay readable when a new shape is added).
    actor: row.actor as Actor,
    action: row.action,
    subject: row.subject,
    outcome: outcome(row.outcome),
    ...(row.request_id === null ? {} : { requestId: row.request_id }),
    ...(row.group_name === null ? {} : { group: row.group_name }),
    ...(row.details === null ? {} : { details: row.details }),
    ...(seal?.seq === null || seal?.seq === undefined || seal.prev_hash === null || seal.hash === null
      ? {}
      : { seal: { seq: integer(seal.seq, 'audit chain position'), prevHash: hex(seal.prev_hash), hash: hex(seal.hash) } }),
  };
}

function checkpointFromRow(row: CheckpointRow): AuditCheckpoint {
  return { seq: integer(row.seq, 'audit checkpoint position'), hash: hex(row.hash), at: row.at, keyName: row.key_name, signature: hex(row.signature) };
}

/**
 * The columns of drafts as parallel arrays, in AUDIT_INSERT order: for this repository's own INSERT and for
 * a change's statement that appends its entries itself (CertificateRepository.insertForOrder). The details
 * become their JSON text here, once: those bytes are what the chain hashes.
 */
export function auditDraftArrays(drafts: readonly AuditDraft[]): unknown[] {
  return [
    drafts.map((d) => d.at.toISOString()),
    drafts.map((d) => d.actor),
    drafts.map((d) => d.action),
    drafts.map((d) => d.subject),
    drafts.map((d) => d.outcome),
    drafts.map((d) => d.requestId ?? null),
    drafts.map((d) => d.group ?? null),
    drafts.map((d) => (d.details === undefined ? null : JSON.stringify(d.details))),
  ];
}

/**
 * Two CTEs that append drafts, given as the eight arrays of auditDraftArrays at parameters $first..$first+7,
 * unsealed: the entries, and their ids in audit_unsealed for the sealer. `where` filters the unnested rows
 * (alias `d`), e.g. to entries whose change happened in the same statement. Named `<prefix>_entries` and
 * `<prefix>_unsealed`; append to a WITH list.
 */
export function auditAppendCtes(prefix: string, first: number, where = 'true', extraColumns = '', extraArrays = ''): string {
  const p = (i: number): string => `$${first + i}`;
  return `${prefix}_entries AS (
         INSERT INTO audit_entries (at, actor, action, subject, outcome, request_id, group_name, details)
         SELECT d.at::timestamptz, d.actor, d.action, d.subject, d.outcome, d.request_id, d.group_name, d.details
         FROM unnest(${p(0)}::text[], ${p(1)}::text[], ${p(2)}::text[], ${p(3)}::text[], ${p(4)}::text[], ${p(5)}::text[],
           ${p(6)}::text[], ${p(7)}::text[]${extraArrays})
           AS d (at, actor, action, subject, outcome, request_id, group_name, details${extraColumns})
         WHERE ${where}
         RETURNING id
       ), ${prefix}_unsealed AS (
         INSERT INTO audit_unsealed (entry_id) SELECT id FROM ${prefix}_entries
       )`;
}

export class AuditRepository {
  constructor(private readonly db: Queryable) {}

  /** Appends entries, unsealed, in one statement: run it on the transaction of the change they record. */
  async append(drafts: readonly AuditDraft[]): Promise<void> {
    if (drafts.length === 0) return;
    await this.db.query(`WITH ${auditAppendCtes('a', 1)} SELECT count(*) AS n FROM a_entries`, auditDraftArrays(drafts));
  }

  /** The last sealed position, if any. */
  async head(): Promise<{ seq: number; hash: string } | undefined> {
    const result = await this.db.query<{ seq: number | bigint | string; hash: Uint8Array }>('SELECT seq, hash FROM audit_chain ORDER BY seq DESC LIMIT 1');
    const row = result.rows[0];
    return row === undefined ? undefined : { seq: integer(row.seq, 'audit chain position'), hash: hex(row.hash) };
  }

  /**
   * Committed entries waiting to be sealed, in id order, at most `limit`. Only committed rows are visible,
   * so an entry whose transaction is still running is taken by a later pass.
   */
  async unsealed(limit: number): Promise<AuditEntry[]> {
    const result = await this.db.query<EntryRow>(
      `SELECT ${qualifiedEntry('e')} FROM audit_unsealed u JOIN audit_entries e ON e.id = u.entry_id ORDER BY u.entry_id LIMIT $1`,
      [limit],
    );
    return result.rows.map((row) => entryFromRow(row));
  }

  /** How many entries wait to be sealed (their entry row present or not). */
  async countUnsealed(): Promise<number> {
    const result = await this.db.query<{ n: number }>('SELECT count(*)::int AS n FROM audit_unsealed');
    return result.rows[0]?.n ?? 0;
  }

  /**
   * Writes chain positions and takes their entries off audit_unsealed, in one statement (atomic on its
   * own). Throws CaError('conflict') when a position or an entry is already in the chain: another sealer
   * wrote first (a holder that lost its lease), and nothing of this call was written.
   */
  async seal(links: readonly AuditSealRow[]): Promise<void> {
    if (links.length === 0) return;
    try {
      await this.db.query(
        `WITH k AS (
           SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[]) AS k (seq, entry_id, prev_hash, hash)
         ), taken AS (
           DELETE FROM audit_unsealed WHERE entry_id IN (SELECT entry_id FROM k)
         )
         INSERT INTO audit_chain (seq, entry_id, prev_hash, hash)
         SELECT seq, entry_id, decode(prev_hash, 'hex'), decode(hash, 'hex') FROM k`,
        [links.map((l) => l.seq), links.map((l) => l.entryId), links.map((l) => l.prevHash), links.map((l) => l.hash)],
      );
    } catch (error) {
      if (sqlError(error).code === UNIQUE_VIOLATION) {
        throw new CaError('conflict', `audit chain positions ${links[0]!.seq}..${links.at(-1)!.seq} were written by another sealer`, { cause: error });
      }
      throw error;
    }
  }

  /** Chain positions after `afterSeq`, in order, at most `limit`, each with its entry (keyset on seq). */
  async chain(afterSeq: number, limit: number): Promise<AuditChainRow[]> {
    const result = await this.db.query<EntryRow & { c_seq: number | bigint | string; c_entry_id: number | bigint | string; c_prev_hash: Uint8Array; c_hash: Uint8Array; present: boolean }>(
      `SELECT c.seq AS c_seq, c.entry_id AS c_entry_id, c.prev_hash AS c_prev_hash, c.hash AS c_hash, e.id IS NOT NULL AS present, ${qualifiedEntry('e')}
       FROM audit_chain c LEFT JOIN audit_entries e ON e.id = c.entry_id
       WHERE c.seq > $1 ORDER BY c.seq LIMIT $2`,
      [afterSeq, limit],
    );
    return result.rows.map((row) => ({
      seq: integer(row.c_seq, 'audit chain position'),
      entryId: integer(row.c_entry_id, 'audit chain entry'),
      prevHash: hex(row.c_prev_hash),
      hash: hex(row.c_hash),
      entry: row.present ? entryFromRow(row) : undefined,
    }));
  }

  /**
   * Entries with an id above `afterId` that are neither in the chain nor waiting to be sealed (a chain
   * position deleted with its bookkeeping), in id order, at most `limit`. A full scan: for verification.
   */
  async unlinked(afterId: number, limit: number): Promise<number[]> {
    const result = await this.db.query<{ id: number | bigint | string }>(
      `SELECT e.id FROM audit_entries e
       WHERE e.id > $1
         AND NOT EXISTS (SELECT 1 FROM audit_chain c WHERE c.entry_id = e.id)
         AND NOT EXISTS (SELECT 1 FROM audit_unsealed u WHERE u.entry_id = e.id)
       ORDER BY e.id LIMIT $2`,
      [afterId, limit],
    );
    return result.rows.map((row) => integer(row.id, 'audit entry id'));
  }

  async latestCheckpoint(): Promise<AuditCheckpoint | undefined> {
    const result = await this.db.query<CheckpointRow>('SELECT seq, hash, at, key_name, signature FROM audit_checkpoints ORDER BY seq DESC LIMIT 1');
    const row = result.rows[0];
    return row === undefined ? undefined : checkpointFromRow(row);
  }

  /** Checkpoints after position `afterSeq`, in order, at most `limit` (keyset on seq). */
  async checkpoints(afterSeq: number, limit: number): Promise<AuditCheckpoint[]> {
    const result = await this.db.query<CheckpointRow>(
      'SELECT seq, hash, at, key_name, signature FROM audit_checkpoints WHERE seq > $1 ORDER BY seq LIMIT $2',
      [afterSeq, limit],
    );
    return result.rows.map(checkpointFromRow);
  }

  /** False when a checkpoint of that position exists already (another sealer wrote it). */
  async insertCheckpoint(checkpoint: AuditCheckpoint): Promise<boolean> {
    const result = await this.db.query(
      `INSERT INTO audit_checkpoints (seq, hash, at, key_name, signature) VALUES ($1, decode($2, 'hex'), $3, $4, decode($5, 'hex'))
       ON CONFLICT (seq) DO NOTHING`,
      [checkpoint.seq, checkpoint.hash, checkpoint.at, checkpoint.keyName, checkpoint.signature],
    );
    return result.rowCount === 1;
  }

  /**
   * One page of entries matching `filter`, oldest first (or newest first), keyset-paged on (at, id): `cursor`
   * is the previous page's nextCursor. Each entry comes with its chain position once sealed. Every filter's
   * index is (column, at, id), the time range's (at, id) (migrations/0015), so a page is one index range
   * scan from the range's start or the cursor, also at 10M entries (DESIGN.md rule 9; bench/audit.ts). A
   * group scope reads each group's index in order and merges (LATERAL), never sorting a group whole.
   */
  async query(
    filter: AuditFilter,
    cursor: string | undefined,
    limit: number,
    options: { newestFirst?: boolean } = {},
  ): Promise<{ entries: AuditEntry[]; nextCursor?: string }> {
    const direction = options.newestFirst === true ? 'DESC' : 'ASC';
    const conditions: string[] = [];
    const params: unknown[] = [];
    const add = (condition: (p: string) => string, value: unknown): void => {
      params.push(value);
      conditions.push(condition(`$${params.length}`));
    };
    if (cursor !== undefined) {
      const [at, afterId, order] = decodeCursor(cursor, ['date', 'string', 'string']);
      if (!/^\d{1,18}$/.test(afterId) || order !== direction) throw new CaError('malformed', 'the cursor is not one this server issued');
      params.push(at, afterId);
      conditions.push(`(e.at, e.id) ${direction === 'ASC' ? '>' : '<'} ($${params.length - 1}::timestamptz, $${params.length}::bigint)`);
    }
    if (filter.actor !== undefined) add((p) => `e.actor = ${p}`, filter.actor);
    if (filter.action !== undefined) add((p) => `e.action = ${p}`, filter.action);
    if (filter.subject !== undefined) add((p) => `e.subject = ${p}`, filter.subject);
    if (filter.from !== undefined) add((p) => `e.at >= ${p}`, filter.from);
    if (filter.to !== undefined) add((p) => `e.at < ${p}`, filter.to);
    // One more than asked: whether there is a next page, without a second query.
    params.push(limit + 1);
    const limitParam = `$${params.length}`;
    const order = `ORDER BY e.at ${direction}, e.id ${direction}`;
    let from: string;
    if (filter.groups === undefined) {
      from = `(SELECT ${ENTRY_COLUMNS} FROM audit_entries e ${conditions.length > 0 ? `WHERE ${conditions.join(' AND ')}` : ''} ${order} LIMIT ${limitParam}) AS e`;
    } else {
      params.push([...new Set(filter.groups)]);
      // IS NOT NULL lets the planner use the partial group index with a join parameter.
      const scoped = [`e.group_name = g.name`, `e.group_name IS NOT NULL`, ...conditions];
      from = `unnest($${params.length}::text[]) AS g (name)
         CROSS JOIN LATERAL (SELECT ${qualifiedEntry('e')} FROM audit_entries e WHERE ${scoped.join(' AND ')} ${order} LIMIT ${limitParam}) AS e`;
    }
    const result = await this.db.query<EntryRow & SealRow>(
      `SELECT ${qualifiedEntry('e')}, c.seq, c.prev_hash, c.hash
       FROM ${from}
       LEFT JOIN audit_chain c ON c.entry_id = e.id
       ${order} LIMIT ${limitParam}`,
      params,
    );
    const page = pageOf(result.rows, limit, (row) => entryFromRow(row, row), (row) => [row.at.toISOString(), String(row.id), direction]);
    return { entries: page.items, ...(page.nextCursor === undefined ? {} : { nextCursor: page.nextCursor }) };
  }
}
