import type { Actor } from '../../core/audit.js';
import { CaError } from '../../core/errors.js';
import type { Page } from '../../core/page.js';
import { isAdminRole, type OperatorBinding } from '../../core/principal.js';
import type { Queryable } from '../database.js';
import { UNIQUE_VIOLATION, sqlError } from '../errors.js';
import { decodeCursor, pageOf } from '../keyset.js';

const COLUMNS = 'spki_sha256, name, role, groups, serial, created_at, created_by';

interface OperatorRow {
  spki_sha256: string;
  name: string;
  role: string;
  groups: unknown;
  serial: string;
  created_at: Date;
  created_by: string;
}

function bindingFromRow(row: OperatorRow): OperatorBinding {
  if (!isAdminRole(row.role)) throw new CaError('serverInternal', `operator ${row.name} has an unknown role`);
  return {
    spkiSha256: row.spki_sha256,
    name: row.name,
    role: row.role,
    groups: Array.isArray(row.groups) ? row.groups.filter((g): g is string => typeof g === 'string') : [],
    serial: row.serial,
    createdAt: new Date(row.created_at),
    createdBy: row.created_by as Actor,
  };
}

/** Operators' client-certificate keys bound to a role (mTLS on the admin listener). */
export class AdminOperatorRepository {
  constructor(private readonly db: Queryable) {}

  /** Throws 'conflict' when the key is already bound. */
  async insert(binding: OperatorBinding): Promise<void> {
    try {
      await this.db.query(
        `INSERT INTO admin_operators (${COLUMNS}) VALUES ($1, $2, $3, $4::text::jsonb, $5, $6, $7)`,
        [binding.spkiSha256, binding.name, binding.role, JSON.stringify(binding.groups), binding.serial, binding.createdAt, binding.createdBy],
      );
    } catch (error) {
      const { code } = sqlError(error);
      if (code === UNIQUE_VIOLATION) throw new CaError('conflict', 'the key of this certificate is already bound to an operator');
      throw error;
    }
  }

  async find(spkiSha256: string): Promise<OperatorBinding | undefined> {
    const result = await this.db.query<OperatorRow>(`SELECT ${COLUMNS} FROM admin_operators WHERE spki_sha256 = $1`, [spkiSha256]);
    const row = result.rows[0];
    return row === undefined ? undefined : bindingFromRow(row);
  }

  async list(page: { cursor?: string; limit: number }): Promise<Page<OperatorBinding>> {
    const after = page.cursor === undefined ? undefined : decodeCursor(page.cursor, ['date', 'string'] as const);
    const result = await this.db.query<OperatorRow>(
      after === undefined
        ? `SELECT ${COLUMNS} FROM admin_operators ORDER BY created_at, spki_sha256 LIMIT $1`
        : `SELECT ${COLUMNS} FROM admin_operators WHERE (created_at, spki_sha256) > ($2, $3) ORDER BY created_at, spki_sha256 LIMIT $1`,
      after === undefined ? [page.limit + 1] : [page.limit + 1, after[0], after[1]],
    );
    return pageOf(result.rows, page.limit, bindingFromRow, (row) => [new Date(row.created_at).toISOString(), row.spki_sha256]);
  }

  /** Removes a binding; the removed one, or undefined when there was none. */
  async remove(spkiSha256: string): Promise<OperatorBinding | undefined> {
    const result = await this.db.query<OperatorRow>(`DELETE FROM admin_operators WHERE spki_sha256 = $1 RETURNING ${COLUMNS}`, [spkiSha256]);
    const row = result.rows[0];
    return row === undefined ? undefined : bindingFromRow(row);
  }
}
