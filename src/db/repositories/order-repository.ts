import { CaError, type Problem } from '../../core/errors.js';
import type { Authorization, Order, OrderStatus } from '../../core/order.js';
import type { Queryable } from '../database.js';
import { CHECK_VIOLATION, FOREIGN_KEY_VIOLATION, UNIQUE_VIOLATION, isOutcomeUnknown, sqlError } from '../errors.js';
import { authorizationToRow, challengeToRow, orderFromRow, orderToRow, problemToText } from '../row-mappers.js';
import type { ChallengeRow, OrderRow } from '../row-types.js';
import { AUTHORIZATION_COLUMNS, CHALLENGE_COLUMNS } from './challenge-repository.js';
import { StatementBatcher } from '../statement-batcher.js';
import { authorizationById } from './keyed-joins.js';

/** The orders table's columns. */
const ORDER_COLUMNS =
  'id, account_id, status, identifiers, not_before, not_after, expires, error, certificate_serial, replaces_serial, created_at, profile';

/** The order's columns (table alias o) plus its authorization ids in position order, read in the same statement. */
const COLUMNS =
  'o.id, o.account_id, o.status, o.identifiers, o.not_before, o.not_after, o.expires, o.error, o.certificate_serial, ' +
  'o.replaces_serial, o.created_at, o.profile, ' +
  `COALESCE((SELECT jsonb_agg(oa.authorization_id ORDER BY oa.position) FROM order_authorizations oa WHERE oa.order_id = o.id), '[]'::jsonb) AS authorization_ids`;

/** How far an order's authorizations are (see OrderRepository.findWithProgress). */
export interface OrderProgress {
  /** Authorizations the order lists. */
  total: number;
  /** Of those, valid and unexpired. */
  usable: number;
  /** The first that can no longer become valid, if any. */
  failedId?: string;
}

export interface OrderPage {
  ids: string[];
  /** Present when more orders follow; pass it back to get the next page. */
  nextCursor?: string;
}

type ProgressRow = OrderRow & { n: number; total: number; usable: number; failed_id: string | null };
type WithProgress = { order: Order; progress: OrderProgress };
type Claim = { id: string; from: readonly OrderStatus[]; now: Date; serial: string; issuerId: string };
type NewOrder = { order: Order; newAuthorizations: readonly Authorization[] };

/**
 * Orders (RFC 8555 §7.1.3, §7.4). Takes a Queryable: creation spans several tables and must run inside
 * db.transaction, and finalization updates the order in the issuance transaction (rule 6).
 */
export class OrderRepository {
  private readonly progressReads?: StatementBatcher<{ id: string; now: Date }, WithProgress | undefined>;
  private readonly claims?: StatementBatcher<Claim, boolean>;
  private readonly inserts?: StatementBatcher<NewOrder, void>;

  /**
   * `batch`: concurrent insertWithAuthorizations, findWithProgress and claimForIssuance calls share a
   * statement each (StatementBatcher) — for the instance on the pool, never for one on a transaction.
   */
  constructor(
    private readonly db: Queryable,
    options: { batch?: boolean } = {},
  ) {
    if (options.batch) {
      this.progressReads = new StatementBatcher((items) => this.selectWithProgress(items));
      this.claims = new StatementBatcher((claims) => this.claimMany(claims), { retryAlone: true });
      this.inserts = new StatementBatcher((items) => this.insertMany(items), { retryAlone: true });
    }
  }

  /**
   * Stores a new order: `newAuthorizations` with their challenges, the order, and one order_authorizations
   * row per order.authorizationIds entry in that order. Ids not among newAuthorizations are reused
   * authorizations that must already exist and belong to the order's account.
   *
   * One statement (data-modifying CTEs), so it is atomic on its own and costs one round trip whatever the
   * number of names; foreign keys between the rows it inserts are checked at its end. It may
   * also run inside a caller's transaction.
   *
   * Throws CaError('alreadyReplaced') when order.replacesSerial is already being replaced by an order that
   * is not invalid (RFC 9773 §5; concurrent requests are serialized by the unique index, one wins),
   * 'notFound' for an unknown account or replaced certificate.
   */
  async insertWithAuthorizations(order: Order, newAuthorizations: readonly Authorization[]): Promise<void> {
    for (const authorization of newAuthorizations) {
      // Authorizations are per account (RFC 8555 §7.5): an order must never lean on another account's.
      if (authorization.accountId !== order.accountId) {
        throw new CaError('serverInternal', `authorization ${authorization.id} belongs to another account than order ${order.id}`);
      }
      for (const challenge of authorization.challenges) {
        if (challenge.authorizationId !== authorization.id) {
          throw new CaError('serverInternal', `challenge ${challenge.id} names authorization ${challenge.authorizationId} but is nested in ${authorization.id}`);
        }
      }
    }
    const item = { order, newAuthorizations };
    try {
      if (this.inserts) await this.inserts.submit(item);
      else await this.insertMany([item]);
    } catch (error) {
      // The answer was lost (ConnectionLost): the order, with its new id, is there or not.
      if (isOutcomeUnknown(error) && (await this.findById(order.id)) !== undefined) return;
      throw orderError(error, order);
    }
  }

