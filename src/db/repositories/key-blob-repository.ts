import { CaError } from '../../core/errors.js';
import type { KeyBlob } from '../../core/key-blob.js';
import type { Queryable } from '../database.js';
import { UNIQUE_VIOLATION, keyBlobFromRow, keyBlobToRow, sqlError } from '../row-mappers.js';
import type { KeyBlobRow } from '../row-types.js';

const COLUMNS = 'name, algorithm, encrypted_pkcs8, created_at';

/**
 * The software KeyStore's encrypted keys, kept in the database so every instance sharing it signs with the
 * same CA keys (rule 7). Blobs are write-once: a key is never silently replaced. Implements keys/software
 * KeyBlobStore structurally (db/ imports only core).
 */
export class KeyBlobRepository {
  constructor(private readonly db: Queryable) {}

  async getKeyBlob(name: string): Promise<KeyBlob | undefined> {
    const result = await this.db.query<KeyBlobRow>(`SELECT ${COLUMNS} FROM key_blobs WHERE name = $1`, [name]);
    const row = result.rows[0];
    return row === undefined ? undefined : keyBlobFromRow(row);
  }

  async putKeyBlob(blob: KeyBlob): Promise<void> {
    const row = keyBlobToRow(blob);
    try {
      await this.db.query(`INSERT INTO key_blobs (${COLUMNS}) VALUES ($1, $2, $3, $4)`, [
        row.name,
        row.algorithm,
        row.encrypted_pkcs8,
        row.created_at,
      ]);
    } catch (error) {
      // Not passed on as a cause: the driver's error may echo the parameters, i.e. the key material.
      if (sqlError(error).code === UNIQUE_VIOLATION) throw new CaError('conflict', `key ${blob.name} already exists`);
      throw new CaError('serverInternal', `storing key ${blob.name} failed (SQLSTATE ${sqlError(error).code ?? 'none'})`);
    }
  }
}
