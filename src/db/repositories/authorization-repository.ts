import { CaError } from '../../core/errors.js';
import type { Identifier } from '../../core/identifier.js';
import type { Authorization, AuthorizationStatus, Challenge } from '../../core/order.js';
import type { Queryable } from '../database.js';
import { FOREIGN_KEY_VIOLATION, UNIQUE_VIOLATION, sqlError } from '../errors.js';
import { authorizationFromRow, authorizationToRow, challengeFromRow, challengeToRow } from '../row-mappers.js';
import type { AuthorizationRow, ChallengeRow } from '../row-types.js';
import { StatementBatcher, rowsPerItem } from '../statement-batcher.js';
import { qualified } from './columns.js';
import { authorizationById, challengesOf } from './keyed-joins.js';
import { AUTHORIZATION_AND_CHALLENGE_COLUMNS, AUTHORIZATION_COLUMNS, CHALLENGE_COLUMNS, challengeFromJoinedRow, type JoinedAuthorizationRow } from './challenge-repository.js';

const COLUMNS = AUTHORIZATION_COLUMNS;

type JoinedRow = AuthorizationRow & { [K in keyof ChallengeRow as `c_${K}`]: ChallengeRow[K] | null };

/**
 * One statement for authorizations and their challenges: `from` is a FROM item (a table, subquery or CTE)
 * aliased `a`, `where` an optional condition on it. One row per challenge (a LEFT JOIN keeps an authorization without any); rows of
 * one authorization are adjacent, challenges ordered by type. A round trip saved per read: every ACME poll of
 * an authorization is such a read.
 */
function selectWithChallenges(from: string, where = 'true'): string {
  return `SELECT ${AUTHORIZATION_AND_CHALLENGE_COLUMNS} FROM ${from} ${challengesOf('a', CHALLENGE_COLUMNS)} WHERE ${where} ORDER BY a.id, c.type, c.id`;
}

/** Rows of selectWithChallenges -> authorizations, in the order their first row came. */
function authorizationsFromJoinedRows(rows: readonly JoinedRow[]): Authorization[] {
  const byId = new Map<string, { row: AuthorizationRow; challenges: Challenge[] }>();
  for (const row of rows) {
    let entry = byId.get(row.id);
    if (entry === undefined) {
      entry = { row, challenges: [] };
      byId.set(row.id, entry);
    }
    if (row.c_id !== null) entry.challenges.push(challengeFromRow(challengeFromJoinedRow(row as JoinedAuthorizationRow)));
  }
  return [...byId.values()].map(({ row, challenges }) => authorizationFromRow(row, challenges));
}

type ReuseLookup = { accountId: string; wanted: readonly { identifier: Identifier; wildcard: boolean }[]; validAfter: Date };

/**
 * Authorizations (RFC 8555 §7.1.4) with their challenges. Takes a Queryable so it can run inside a caller's
 * transaction. A new order's authorizations are inserted with the order, in one statement
 * (OrderRepository.insertWithAuthorizations); every read returns them with their challenges in one statement.
 */
export class AuthorizationRepository {
  private readonly reads?: StatementBatcher<readonly string[], Authorization[]>;
  private readonly reuseLookups?: StatementBatcher<ReuseLookup, Authorization[]>;

