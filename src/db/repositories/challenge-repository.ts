import { CaError, type Problem } from '../../core/errors.js';
import type { Authorization, AuthorizationStatus, Challenge } from '../../core/order.js';
import type { Queryable } from '../database.js';
import { authorizationFromRow, challengeFromRow, problemToText } from '../row-mappers.js';
import type { AuthorizationRow, ChallengeRow } from '../row-types.js';
import { StatementBatcher, rowsPerItem } from '../statement-batcher.js';
import { qualified } from './columns.js';
import { authorizationById, challengesOf } from './keyed-joins.js';

export const CHALLENGE_COLUMNS = 'id, authorization_id, type, token, status, validated_at, error, attempts, next_attempt_at';
const COLUMNS = CHALLENGE_COLUMNS;

/** A claimed challenge with what validating it needs (ChallengeRepository.claimDueForValidation). */
export interface ClaimedChallenge {
  challenge: Challenge;
  /** The challenge's authorization, without its challenges. */
  authorization: Omit<Authorization, 'challenges'>;
  /** RFC 7638 thumbprint of the account key, for the key authorization (RFC 8555 §8.1). */
  accountThumbprint: string;
}

/** A client's answer to a challenge (respond's arguments). */
type Response = { id: string; accountId: string; now: Date; due: Date };

/** The outcome of a client's response to a challenge (ChallengeRepository.respond). */
export interface ChallengeResponse {
  /** The challenge and its authorization as they are after the statement. */
  challenge: Challenge;
  authorization: Authorization;
  /** True when this response moved the challenge pending -> processing. */
  started: boolean;
}

type ClaimedRow = ChallengeRow & {
  a_account_id: string;
  a_identifier_type: string;
  a_identifier_value: string;
  a_wildcard: boolean;
  a_status: string;
  a_expires: Date;
  a_created_at: Date;
  jwk_thumbprint: string;
};

/**
 * Challenges and their validation schedule (RFC 8555 §7.5.1, §8.2). Validation runs asynchronously on
 * whichever instance claims a due challenge (rule 7): every transition is a compare-and-set on status,
 * and claiming leases the challenge by pushing next_attempt_at past the attempt, so two instances never
 * validate the same challenge at once and a crashed attempt is picked up again once its lease runs out.
 * Challenges are inserted with their authorization (AuthorizationRepository.insertMany).
 */
export class ChallengeRepository {
  private readonly validations?: StatementBatcher<{ id: string; at: Date }, boolean>;
  private readonly responses?: StatementBatcher<Response, ChallengeResponse | undefined>;

