import type { AuditDraft } from '../../core/audit.js';
import type { IssuedCertificate, RevocationReason } from '../../core/certificate.js';
import { CaError } from '../../core/errors.js';
import type { Queryable } from '../database.js';
import { isOutcomeUnknown } from '../errors.js';
import { FOREIGN_KEY_VIOLATION, UNIQUE_VIOLATION, certificateFromRow, certificateToRow, sqlError } from '../row-mappers.js';
import type { OcspResponseRecord } from '../ocsp-rows.js';
import type { CertificateRow } from '../row-types.js';
import { StatementBatcher } from '../statement-batcher.js';
import { decodeCursor, pageOf } from '../keyset.js';
import type { Page } from '../../core/page.js';
import { auditAppendCtes, auditDraftArrays } from './audit-repository.js';
import { qualified } from './columns.js';
import { RESPONSE_COLUMNS as OCSP_RESPONSE_COLUMNS } from './ocsp-repository.js';

const COLUMNS =
  'serial, issuer_id, crl_shard, der, identifiers, spki_sha256, not_before, not_after, status, revoked_at, ' +
  'revocation_reason, invalidity_date, created_at, account_id, order_id, replaces_serial, profile, no_rev_avail, group_name, labels';

/**
 * Serials and issued certificates. Takes a Queryable so issuance can store the certificate in the same
 * transaction as the order it finalizes (rule 6).
 */
/** A certificate's first OCSP response (`good`), stored with it by insertForOrder. */
export type FirstOcspRow = Pick<OcspResponseRecord, 'thisUpdate' | 'nextUpdate' | 'refreshAfter' | 'responderGeneration' | 'updatedAt'> & { der: Uint8Array };

interface OrderInsert {
  cert: IssuedCertificate;
  orderId: string;
  ocsp: FirstOcspRow | undefined;
  /** The issuance's audit entries (DESIGN.md rule 8): appended by the certificate's own statement. */
  records?: readonly AuditDraft[] | undefined;
}

export class CertificateRepository {
  private readonly reads?: StatementBatcher<string, IssuedCertificate | undefined>;
  private readonly orderInserts?: StatementBatcher<OrderInsert, boolean>;

  /** `batch`: concurrent findBySerial and insertForOrder calls share a statement each (see AuthorizationRepository). */
  constructor(
    private readonly db: Queryable,
    options: { batch?: boolean } = {},
  ) {
    if (options.batch) {
      this.reads = new StatementBatcher((serials) => this.selectBySerials(serials));
      this.orderInserts = new StatementBatcher((items) => this.insertManyForOrders(items), { retryAlone: true });
    }
  }

  /**
   * Records a serial before the TBS certificate carrying it is signed (rule 2). The row stays even if
   * signing fails, so a serial is never used twice (CA/B BR 7.1; RFC 5280 §4.1.2.2). Call it outside the
   * issuance transaction, or commit it first: a rolled-back reservation would let the serial come back.
   * A duplicate (a colliding random serial) throws CaError('conflict'); the caller draws a new serial.
   */
  async reserveSerial(serial: string, issuerId: string, at: Date): Promise<void> {
    try {
      await this.db.query('INSERT INTO serials (serial, issuer_id, created_at) VALUES ($1, $2, $3)', [serial, issuerId, at]);
    } catch (error) {
      const { code } = sqlError(error);
      if (code === UNIQUE_VIOLATION) throw new CaError('conflict', `serial ${serial} has already been used`);
      if (code === FOREIGN_KEY_VIOLATION) throw new CaError('notFound', `issuer ${issuerId} does not exist`);
      throw error;
    }
  }

  /** Stores a signed certificate. Its serial must have been reserved for the same issuer. */
  async insert(cert: IssuedCertificate): Promise<void> {
    const row = certificateToRow(cert);
    try {
      await this.db.query(
        `INSERT INTO certificates (${COLUMNS})
         VALUES ($1, $2, $3, $4, $5::text::jsonb, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20::text::jsonb)`,
        insertValues(row),
      );
    } catch (error) {
      throw insertError(error, cert);
    }
  }