  /**
   * `batch`: concurrent findByIds calls share one statement (StatementBatcher), and so do concurrent
   * findReusableMany calls — for the instance on the pool, where every ACME poll of an authorization and
   * every new order is such a read; never for one on a transaction.
   */
  constructor(
    private readonly db: Queryable,
    options: { batch?: boolean } = {},
  ) {
    if (options.batch) {
      this.reads = new StatementBatcher((lists) => this.selectByIdLists(lists));
      this.reuseLookups = new StatementBatcher((lookups) => this.selectReusable(lookups));
    }
  }

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
    return this.reads ? this.reads.submit(ids) : (await this.selectByIdLists([ids]))[0]!;
  }

  /** findByIds for several id lists in one statement (each id read once); answers in the order given. */
  private async selectByIdLists(lists: readonly (readonly string[])[]): Promise<Authorization[][]> {
    const ids = [...new Set(lists.flat())];
    const result = await this.db.query<JoinedRow>(selectWithChallenges(`unnest($1::text[]) AS ids (id) ${authorizationById('ids.id', COLUMNS)}`), [ids]);
    const byId = new Map(authorizationsFromJoinedRows(result.rows).map((a) => [a.id, a]));
    return lists.map((list) => list.flatMap((id) => byId.get(id) ?? []));
  }

  /**
   * An authorization the account may reuse for a new order (RFC 8555 §7.4 lets the server reuse them):
   * same identifier and wildcard flag, pending or valid, and not expiring before validAfter (the caller
   * passes a time far enough ahead for the order to be finalized). A valid one is preferred to a pending
   * one; among equals, the newest.
   */
  async findReusable(accountId: string, identifier: Identifier, wildcard: boolean, validAfter: Date): Promise<Authorization | undefined> {
    return (await this.findReusableMany(accountId, [{ identifier, wildcard }], validAfter))[0];
  }

  /**
   * findReusable for several identifiers in one statement (a new order asks for all of its names at once):
   * at most one authorization per (identifier, wildcard), in no particular order; match them by identifier.
   */
  async findReusableMany(
    accountId: string,
    wanted: readonly { identifier: Identifier; wildcard: boolean }[],
    validAfter: Date,
  ): Promise<Authorization[]> {
    if (wanted.length === 0) return [];
    const lookup = { accountId, wanted, validAfter };
    if (this.reuseLookups) return this.reuseLookups.submit(lookup);
    return (await this.selectReusable([lookup]))[0]!;
  }

  /** findReusableMany for several calls in one statement; answers in the order given. */
  private async selectReusable(lookups: readonly ReuseLookup[]): Promise<Authorization[][]> {
    const rows = lookups.flatMap(({ accountId, wanted, validAfter }, n) =>
      wanted.map((w) => ({ n: n + 1, accountId, type: w.identifier.type, value: w.identifier.value, wildcard: w.wildcard, validAfter: validAfter.toISOString() })),
    );
    const result = await this.db.query<JoinedRow & { batch_n: number }>(
      // One index lookup (authorizations_reuse) per name: the innermost subquery names only that index's
      // leading columns, and OFFSET 0 keeps the status/expiry test outside it. With that test inside, plans
      // made on small tables walked authorizations_expiring through every pending authorization instead
      // (keyed-joins.ts).
      `SELECT a.n::int AS batch_n, ${AUTHORIZATION_AND_CHALLENGE_COLUMNS}
       FROM (SELECT w.n, r.*
             FROM unnest($1::integer[], $2::text[], $3::text[], $4::text[], $5::boolean[], $6::text[])
               AS w (n, account_id, type, value, wildcard, valid_after)
             CROSS JOIN LATERAL (
               SELECT ${qualified(COLUMNS, 'x')}
               FROM (SELECT ${COLUMNS} FROM authorizations
                     WHERE account_id = w.account_id AND identifier_type = w.type AND identifier_value = w.value AND wildcard = w.wildcard
                     OFFSET 0) AS x
               WHERE x.status IN ('valid', 'pending') AND x.expires > w.valid_after::timestamptz
               ORDER BY x.status = 'valid' DESC, x.created_at DESC, x.id DESC
               LIMIT 1) AS r) AS a
       ${challengesOf('a', CHALLENGE_COLUMNS)}
       ORDER BY a.n, a.id, c.type, c.id`,
      [rows.map((r) => r.n), rows.map((r) => r.accountId), rows.map((r) => r.type), rows.map((r) => r.value), rows.map((r) => r.wildcard), rows.map((r) => r.validAfter)],
    );
    return rowsPerItem(result.rows, lookups.length, (row) => row.batch_n).map(authorizationsFromJoinedRows);
  }

  /** Compare-and-set: moves the authorization to `to` only if its status is one of `from`; else undefined. */
  async updateStatus(id: string, from: readonly AuthorizationStatus[], to: AuthorizationStatus): Promise<Authorization | undefined> {
    const result = await this.db.query<JoinedRow>(
      `WITH a AS (UPDATE authorizations SET status = $2 WHERE id = $1 AND status = ANY($3::text[]) RETURNING ${COLUMNS})
       ${selectWithChallenges('a')}`,
      [id, to, [...from]],
    );
    return authorizationsFromJoinedRows(result.rows)[0];
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
}
