import type { ExportFormat } from '../../core/certificate-export.js';
import type { Database } from '../database.js';
import { streamInTransaction } from '../transaction-stream.js';
import { type SearchCriteria, unorderedExportSql } from './certificate-search-repository.js';

/**
 * Rows per FETCH: about 600 KB of lines, two of which are in memory at most (the one written, the next).
 * Exporting 1,000,000 rows of the 10M bench estate (a quiet machine): 1,000 rows 99,300 rows/s and a peak
 * RSS of 146 MB, 2,000 102,500 and 156 MB, 5,000 103,800 and 189 MB; PostgreSQL's rendering is the limit.
 */
const FETCH_ROWS = 2000;

/**
 * A reader that takes nothing for this long ends the export (streamInTransaction's stallMs): the transaction
 * holds a pooled connection and PostgreSQL's horizon (vacuum keeps every row version it could see), which a
 * client that stopped reading without hanging up would otherwise hold for ever. A reader slow on the
 * network still takes a FETCH's lines within seconds.
 */
const STALL_MS = 60_000;

/**
 * An export in no particular order on PostgreSQL: one statement (unorderedExportSql) read through a cursor
 * in a REPEATABLE READ, read-only transaction, FETCH_ROWS lines at a time at the consumer's pace. One
 * snapshot, so every certificate that matched when the export began is written exactly once whatever is
 * issued, revoked or relabelled meanwhile (DESIGN.md rule 9's cursor rule, kept without a cursor of our
 * own). The transaction holds one pooled connection and PostgreSQL's horizon for the export's length: about
 * ten seconds a million rows, or as long as a slow reader takes — up to STALL_MS without reading.
 *
 * Measured on the 10M-row bench estate (bench:inventory): see docs/benchmarks.md. Not for PGlite: the
 * embedded database serves one connection, which an export would hold from every other request for its
 * whole length; there exports walk a sort order page by page (CertificateInventory).
 */
export class CertificateSnapshotExport {
  private readonly fetchRows: number;
  private readonly stallMs: number;

  /** `fetchRows`: rows per FETCH (FETCH_ROWS), `stallMs` (STALL_MS); tests lower them. */
  constructor(
    private readonly db: Database,
    options: { fetchRows?: number; stallMs?: number } = {},
  ) {
    this.fetchRows = options.fetchRows ?? FETCH_ROWS;
    this.stallMs = options.stallMs ?? STALL_MS;
  }

  lines(query: { criteria: SearchCriteria; now: Date; format: ExportFormat }): AsyncGenerator<string> {
    const statement = unorderedExportSql(query.criteria, query.now, query.format);
    return streamInTransaction<string>(this.db, async (tx, emit) => {
      if (statement === undefined) return;
      await tx.query('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY');
      // Every row is read: plan for the whole result, not the first rows (the cursor default, 0.1).
      await tx.query('SET LOCAL cursor_tuple_fraction = 1');
      await tx.query(`DECLARE certificate_export NO SCROLL CURSOR FOR ${statement.sql}`, statement.values);
      for (;;) {
        const { rows } = await tx.query<{ line: string }>(`FETCH ${this.fetchRows} FROM certificate_export`);
        if (rows.length === 0) return;
        let chunk = '';
        for (const row of rows) chunk += row.line;
        await emit(chunk);
      }
    }, { stallMs: this.stallMs });
  }
}

/** The unordered export of `db`, where it has one (PostgreSQL; see CertificateSnapshotExport for PGlite). */
export function snapshotExportOf(db: Database): CertificateSnapshotExport | undefined {
  return db.driver === 'pg' ? new CertificateSnapshotExport(db) : undefined;
}
