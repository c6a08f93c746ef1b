import { CaError, type Problem } from '../../core/errors.js';
import type { Challenge } from '../../core/order.js';
import type { Queryable } from '../database.js';
import { challengeFromRow, problemToText } from '../row-mappers.js';
import type { ChallengeRow } from '../row-types.js';

export const CHALLENGE_COLUMNS = 'id, authorization_id, type, token, status, validated_at, error, attempts, next_attempt_at';
const COLUMNS = CHALLENGE_COLUMNS;

/**
 * Challenges and their validation schedule (RFC 8555 §7.5.1, §8.2). Validation runs asynchronously on
 * whichever instance claims a due challenge (rule 7): every transition is a compare-and-set on status,
 * and claiming leases the challenge by pushing next_attempt_at past the attempt, so two instances never
 * validate the same challenge at once and a crashed attempt is picked up again once its lease runs out.
 * Challenges are inserted with their authorization (AuthorizationRepository.insertMany).
 */
export class ChallengeRepository {
  constructor(private readonly db: Queryable) {}

  async findById(id: string): Promise<Challenge | undefined> {
    const result = await this.db.query<ChallengeRow>(`SELECT ${COLUMNS} FROM challenges WHERE id = $1`, [id]);
    const row = result.rows[0];
    return row === undefined ? undefined : challengeFromRow(row);
  }

  /**
   * §7.5.1 the client's response: pending -> processing, first attempt due at `now`. Undefined when the
   * challenge is not pending (already processing, valid or invalid: the RA answers with it as it is).
   */
  async startProcessing(id: string, now: Date): Promise<Challenge | undefined> {
    return this.casOne(`status = 'processing', next_attempt_at = $2`, `status = 'pending'`, [id, now]);
  }

  /**
   * Claims up to `limit` processing challenges that are due (next_attempt_at <= now) and leases them until
   * leaseUntil, in one statement. FOR UPDATE SKIP LOCKED lets instances claim side by side without waiting
   * on each other's rows; a row another instance has just leased no longer matches once re-checked.
   */
  async claimDue(now: Date, leaseUntil: Date, limit: number): Promise<Challenge[]> {
    if (!Number.isInteger(limit) || limit < 1) throw new CaError('serverInternal', `claim limit must be a positive integer, not ${limit}`);
    const result = await this.db.query<ChallengeRow>(
      `UPDATE challenges SET next_attempt_at = $2
       WHERE status = 'processing' AND id IN (
         SELECT id FROM challenges
         WHERE status = 'processing' AND next_attempt_at <= $1
         ORDER BY next_attempt_at, id
         LIMIT $3
         FOR UPDATE SKIP LOCKED)
       RETURNING ${COLUMNS}`,
      [now, leaseUntil, limit],
    );
    return result.rows.map(challengeFromRow).sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  /**
   * After a failed attempt that will be retried (§8.2): records the attempt count and when to try next.
   * `error` (this attempt's problem, shown to the client while processing) replaces the stored one; when
   * omitted the stored one is kept. Undefined when the challenge is no longer processing.
   */
  async recordRetry(id: string, attempts: number, nextAttemptAt: Date, error?: Problem): Promise<Challenge | undefined> {
    return this.casOne(
      'attempts = $2, next_attempt_at = $3, error = COALESCE($4::text::jsonb, error)',
      `status = 'processing'`,
      [id, attempts, nextAttemptAt, problemToText(error)],
    );
  }

  /**
   * processing -> valid at `at`. Errors of earlier failed attempts are cleared: a valid challenge carries
   * none. Throws 'notFound' or 'conflict' (not processing, e.g. another instance finished it first).
   */
  async markValid(id: string, at: Date): Promise<Challenge> {
    return this.mustTransition(id, `status = 'valid', validated_at = $2, next_attempt_at = NULL, error = NULL`, [id, at]);
  }

  /** processing -> invalid with the problem that failed it (§7.1.5). Throws like markValid. */
  async markInvalid(id: string, error: Problem): Promise<Challenge> {
    return this.mustTransition(id, `status = 'invalid', next_attempt_at = NULL, error = $2::text::jsonb`, [id, problemToText(error)]);
  }

  private async casOne(set: string, where: string, params: readonly unknown[]): Promise<Challenge | undefined> {
    const result = await this.db.query<ChallengeRow>(`UPDATE challenges SET ${set} WHERE id = $1 AND ${where} RETURNING ${COLUMNS}`, params);
    const row = result.rows[0];
    return row === undefined ? undefined : challengeFromRow(row);
  }

  private async mustTransition(id: string, set: string, params: readonly unknown[]): Promise<Challenge> {
    const updated = await this.casOne(set, `status = 'processing'`, params);
    if (updated !== undefined) return updated;
    const current = await this.findById(id);
    if (current === undefined) throw new CaError('notFound', `challenge ${id} does not exist`);
    throw new CaError('conflict', `challenge ${id} is ${current.status}, not processing`);
  }
}