  /**
   * insertWithAuthorizations for several orders in one statement. A batch that fails (one order replacing a
   * certificate already being replaced) wrote nothing; its orders are then stored one by one
   * (StatementBatcher retryAlone), so the error a caller sees is its own order's.
   */
  private async insertMany(items: readonly NewOrder[]): Promise<void[]> {
    const orders = items.map(({ order }) => orderToRow(order));
    const authorizations = items.flatMap(({ newAuthorizations }) => newAuthorizations.map(authorizationToRow));
    const challenges: ChallengeRow[] = items.flatMap(({ newAuthorizations }) =>
      newAuthorizations.flatMap((authorization) => authorization.challenges.map(challengeToRow)),
    );
    const links = items.flatMap(({ order }) =>
      order.authorizationIds.map((authorizationId, position) => ({ order_id: order.id, account_id: order.accountId, authorization_id: authorizationId, position })),
    );
    await this.db.query(
      `WITH new_authorizations AS (
         INSERT INTO authorizations (${AUTHORIZATION_COLUMNS})
         SELECT ${AUTHORIZATION_COLUMNS}
         FROM jsonb_to_recordset($1::text::jsonb) AS r (id text, account_id text, identifier_type text,
           identifier_value text, wildcard boolean, status text, expires timestamptz, created_at timestamptz)
         RETURNING id
       ), new_challenges AS (
         INSERT INTO challenges (${CHALLENGE_COLUMNS})
         SELECT id, authorization_id, type, token, status, validated_at, error::jsonb, attempts, next_attempt_at
         FROM jsonb_to_recordset($2::text::jsonb) AS r (id text, authorization_id text, type text, token text,
           status text, validated_at timestamptz, error text, attempts integer, next_attempt_at timestamptz)
         RETURNING id
       ), new_orders AS (
         INSERT INTO orders (${ORDER_COLUMNS})
         SELECT id, account_id, status, identifiers::jsonb, not_before, not_after, expires, error::jsonb, certificate_serial,
           replaces_serial, created_at, profile
         FROM jsonb_to_recordset($3::text::jsonb) AS r (id text, account_id text, status text, identifiers text,
           not_before timestamptz, not_after timestamptz, expires timestamptz, error text, certificate_serial text,
           replaces_serial text, created_at timestamptz, profile text)
         RETURNING id
       )
       INSERT INTO order_authorizations (order_id, authorization_id, position)
       SELECT l.order_id, l.authorization_id,
         -- An id that is neither one of the new authorizations nor an existing one of the order's account
         -- gets position -1, which CHECK (position >= 0) refuses: the statement fails and stores nothing.
         -- The scalar subquery is a lookup by key per link; as EXISTS it was planned as a hash of every
         -- authorization (keyed-joins.ts).
         CASE WHEN l.authorization_id IN (SELECT id FROM new_authorizations)
                OR (SELECT a.account_id FROM authorizations a WHERE a.id = l.authorization_id) = l.account_id
              THEN l.position ELSE -1 END
       FROM jsonb_to_recordset($4::text::jsonb) AS l (order_id text, account_id text, authorization_id text, position integer)`,
      [JSON.stringify(authorizations), JSON.stringify(challenges), JSON.stringify(orders), JSON.stringify(links)],
    );
    return items.map(() => undefined);
  }

