import { CaError, type Problem } from '../../core/errors.js';
import type { Authorization, Order, OrderStatus } from '../../core/order.js';
import type { Queryable } from '../database.js';
import { CHECK_VIOLATION, FOREIGN_KEY_VIOLATION, UNIQUE_VIOLATION, sqlError } from '../errors.js';
import { orderFromRow, orderToRow, problemToText } from '../row-mappers.js';
import type { OrderRow } from '../row-types.js';
import { AuthorizationRepository } from './authorization-repository.js';

const INSERT_COLUMNS =
  'id, account_id, status, identifiers, not_before, not_after, expires, error, certificate_serial, replaces_serial, created_at';

/** The order's columns (table alias o) plus its authorization ids in position order, read in the same statement. */
const COLUMNS =
  'o.id, o.account_id, o.status, o.identifiers, o.not_before, o.not_after, o.expires, o.error, o.certificate_serial, ' +
  'o.replaces_serial, o.created_at, ' +
  `COALESCE((SELECT jsonb_agg(oa.authorization_id ORDER BY oa.position) FROM order_authorizations oa WHERE oa.order_id = o.id), '[]'::jsonb) AS authorization_ids`;

export interface OrderPage {
  ids: string[];
  /** Present when more orders follow; pass it back to get the next page. */
  nextCursor?: string;
}

/**
 * Orders (RFC 8555 §7.1.3, §7.4). Takes a Queryable: creation spans several tables and must run inside
 * db.transaction, and finalization updates the order in the issuance transaction (rule 6).
 */
export class OrderRepository {
  constructor(private readonly db: Queryable) {}

  /**
   * Stores a new order: first `newAuthorizations` with their challenges, then the order, then one
   * order_authorizations row per order.authorizationIds entry in that order. Ids not among
   * newAuthorizations are reused authorizations that must already exist and belong to the order's account.
   * Several statements: the caller runs this inside db.transaction, so a failure stores nothing.
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
    }
    await new AuthorizationRepository(this.db).insertMany(newAuthorizations);

    const row = orderToRow(order);
    try {
      await this.db.query(
        `INSERT INTO orders (${INSERT_COLUMNS})
         VALUES ($1, $2, $3, $4::text::jsonb, $5, $6, $7, $8::text::jsonb, $9, $10, $11)`,
        [
          row.id,
          row.account_id,
          row.status,
          row.identifiers,
          row.not_before,
          row.not_after,
          row.expires,
          row.error,
          row.certificate_serial,
          row.replaces_serial,
          row.created_at,
        ],
      );
    } catch (error) {
      throw orderError(error, order);
    }

    if (order.authorizationIds.length === 0) return;
    // The join on account_id refuses reused authorizations of another account (rowCount falls short).
    const linked = await this.db.query(
      `INSERT INTO order_authorizations (order_id, authorization_id, position)
       SELECT $1, a.id, (ids.ord - 1)::int
       FROM jsonb_array_elements_text($2::text::jsonb) WITH ORDINALITY AS ids (id, ord)
       JOIN authorizations a ON a.id = ids.id AND a.account_id = $3`,
      [order.id, JSON.stringify(order.authorizationIds), order.accountId],
    );
    if (linked.rowCount !== order.authorizationIds.length) {
      throw new CaError('serverInternal', `order ${order.id} lists authorizations that do not exist for account ${order.accountId}`);
    }
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
