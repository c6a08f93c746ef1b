import type { OcspResponderRecord, RevocationReason } from '../../core/certificate.js';
import { CaError } from '../../core/errors.js';
import type { Queryable } from '../database.js';
import { StatementBatcher } from '../statement-batcher.js';
import type {
  OcspCertificateFacts,
  OcspCertificateRow,
  OcspResponderRow,
  OcspResponseRecord,
  OcspResponseRow,
} from '../ocsp-rows.js';

export const RESPONSE_COLUMNS = 'serial, issuer_id, status, der, this_update, next_update, refresh_after, responder_generation, updated_at';
const RESPONDER_COLUMNS = 'issuer_id, generation, key_name, serial, der, not_before, not_after, created_at';
const REVOCATION_REASONS: readonly number[] = [0, 1, 2, 3, 4, 5, 6, 8, 9, 10];

function bytes(value: Uint8Array): Buffer {
  return Buffer.isBuffer(value) ? value : Buffer.from(value.buffer, value.byteOffset, value.byteLength);
}

function responseFromRow(row: OcspResponseRow): OcspResponseRecord {
  if (row.status !== 'good' && row.status !== 'revoked') {
    throw new CaError('serverInternal', `ocsp_responses row ${row.serial} has status "${row.status}"`);
  }
  return {
    serial: row.serial,
    issuerId: row.issuer_id,
    status: row.status,
    ...(row.der === null ? {} : { der: bytes(row.der) }),
    thisUpdate: row.this_update,
    nextUpdate: row.next_update,
    refreshAfter: row.refresh_after,
    ...(row.responder_generation === null ? {} : { responderGeneration: row.responder_generation }),
    updatedAt: row.updated_at,
  };
}

function responderFromRow(row: OcspResponderRow): OcspResponderRecord {
  return {
    issuerId: row.issuer_id,
    generation: row.generation,
    keyName: row.key_name,
    serial: row.serial,
    der: bytes(row.der),
    notBefore: row.not_before,
    notAfter: row.not_after,
    createdAt: row.created_at,
  };
}

function factsFromRow(row: OcspCertificateRow): OcspCertificateFacts {
  if (row.status !== 'valid' && row.status !== 'revoked') {
    throw new CaError('serverInternal', `certificate ${row.serial} has status "${row.status}"`);
  }
  const reason = row.revocation_reason;
  if (reason !== null && !REVOCATION_REASONS.includes(reason)) {
    throw new CaError('serverInternal', `certificate ${row.serial} has revocation reason ${reason}`);
  }
  return {
    serial: row.serial,
    issuerId: row.issuer_id,
    status: row.status,
    ...(row.revoked_at === null ? {} : { revokedAt: row.revoked_at }),
    ...(reason === null ? {} : { revocationReason: reason as RevocationReason }),
    ...(row.invalidity_date === null ? {} : { invalidityDate: row.invalidity_date }),
    notAfter: row.not_after,
    ...(row.no_rev_avail ? { noRevAvail: true } : {}),
  };
}

function checkLimit(limit: number): void {
  if (!Number.isInteger(limit) || limit < 1) throw new CaError('serverInternal', `limit must be a positive integer, not ${limit}`);
}

type PutRecord = Omit<OcspResponseRecord, 'updatedAt'> & { updatedAt: Date };

/**
 * Pre-signed OCSP responses (RFC 5019 §2.2: responses produced ahead of requests). Takes a Queryable so
 * the revocation's transaction can re-sign the response together with the status change (rule 6).
 */
export class OcspResponseRepository {
  private readonly puts?: StatementBatcher<PutRecord, boolean>;

  /**
   * `batch`: concurrent put() calls share one statement (StatementBatcher) — for the instance on the
   * pool, where every issuance stores its pre-signed response; never for one on a transaction.
   */
  constructor(
    private readonly db: Queryable,
    options: { batch?: boolean } = {},
  ) {
    if (options.batch) this.puts = new StatementBatcher((records) => this.putMany(records));
  }

  async find(serial: string): Promise<OcspResponseRecord | undefined> {
    const result = await this.db.query<OcspResponseRow>(`SELECT ${RESPONSE_COLUMNS} FROM ocsp_responses WHERE serial = $1`, [serial]);
    const row = result.rows[0];
    return row === undefined ? undefined : responseFromRow(row);
  }