  /**
   * Stores a signed certificate and moves its ACME order processing -> valid with it (RFC 8555 §7.4), in one
   * statement: atomic on its own (rule 6) and one round trip. True when the order moved. When it
   * did not (it was no longer processing, which only this finalization could have changed) the certificate
   * is stored all the same: it has been signed, and a signed certificate must be on record. Throws like insert().
   */
  async insertForOrder(cert: IssuedCertificate, orderId: string, ocsp?: FirstOcspRow, records?: readonly AuditDraft[]): Promise<boolean> {
    const item = { cert, orderId, ocsp, records };
    try {
      return this.orderInserts ? await this.orderInserts.submit(item) : (await this.insertManyForOrders([item]))[0]!;
    } catch (error) {
      if (isOutcomeUnknown(error)) return this.afterLostInsert(item);
      throw insertError(error, cert);
    }
  }

  /**
   * insertForOrder whose answer was lost with its connection (ConnectionLost 'unknown'): what was stored is
   * read back rather than assumed. Stored: the answer is whether the order names it (the same statement
   * moved it). Not stored: the certificate is signed and must be on record, so it is inserted once more —
   * which cannot store it twice (the serial is the key) and runs its order's compare-and-set only with an
   * insert that succeeds; if the lost statement commits in between, the key refuses this one and the
   * certificate is read back again.
   */
  private async afterLostInsert(item: OrderInsert): Promise<boolean> {
    const stored = async (): Promise<boolean | undefined> => {
      const { rows } = await this.db.query<{ named: boolean }>(
        `SELECT EXISTS (SELECT 1 FROM orders WHERE id = $2 AND certificate_serial = $1) AS named FROM certificates WHERE serial = $1`,
        [item.cert.serial, item.orderId],
      );
      return rows[0]?.named;
    };
    const found = await stored();
    if (found !== undefined) return found;
    try {
      return (await this.insertManyForOrders([item]))[0]!;
    } catch (error) {
      if (sqlError(error).code === UNIQUE_VIOLATION) {
        const again = await stored();
        if (again !== undefined) return again;
      }
      throw isOutcomeUnknown(error) ? error : insertError(error, item.cert);
    }
  }

