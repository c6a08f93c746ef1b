import type { Actor } from '../../core/audit.js';
import { CaError } from '../../core/errors.js';
import type { Page } from '../../core/page.js';
import { isAdminRole, type AdminToken } from '../../core/principal.js';
import type { Queryable } from '../database.js';
import { UNIQUE_VIOLATION, sqlError } from '../errors.js';
import { decodeCursor, pageOf } from '../keyset.js';

const COLUMNS = 'id, role, groups, description, created_at, created_by, expires_at, revoked_at, revoked_by, last_used_at';

interface AdminTokenRow {
  id: string;
  role: string;
  groups: unknown;
  description: string;
  created_at: Date;
  created_by: string;
  expires_at: Date;
  revoked_at: Date | null;
  revoked_by: string | null;
  last_used_at: Date | null;
}

function tokenFromRow(row: AdminTokenRow): AdminToken {
  if (!isAdminRole(row.role)) throw new CaError('serverInternal', `admin token ${row.id} has an unknown role`);
  const groups = Array.isArray(row.groups) ? row.groups.filter((g): g is string => typeof g === 'string') : [];
  const token: AdminToken = {
    id: row.id,
    role: row.role,
    groups,
    description: row.description,
    createdAt: new Date(row.created_at),
    createdBy: row.created_by as Actor,
    expiresAt: new Date(row.expires_at),
  };
  if (row.revoked_at !== null) token.revokedAt = new Date(row.revoked_at);
  if (row.revoked_by !== null) token.revokedBy = row.revoked_by as Actor;
  if (row.last_used_at !== null) token.lastUsedAt = new Date(row.last_used_at);
  return token;
}

/**
 * Admin API tokens. Holds only the SHA-256 of each token (the token is shown once and never stored); the
 * hash is read back only by findForAuthentication, for the constant-time comparison.
 */
export class AdminTokenRepository {
  constructor(private readonly db: Queryable) {}

  async insert(token: AdminToken, sha256: Uint8Array): Promise<void> {
    try {
      await this.db.query(
        `INSERT INTO admin_tokens (id, token_sha256, role, groups, description, created_at, created_by, expires_at)
         VALUES ($1, $2, $3, $4::text::jsonb, $5, $6, $7, $8)`,
        [token.id, sha256, token.role, JSON.stringify(token.groups), token.description, token.createdAt, token.createdBy, token.expiresAt],
      );
    } catch (error) {
      // The driver's error may echo parameters (the hash): never passed on as a cause.
      const { code } = sqlError(error);
      if (code === UNIQUE_VIOLATION) throw new CaError('conflict', `admin token ${token.id} already exists`);
      throw new CaError('serverInternal', `storing admin token ${token.id} failed (SQLSTATE ${code ?? 'none'})`);
    }
  }

  async findForAuthentication(id: string): Promise<{ token: AdminToken; sha256: Uint8Array } | undefined> {
    const result = await this.db.query<AdminTokenRow & { token_sha256: Uint8Array }>(`SELECT ${COLUMNS}, token_sha256 FROM admin_tokens WHERE id = $1`, [id]);
    const row = result.rows[0];
    return row === undefined ? undefined : { token: tokenFromRow(row), sha256: new Uint8Array(row.token_sha256) };
  }

  async findById(id: string): Promise<AdminToken | undefined> {
    const result = await this.db.query<AdminTokenRow>(`SELECT ${COLUMNS} FROM admin_tokens WHERE id = $1`, [id]);
    const row = result.rows[0];
    return row === undefined ? undefined : tokenFromRow(row);
  }

  /**
   * Tokens oldest first, keyset on (created_at, id). `groupsWithin`: only tokens whose groups all lie in
   * these (a group-admin's view: the group-admin tokens of its own groups) and that have at least one.
   */
  async list(filter: { groupsWithin?: readonly string[] }, page: { cursor?: string; limit: number }): Promise<Page<AdminToken>> {
    const after = page.cursor === undefined ? undefined : decodeCursor(page.cursor, ['date', 'string'] as const);
    const params: unknown[] = [page.limit + 1];
    const where: string[] = [];
    if (after !== undefined) {
      params.push(after[0], after[1]);
      where.push(`(created_at, id) > ($${params.length - 1}, $${params.length})`);
    }
    if (filter.groupsWithin !== undefined) {
      params.push(JSON.stringify(filter.groupsWithin));
      where.push(`groups <@ $${params.length}::text::jsonb AND jsonb_array_length(groups) > 0`);
    }
    const result = await this.db.query<AdminTokenRow>(
      `SELECT ${COLUMNS} FROM admin_tokens ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY created_at, id LIMIT $1`,
      params,
    );
    return pageOf(result.rows, page.limit, tokenFromRow, (row) => [new Date(row.created_at).toISOString(), row.id]);
  }

  /** Revokes a token not yet revoked (compare-and-set); undefined when it does not exist or already was. */
  async revoke(id: string, at: Date, by: Actor): Promise<AdminToken | undefined> {
    const result = await this.db.query<AdminTokenRow>(
      `UPDATE admin_tokens SET revoked_at = $2, revoked_by = $3 WHERE id = $1 AND revoked_at IS NULL RETURNING ${COLUMNS}`,
      [id, at, by],
    );
    const row = result.rows[0];
    return row === undefined ? undefined : tokenFromRow(row);
  }

  /**
   * Records a use at `at` unless one was recorded after `unlessAfter`: a compare-and-set, so across every
   * instance a token is written at most once per interval, however many requests it makes.
   */
  async recordUse(id: string, at: Date, unlessAfter: Date): Promise<void> {
    await this.db.query('UPDATE admin_tokens SET last_used_at = $2 WHERE id = $1 AND (last_used_at IS NULL OR last_used_at <= $3)', [id, at, unlessAfter]);
  }
}
