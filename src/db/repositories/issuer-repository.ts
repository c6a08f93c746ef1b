import type { IssuerRecord } from '../../core/certificate.js';
import { CaError } from '../../core/errors.js';
import type { Queryable } from '../database.js';
import { FOREIGN_KEY_VIOLATION, UNIQUE_VIOLATION, issuerFromRow, issuerToRow, sqlError } from '../row-mappers.js';
import type { IssuerRow } from '../row-types.js';

const COLUMNS = 'id, role, key_name, parent_id, der, subject, not_before, not_after, created_at';

/**
 * The CA certificates Chancery holds. Takes a Queryable so callers can use it on the Database or inside a
 * transaction (`new IssuerRepository(tx)`).
 */
export class IssuerRepository {
  constructor(private readonly db: Queryable) {}

  /** Throws CaError('conflict') for a duplicate id or a second root, 'notFound' for an unknown parent. */
  async insert(record: IssuerRecord): Promise<void> {
    const row = issuerToRow(record);
    try {
      await this.db.query(
        `INSERT INTO issuers (${COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
        [row.id, row.role, row.key_name, row.parent_id, row.der, row.subject, row.not_before, row.not_after, row.created_at],
      );
    } catch (error) {
      const { code, constraint } = sqlError(error);
      if (code === UNIQUE_VIOLATION) {
        throw new CaError(
          'conflict',
          constraint === 'issuers_one_root' ? 'a root CA already exists' : `issuer ${record.id} already exists`,
        );
      }
      if (code === FOREIGN_KEY_VIOLATION) {
        throw new CaError('notFound', `parent issuer ${record.parentId ?? ''} does not exist`);
      }
      throw error;
    }
  }

  async findById(id: string): Promise<IssuerRecord | undefined> {
    const result = await this.db.query<IssuerRow>(`SELECT ${COLUMNS} FROM issuers WHERE id = $1`, [id]);
    const row = result.rows[0];
    return row === undefined ? undefined : issuerFromRow(row);
  }

  async findRoot(): Promise<IssuerRecord | undefined> {
    const result = await this.db.query<IssuerRow>(`SELECT ${COLUMNS} FROM issuers WHERE role = $1`, ['root']);
    const row = result.rows[0];
    return row === undefined ? undefined : issuerFromRow(row);
  }

  /** The intermediate that signs new certificates: the most recently created one (rollover adds a newer one). */
  async findActiveIntermediate(): Promise<IssuerRecord | undefined> {
    const result = await this.db.query<IssuerRow>(
      `SELECT ${COLUMNS} FROM issuers WHERE role = $1 ORDER BY created_at DESC, id DESC LIMIT 1`,
      ['intermediate'],
    );
    const row = result.rows[0];
    return row === undefined ? undefined : issuerFromRow(row);
  }

  /** Every issuer, oldest first: a few rows, so no paging. */
  async list(): Promise<IssuerRecord[]> {
    const result = await this.db.query<IssuerRow>(`SELECT ${COLUMNS} FROM issuers ORDER BY created_at, id`, []);
    return result.rows.map(issuerFromRow);
  }
}
