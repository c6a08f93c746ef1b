import type { Account } from '../../core/account.js';
import type { Queryable } from '../database.js';
import { accountFromRow } from '../row-mappers.js';
import type { AccountRow } from '../row-types.js';
import { ACCOUNT_COLUMNS, accountColumns } from './account-repository.js';

/**
 * Spent anti-replay nonces (RFC 8555 §6.5; migrations/0005). Nonces are issued without the database (they
 * carry their own MAC, src/acme/nonce-store.ts); what every instance must agree on is which were spent, so
 * that set lives here (rule 7) and spending is one INSERT on its primary key.
 */
export class NonceRepository {
  constructor(private readonly db: Queryable) {}

  /**
   * Records a spent nonce; true if it had not been spent. ON CONFLICT DO NOTHING makes it one atomic
   * statement: of two requests spending the same nonce on two instances, the second waits for the first's
   * row and inserts nothing (§6.5.1 badNonce).
   */
  async spend(id: Uint8Array): Promise<boolean> {
    return (await this.spendMany([{ id }]))[0]!.spent;
  }

  /**
   * spend() and the account `accountId` (undefined if there is none) in one statement: a kid-signed request
   * whose account key the verifier already holds needs no other round trip to authenticate. The account is
   * read in the same statement, so the request is judged by its current status and key.
   */
  async spendAndFindAccount(id: Uint8Array, accountId: string): Promise<{ spent: boolean; account: Account | undefined }> {
    return (await this.spendMany([{ id, accountId }]))[0]!;
  }

  /**
   * spend() for several nonces, each with the account it names (if any), in one statement — for the
   * StatementBatcher that gathers concurrent requests. Answers in the order given. A nonce given twice is
   * spent by its first occurrence only; ids are inserted in sorted order, so two instances' batches that
   * share nonces lock them in the same order and cannot deadlock.
   */
  async spendMany(items: readonly { id: Uint8Array; accountId?: string }[]): Promise<{ spent: boolean; account: Account | undefined }[]> {
    if (items.length === 0) return [];
    const hex = items.map((item) => Buffer.from(item.id).toString('hex'));
    const result = await this.db.query<AccountRow & { n: number; spent: boolean }>(
      `WITH input AS (
         SELECT decode(i.id, 'hex') AS id, i.account_id, i.n::int AS n
         FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS i (id, account_id, n)),
       spent AS (
         INSERT INTO spent_nonces (id) SELECT DISTINCT id FROM input ORDER BY id ON CONFLICT (id) DO NOTHING RETURNING id)
       SELECT i.n, EXISTS (SELECT 1 FROM spent s WHERE s.id = i.id) AS spent, ${accountColumns('a')}
       FROM input i
       LEFT JOIN LATERAL (SELECT ${ACCOUNT_COLUMNS} FROM accounts WHERE id = i.account_id OFFSET 0) AS a ON true
       ORDER BY i.n`,
      [hex, items.map((item) => item.accountId ?? null)],
    );
    const firstIndex = new Map<string, number>();
    hex.forEach((id, i) => {
      if (!firstIndex.has(id)) firstIndex.set(id, i);
    });
    return result.rows.map((row, i) => ({
      spent: row.spent === true && firstIndex.get(hex[i]!) === i,
      account: row.id === null ? undefined : accountFromRow(row),
    }));
  }

  /**
   * Deletes the records below `cutoff` (SignedNonceStore.purgeCutoff: nonces too old to be accepted anyway);
   * returns how many. The id starts with the issue time, so this is a range scan of the primary key.
   */
  async purgeSpent(cutoff: Uint8Array): Promise<number> {
    const result = await this.db.query('DELETE FROM spent_nonces WHERE id < $1', [cutoff]);
    return result.rowCount;
  }
}
