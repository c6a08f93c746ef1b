import type { Account } from '../../core/account.js';
import { CaError } from '../../core/errors.js';
import type { Queryable } from '../database.js';
import { FOREIGN_KEY_VIOLATION, UNIQUE_VIOLATION, sqlError } from '../errors.js';
import { accountFromRow, accountToRow, contactsToJson, jwkToJson } from '../row-mappers.js';
import type { AccountRow } from '../row-types.js';
import { qualified } from './columns.js';
import { decodeCursor, pageOf } from '../keyset.js';
import type { Page } from '../../core/page.js';

export const ACCOUNT_COLUMNS = 'id, status, contacts, public_jwk, jwk_thumbprint, eab_kid, group_name, labels, tos_agreed, created_at';
const COLUMNS = ACCOUNT_COLUMNS;

/** The account columns qualified with a table alias, for statements that read an account with something else. */
export function accountColumns(alias: string): string {
  return qualified(COLUMNS, alias);
}

const KEY_IN_USE = 'an account with this key already exists';

/**
 * ACME accounts (RFC 8555 §7.3). Takes a Queryable so the RA can create an account and bind its EAB
 * credential in one transaction (rule 6). Changes apply to valid accounts only: a deactivated or revoked
 * account accepts no further requests (§7.3.6), so a change racing a deactivation loses.
 */
export class AccountRepository {
  constructor(private readonly db: Queryable) {}

  /**
   * Throws CaError('conflict') when the key (thumbprint) already has an account (§7.3.1: the RA returns
   * that one instead), 'unauthorized' when the EAB credential is unknown or already used by an account.
   */
  async insert(account: Account): Promise<void> {
    const row = accountToRow(account);
    try {
      await this.db.query(
        `INSERT INTO accounts (${COLUMNS}) VALUES ($1, $2, $3::text::jsonb, $4::text::jsonb, $5, $6, $7, $8::text::jsonb, $9, $10)`,
        [row.id, row.status, row.contacts, row.public_jwk, row.jwk_thumbprint, row.eab_kid, row.group_name, row.labels, row.tos_agreed, row.created_at],
      );
    } catch (error) {
      const { code, constraint } = sqlError(error);
      if (code === UNIQUE_VIOLATION && constraint === 'accounts_jwk_thumbprint_key') throw new CaError('conflict', KEY_IN_USE);
      if (code === UNIQUE_VIOLATION && constraint === 'accounts_eab_kid_key') {
        throw new CaError('unauthorized', `external account binding ${account.eabKid ?? ''} is already used by another account`);
      }
      if (code === UNIQUE_VIOLATION) throw new CaError('conflict', `account ${account.id} already exists`);
      if (code === FOREIGN_KEY_VIOLATION && constraint === 'accounts_group_name_fkey') {
        throw new CaError('unauthorized', `group "${account.group ?? ''}" of this external account binding no longer exists`);
      }
      if (code === FOREIGN_KEY_VIOLATION) {
        throw new CaError('unauthorized', `external account binding ${account.eabKid ?? ''} does not exist`);
      }
      throw error;
    }
  }

  async findById(id: string): Promise<Account | undefined> {
    const result = await this.db.query<AccountRow>(`SELECT ${COLUMNS} FROM accounts WHERE id = $1`, [id]);
    const row = result.rows[0];
    return row === undefined ? undefined : accountFromRow(row);
  }

  /** The account of a key, by its RFC 7638 thumbprint (§7.3.1 "onlyReturnExisting", JWS with jwk). */
  async findByThumbprint(thumbprint: string): Promise<Account | undefined> {
    const result = await this.db.query<AccountRow>(`SELECT ${COLUMNS} FROM accounts WHERE jwk_thumbprint = $1`, [thumbprint]);
    const row = result.rows[0];
    return row === undefined ? undefined : accountFromRow(row);
  }

  /** §7.3.2. Throws 'notFound' for an unknown account, 'unauthorized' for one that is not valid. */
  async updateContacts(id: string, contacts: readonly string[]): Promise<Account> {
    return this.updateValid(id, 'contacts = $2::text::jsonb', [contactsToJson(contacts)]);
  }

  /** §7.3.6: valid -> deactivated, final. Throws 'notFound' / 'unauthorized' (already deactivated or revoked). */
  async deactivate(id: string): Promise<Account> {
    return this.updateValid(id, `status = 'deactivated'`, []);
  }

  /**
   * §7.3.5 key rollover. Throws CaError('conflict') when another account already holds the new key (the
   * RA finds that account with findByThumbprint for the Location header), 'notFound' / 'unauthorized' as
   * above.
   */
  async updateKey(id: string, publicJwk: Record<string, string>, thumbprint: string): Promise<Account> {
    try {
      return await this.updateValid(id, 'public_jwk = $2::text::jsonb, jwk_thumbprint = $3', [jwkToJson(publicJwk), thumbprint]);
    } catch (error) {
      const { code } = sqlError(error);
      if (code === UNIQUE_VIOLATION) throw new CaError('conflict', KEY_IN_USE);
      throw error;
    }
  }

  /** One compare-and-set UPDATE on a valid account; `set` uses $2... for `params`. */
  private async updateValid(id: string, set: string, params: readonly unknown[]): Promise<Account> {
    const result = await this.db.query<AccountRow>(
      `UPDATE accounts SET ${set} WHERE id = $1 AND status = 'valid' RETURNING ${COLUMNS}`,
      [id, ...params],
    );
    const row = result.rows[0];
    if (row !== undefined) return accountFromRow(row);
    const current = await this.findById(id);
    if (current === undefined) throw new CaError('notFound', `account ${id} does not exist`);
    throw new CaError('unauthorized', `account ${id} is ${current.status}`);
  }

  /**
   * The admin list, newest first, keyset on (created_at, id) (accounts_created; DESIGN.md rule 9).
   * `groups`: only accounts of these groups; an account without one is in the default group.
   */
  async list(filter: { status?: Account['status']; groups?: readonly string[] }, page: { cursor?: string; limit: number }): Promise<Page<Account>> {
    const params: unknown[] = [page.limit + 1];
    const where: string[] = [];
    if (filter.groups !== undefined) {
      params.push([...filter.groups]);
      where.push(`COALESCE(group_name, 'default') = ANY($${params.length}::text[])`);
    }
    if (filter.status !== undefined) {
      params.push(filter.status);
      where.push(`status = $${params.length}`);
    }
    if (page.cursor !== undefined) {
      const [at, id] = decodeCursor(page.cursor, ['date', 'string'] as const);
      params.push(at, id);
      where.push(`(created_at, id) < ($${params.length - 1}, $${params.length})`);
    }
    const result = await this.db.query<AccountRow>(
      `SELECT ${COLUMNS} FROM accounts ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY created_at DESC, id DESC LIMIT $1`,
      params,
    );
    return pageOf(result.rows, page.limit, accountFromRow, (row) => [new Date(row.created_at).toISOString(), row.id]);
  }
}
