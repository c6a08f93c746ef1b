import type { RevokedEntryPage } from '../../core/revoked-entries.js';
import { CaError } from '../../core/errors.js';
import type { Database } from '../database.js';
import type { CrlMetaRow, CrlPageRow, CrlPartRow } from '../crl-rows.js';
import { FOREIGN_KEY_VIOLATION, sqlError } from '../row-mappers.js';

/** A stored CRL without its bytes: what conditional GETs and the scheduler look at. */
export interface StoredCrlInfo {
  issuerId: string;
  shard: number;
  number: number;
  thisUpdate: Date;
  nextUpdate: Date;
  entries: number;
}

export interface StoredCrl extends StoredCrlInfo {
  der: Uint8Array;
}

/** Parts the DER is stored in (crl_parts). */
const CRL_PART_SIZE = 1 << 20;

/** Default keyset page: ~2 MB of base64 per page, at most two pages in flight (one read ahead). */
export const DEFAULT_CRL_PAGE_SIZE = 50_000;

const META_COLUMNS = 'issuer_id, shard, number, this_update, next_update, entries';

// One page of a scope's revoked certificates, keyset-paginated over certificates_published_crl_entries (0007): the
// byte-order collation is spelled the same way in the comparison, the ORDER BY and the index, so the planner
// walks the index in order and stops after $5 rows.
//
// The page comes back as ONE row of column aggregates, in PostgreSQL's binary send formats (big-endian int2
// and float8, raw serial octets) and base64 text: per-row results cost ~2 µs a row in the driver's row
// parsing, more than the CRL costs to encode and sign, and base64 is two thirds the size of bytea's hex
// text. All aggregates of one Agg node see the rows in the same order, so the columns line up; the order
// itself does not matter to a CRL, and the page's set of rows is fixed by the LIMIT below it.
// - reasons: the CRLReason code, plus 256 when the certificate has an invalidity date;
// - invalidity_dates: only those that exist (string_agg skips NULLs), in row order;
// - times are whole epoch seconds: X.509 Time carries no fractions.
const PAGE_SQL = `SELECT count(*)::int AS count,
         max(serial COLLATE "C") AS last_serial,
         encode(string_agg(octets, ''::bytea), 'base64') AS serials,
         encode(string_agg(int2send(octet_length(octets)::int2), ''::bytea), 'base64') AS serial_lengths,
         encode(string_agg(float8send(floor(date_part('epoch', revoked_at))), ''::bytea), 'base64') AS revoked_at,
         encode(string_agg(int2send((revocation_reason + CASE WHEN invalidity_date IS NULL THEN 0 ELSE 256 END)::int2), ''::bytea), 'base64') AS reasons,
         encode(string_agg(float8send(floor(date_part('epoch', invalidity_date))), ''::bytea), 'base64') AS invalidity_dates
    FROM (SELECT serial,
                 decode(CASE WHEN length(serial) % 2 = 0 THEN serial ELSE '0' || serial END, 'hex') AS octets,
                 revoked_at, revocation_reason, invalidity_date
            FROM certificates
           WHERE issuer_id = $1 AND crl_shard = $2 AND status = 'revoked' AND NOT no_rev_avail AND not_after > $3
             AND serial COLLATE "C" > $4
           ORDER BY serial COLLATE "C"
           LIMIT $5) AS page`;

/** Flag in the page's reasons column: an invalidity date follows in invalidity_dates. */
const HAS_INVALIDITY_DATE = 256;
const REVOCATION_REASONS = new Set([0, 1, 2, 3, 4, 5, 6, 8, 9, 10]);

function corrupt(what: string): CaError {
  return new CaError('serverInternal', `unexpected value in the database: ${what}`);
}

function crlNumber(value: number | bigint | string): number {
  const number = Number(value);
  if (!Number.isSafeInteger(number) || number < 1) throw corrupt(`CRL number ${String(value)}`);
  return number;
}

function infoFromRow(row: CrlMetaRow): StoredCrlInfo {
  return {
    issuerId: row.issuer_id,
    shard: row.shard,
    number: crlNumber(row.number),
    thisUpdate: row.this_update,
    nextUpdate: row.next_update,
    entries: row.entries,
  };
}