  /**
   * Stores a response unless that would make things worse, in one statement, so concurrent writers (the
   * issuance hook, the revocation transaction, the refreshers of several instances, a live fill) cannot
   * undo each other:
   * - a response is written only while it says what the certificate row says (good = valid, revoked =
   *   revoked), as seen by this statement: a stale signature never lands after a committed revocation;
   * - `good` is never written over `revoked` (revocation is final, RFC 5280 §3.3, except certificateHold,
   *   which Chancery does not lift), which also covers a revocation still in flight;
   * - a row still waiting for its signature (revoked, no der) takes any signed revoked response, but never
   *   replaces one;
   * - otherwise the newer thisUpdate wins.
   * Returns whether the row was written. A certificate that does not exist writes nothing (no `unknown`
   * is ever stored).
   */
  async put(record: PutRecord): Promise<boolean> {
    if (this.puts) return this.puts.submit(record);
    return (await this.putMany([record]))[0]!;
  }

  /**
   * put() for several records in one statement (for the StatementBatcher of the pool's instance); answers
   * in the order given. Rows go in serial order, so two instances' batches cannot deadlock; a serial given
   * twice (one statement cannot write a row twice) is written by the records in turn, as put() would.
   */
  async putMany(records: readonly PutRecord[]): Promise<boolean[]> {
    if (new Set(records.map((record) => record.serial)).size !== records.length) {
      const answers: boolean[] = [];
      for (const record of records) answers.push((await this.putMany([record]))[0]!);
      return answers;
    }
    if (records.length === 0) return [];
    const iso = (date: Date): string => date.toISOString();
    const result = await this.db.query<{ serial: string }>(
      `INSERT INTO ocsp_responses (${RESPONSE_COLUMNS})
       SELECT r.serial, r.issuer_id, r.status, decode(r.der, 'hex'), r.this_update::timestamptz, r.next_update::timestamptz,
              r.refresh_after::timestamptz, r.responder_generation, r.updated_at::timestamptz
       FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::integer[], $9::text[])
         AS r (serial, issuer_id, status, der, this_update, next_update, refresh_after, responder_generation, updated_at)
       WHERE EXISTS (
         -- By primary key only (see keyed-joins.ts): with issuer_id in the same WHERE, a stale plan walked
         -- certificates_issuer_not_after through every certificate of the issuer.
         SELECT 1 FROM (SELECT issuer_id, status FROM certificates WHERE serial = r.serial OFFSET 0) c
         WHERE c.issuer_id = r.issuer_id AND c.status = (CASE WHEN r.status = 'good' THEN 'valid' ELSE 'revoked' END))
       ORDER BY r.serial
       ON CONFLICT (serial) DO UPDATE SET
         issuer_id = EXCLUDED.issuer_id, status = EXCLUDED.status, der = EXCLUDED.der,
         this_update = EXCLUDED.this_update, next_update = EXCLUDED.next_update,
         refresh_after = EXCLUDED.refresh_after, responder_generation = EXCLUDED.responder_generation,
         updated_at = EXCLUDED.updated_at
       WHERE NOT (ocsp_responses.status = 'revoked' AND EXCLUDED.status = 'good')
         AND NOT (ocsp_responses.status = 'revoked' AND ocsp_responses.der IS NOT NULL AND EXCLUDED.der IS NULL)
         AND (EXCLUDED.status <> ocsp_responses.status OR ocsp_responses.der IS NULL
              OR EXCLUDED.this_update >= ocsp_responses.this_update)
       RETURNING serial`,
      [
        records.map((r) => r.serial),
        records.map((r) => r.issuerId),
        records.map((r) => r.status),
        records.map((r) => (r.der === undefined || r.der === null ? null : bytes(r.der).toString('hex'))),
        records.map((r) => iso(r.thisUpdate)),
        records.map((r) => iso(r.nextUpdate)),
        records.map((r) => iso(r.refreshAfter)),
        records.map((r) => r.responderGeneration ?? null),
        records.map((r) => iso(r.updatedAt)),
      ],
    );
    const written = new Set(result.rows.map((row) => row.serial));
    return records.map((record) => written.has(record.serial));
  }

