import type { Labels } from '../../core/group.js';
import type { Queryable } from '../database.js';
import { labelsFromJson } from '../row-mappers.js';

/** A certificate's labels before and after a change, and its group (whose administrators may change them). */
export interface LabelChange {
  serial: string;
  group?: string;
  before: Labels;
  after: Labels;
}

/**
 * The labels of a certificate's inventory record (migration 0009; never in the X.509 certificate). One
 * statement reads the old labels under a row lock and writes the new ones, so the change and what it
 * replaced are reported together even when two edits race.
 */
export class CertificateLabelRepository {
  constructor(private readonly db: Queryable) {}

  /** Replaces the labels of `serial`; undefined when there is no such certificate. */
  async replace(serial: string, labels: Labels): Promise<LabelChange | undefined> {
    const { rows } = await this.db.query<{ serial: string; group_name: string | null; before: unknown; after: unknown }>(
      `WITH old AS (SELECT serial, labels FROM certificates WHERE serial = $1 FOR UPDATE)
       UPDATE certificates c SET labels = $2::text::jsonb FROM old
       WHERE c.serial = old.serial
       RETURNING c.serial, c.group_name, old.labels AS before, c.labels AS after`,
      [serial, JSON.stringify(labels)],
    );
    const row = rows[0];
    if (row === undefined) return undefined;
    const change: LabelChange = {
      serial: row.serial,
      before: labelsFromJson(row.before ?? {}, 'certificate labels'),
      after: labelsFromJson(row.after ?? {}, 'certificate labels'),
    };
    if (row.group_name !== null) change.group = row.group_name;
    return change;
  }
}