  /**
   * insertForOrder for several certificates in one statement (a keyed plan: it carries a batch);
   * answers in the order given. A batch that fails wrote nothing; its certificates are then stored one by
   * one (StatementBatcher retryAlone), so the error a caller sees is its own certificate's.
   */
  private async insertManyForOrders(items: readonly OrderInsert[]): Promise<boolean[]> {
    const rows = items.map(({ cert }) => certificateToRow(cert));
    const column = <K extends keyof CertificateRow>(key: K): CertificateRow[K][] => rows.map((row) => row[key]);
    const time = (dates: (Date | null)[]): (string | null)[] => dates.map((date) => date?.toISOString() ?? null);
    // The audit entries of every certificate of the batch, each keyed by its certificate's serial.
    const audited = items.flatMap(({ cert, records }) => (records ?? []).map((record) => ({ serial: cert.serial, record })));
    // Arrays rather than a JSON recordset: PostgreSQL then knows how many rows the batch holds and plans
    // the order update as lookups, not a scan.
    const result = await this.db.query<{ serial: string }>(
      `WITH k AS (
         SELECT * FROM unnest($1::text[], $2::text[], $3::integer[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[],
           $9::text[], $10::text[], $11::smallint[], $12::text[], $13::text[], $14::text[], $15::text[], $16::text[], $17::text[],
           $18::text[], $19::text[], $20::text[], $21::text[], $22::integer[], $23::text[], $24::text[], $25::boolean[],
           $35::text[], $36::text[])
           AS k (serial, issuer_id, crl_shard, der, identifiers, spki_sha256, not_before, not_after, status, revoked_at,
             revocation_reason, invalidity_date, created_at, account_id, order_id, replaces_serial, for_order,
             ocsp_der, ocsp_this_update, ocsp_next_update, ocsp_refresh_after, ocsp_responder_generation, ocsp_updated_at,
             profile, no_rev_avail, group_name, labels)
       ), stored AS (
         INSERT INTO certificates (${COLUMNS})
         SELECT serial, issuer_id, crl_shard, decode(der, 'hex'), identifiers::jsonb, spki_sha256, not_before::timestamptz,
           not_after::timestamptz, status, revoked_at::timestamptz, revocation_reason, invalidity_date::timestamptz,
           created_at::timestamptz, account_id, order_id, replaces_serial, profile, no_rev_avail, group_name, labels::jsonb
         FROM k
         RETURNING serial
       ), first_ocsp AS (
         -- A certificate stored by this statement has no response yet and cannot be revoked before it commits,
         -- so its first (good) response goes in unguarded (compare OcspResponseRepository.put). The foreign key
         -- to certificates is checked at the end of the statement, when the certificate row is there.
         INSERT INTO ocsp_responses (${OCSP_RESPONSE_COLUMNS})
         SELECT k.serial, k.issuer_id, 'good', decode(k.ocsp_der, 'hex'), k.ocsp_this_update::timestamptz,
           k.ocsp_next_update::timestamptz, k.ocsp_refresh_after::timestamptz, k.ocsp_responder_generation,
           k.ocsp_updated_at::timestamptz
         FROM k
         WHERE k.ocsp_der IS NOT NULL AND k.serial IN (SELECT serial FROM stored)
         ON CONFLICT (serial) DO NOTHING),
       -- The issuance's audit entries, unsealed (the sealer chains them later; src/inventory/audit-log.ts),
       -- for the certificates this statement stored: in the change's own statement, so there is no
       -- certificate without its entry and no transaction to pay for (DESIGN.md rule 8).
       ${auditAppendCtes('audit', 26, 'd.serial IN (SELECT serial FROM stored)', ', serial', ', $34::text[]')}
       UPDATE orders o SET status = 'valid', certificate_serial = k.serial
       FROM k
       WHERE o.id = k.for_order AND o.status = 'processing' AND k.serial IN (SELECT serial FROM stored)
       RETURNING k.serial`,
      [
        column('serial'),
        column('issuer_id'),
        column('crl_shard'),
        rows.map((row) => Buffer.from(row.der).toString('hex')),
        column('identifiers'),
        column('spki_sha256'),
        time(column('not_before')),
        time(column('not_after')),
        column('status'),
        time(column('revoked_at')),
        column('revocation_reason'),
        time(column('invalidity_date')),
        time(column('created_at')),
        column('account_id'),
        column('order_id'),
        column('replaces_serial'),
        items.map((item) => item.orderId),
        items.map((item) => (item.ocsp ? Buffer.from(item.ocsp.der).toString('hex') : null)),
        items.map((item) => item.ocsp?.thisUpdate.toISOString() ?? null),
        items.map((item) => item.ocsp?.nextUpdate.toISOString() ?? null),
        items.map((item) => item.ocsp?.refreshAfter.toISOString() ?? null),
        items.map((item) => item.ocsp?.responderGeneration ?? null),
        items.map((item) => item.ocsp?.updatedAt.toISOString() ?? null),
        column('profile'),
        column('no_rev_avail'),
        ...auditDraftArrays(audited.map((a) => a.record)),
        audited.map((a) => a.serial),
        column('group_name'),
        column('labels'),
      ],
      { keyedPlan: true },
    );
    const moved = new Set(result.rows.map((row) => row.serial));
    return items.map(({ cert }) => moved.has(cert.serial));
  }

  async findBySerial(serial: string): Promise<IssuedCertificate | undefined> {
    if (this.reads) return this.reads.submit(serial);
    return (await this.selectBySerials([serial]))[0];
  }

  /** Certificates by serial in one statement; answers in the order given (undefined where there is none). */
  private async selectBySerials(serials: readonly string[]): Promise<(IssuedCertificate | undefined)[]> {
    const result = await this.db.query<CertificateRow>(
      `SELECT ${qualified(COLUMNS, 'c')}
       FROM unnest($1::text[]) AS s (serial) CROSS JOIN LATERAL (SELECT ${COLUMNS} FROM certificates WHERE serial = s.serial OFFSET 0) AS c`,
      [serials],
    );
    const bySerial = new Map(result.rows.map((row) => [row.serial, certificateFromRow(row)]));
    return serials.map((serial) => bySerial.get(serial));
  }

  /**
   * Marks a valid certificate revoked (RFC 5280 §5.3.1 reason) in one compare-and-set statement, so two
   * concurrent revocations cannot both succeed. Returns the revoked certificate, or undefined when there
   * is no such certificate or it was already revoked: findBySerial tells which (RFC 8555 §7.6
   * alreadyRevoked). Runs inside the caller's transaction when the CRL/OCSP bookkeeping must commit with it.
   */
  async revoke(serial: string, at: Date, reason: RevocationReason, invalidityDate?: Date): Promise<IssuedCertificate | undefined> {
    const result = await this.db.query<CertificateRow>(
      `UPDATE certificates SET status = 'revoked', revoked_at = $2, revocation_reason = $3, invalidity_date = $4
       WHERE serial = $1 AND status = 'valid'
       RETURNING ${COLUMNS}`,
      [serial, at, reason, invalidityDate ?? null],
    );
    const row = result.rows[0];
    return row === undefined ? undefined : certificateFromRow(row);
  }

