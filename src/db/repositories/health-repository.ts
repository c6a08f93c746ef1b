import type { GroupHealth, HealthCondition, HealthEntry, OverdueAccount } from '../../core/health.js';
import type { Page } from '../../core/page.js';
import type { Queryable } from '../database.js';
import { decodeCursor, pageOf } from '../keyset.js';
import { Params, stringArray } from './health-rows.js';
import { certificateColumns, linkedFromRow, type InventoryCertificateRow } from './inventory-columns.js';

/**
 * The renewal-health report's reads. The health detector (src/inventory/health-detector.ts) records, in the
 * notification outbox, every certificate that entered a condition — so a report reads the estate's problems
 * (notification_events_type_not_after), not the estate: its cost follows the number of certificates nobody
 * renews, however many are renewed on time. Each row is checked again against the certificate as it is now
 * (still valid, still without a successor), so a late renewal or a revocation leaves the report at once.
 */
export interface HealthWindow {
  now: Date;
  /** Expiring: notAfter at or before this. */
  soon: Date;
  /** Expired-unreplaced: notAfter after this. */
  since: Date;
}

const LIVE = `c.status = 'valid' AND NOT EXISTS (SELECT 1 FROM certificates s WHERE s.predecessor_serial = c.serial)`;

/** The events, by type and notAfter range, that stand for a condition. */
function conditionSql(condition: HealthCondition, window: HealthWindow, p: Params): string {
  switch (condition) {
    case 'renewal-overdue':
      return `(e.type = 'renewal-overdue' AND e.not_after > ${p.add(window.now)})`;
    case 'expiring':
      return `(e.type = 'renewal-overdue' AND e.not_after > ${p.add(window.now)} AND e.not_after <= ${p.add(window.soon)})`;
    case 'expired-unreplaced':
      return `(e.type = 'expired-unreplaced' AND e.not_after > ${p.add(window.since)} AND e.not_after <= ${p.add(window.now)})`;
  }
}

/** Every condition a report counts (expiring is part of renewal-overdue). */
function anyCondition(window: HealthWindow, p: Params): string {
  return `(${conditionSql('renewal-overdue', window, p)} OR ${conditionSql('expired-unreplaced', window, p)})`;
}

function scoped(groups: readonly string[] | undefined, p: Params): string[] {
  return groups === undefined ? [] : [`c.group_name = ANY(${p.add([...groups])}::text[])`];
}

export class HealthRepository {
  constructor(private readonly db: Queryable) {}

  /** Certificates in `condition`, soonest notAfter first, keyset on (notAfter, serial); `groups` limits them. */
  async certificates(condition: HealthCondition, window: HealthWindow, groups: readonly string[] | undefined, page: { cursor?: string; limit: number }): Promise<Page<HealthEntry>> {
    const p = new Params();
    const limit = p.add(page.limit + 1);
    const where = [conditionSql(condition, window, p), LIVE, ...scoped(groups, p)];
    if (page.cursor !== undefined) {
      const [at, serial] = decodeCursor(page.cursor, ['date', 'string'] as const);
      where.push(`(e.not_after, e.serial) > (${p.add(at)}, ${p.add(serial)})`);
    }
    const { rows } = await this.db.query<InventoryCertificateRow & { renewal_due: Date; last_seen_at: Date | null }>(
      `SELECT ${certificateColumns('c')}, certificate_renewal_due(c.not_before, c.not_after) AS renewal_due, a.last_seen_at
       FROM notification_events e
       JOIN certificates c ON c.serial = e.serial
       LEFT JOIN accounts a ON a.id = c.account_id
       WHERE ${where.join(' AND ')}
       ORDER BY e.not_after, e.serial LIMIT ${limit}`,
      p.values,
    );
    return pageOf(
      rows,
      page.limit,
      (row) => {
        const entry: HealthEntry = { ...linkedFromRow(row), renewalDueAt: new Date(row.renewal_due) };
        if (row.last_seen_at !== null) entry.accountLastSeenAt = new Date(row.last_seen_at);
        return entry;
      },
      (row) => [new Date(row.not_after).toISOString(), row.serial],
    );
  }

