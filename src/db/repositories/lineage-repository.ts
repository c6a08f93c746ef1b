import type { LineageChain } from '../../core/lineage.js';
import type { Queryable } from '../database.js';
import { certificateColumns, linkedFromRow, type InventoryCertificateRow } from './inventory-columns.js';

/**
 * Renewal chains (migration 0014 records each certificate's predecessor when it is stored). Walking back is a
 * primary-key lookup per step; walking forward one probe of certificates_successor per step. Both walks are
 * bounded by the caller's limits, so a chain of a thousand daily renewals costs what the page asks for.
 */
export class LineageRepository {
  constructor(private readonly db: Queryable) {}

  /**
   * Up to `before` predecessors and `after` successors of `serial`, oldest first; undefined when there is no
   * such certificate. A successor is the earliest certificate naming its predecessor (a certificate renewed
   * twice, e.g. once with `replaces` and once without, continues along the first renewal).
   */
  async chain(serial: string, limits: { before: number; after: number }): Promise<LineageChain | undefined> {
    const result = await this.db.query<InventoryCertificateRow & { position: number }>(
      `WITH RECURSIVE back AS (
         SELECT c.serial, c.predecessor_serial, 0 AS position FROM certificates c WHERE c.serial = $1
         UNION ALL
         SELECT p.serial, p.predecessor_serial, b.position - 1
         FROM back b JOIN certificates p ON p.serial = b.predecessor_serial
         WHERE b.position > -($2::integer + 1)
       ), forth AS (
         SELECT c.serial, 0 AS position FROM certificates c WHERE c.serial = $1
         UNION ALL
         SELECT s.serial, f.position + 1
         FROM forth f CROSS JOIN LATERAL (
           SELECT x.serial FROM certificates x WHERE x.predecessor_serial = f.serial ORDER BY x.created_at, x.serial LIMIT 1
         ) AS s
         WHERE f.position < $3::integer + 1
       ), chain AS (
         SELECT serial, position FROM back UNION ALL SELECT serial, position FROM forth WHERE position > 0
       )
       SELECT ${certificateColumns('c')}, chain.position
       FROM chain JOIN certificates c ON c.serial = chain.serial
       ORDER BY chain.position`,
      [serial, limits.before, limits.after],
    );
    if (result.rows.length === 0) return undefined;
    const rows = result.rows.map((row) => ({ ...linkedFromRow(row), position: Number(row.position) }));
    const items = rows.filter((row) => row.position >= -limits.before && row.position <= limits.after);
    return { items, moreBefore: rows.some((row) => row.position < -limits.before), moreAfter: rows.some((row) => row.position > limits.after) };
  }
}
