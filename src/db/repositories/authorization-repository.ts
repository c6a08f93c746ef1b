import { CaError } from '../../core/errors.js';
import type { Identifier } from '../../core/identifier.js';
import type { Authorization, AuthorizationStatus, Challenge } from '../../core/order.js';
import type { Queryable } from '../database.js';
import { FOREIGN_KEY_VIOLATION, UNIQUE_VIOLATION, sqlError } from '../errors.js';
import { authorizationFromRow, authorizationToRow, challengeFromRow, challengeToRow } from '../row-mappers.js';
import type { AuthorizationRow, ChallengeRow } from '../row-types.js';
import { CHALLENGE_COLUMNS } from './challenge-repository.js';

const COLUMNS = 'id, account_id, identifier_type, identifier_value, wildcard, status, expires, created_at';

/**
 * Authorizations (RFC 8555 §7.1.4) with their challenges. Takes a Queryable so order creation can insert
 * new authorizations in the same transaction as the order (see OrderRepository).
 */
export class AuthorizationRepository {
  constructor(private readonly db: Queryable) {}

  /**
   * Inserts authorizations and their challenges: two statements whatever the count (rows passed as one
   * JSON array and expanded by jsonb_to_recordset), so an order for many names costs no more round trips
   * than one for a single name. Every challenge must name the authorization it is nested in.
   */
  async insertMany(authorizations: readonly Authorization[]): Promise<void> {
    if (authorizations.length === 0) return;
    const challenges: ChallengeRow[] = [];
    for (const authorization of authorizations) {
      for (const challenge of authorization.challenges) {
        if (challenge.authorizationId !== authorization.id) {
          throw new CaError(
            'serverInternal',
            `challenge ${challenge.id} names authorization ${challenge.authorizationId} but is nested in ${authorization.id}`,
          );
        }
        challenges.push(challengeToRow(challenge));
      }
    }
    try {
      await this.db.query(
        `INSERT INTO authorizations (${COLUMNS})
         SELECT ${COLUMNS}
         FROM jsonb_to_recordset($1::text::jsonb) AS r (id text, account_id text, identifier_type text,
           identifier_value text, wildcard boolean, status text, expires timestamptz, created_at timestamptz)`,
        [JSON.stringify(authorizations.map(authorizationToRow))],
      );
      if (challenges.length > 0) {
        await this.db.query(
          `INSERT INTO challenges (${CHALLENGE_COLUMNS})
           SELECT id, authorization_id, type, token, status, validated_at, error::jsonb, attempts, next_attempt_at
           FROM jsonb_to_recordset($1::text::jsonb) AS r (id text, authorization_id text, type text, token text,
             status text, validated_at timestamptz, error text, attempts integer, next_attempt_at timestamptz)`,
          [JSON.stringify(challenges)],
        );
      }
    } catch (error) {
      const { code, constraint } = sqlError(error);
      if (code === FOREIGN_KEY_VIOLATION && constraint === 'authorizations_account_id_fkey') {
        throw new CaError('notFound', `account ${authorizations[0]?.accountId ?? ''} does not exist`);
      }
      if (code === UNIQUE_VIOLATION) {
        // Ids come from the RA's random source: a collision or a retried insert is a server fault.
        throw new CaError('conflict', `authorization or challenge already exists (${constraint ?? 'unique'})`);
      }
      throw error;
    }
  }

  async findById(id: string): Promise<Authorization | undefined> {
    return (await this.findByIds([id]))[0];
  }

  /**
   * The authorizations with these ids, in the order of `ids`; ids that do not exist are left out (compare
   * lengths to tell). Challenges come ordered by type.
   */
  async findByIds(ids: readonly string[]): Promise<Authorization[]> {
    if (ids.length === 0) return [];
    const result = await this.db.query<AuthorizationRow>(`SELECT ${COLUMNS} FROM authorizations WHERE id = ANY($1::text[])`, [
      [...new Set(ids)],
    ]);
    const found = await this.withChallenges(result.rows);
    const byId = new Map(found.map((a) => [a.id, a]));
    return ids.flatMap((id) => {
      const authorization = byId.get(id);
      return authorization === undefined ? [] : [authorization];
    });
  }

  /**
   * An authorization the account may reuse for a new order (RFC 8555 §7.4 lets the server reuse them):
   * same identifier and wildcard flag, pending or valid, and not expiring before validAfter (the caller
   * passes a time far enough ahead for the order to be finalized). A valid one is preferred to a pending
   * one; among equals, the newest.
   */
  async findReusable(accountId: string, identifier: Identifier, wildcard: boolean, validAfter: Date): Promise<Authorization | undefined> {
    const result = await this.db.query<AuthorizationRow>(
      `SELECT ${COLUMNS} FROM authorizations
       WHERE account_id = $1 AND identifier_type = $2 AND identifier_value = $3 AND wildcard = $4
         AND status IN ('valid', 'pending') AND expires > $5
       ORDER BY status = 'valid' DESC, created_at DESC, id DESC
       LIMIT 1`,
      [accountId, identifier.type, identifier.value, wildcard, validAfter],
    );
    return (await this.withChallenges(result.rows))[0];
  }

  /** Compare-and-set: moves the authorization to `to` only if its status is one of `from`; else undefined. */
  async updateStatus(id: string, from: readonly AuthorizationStatus[], to: AuthorizationStatus): Promise<Authorization | undefined> {
    const result = await this.db.query<AuthorizationRow>(
      `UPDATE authorizations SET status = $2 WHERE id = $1 AND status = ANY($3::text[]) RETURNING ${COLUMNS}`,
      [id, to, [...from]],
    );
    return (await this.withChallenges(result.rows))[0];
  }

  /**
   * Pending and valid authorizations whose expiry has passed become 'expired' (RFC 8555 §7.1.6); returns
   * how many. Reads never depend on this sweep having run: findReusable checks expires itself.
   */
  async expireDue(now: Date): Promise<number> {
    const result = await this.db.query(
      `UPDATE authorizations SET status = 'expired' WHERE status IN ('pending', 'valid') AND expires <= $1`,
      [now],
    );
    return result.rowCount;
  }

  private async withChallenges(rows: readonly AuthorizationRow[]): Promise<Authorization[]> {
    if (rows.length === 0) return [];
    const result = await this.db.query<ChallengeRow>(
      `SELECT ${CHALLENGE_COLUMNS} FROM challenges WHERE authorization_id = ANY($1::text[]) ORDER BY authorization_id, type, id`,
      [rows.map((row) => row.id)],
    );
    const byAuthorization = new Map<string, Challenge[]>();
    for (const row of result.rows) {
      const list = byAuthorization.get(row.authorization_id) ?? [];
      list.push(challengeFromRow(row));
      byAuthorization.set(row.authorization_id, list);
    }
    return rows.map((row) => authorizationFromRow(row, byAuthorization.get(row.id) ?? []));
  }
}
