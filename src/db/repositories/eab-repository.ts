import type { EabCredential } from '../../core/account.js';
import { CaError } from '../../core/errors.js';
import type { Queryable } from '../database.js';
import { decodeCursor, pageOf } from '../keyset.js';
import type { Page } from '../../core/page.js';
import { FOREIGN_KEY_VIOLATION, UNIQUE_VIOLATION, sqlError } from '../errors.js';
import { eabCredentialFromRow, labelsToJson } from '../row-mappers.js';
import type { Labels } from '../../core/group.js';
import type { EabCredentialRow, EabCredentialWithKeyRow } from '../row-types.js';

/** Everything but the key: listing never reads key material. */
const COLUMNS = 'kid, group_name, labels, created_at, bound_account_id, bound_at, revoked_at';

export interface NewEabCredential {
  kid: string;
  /** The HMAC key as the RA encrypted it: opaque bytes here. */
  hmacKeyEncrypted: Uint8Array;
  group?: string;
  labels?: Labels;
  createdAt: Date;
}

/**
 * External Account Binding credentials (RFC 8555 §7.3.4). The database stores the HMAC key only in the
 * form the RA encrypted it, and never logs or returns it in an error (the driver's error may echo
 * parameters, so those are not passed on as causes).
 */
export class EabRepository {
  constructor(private readonly db: Queryable) {}

  /** Throws CaError('conflict') for a kid that already exists, 'notFound' for a group that does not. */
  async insert(credential: NewEabCredential): Promise<void> {
    try {
      await this.db.query('INSERT INTO eab_credentials (kid, hmac_key_encrypted, group_name, labels, created_at) VALUES ($1, $2, $3, $4::text::jsonb, $5)', [
        credential.kid,
        credential.hmacKeyEncrypted,
        credential.group ?? null,
        labelsToJson(credential.labels),
        credential.createdAt,
      ]);
    } catch (error) {
      const { code } = sqlError(error);
      if (code === UNIQUE_VIOLATION) throw new CaError('conflict', `EAB credential ${credential.kid} already exists`);
      if (code === FOREIGN_KEY_VIOLATION) throw new CaError('notFound', `group "${credential.group ?? ''}" does not exist`);
      throw new CaError('serverInternal', `storing EAB credential ${credential.kid} failed (SQLSTATE ${code ?? 'none'})`);
    }
  }

  async find(kid: string): Promise<{ credential: EabCredential; hmacKeyEncrypted: Uint8Array } | undefined> {
    const result = await this.db.query<EabCredentialWithKeyRow>(
      `SELECT ${COLUMNS}, hmac_key_encrypted FROM eab_credentials WHERE kid = $1`,
      [kid],
    );
    const row = result.rows[0];
    if (row === undefined) return undefined;
    return { credential: eabCredentialFromRow(row), hmacKeyEncrypted: new Uint8Array(row.hmac_key_encrypted) };
  }

  /**
   * Binds the credential to an account, once: a compare-and-set on bound_account_id IS NULL, so of two
   * new-account requests racing with one credential exactly one wins. False when the credential is
   * already bound (or does not exist). Run it in the transaction that inserts the account.
   */
  async bind(kid: string, accountId: string, at: Date): Promise<boolean> {
    try {
      const result = await this.db.query(
        'UPDATE eab_credentials SET bound_account_id = $2, bound_at = $3 WHERE kid = $1 AND bound_account_id IS NULL AND revoked_at IS NULL',
        [kid, accountId, at],
      );
      return result.rowCount === 1;
    } catch (error) {
      const { code } = sqlError(error);
      if (code === FOREIGN_KEY_VIOLATION) throw new CaError('notFound', `account ${accountId} does not exist`);
      // The account already holds another credential (bound_account_id is unique).
      if (code === UNIQUE_VIOLATION) throw new CaError('conflict', `account ${accountId} is already bound to a credential`);
      throw error;
    }
  }

  /** Every credential, oldest first: an operator's list, small enough not to page. */
  async list(): Promise<EabCredential[]> {
    const result = await this.db.query<EabCredentialRow>(`SELECT ${COLUMNS} FROM eab_credentials ORDER BY created_at, kid`, []);
    return result.rows.map(eabCredentialFromRow);
  }

  /**
   * The admin list, newest first, keyset on (created_at, kid) (eab_credentials_created; DESIGN.md rule 9).
   * `groups`: only credentials of these groups; one made without a group is in the default group.
   */
  async listPage(filter: { groups?: readonly string[] }, page: { cursor?: string; limit: number }): Promise<Page<EabCredential>> {
    const params: unknown[] = [page.limit + 1];
    const where: string[] = [];
    if (filter.groups !== undefined) {
      params.push([...filter.groups]);
      where.push(`COALESCE(group_name, 'default') = ANY($${params.length}::text[])`);
    }
    if (page.cursor !== undefined) {
      const [at, kid] = decodeCursor(page.cursor, ['date', 'string'] as const);
      params.push(at, kid);
      where.push(`(created_at, kid) < ($${params.length - 1}, $${params.length})`);
    }
    const result = await this.db.query<EabCredentialRow>(
      `SELECT ${COLUMNS} FROM eab_credentials ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY created_at DESC, kid DESC LIMIT $1`,
      params,
    );
    return pageOf(result.rows, page.limit, eabCredentialFromRow, (row) => [new Date(row.created_at).toISOString(), row.kid]);
  }

  /**
   * Revokes a credential that is neither revoked nor bound (compare-and-set); undefined when it was either,
   * or does not exist (find() tells which). A bound credential has done its work: deactivate the account.
   */
  async revoke(kid: string, at: Date, by: string): Promise<EabCredential | undefined> {
    const result = await this.db.query<EabCredentialRow>(
      `UPDATE eab_credentials SET revoked_at = $2, revoked_by = $3 WHERE kid = $1 AND revoked_at IS NULL AND bound_account_id IS NULL RETURNING ${COLUMNS}`,
      [kid, at, by],
    );
    const row = result.rows[0];
    return row === undefined ? undefined : eabCredentialFromRow(row);
  }
}