  /**
   * `batch`: concurrent respond and markValidWithAuthorization calls share a statement each
   * (StatementBatcher) — for the instance on the pool, never for one on a transaction.
   */
  constructor(
    private readonly db: Queryable,
    options: { batch?: boolean } = {},
  ) {
    if (options.batch) {
      this.validations = new StatementBatcher((items) => this.markValidMany(items));
      this.responses = new StatementBatcher((responses) => this.respondMany(responses));
    }
  }

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
       WHERE status = 'processing' AND id = ANY (ARRAY(
         SELECT id FROM challenges
         WHERE status = 'processing' AND next_attempt_at <= $1
         ORDER BY next_attempt_at, id
         LIMIT $3
         FOR UPDATE SKIP LOCKED))
       RETURNING ${COLUMNS}`,
      [now, leaseUntil, limit],
    );
    return result.rows.map(challengeFromRow).sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  /**
   * claimDue, plus the authorization and account key each validation needs, in the same statement: the
   * scheduler validates what it claimed without further reads.
   */
  async claimDueForValidation(now: Date, leaseUntil: Date, limit: number): Promise<ClaimedChallenge[]> {
    if (!Number.isInteger(limit) || limit < 1) throw new CaError('serverInternal', `claim limit must be a positive integer, not ${limit}`);
    const result = await this.db.query<ClaimedRow>(
      `WITH claimed AS (
         UPDATE challenges SET next_attempt_at = $2
         -- Plans may walk challenges_due rather than look each id up: that index holds only processing
         -- challenges (work in flight, not history), so the walk stays small. Without the status test here
         -- a plan made on a small table scanned the whole table instead.
         WHERE status = 'processing' AND id = ANY (ARRAY(
           SELECT id FROM challenges
           WHERE status = 'processing' AND next_attempt_at <= $1
           ORDER BY next_attempt_at, id
           LIMIT $3
           FOR UPDATE SKIP LOCKED))
         RETURNING ${COLUMNS})
       SELECT ${qualified(COLUMNS, 'claimed')},
              a.account_id AS a_account_id, a.identifier_type AS a_identifier_type, a.identifier_value AS a_identifier_value,
              a.wildcard AS a_wildcard, a.status AS a_status, a.expires AS a_expires, a.created_at AS a_created_at,
              acc.jwk_thumbprint
       FROM claimed
       ${authorizationById('claimed.authorization_id', 'account_id, identifier_type, identifier_value, wildcard, status, expires, created_at')}
       CROSS JOIN LATERAL (SELECT jwk_thumbprint FROM accounts WHERE id = a.account_id OFFSET 0) AS acc
       ORDER BY claimed.id`,
      [now, leaseUntil, limit],
    );
    return result.rows.map((row) => {
      const { challenges: _none, ...authorization } = authorizationFromRow(
        {
          id: row.authorization_id,
          account_id: row.a_account_id,
          identifier_type: row.a_identifier_type,
          identifier_value: row.a_identifier_value,
          wildcard: row.a_wildcard,
          status: row.a_status,
          expires: row.a_expires,
          created_at: row.a_created_at,
        },
        [],
      );
      return { challenge: challengeFromRow(row), authorization, accountThumbprint: row.jwk_thumbprint };
    });
  }

  /**
   * §7.5.1 a client's response, in one statement: pending -> processing only if the challenge belongs to an
   * authorization of `accountId` that is pending and unexpired at `now`; returns the challenge with its
   * authorization (and all of its challenges) whether or not it moved, so the caller can say why not.
   * Undefined when the challenge does not exist. The first attempt is due at `due`: `now` for the
   * scheduler's next claim, or a lease's end when the responding instance attempts it at once (a crash
   * leaves it to whichever instance finds it due then).
   */
  async respond(id: string, accountId: string, now: Date, due: Date = now): Promise<ChallengeResponse | undefined> {
    const response = { id, accountId, now, due };
    if (this.responses) return this.responses.submit(response);
    return (await this.respondMany([response]))[0];
  }

  /**
   * respond() for several challenges in one statement (a keyed plan: it carries a batch); answers in
   * the order given. The same challenge answered twice in one batch starts once: the other answer sees it
   * processing, as a second statement would.
   */
  private async respondMany(responses: readonly Response[]): Promise<(ChallengeResponse | undefined)[]> {
    const result = await this.db.query<JoinedAuthorizationRow & { n: number; started: boolean }>(
      `WITH k AS (
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) WITH ORDINALITY AS k (id, account_id, now, due, n)
       ), started AS (
         UPDATE challenges c SET status = 'processing', next_attempt_at = k.due::timestamptz
         FROM k
         WHERE c.id = k.id AND c.status = 'pending'
           -- A scalar subquery is always a keyed lookup (keyed-joins.ts): as a join it was planned as a scan
           -- of the authorizations_expiring index filtering every pending authorization.
           AND (SELECT a.account_id = k.account_id AND a.status = 'pending' AND a.expires > k.now::timestamptz
                FROM authorizations a WHERE a.id = c.authorization_id)
         RETURNING k.n)
       SELECT k.n::int AS n, k.n IN (SELECT n FROM started) AS started, ${AUTHORIZATION_AND_CHALLENGE_COLUMNS}
       FROM k
       CROSS JOIN LATERAL (SELECT authorization_id FROM challenges WHERE id = k.id OFFSET 0) AS t
       ${authorizationById('t.authorization_id', AUTHORIZATION_COLUMNS)}
       ${challengesOf('a', COLUMNS, 'c', false)}
       ORDER BY k.n, c.type, c.id`,
      [
        responses.map((r) => r.id),
        responses.map((r) => r.accountId),
        responses.map((r) => r.now.toISOString()),
        responses.map((r) => r.due.toISOString()),
      ],
      { keyedPlan: true },
    );
    const rowsOf = rowsPerItem(result.rows, responses.length, (row) => row.n);
    return responses.map(({ id, due }, i) => {
      const rows = rowsOf[i]!;
      const first = rows[0];
      if (first === undefined) return undefined;
      const started = first.started;
      // The statement's SELECT sees the rows as they were before its UPDATE: apply what the UPDATE did.
      const challenges = rows.map((row) => {
        const challenge = challengeFromRow(challengeFromJoinedRow(row));
        return started && challenge.id === id ? { ...challenge, status: 'processing' as const, nextAttemptAt: due } : challenge;
      });
      const authorization = authorizationFromRow(first, challenges);
      const challenge = challenges.find((c) => c.id === id);
      if (challenge === undefined) throw new CaError('serverInternal', `challenge ${id} is missing from its authorization`);
      return { challenge, authorization, started };
    });
  }

  /**
   * The successful end of a validation (RFC 8555 §7.1.6), in one statement: the challenge processing -> valid
   * (as markValid), its authorization pending -> valid, and every pending order of that authorization whose
   * other authorizations are all valid and unexpired at `at` -> ready (the index order_authorizations_authorization
   * serves this). Throws like markValid when the challenge is not processing; the authorization is left alone
   * unless it is pending (e.g. deactivated meanwhile). Two authorizations of one order validated at the same
   * moment may each miss the other (a statement sees the rows as they were when it began): the order then
   * turns ready when next read (OrderService.refresh).
   */
  async markValidWithAuthorization(id: string, at: Date): Promise<void> {
    const finished = this.validations ? await this.validations.submit({ id, at }) : (await this.markValidMany([{ id, at }]))[0];
    if (finished !== true) await this.explainUnfinished(id);
  }

  /**
   * markValidWithAuthorization for several challenges in one statement (a keyed plan: it carries a
   * batch); true for each that was processing and is now valid. Authorizations of one order validated in
   * the same batch each miss the other, as concurrent statements do (see above).
   */
  private async markValidMany(items: readonly { id: string; at: Date }[]): Promise<boolean[]> {
    const result = await this.db.query<{ n: number }>(
      `WITH k AS (
         SELECT * FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS k (id, at, n)
       ), finished AS (
         UPDATE challenges c SET status = 'valid', validated_at = k.at::timestamptz, next_attempt_at = NULL, error = NULL
         -- The status as a parameter: written out, it matches challenges_due's predicate, and a generic plan
         -- then walks every processing challenge instead of looking each id up.
         FROM k WHERE c.id = k.id AND c.status = $3
         RETURNING k.n, c.authorization_id, k.at::timestamptz AS at
       ), authorized AS (
         UPDATE authorizations z SET status = 'valid'
         FROM finished f WHERE z.id = f.authorization_id AND z.status = 'pending'
         RETURNING z.id, z.expires, f.at
       ), readied AS (
         UPDATE orders o SET status = 'ready'
         FROM authorized, order_authorizations oa
         WHERE oa.authorization_id = authorized.id AND o.id = oa.order_id AND o.status = 'pending'
           AND o.expires > authorized.at AND authorized.expires > authorized.at
           AND NOT EXISTS (
             SELECT 1 FROM order_authorizations other ${authorizationById('other.authorization_id', 'id, status, expires')}
             WHERE other.order_id = o.id AND a.id <> authorized.id AND (a.status <> 'valid' OR a.expires <= authorized.at))
         RETURNING o.id)
       SELECT n::int AS n FROM finished`,
      [items.map((item) => item.id), items.map((item) => item.at.toISOString()), 'processing'],
      { keyedPlan: true },
    );
    const done = new Set(result.rows.map((row) => row.n));
    return items.map((_, i) => done.has(i + 1));
  }

  /** processing -> invalid (as markInvalid) and its authorization pending -> invalid, in one statement. */
  async markInvalidWithAuthorization(id: string, error: Problem): Promise<void> {
    await this.finishWithAuthorization(id, `status = 'invalid', next_attempt_at = NULL, error = $2::text::jsonb`, [problemToText(error)], 'invalid');
  }

  private async finishWithAuthorization(id: string, set: string, params: readonly unknown[], to: AuthorizationStatus): Promise<void> {
    const result = await this.db.query<{ finished: number }>(
      `WITH finished AS (
         UPDATE challenges SET ${set} WHERE id = $1 AND status = 'processing' RETURNING authorization_id),
       authorized AS (
         UPDATE authorizations SET status = $${params.length + 2}
         WHERE id = (SELECT authorization_id FROM finished) AND status = 'pending' RETURNING id, expires)
       SELECT (SELECT count(*) FROM finished)::int AS finished`,
      [id, ...params, to],
    );
    if (result.rows[0]?.finished !== 1) await this.explainUnfinished(id);
  }

  /** Throws why challenge `id` could not be finished: it does not exist, or it is not processing. */
  private async explainUnfinished(id: string): Promise<never> {
    const current = await this.findById(id);
    if (current === undefined) throw new CaError('notFound', `challenge ${id} does not exist`);
    throw new CaError('conflict', `challenge ${id} is ${current.status}, not processing`);
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

/** The authorizations table's columns (plain names). */
export const AUTHORIZATION_COLUMNS = 'id, account_id, identifier_type, identifier_value, wildcard, status, expires, created_at';

/**
 * An authorization's columns (alias a) beside one of its challenges' (alias c, renamed c_<column>): reads of
 * an authorization with its challenges take one statement (AuthorizationRepository.selectWithChallenges).
 */
export const AUTHORIZATION_AND_CHALLENGE_COLUMNS =
  qualified(AUTHORIZATION_COLUMNS, 'a') + ', ' +
  CHALLENGE_COLUMNS.split(', ').map((column) => `c.${column} AS c_${column}`).join(', ');

export type JoinedAuthorizationRow = AuthorizationRow & { [K in keyof ChallengeRow as `c_${K}`]: ChallengeRow[K] };

export function challengeFromJoinedRow(row: JoinedAuthorizationRow): ChallengeRow {
  return {
    id: row.c_id,
    authorization_id: row.c_authorization_id,
    type: row.c_type,
    token: row.c_token,
    status: row.c_status,
    validated_at: row.c_validated_at,
    error: row.c_error,
    attempts: row.c_attempts,
    next_attempt_at: row.c_next_attempt_at,
  };
}
