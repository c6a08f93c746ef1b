import type { Actor } from '../../core/audit.js';
import type { Page } from '../../core/page.js';
import { isNotificationType, type DeliveryStatus, type NotificationType, type Webhook, type WebhookDelivery } from '../../core/webhook.js';
import { CaError } from '../../core/errors.js';
import type { Queryable } from '../database.js';
import { decodeCursor, pageOf } from '../keyset.js';

const COLUMNS = 'id, group_name, url, events, description, created_at, created_by, removed_at, removed_by';

interface WebhookRow {
  id: string;
  group_name: string | null;
  url: string;
  events: unknown;
  description: string;
  created_at: Date;
  created_by: string;
  removed_at: Date | null;
  removed_by: string | null;
}

function webhookFromRow(row: WebhookRow): Webhook {
  const events = Array.isArray(row.events) ? row.events.filter((e): e is NotificationType => typeof e === 'string' && isNotificationType(e)) : [];
  const webhook: Webhook = {
    id: row.id,
    url: row.url,
    events,
    description: row.description,
    createdAt: new Date(row.created_at),
    createdBy: row.created_by as Actor,
  };
  if (row.group_name !== null) webhook.group = row.group_name;
  if (row.removed_at !== null) webhook.removedAt = new Date(row.removed_at);
  if (row.removed_by !== null) webhook.removedBy = row.removed_by as Actor;
  return webhook;
}

interface DeliveryRow {
  event_id: string;
  webhook_id: string;
  type: string;
  serial: string;
  status: string;
  attempts: number;
  next_attempt_at: Date | null;
  last_attempt_at: Date | null;
  last_error: string | null;
  delivered_at: Date | null;
  created_at: Date;
}

export function deliveryFromRow(row: DeliveryRow): WebhookDelivery {
  if (!isNotificationType(row.type)) throw new CaError('serverInternal', `stored notification event has an unknown type`);
  const delivery: WebhookDelivery = {
    eventId: row.event_id,
    webhookId: row.webhook_id,
    type: row.type,
    serial: row.serial,
    status: row.status as DeliveryStatus,
    attempts: Number(row.attempts),
    createdAt: new Date(row.created_at),
  };
  if (row.next_attempt_at !== null) delivery.nextAttemptAt = new Date(row.next_attempt_at);
  if (row.last_attempt_at !== null) delivery.lastAttemptAt = new Date(row.last_attempt_at);
  if (row.last_error !== null) delivery.lastError = row.last_error;
  if (row.delivered_at !== null) delivery.deliveredAt = new Date(row.delivered_at);
  return delivery;
}

/**
 * Webhooks (migration 0014): their configuration, and their secrets sealed (src/keys/secret-box.ts, by the
 * inventory; opaque bytes here). A webhook is never deleted: removing it stops its deliveries, and what it
 * was sent stays explained.
 */
export class WebhookRepository {
  constructor(private readonly db: Queryable) {}

  async insert(webhook: Webhook, secretSealed: Uint8Array): Promise<void> {
    await this.db.query(
      `INSERT INTO webhooks (id, group_name, url, secret_sealed, events, description, created_at, created_by)
       VALUES ($1, $2, $3, $4, $5::text::jsonb, $6, $7, $8)`,
      [webhook.id, webhook.group ?? null, webhook.url, secretSealed, JSON.stringify(webhook.events), webhook.description, webhook.createdAt, webhook.createdBy],
    );
  }

  async findById(id: string): Promise<Webhook | undefined> {
    const { rows } = await this.db.query<WebhookRow>(`SELECT ${COLUMNS} FROM webhooks WHERE id = $1`, [id]);
    return rows[0] === undefined ? undefined : webhookFromRow(rows[0]);
  }

  /**
   * Webhooks, oldest first, keyset on (created_at, id) over webhooks_created; removed ones only when asked.
   * `groups`: only these groups' webhooks (a group-admin's scope: global webhooks are an admin's).
   */
  async list(filter: { groups?: readonly string[]; includeRemoved?: boolean }, page: { cursor?: string; limit: number }): Promise<Page<Webhook>> {
    const params: unknown[] = [page.limit + 1];
    const where: string[] = [];
    if (filter.includeRemoved !== true) where.push('removed_at IS NULL');
    if (filter.groups !== undefined) {
      params.push([...filter.groups]);
      where.push(`group_name = ANY($${params.length}::text[])`);
    }
    if (page.cursor !== undefined) {
      const [at, id] = decodeCursor(page.cursor, ['date', 'string'] as const);
      params.push(at, id);
      where.push(`(created_at, id) > ($${params.length - 1}, $${params.length})`);
    }
    const { rows } = await this.db.query<WebhookRow>(
      `SELECT ${COLUMNS} FROM webhooks ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY created_at, id LIMIT $1`,
      params,
    );
    return pageOf(rows, page.limit, webhookFromRow, (row) => [new Date(row.created_at).toISOString(), row.id]);
  }

  /**
   * Removes a webhook that is not removed yet, and ends its pending deliveries (failed: the receiver was
   * removed), in one statement. Undefined when it was already removed or does not exist.
   */
  async remove(id: string, at: Date, by: Actor): Promise<Webhook | undefined> {
    const { rows } = await this.db.query<WebhookRow>(
      `WITH removed AS (
         UPDATE webhooks SET removed_at = $2, removed_by = $3 WHERE id = $1 AND removed_at IS NULL
         RETURNING ${COLUMNS}
       ), ended AS (
         UPDATE notification_deliveries d SET status = 'failed', next_attempt_at = NULL, last_error = 'the webhook was removed'
         FROM removed r WHERE d.webhook_id = r.id AND d.status = 'pending'
       )
       SELECT ${COLUMNS} FROM removed`,
      [id, at, by],
    );
    return rows[0] === undefined ? undefined : webhookFromRow(rows[0]);
  }

  /** A webhook's deliveries, newest first, keyset on (created_at, event_id) over notification_deliveries_webhook. */
  async deliveries(webhookId: string, filter: { status?: DeliveryStatus }, page: { cursor?: string; limit: number }): Promise<Page<WebhookDelivery>> {
    const params: unknown[] = [page.limit + 1, webhookId];
    const where = ['d.webhook_id = $2'];
    if (filter.status !== undefined) {
      params.push(filter.status);
      where.push(`d.status = $${params.length}`);
    }
    if (page.cursor !== undefined) {
      const [at, eventId] = decodeCursor(page.cursor, ['date', 'string'] as const);
      params.push(at, eventId);
      where.push(`(d.created_at, d.event_id) < ($${params.length - 1}, $${params.length})`);
    }
    const { rows } = await this.db.query<DeliveryRow>(
      `SELECT d.event_id, d.webhook_id, e.type, e.serial, d.status, d.attempts, d.next_attempt_at, d.last_attempt_at, d.last_error,
         d.delivered_at, d.created_at
       FROM notification_deliveries d JOIN notification_events e ON e.id = d.event_id
       WHERE ${where.join(' AND ')} ORDER BY d.created_at DESC, d.event_id DESC LIMIT $1`,
      params,
    );
    return pageOf(rows, page.limit, deliveryFromRow, (row) => [new Date(row.created_at).toISOString(), row.event_id]);
  }
}