  /**
   * The order with how far its authorizations are (RFC 8555 §7.1.6: an order is ready once all of them are
   * valid), read in one statement: a poll of the order needs nothing else. `usable` counts
   * authorizations that are valid and unexpired at `now`; `failedId` is the first, in order position, that
   * can no longer become valid (invalid, deactivated, expired, revoked).
   */
  async findWithProgress(id: string, now: Date): Promise<WithProgress | undefined> {
    if (this.progressReads) return this.progressReads.submit({ id, now });
    return (await this.selectWithProgress([{ id, now }]))[0];
  }

  /** findWithProgress for several (order, time) pairs in one statement; answers in the order given. */
  private async selectWithProgress(items: readonly { id: string; now: Date }[]): Promise<(WithProgress | undefined)[]> {
    const result = await this.db.query<ProgressRow>(
      `SELECT k.n::int AS n, ${COLUMNS}, p.total, p.usable, p.failed_id
       FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS k (id, now, n)
       CROSS JOIN LATERAL (SELECT ${ORDER_COLUMNS} FROM orders WHERE id = k.id OFFSET 0) AS o
       CROSS JOIN LATERAL (
         SELECT count(*)::int AS total,
                count(*) FILTER (WHERE a.status = 'valid' AND a.expires > k.now::timestamptz)::int AS usable,
                (array_agg(a.id ORDER BY oa.position) FILTER (WHERE a.status NOT IN ('valid', 'pending')))[1] AS failed_id
         FROM order_authorizations oa ${authorizationById('oa.authorization_id', 'id, status, expires')}
         WHERE oa.order_id = o.id) AS p`,
      [items.map((item) => item.id), items.map((item) => item.now.toISOString())],
    );
    const answers: (WithProgress | undefined)[] = items.map(() => undefined);
    for (const row of result.rows) {
      const progress: OrderProgress = { total: row.total, usable: row.usable };
      if (row.failed_id !== null) progress.failedId = row.failed_id;
      answers[row.n - 1] = { order: orderFromRow(row), progress };
    }
    return answers;
  }

  /**
   * Finalization's claim (RFC 8555 §7.4) and the serial reservation of DESIGN.md rule 2, in one statement:
   * the order moves from one of `from` to processing only if it has not expired and every authorization is
   * valid and unexpired at `now`, and the serial is recorded only if the order moved. True when both
   * happened; false when the order was not claimable (another finalize won the compare-and-set, or it is no
   * longer ready): then nothing changed. Committed before the caller signs, as rule 2 requires. Throws
   * CaError('conflict') for a serial already used (draw another) and 'notFound' for an unknown issuer.
   */
  async claimForIssuance(id: string, from: readonly OrderStatus[], now: Date, serial: string, issuerId: string): Promise<boolean> {
    const claim = { id, from, now, serial, issuerId };
    try {
      return this.claims ? await this.claims.submit(claim) : (await this.claimMany([claim]))[0]!;
    } catch (error) {
      // The answer was lost (ConnectionLost): the serial is reserved only with the claim that moved the order
      // (one statement), so it says whether this claim happened. Never claimed again: that compare-and-set
      // would fail against its own success and strand the order in processing.
      if (isOutcomeUnknown(error)) {
        if (await this.isSerialReserved(serial)) return true;
        throw error;
      }
      const { code } = sqlError(error);
      if (code === UNIQUE_VIOLATION) throw new CaError('conflict', `serial ${serial} has already been used`);
      if (code === FOREIGN_KEY_VIOLATION) throw new CaError('notFound', `issuer ${issuerId} does not exist`);
      throw error;
    }
  }

  private async isSerialReserved(serial: string): Promise<boolean> {
    return (await this.db.query('SELECT serial FROM serials WHERE serial = $1', [serial])).rowCount === 1;
  }

