import type { Account } from '../../core/account.js';
import type { Page } from '../../core/page.js';
import type { Queryable } from '../database.js';
import { decodeCursor, pageOf } from '../keyset.js';
import { accountFromRow } from '../row-mappers.js';
import type { AccountRow } from '../row-types.js';
import { accountColumns } from './account-repository.js';

/** An account and when it last authenticated an ACME request (to the hour; absent: not since migration 0014). */
export interface AccountSeen {
  account: Account;
  lastSeenAt?: Date;
}

/** When ACME accounts were last seen (accounts.last_seen_at, migration 0014). */
export class AccountActivityRepository {
  constructor(private readonly db: Queryable) {}

  /**
   * Records a batch of sightings in one statement. An account is written only when its recorded sighting is
   * an hour older than this one (or absent), so however many instances report it, its row changes at most
   * once an hour.
   */
  async recordSeen(seen: readonly { accountId: string; at: Date }[]): Promise<number> {
    if (seen.length === 0) return 0;
    const result = await this.db.query(
      `UPDATE accounts a SET last_seen_at = s.at
       FROM unnest($1::text[], $2::timestamptz[]) AS s (id, at)
       WHERE a.id = s.id AND (a.last_seen_at IS NULL OR a.last_seen_at <= s.at - interval '1 hour')`,
      [seen.map((s) => s.accountId), seen.map((s) => s.at.toISOString())],
      { keyedPlan: true },
    );
    return result.rowCount;
  }

  /**
   * Valid accounts not seen since `cutoff` (an account never seen counts from its creation), least recently
   * seen first, keyset on (last seen, id) over accounts_not_seen. `groups`: only accounts of these groups
   * (an account without one is in the default group).
   */
  async notSeenSince(cutoff: Date, groups: readonly string[] | undefined, page: { cursor?: string; limit: number }): Promise<Page<AccountSeen>> {
    const params: unknown[] = [page.limit + 1, cutoff];
    const where = [`status = 'valid'`, 'coalesce(last_seen_at, created_at) < $2'];
    if (groups !== undefined) {
      params.push([...groups]);
      where.push(`coalesce(group_name, 'default') = ANY($${params.length}::text[])`);
    }
    if (page.cursor !== undefined) {
      const [at, id] = decodeCursor(page.cursor, ['date', 'string'] as const);
      params.push(at, id);
      where.push(`(coalesce(last_seen_at, created_at), id) > ($${params.length - 1}, $${params.length})`);
    }
    const { rows } = await this.db.query<AccountRow & { last_seen_at: Date | null; seen: Date }>(
      `SELECT ${accountColumns('accounts')}, last_seen_at, coalesce(last_seen_at, created_at) AS seen FROM accounts
       WHERE ${where.join(' AND ')} ORDER BY coalesce(last_seen_at, created_at), id LIMIT $1`,
      params,
    );
    return pageOf(rows, page.limit, seenFromRow, (row) => [new Date(row.seen).toISOString(), row.id]);
  }

  async lastSeen(accountIds: readonly string[]): Promise<Map<string, Date | undefined>> {
    const { rows } = await this.db.query<{ id: string; last_seen_at: Date | null }>('SELECT id, last_seen_at FROM accounts WHERE id = ANY($1::text[])', [[...accountIds]]);
    return new Map(rows.map((row) => [row.id, row.last_seen_at === null ? undefined : new Date(row.last_seen_at)]));
  }
}

function seenFromRow(row: AccountRow & { last_seen_at: Date | null }): AccountSeen {
  const account = accountFromRow(row);
  return row.last_seen_at === null ? { account } : { account, lastSeenAt: new Date(row.last_seen_at) };
}