/** A base64 column of fixed-width big-endian values (PostgreSQL's encode() breaks lines; Node skips them). */
function column(value: string | null, count: number, width: number, what: string): DataView {
  const bytes = value === null ? Buffer.alloc(0) : Buffer.from(value, 'base64');
  if (bytes.length !== count * width) throw corrupt(`CRL page column ${what} has ${bytes.length} octets for ${count} entries`);
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** The page row's columns as typed arrays, checked like any row (row-mappers.ts). */
function pageFromRow(row: CrlPageRow): RevokedEntryPage {
  const count = row.count;
  const serials = row.serials === null ? new Uint8Array(0) : Buffer.from(row.serials, 'base64');
  const lengthsView = column(row.serial_lengths, count, 2, 'serial_lengths');
  const revokedView = column(row.revoked_at, count, 8, 'revoked_at');
  const reasonsView = column(row.reasons, count, 2, 'reasons');
  const invalidityBytes = row.invalidity_dates === null ? Buffer.alloc(0) : Buffer.from(row.invalidity_dates, 'base64');
  const invalidityView = new DataView(invalidityBytes.buffer, invalidityBytes.byteOffset, invalidityBytes.byteLength);
  const serialLengths = new Uint16Array(count);
  const revokedAt = new Float64Array(count);
  const reasons = new Uint16Array(count);
  const invalidityDates = new Float64Array(count);
  let serialOctets = 0;
  let invalidityOffset = 0;
  for (let i = 0; i < count; i += 1) {
    const length = lengthsView.getUint16(i * 2);
    const revoked = revokedView.getFloat64(i * 8);
    const flagged = reasonsView.getUint16(i * 2);
    const reason = flagged & ~HAS_INVALIDITY_DATE;
    if (length === 0 || !Number.isFinite(revoked) || !REVOCATION_REASONS.has(reason)) {
      throw corrupt(`revoked certificate entry (serial octets ${length}, revoked_at ${revoked}, reason ${flagged})`);
    }
    serialLengths[i] = length;
    revokedAt[i] = revoked;
    reasons[i] = reason;
    if (flagged & HAS_INVALIDITY_DATE) {
      if (invalidityOffset + 8 > invalidityBytes.length) throw corrupt('CRL page invalidity dates are short');
      invalidityDates[i] = invalidityView.getFloat64(invalidityOffset);
      invalidityOffset += 8;
    } else {
      invalidityDates[i] = Number.NaN;
    }
    serialOctets += length;
  }
  if (serials.length !== serialOctets || invalidityOffset !== invalidityBytes.length) throw corrupt('CRL page columns do not add up');
  return { count, serials, serialLengths, revokedAt, reasons, invalidityDates };
}

/**
 * CRL numbers, the revoked certificates of one CRL scope (issuer + shard), and the latest signed CRL of each
 * scope (RFC 5280 §5). Nothing here lives only in memory: any instance sharing the database draws the next
 * number and serves the latest CRL (DESIGN.md rule 7).
 */
export class CrlRepository {
  /** A Database, not a transaction: storing a CRL runs a transaction of its own. */
  constructor(private readonly db: Database) {}

  /**
   * Allocates the next CRLNumber of a scope (RFC 5280 §5.2.3: monotonically increasing, never reused). One
   * statement, so concurrent callers on any instance get distinct numbers; the row lock it takes is held
   * only for that statement. Throws CaError('notFound') for an unknown issuer.
   */
  async nextCrlNumber(issuerId: string, shard: number): Promise<number> {
    try {
      const result = await this.db.query<{ last_number: number | bigint | string }>(
        `INSERT INTO crl_numbers (issuer_id, shard, last_number) VALUES ($1, $2, 1)
         ON CONFLICT (issuer_id, shard) DO UPDATE SET last_number = crl_numbers.last_number + 1
         RETURNING last_number`,
        [issuerId, shard],
      );
      const row = result.rows[0];
      if (row === undefined) throw corrupt('no CRL number returned');
      return crlNumber(row.last_number);
    } catch (error) {
      if (sqlError(error).code === FOREIGN_KEY_VIOLATION) throw new CaError('notFound', `issuer ${issuerId} does not exist`);
      throw error;
    }
  }

  /** Shards of an issuer that have ever been published (had a CRL number drawn), ascending. */
  async publishedShards(issuerId: string): Promise<number[]> {
    const result = await this.db.query<{ shard: number }>(
      'SELECT shard FROM crl_numbers WHERE issuer_id = $1 ORDER BY shard',
      [issuerId],
    );
    return result.rows.map((row) => row.shard);
  }

  /**
   * The revoked certificates of one scope whose notAfter is later than `notAfterAfter`, in pages of up to
   * `pageSize` ordered by serial (byte order). Keyset pagination keeps memory bounded however long the list
   * is; the next page is requested as soon as the current one arrives, so the server reads while the caller
   * encodes. Pages are separate statements, not one snapshot: a certificate revoked during the read may be
   * missed, and the regeneration that follows every revocation picks it up.
   */
  async *revokedEntries(
    issuerId: string,
    shard: number,
    options: { notAfterAfter: Date; pageSize?: number },
  ): AsyncGenerator<RevokedEntryPage, void, undefined> {
    const pageSize = options.pageSize ?? DEFAULT_CRL_PAGE_SIZE;
    if (!Number.isSafeInteger(pageSize) || pageSize < 1) throw new RangeError(`page size ${pageSize}`);
    const fetch = (after: string): Promise<{ rows: CrlPageRow[] }> => {
      const page = this.db.query<CrlPageRow>(PAGE_SQL, [issuerId, shard, options.notAfterAfter, after, pageSize]);
      // A prefetched page may fail while the caller is still busy with the previous one; it is awaited (and
      // its error thrown) below, so it must not count as an unhandled rejection in the meantime.
      page.catch(() => undefined);
      return page;
    };
    let pending: Promise<{ rows: CrlPageRow[] }> | undefined = fetch('');
    while (pending !== undefined) {
      const row: CrlPageRow | undefined = (await pending).rows[0];
      if (row === undefined || row.count === 0) return;
      pending = row.count === pageSize && row.last_serial !== null ? fetch(row.last_serial) : undefined;
      yield pageFromRow(row);
    }
  }

  /** How many entries revokedEntries would yield now (sizes the first CRL of a scope). */
  async countRevoked(issuerId: string, shard: number, options: { notAfterAfter: Date }): Promise<number> {
    const result = await this.db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM certificates
        WHERE issuer_id = $1 AND crl_shard = $2 AND status = 'revoked' AND NOT no_rev_avail AND not_after > $3`,
      [issuerId, shard, options.notAfterAfter],
    );
    return result.rows[0]?.n ?? 0;
  }

  async revokedSince(issuerId: string, shard: number, since: Date): Promise<boolean> {
    const result = await this.db.query<{ found: number }>(
      `SELECT 1 AS found FROM certificates
        WHERE issuer_id = $1 AND crl_shard = $2 AND status = 'revoked' AND NOT no_rev_avail AND revoked_at > $3
        LIMIT 1`,
      [issuerId, shard, since],
    );
    return result.rowCount > 0;
  }

  /**
   * Stores a signed CRL as the latest of its scope, unless a CRL with a higher number is already stored (a
   * slower generation finishing after a newer one must not replace it). True when stored. The metadata row
   * and the DER's parts are replaced in one transaction; the row lock of the upsert orders concurrent
   * stores of one scope.
   */
  async save(crl: StoredCrl, createdAt: Date): Promise<boolean> {
    const der = Buffer.isBuffer(crl.der) ? crl.der : Buffer.from(crl.der.buffer, crl.der.byteOffset, crl.der.byteLength);
    if (der.length === 0) throw new CaError('serverInternal', 'empty CRL');
    return this.db.transaction(async (tx) => {
      const stored = await tx.query(
        `INSERT INTO crls (issuer_id, shard, number, this_update, next_update, entries, size, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (issuer_id, shard) DO UPDATE
           SET number = excluded.number, this_update = excluded.this_update, next_update = excluded.next_update,
               entries = excluded.entries, size = excluded.size, created_at = excluded.created_at
           WHERE crls.number < excluded.number`,
        [crl.issuerId, crl.shard, crl.number, crl.thisUpdate, crl.nextUpdate, crl.entries, der.length, createdAt],
      );
      if (stored.rowCount === 0) return false;
      await tx.query('DELETE FROM crl_parts WHERE issuer_id = $1 AND shard = $2', [crl.issuerId, crl.shard]);
      for (let seq = 0, offset = 0; offset < der.length; seq += 1, offset += CRL_PART_SIZE) {
        // A Buffer goes to pg as a binary parameter (no hex text); subarray shares the CRL's memory.
        await tx.query('INSERT INTO crl_parts (issuer_id, shard, seq, bytes) VALUES ($1, $2, $3, $4)', [
          crl.issuerId,
          crl.shard,
          seq,
          der.subarray(offset, offset + CRL_PART_SIZE),
        ]);
      }
      return true;
    });
  }

  /** Number and dates of the latest CRL of a scope, without its bytes. */
  async latestInfo(issuerId: string, shard: number): Promise<StoredCrlInfo | undefined> {
    const result = await this.db.query<CrlMetaRow>(`SELECT ${META_COLUMNS} FROM crls WHERE issuer_id = $1 AND shard = $2`, [
      issuerId,
      shard,
    ]);
    const row = result.rows[0];
    return row === undefined ? undefined : infoFromRow(row);
  }

  /** The latest CRL of a scope with its DER, read in one statement (one snapshot of row and parts). */
  async latest(issuerId: string, shard: number): Promise<StoredCrl | undefined> {
    const result = await this.db.query<CrlPartRow>(
      `SELECT c.issuer_id, c.shard, c.number, c.this_update, c.next_update, c.entries, c.size, p.bytes
         FROM crls c JOIN crl_parts p ON p.issuer_id = c.issuer_id AND p.shard = c.shard
        WHERE c.issuer_id = $1 AND c.shard = $2
        ORDER BY p.seq`,
      [issuerId, shard],
    );
    const first = result.rows[0];
    if (first === undefined) return undefined;
    const der = Buffer.concat(result.rows.map((row) => row.bytes));
    if (der.length !== first.size) throw corrupt(`CRL of ${issuerId}/${shard} has ${der.length} of ${first.size} octets`);
    return { ...infoFromRow(first), der };
  }

  /** The latest CRL of every scope, without bytes (operators, the scheduler). */
  async listLatest(): Promise<StoredCrlInfo[]> {
    const result = await this.db.query<CrlMetaRow>(`SELECT ${META_COLUMNS} FROM crls ORDER BY issuer_id, shard`, []);
    return result.rows.map(infoFromRow);
  }

  // ---- benchmark support -----------------------------------------------------------------------------

  /**
   * Inserts `count` revoked certificates of one issuer in bulk (serials first, then certificates, for the
   * foreign keys), for `npm run bench:crl` and large-CRL tests. Serials are 16 pseudo-random octets derived
   * from `seed` and the row number (top bit clear, as ca/serial.ts draws them); the shard is the one
   * ca/serial.ts crlShardOf gives (last 4 octets mod shards). The DER is a 1-octet placeholder. Reasons
   * cycle through unspecified, keyCompromise (with an invalidity date a day earlier), affiliationChanged,
   * superseded and cessationOfOperation. Rows `from`..`from + count - 1` of the seed; call repeatedly with
   * increasing `from` to insert in batches.
   */
  async insertRevokedForBench(options: {
    issuerId: string;
    seed: string;
    from: number;
    count: number;
    shards: number;
    notBefore: Date;
    notAfter: Date;
    revokedAt: Date;
  }): Promise<void> {
    const { issuerId, seed, from, count, shards, notBefore, notAfter, revokedAt } = options;
    const last = from + count - 1;
    // '4' || 31 hex digits: 16 octets, first nibble 0100 (positive INTEGER, no leading zero).
    const serialSql = `'4' || substr(md5($1::text || ':' || g), 1, 31)`;
    await this.db.query(
      `INSERT INTO serials (serial, issuer_id, created_at)
       SELECT ${serialSql}, $2, $3 FROM generate_series($4::int, $5::int) AS g`,
      [seed, issuerId, notBefore, from, last],
    );
    await this.db.query(
      `INSERT INTO certificates (serial, issuer_id, crl_shard, der, identifiers, spki_sha256, not_before, not_after,
                                 status, revoked_at, revocation_reason, invalidity_date, created_at)
       SELECT s.serial, $2, (('x' || right(s.serial, 8))::bit(32)::bigint % $6)::int, '\\x00'::bytea,
              '[]'::jsonb, md5(s.serial) || md5(s.serial), $3, $7, 'revoked',
              $8::timestamptz + make_interval(secs => s.g % 86400),
              (ARRAY[0, 1, 3, 4, 5])[1 + s.g % 5]::smallint,
              CASE WHEN s.g % 5 = 1 THEN $8::timestamptz - interval '1 day' END,
              $3
         FROM (SELECT ${serialSql} AS serial, g FROM generate_series($4::int, $5::int) AS g) AS s`,
      [seed, issuerId, notBefore, from, last, shards, notAfter, revokedAt],
    );
  }

  /** VACUUM ANALYZE certificates after a bulk load, as autovacuum eventually would (index-only scans). */
  async vacuumCertificates(): Promise<void> {
    await this.db.query('VACUUM (ANALYZE) certificates');
  }
}
