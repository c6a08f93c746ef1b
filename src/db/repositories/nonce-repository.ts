import type { Account } from '../../core/account.js';
import type { Queryable } from '../database.js';
import { accountFromRow } from '../row-mappers.js';
import type { AccountRow } from '../row-types.js';
import { accountColumns } from './account-repository.js';

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
    const result = await this.db.query('INSERT INTO spent_nonces (id) VALUES ($1) ON CONFLICT (id) DO NOTHING', [id]);
    return result.rowCount === 1;
  }

  /**
   * spend() and the account `accountId` (undefined if there is none) in one statement: a kid-signed request
   * whose account key the verifier already holds needs no other round trip to authenticate. The account is
   * read in the same statement, so the request is judged by its current status and key.
   */
  async spendAndFindAccount(id: Uint8Array, accountId: string): Promise<{ spent: boolean; account: Account | undefined }> {
    const result = await this.db.query<AccountRow & { spent: boolean }>(
      `WITH spent AS (INSERT INTO spent_nonces (id) VALUES ($1) ON CONFLICT (id) DO NOTHING RETURNING id)
       SELECT EXISTS (SELECT 1 FROM spent) AS spent, ${accountColumns('a')}
       FROM (SELECT 1) AS one LEFT JOIN accounts a ON a.id = $2`,
      [id, accountId],
    );
    const row = result.rows[0];
    return { spent: row?.spent === true, account: row === undefined || row.id === null ? undefined : accountFromRow(row) };
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