  /**
   * How many certificates each group has in each condition, with the group's owners (its contacts); groups
   * with none are left out ('' stands for certificates recorded with no group).
   */
  async summary(window: HealthWindow, groups: readonly string[] | undefined): Promise<GroupHealth[]> {
    const p = new Params();
    const counts = ['renewal-overdue', 'expiring', 'expired-unreplaced'].map(
      (condition) => `(count(*) FILTER (WHERE ${conditionSql(condition as HealthCondition, window, p)}))::int`,
    );
    const where = [anyCondition(window, p), LIVE, ...scoped(groups, p)];
    const { rows } = await this.db.query<{ group: string; owners: unknown; overdue: number; expiring: number; expired: number; accounts: number }>(
      `SELECT coalesce(c.group_name, '') AS group, coalesce(g.contacts, '[]'::jsonb) AS owners,
         ${counts[0]} AS overdue, ${counts[1]} AS expiring, ${counts[2]} AS expired,
         (count(DISTINCT c.account_id))::int AS accounts
       FROM notification_events e
       JOIN certificates c ON c.serial = e.serial
       LEFT JOIN groups g ON g.name = c.group_name
       WHERE ${where.join(' AND ')}
       GROUP BY coalesce(c.group_name, ''), g.contacts
       ORDER BY 1`,
      p.values,
    );
    return rows.map((row) => ({
      group: row.group,
      owners: stringArray(row.owners),
      renewalOverdue: Number(row.overdue),
      expiring: Number(row.expiring),
      expiredUnreplaced: Number(row.expired),
      accounts: Number(row.accounts),
    }));
  }

  /** Accounts holding certificates in any condition, by account id (keyset), with when each was last seen. */
  async accounts(window: HealthWindow, groups: readonly string[] | undefined, page: { cursor?: string; limit: number }): Promise<Page<OverdueAccount>> {
    const p = new Params();
    const limit = p.add(page.limit + 1);
    const where = [anyCondition(window, p), LIVE, 'c.account_id IS NOT NULL', ...scoped(groups, p)];
    if (page.cursor !== undefined) {
      const [id] = decodeCursor(page.cursor, ['string'] as const);
      where.push(`c.account_id > ${p.add(id)}`);
    }
    const { rows } = await this.db.query<{ account_id: string; group_name: string | null; status: string | null; last_seen_at: Date | null; n: number; first_not_after: Date }>(
      `SELECT c.account_id, a.group_name, a.status, a.last_seen_at, count(DISTINCT c.serial)::int AS n, min(c.not_after) AS first_not_after
       FROM notification_events e
       JOIN certificates c ON c.serial = e.serial
       LEFT JOIN accounts a ON a.id = c.account_id
       WHERE ${where.join(' AND ')}
       GROUP BY c.account_id, a.group_name, a.status, a.last_seen_at
       ORDER BY c.account_id LIMIT ${limit}`,
      p.values,
    );
    return pageOf(
      rows,
      page.limit,
      (row) => {
        const account: OverdueAccount = { accountId: row.account_id, certificates: Number(row.n), firstNotAfter: new Date(row.first_not_after) };
        if (row.group_name !== null) account.group = row.group_name;
        if (row.status !== null) account.status = row.status;
        if (row.last_seen_at !== null) account.lastSeenAt = new Date(row.last_seen_at);
        return account;
      },
      (row) => [row.account_id],
    );
  }

  /** How far the detector has looked: the earlier of its two scans' watermarks (undefined before both ran). */
  async asOf(): Promise<Date | undefined> {
    const { rows } = await this.db.query<{ through: Date | null; n: number }>('SELECT min(through) AS through, count(*)::int AS n FROM notification_watermarks');
    const row = rows[0];
    return row === undefined || row.through === null || Number(row.n) < 2 ? undefined : new Date(row.through);
  }
}
