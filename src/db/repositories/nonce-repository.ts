import { CaError } from '../../core/errors.js';
import type { Queryable } from '../database.js';
import { UNIQUE_VIOLATION, sqlError } from '../errors.js';

/**
 * Anti-replay nonces (RFC 8555 §6.5). They live in the database, not in an instance's memory, so a nonce
 * handed out by one instance is good at any other, and single use holds across all of them (rule 7).
 */
export class NonceRepository {
  constructor(private readonly db: Queryable) {}

  /** Throws CaError('conflict') for a value already stored (a broken random source, never a client's doing). */
  async insert(value: string, expiresAt: Date): Promise<void> {
    try {
      await this.db.query('INSERT INTO nonces (value, expires_at) VALUES ($1, $2)', [value, expiresAt]);
    } catch (error) {
      if (sqlError(error).code === UNIQUE_VIOLATION) throw new CaError('conflict', 'nonce already exists');
      throw error;
    }
  }

  /**
   * True exactly once for a stored, unexpired nonce. One DELETE ... RETURNING: of two requests replaying
   * the same nonce on two instances, one deletes the row and the other finds nothing (§6.5.1 badNonce).
   * An expired nonce stays false and is left to purgeExpired.
   */
  async consume(value: string, now: Date): Promise<boolean> {
    const result = await this.db.query<{ value: string }>(
      'DELETE FROM nonces WHERE value = $1 AND expires_at > $2 RETURNING value',
      [value, now],
    );
    return result.rows.length === 1;
  }

  /** Deletes nonces that expired at or before now; returns how many. */
  async purgeExpired(now: Date): Promise<number> {
    const result = await this.db.query('DELETE FROM nonces WHERE expires_at <= $1', [now]);
    return result.rowCount;
  }
}