  /** The certificate facts a response is signed from; undefined for a serial Chancery never stored. */
  async findCertificate(serial: string): Promise<OcspCertificateFacts | undefined> {
    const result = await this.db.query<OcspCertificateRow>(
      'SELECT serial, issuer_id, status, revoked_at, revocation_reason, invalidity_date, not_after, no_rev_avail FROM certificates WHERE serial = $1',
      [serial],
    );
    const row = result.rows[0];
    return row === undefined ? undefined : factsFromRow(row);
  }

  /**
   * Claims up to `limit` responses due for re-signing (refresh_after <= now) whose certificates have not
   * expired, leasing them until leaseUntil in one statement. FOR UPDATE SKIP LOCKED lets the refreshers
   * of several instances work side by side; a lease that is never completed (a crashed instance) simply
   * runs out and the row is due again.
   */
  async claimDue(now: Date, leaseUntil: Date, limit: number): Promise<OcspCertificateFacts[]> {
    checkLimit(limit);
    const result = await this.db.query<OcspCertificateRow>(
      `UPDATE ocsp_responses o SET refresh_after = $2
       FROM certificates c
       WHERE c.serial = o.serial AND o.serial IN (
         SELECT r.serial FROM ocsp_responses r JOIN certificates rc ON rc.serial = r.serial
         WHERE r.refresh_after <= $1 AND rc.not_after > $1
         ORDER BY r.refresh_after, r.serial
         LIMIT $3
         FOR UPDATE OF r SKIP LOCKED)
       RETURNING c.serial, c.issuer_id, c.status, c.revoked_at, c.revocation_reason, c.invalidity_date, c.not_after`,
      [now, leaseUntil, limit],
    );
    return result.rows.map(factsFromRow);
  }

  /**
   * Unexpired certificates that have no stored response yet: issued before OCSP existed, or whose
   * issuance hook did not run (a crash between storing the certificate and signing its response).
   */
  async findMissing(now: Date, limit: number): Promise<OcspCertificateFacts[]> {
    checkLimit(limit);
    const result = await this.db.query<OcspCertificateRow>(
      `SELECT c.serial, c.issuer_id, c.status, c.revoked_at, c.revocation_reason, c.invalidity_date, c.not_after
       FROM certificates c
       WHERE c.not_after > $1 AND NOT c.no_rev_avail AND NOT EXISTS (SELECT 1 FROM ocsp_responses o WHERE o.serial = c.serial)
       ORDER BY c.not_after, c.serial
       LIMIT $2`,
      [now, limit],
    );
    return result.rows.map(factsFromRow);
  }

  /** Drops responses of certificates that expired before `before`: nobody may rely on them any more. */
  async purgeExpired(before: Date): Promise<number> {
    const result = await this.db.query(
      `DELETE FROM ocsp_responses o USING certificates c WHERE c.serial = o.serial AND c.not_after < $1`,
      [before],
    );
    return result.rowCount;
  }

  /** Responses stored, for `chancery ocsp refresh` and tests. */
  async count(): Promise<number> {
    const result = await this.db.query<{ n: number }>('SELECT count(*)::int AS n FROM ocsp_responses');
    return result.rows[0]?.n ?? 0;
  }
}

/** Delegated OCSP responder certificates, shared by every instance (rule 7). */
export class OcspResponderRepository {
  constructor(private readonly db: Queryable) {}

  /** The newest responder of an issuer (highest generation). */
  async latest(issuerId: string): Promise<OcspResponderRecord | undefined> {
    const result = await this.db.query<OcspResponderRow>(
      `SELECT ${RESPONDER_COLUMNS} FROM ocsp_responders WHERE issuer_id = $1 ORDER BY generation DESC LIMIT 1`,
      [issuerId],
    );
    const row = result.rows[0];
    return row === undefined ? undefined : responderFromRow(row);
  }

  /**
   * Records a responder; false when that generation of that issuer already exists (another instance
   * rotated first — read latest() and use the winner).
   */
  async insert(record: OcspResponderRecord): Promise<boolean> {
    const result = await this.db.query<{ generation: number }>(
      `INSERT INTO ocsp_responders (${RESPONDER_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
       ON CONFLICT DO NOTHING
       RETURNING generation`,
      [
        record.issuerId,
        record.generation,
        record.keyName,
        record.serial,
        record.der,
        record.notBefore,
        record.notAfter,
        record.createdAt,
      ],
    );
    return result.rows.length > 0;
  }
}