  async isSerialReserved(serial: string): Promise<boolean> {
    const result = await this.db.query<{ found: number }>('SELECT 1 AS found FROM serials WHERE serial = $1', [serial]);
    return result.rows.length > 0;
  }

  /** Certificates stored for an issuer (any status). */
  async countByIssuer(issuerId: string): Promise<number> {
    // count(*) is int8; the cast keeps it a plain number on both drivers.
    const result = await this.db.query<{ n: number }>('SELECT count(*)::int AS n FROM certificates WHERE issuer_id = $1', [
      issuerId,
    ]);
    return result.rows[0]?.n ?? 0;
  }

  /**
   * The admin list (DESIGN.md rule 9: keyset, never OFFSET). Newest first on (created_at, serial)
   * (certificates_created, or certificates_group_created for a group's); `expiring`: valid certificates whose
   * notAfter falls in (from, to], soonest first on (not_after, serial) (an index on not_after). `groups`:
   * only certificates recorded with one of these groups (a group-admin's scope, or a group filter).
   */
  async list(
    filter: { status?: 'valid' | 'revoked'; groups?: readonly string[]; expiring?: { from: Date; to: Date } },
    page: { cursor?: string; limit: number },
  ): Promise<Page<IssuedCertificate>> {
    const params: unknown[] = [page.limit + 1];
    const where: string[] = [];
    const add = (sql: (n: number) => string, value: unknown): void => {
      params.push(value);
      where.push(sql(params.length));
    };
    if (filter.groups !== undefined) add((n) => `group_name = ANY($${n}::text[])`, [...filter.groups]);
    const expiring = filter.expiring;
    if (expiring !== undefined) {
      where.push(`status = 'valid'`);
      add((n) => `not_after > $${n}`, expiring.from);
      add((n) => `not_after <= $${n}`, expiring.to);
    } else if (filter.status !== undefined) {
      add((n) => `status = $${n}`, filter.status);
    }
    if (page.cursor !== undefined) {
      const [at, serial] = decodeCursor(page.cursor, ['date', 'string'] as const);
      params.push(at, serial);
      where.push(expiring ? `(not_after, serial) > ($${params.length - 1}, $${params.length})` : `(created_at, serial) < ($${params.length - 1}, $${params.length})`);
    }
    const order = expiring ? 'not_after, serial' : 'created_at DESC, serial DESC';
    const result = await this.db.query<CertificateRow>(
      `SELECT ${COLUMNS} FROM certificates ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY ${order} LIMIT $1`,
      params,
    );
    return pageOf(result.rows, page.limit, certificateFromRow, (row) => [new Date(expiring ? row.not_after : row.created_at).toISOString(), row.serial]);
  }
}

/** Parameters $1..$18 of an INSERT INTO certificates (COLUMNS), in COLUMNS order. */
function insertValues(row: CertificateRow): unknown[] {
  return [
    row.serial,
    row.issuer_id,
    row.crl_shard,
    row.der,
    row.identifiers,
    row.spki_sha256,
    row.not_before,
    row.not_after,
    row.status,
    row.revoked_at,
    row.revocation_reason,
    row.invalidity_date,
    row.created_at,
    row.account_id,
    row.order_id,
    row.replaces_serial,
    row.profile,
    row.no_rev_avail,
    row.group_name,
    row.labels,
  ];
}

function insertError(error: unknown, cert: IssuedCertificate): unknown {
  const { code, constraint } = sqlError(error);
  if (code === UNIQUE_VIOLATION) return new CaError('conflict', `certificate ${cert.serial} is already stored`);
  if (code === FOREIGN_KEY_VIOLATION && constraint === 'certificates_account_id_fkey') {
    return new CaError('notFound', `account ${cert.accountId ?? ''} does not exist`);
  }
  if (code === FOREIGN_KEY_VIOLATION && constraint === 'certificates_replaces_serial_fkey') {
    return new CaError('notFound', `certificate ${cert.replacesSerial ?? ''} (the one replaced) does not exist`);
  }
  if (code === FOREIGN_KEY_VIOLATION) {
    // A bug in the issuance path, not bad input: rule 2 reserves the serial before signing.
    return new CaError('serverInternal', `serial ${cert.serial} was not reserved for issuer ${cert.issuerId}`, { cause: error });
  }
  return error;
}