  /**
   * claimForIssuance for several orders in one statement (a keyed plan: it carries a batch); answers in
   * the order given. An order named twice is claimed by one of them. A batch that fails (a used serial)
   * wrote nothing; its claims are then retried one by one (StatementBatcher retryAlone), so the error a
   * caller sees is its own claim's.
   */
  private async claimMany(claims: readonly Claim[]): Promise<boolean[]> {
    const result = await this.db.query<{ serial: string }>(
      `WITH k AS (
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[]) AS k (id, from_statuses, at, serial, issuer_id)
       ), claimed AS (
         UPDATE orders o SET status = 'processing', processing_since = k.at::timestamptz
         FROM k
         WHERE o.id = k.id AND o.status = ANY (string_to_array(k.from_statuses, ',')) AND o.expires > k.at::timestamptz
           AND NOT EXISTS (
             SELECT 1 FROM order_authorizations oa ${authorizationById('oa.authorization_id', 'status, expires')}
             WHERE oa.order_id = o.id AND (a.status <> 'valid' OR a.expires <= k.at::timestamptz))
         RETURNING k.serial, k.issuer_id, k.at
       ), reserved AS (
         INSERT INTO serials (serial, issuer_id, created_at) SELECT serial, issuer_id, at::timestamptz FROM claimed RETURNING serial
       )
       SELECT serial FROM reserved`,
      [
        claims.map((c) => c.id),
        claims.map((c) => c.from.join(',')),
        claims.map((c) => c.now.toISOString()),
        claims.map((c) => c.serial),
        claims.map((c) => c.issuerId),
      ],
      { keyedPlan: true },
    );
    const reserved = new Set(result.rows.map((row) => row.serial));
    return claims.map((c) => reserved.has(c.serial));
  }

  /**
   * Ends orders stuck in processing (RFC 8555 §7.1.6: processing -> invalid; there is no way back to ready):
   * those claimed at or before `claimedBefore` move to invalid with `error`, at most `limit` of them. A
   * compare-and-set on the status, so an order whose certificate is stored meanwhile stays valid. Returns
   * the orders it moved. Reads the partial index orders_processing_since (migration 0012): an order claimed
   * without a recorded time (by an instance of a version before 0008) is not among them.
   */
  async failStuckProcessing(claimedBefore: Date, error: Problem, limit: number): Promise<Order[]> {
    const result = await this.db.query<OrderRow>(
      `UPDATE orders AS o SET status = 'invalid', error = $2::text::jsonb
       WHERE o.id IN (
           SELECT id FROM orders
           WHERE status = 'processing' AND processing_since <= $1
           ORDER BY processing_since LIMIT $3)
         AND o.status = 'processing'
       RETURNING ${COLUMNS}`,
      [claimedBefore, problemToText(error), limit],
    );
    return result.rows.map(orderFromRow);
  }

  async findById(id: string): Promise<Order | undefined> {
    const result = await this.db.query<OrderRow>(`SELECT ${COLUMNS} FROM orders o WHERE o.id = $1`, [id]);
    const row = result.rows[0];
    return row === undefined ? undefined : orderFromRow(row);
  }

  /**
   * The account's order ids, newest first (RFC 8555 §7.1.2.1), `limit` per page. Keyset paging on
   * (created_at, id): a page never repeats or skips an order when new ones arrive between requests. The
   * cursor is opaque to callers; a malformed one is CaError('malformed').
   */
  async listIdsByAccount(accountId: string, cursor: string | undefined, limit: number): Promise<OrderPage> {
    if (!Number.isInteger(limit) || limit < 1) throw new CaError('serverInternal', `page size must be a positive integer, not ${limit}`);
    const after = cursor === undefined ? undefined : decodeCursor(cursor);
    // One more than asked: whether it comes back says whether there is a next page.
    const result =
      after === undefined
        ? await this.db.query<{ id: string; created_at: Date }>(
            `SELECT id, created_at FROM orders WHERE account_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2`,
            [accountId, limit + 1],
          )
        : await this.db.query<{ id: string; created_at: Date }>(
            `SELECT id, created_at FROM orders WHERE account_id = $1 AND (created_at, id) < ($2, $3)
             ORDER BY created_at DESC, id DESC LIMIT $4`,
            [accountId, after.createdAt, after.id, limit + 1],
          );
    const rows = result.rows.slice(0, limit);
    const last = rows[rows.length - 1];
    const page: OrderPage = { ids: rows.map((r) => r.id) };
    if (result.rows.length > limit && last !== undefined) page.nextCursor = encodeCursor(last.created_at, last.id);
    return page;
  }

  /**
   * Compare-and-set on status (RFC 8555 §7.1.6): moves the order to `to` only if it is in one of `from`,
   * setting error and/or certificateSerial when given (never clearing them). Undefined when the order does
   * not exist or was not in `from` — another request or instance moved it first, e.g. two finalize calls.
   */
  async updateStatus(
    id: string,
    from: readonly OrderStatus[],
    to: OrderStatus,
    fields: { error?: Problem; certificateSerial?: string } = {},
  ): Promise<Order | undefined> {
    try {
      const result = await this.db.query<OrderRow>(
        `UPDATE orders AS o
         SET status = $2, error = COALESCE($4::text::jsonb, o.error), certificate_serial = COALESCE($5, o.certificate_serial)
         WHERE o.id = $1 AND o.status = ANY($3::text[])
         RETURNING ${COLUMNS}`,
        [id, to, [...from], problemToText(fields.error), fields.certificateSerial ?? null],
      );
      const row = result.rows[0];
      return row === undefined ? undefined : orderFromRow(row);
    } catch (error) {
      const { code, constraint } = sqlError(error);
      if (code === FOREIGN_KEY_VIOLATION) {
        // Issuance stores the certificate before the order turns valid, in the same transaction.
        throw new CaError('serverInternal', `certificate ${fields.certificateSerial ?? ''} of order ${id} is not stored`, { cause: error });
      }
      if (code === CHECK_VIOLATION) {
        throw new CaError('serverInternal', `order ${id} cannot become ${to} (${constraint ?? 'check'})`, { cause: error });
      }
      if (code === UNIQUE_VIOLATION) {
        throw new CaError('alreadyReplaced', 'the certificate this order replaces has already been replaced');
      }
      throw error;
    }
  }

  /** The order replacing this certificate that has not failed, if any (RFC 9773 §5). */
  async findActiveByReplaces(serial: string): Promise<Order | undefined> {
    const result = await this.db.query<OrderRow>(
      `SELECT ${COLUMNS} FROM orders o WHERE o.replaces_serial = $1 AND o.status <> 'invalid'`,
      [serial],
    );
    const row = result.rows[0];
    return row === undefined ? undefined : orderFromRow(row);
  }
}

function orderError(error: unknown, order: Order): unknown {
  const { code, constraint } = sqlError(error);
  if (
    (code === CHECK_VIOLATION && constraint === 'order_authorizations_position_check') ||
    (code === FOREIGN_KEY_VIOLATION && constraint === 'order_authorizations_authorization_id_fkey')
  ) {
    return new CaError('serverInternal', `order ${order.id} lists authorizations that do not exist for account ${order.accountId}`);
  }
  if (code === FOREIGN_KEY_VIOLATION && constraint === 'authorizations_account_id_fkey') {
    return new CaError('notFound', `account ${order.accountId} does not exist`);
  }
  if (code === UNIQUE_VIOLATION && constraint !== 'orders_replaces_once' && constraint !== 'orders_pkey') {
    // Ids come from the RA's random source: a collision or a retried insert is a server fault.
    return new CaError('conflict', `authorization or challenge already exists (${constraint ?? 'unique'})`);
  }
  if (code === UNIQUE_VIOLATION && constraint === 'orders_replaces_once') {
    return new CaError('alreadyReplaced', `certificate ${order.replacesSerial ?? ''} has already been replaced`);
  }
  if (code === UNIQUE_VIOLATION) return new CaError('conflict', `order ${order.id} already exists`);
  if (code === FOREIGN_KEY_VIOLATION && constraint === 'orders_account_id_fkey') {
    return new CaError('notFound', `account ${order.accountId} does not exist`);
  }
  if (code === FOREIGN_KEY_VIOLATION && constraint === 'orders_replaces_serial_fkey') {
    return new CaError('notFound', `certificate ${order.replacesSerial ?? ''} does not exist`);
  }
  return error;
}

// The cursor is base64url("<created_at in ms>.<id>"): created_at values are written from JS Dates, so
// milliseconds are exact. Opaque to clients, which only ever pass back what a page gave them.
const CURSOR = /^(-?\d{1,16})\.(.+)$/s;

function encodeCursor(createdAt: Date, id: string): string {
  return Buffer.from(`${createdAt.getTime()}.${id}`, 'utf8').toString('base64url');
}

function decodeCursor(cursor: string): { createdAt: Date; id: string } {
  const match = /^[A-Za-z0-9_-]+$/.test(cursor) ? CURSOR.exec(Buffer.from(cursor, 'base64url').toString('utf8')) : null;
  const createdAt = new Date(Number(match?.[1]));
  if (match === null || match[2] === undefined || Number.isNaN(createdAt.getTime())) {
    throw new CaError('malformed', 'invalid orders list cursor');
  }
  return { createdAt, id: match[2] };
}
