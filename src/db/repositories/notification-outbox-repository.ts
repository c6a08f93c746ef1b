import type { NotificationType } from '../../core/webhook.js';
import type { LinkedCertificate } from '../../core/lineage.js';
import type { Queryable } from '../database.js';
import { stringArray } from './health-rows.js';
import { certificateColumns, linkedFromRow, type InventoryCertificateRow } from './inventory-columns.js';

/**
 * The two scans of the health detector: `renewal-due` walks certificates by the end of their ARI window
 * (certificate_renewal_due, migration 0014: renewal-overdue and expiring-soon), `expiry` by notAfter
 * (expired-unreplaced). Each has a watermark: how far it has looked.
 */
export type HealthScan = 'renewal-due' | 'expiry';

/** A certificate found by a scan, with the instant it crossed the scan's threshold. */
export interface ScanHit {
  linked: LinkedCertificate;
  crossedAt: Date;
}

/** An event to put in the outbox (its id and body are made by the caller, so retries send the same bytes). */
export interface OutboxEvent {
  id: string;
  type: NotificationType;
  serial: string;
  group?: string;
  accountId?: string;
  notAfter: Date;
  body: string;
}

/** A delivery that is due, with what sending it needs. */
export interface DueDelivery {
  eventId: string;
  webhookId: string;
  type: NotificationType;
  attempts: number;
  body: string;
  url: string;
  secretSealed: Uint8Array;
}

const THRESHOLD: Record<HealthScan, string> = {
  'renewal-due': 'certificate_renewal_due(c.not_before, c.not_after)',
  expiry: 'c.not_after',
};

/**
 * The notification outbox (migration 0014): events, one per certificate per condition, and their deliveries
 * to webhooks. Whatever must not be lost is written in one statement: the events a scan found with their
 * deliveries and the scan's watermark; each attempt's outcome with its delivery.
 */
export class NotificationOutboxRepository {
  constructor(private readonly db: Queryable) {}

  async watermark(scan: HealthScan): Promise<Date | undefined> {
    const { rows } = await this.db.query<{ through: Date }>('SELECT through FROM notification_watermarks WHERE scan = $1', [scan]);
    return rows[0] === undefined ? undefined : new Date(rows[0].through);
  }

  /**
   * Valid certificates without a successor whose threshold lies in (from, to], after `after` in (threshold,
   * serial) order, at most `limit`. The renewal-due scan keeps only certificates not yet expired at `to`.
   */
  async scan(scan: HealthScan, range: { from: Date; to: Date }, after: { at: Date; serial: string } | undefined, limit: number): Promise<ScanHit[]> {
    const threshold = THRESHOLD[scan];
    const params: unknown[] = [limit, range.from, range.to];
    const where = [`c.status = 'valid'`, `${threshold} > $2`, `${threshold} <= $3`];
    if (scan === 'renewal-due') where.push('c.not_after > $3');
    if (after !== undefined) {
      params.push(after.at, after.serial);
      where.push(`(${threshold}, c.serial) > ($4, $5)`);
    }
    where.push('NOT EXISTS (SELECT 1 FROM certificates s WHERE s.predecessor_serial = c.serial)');
    const { rows } = await this.db.query<InventoryCertificateRow & { crossed_at: Date }>(
      `SELECT ${certificateColumns('c')}, ${threshold} AS crossed_at FROM certificates c
       WHERE ${where.join(' AND ')} ORDER BY ${threshold}, c.serial LIMIT $1`,
      params,
    );
    return rows.map((row) => ({ linked: linkedFromRow(row), crossedAt: new Date(row.crossed_at) }));
  }

  /**
   * Puts events in the outbox — each only if its certificate has none of its type yet — with a pending
   * delivery, due at `at`, to every webhook that receives it (the certificate's group's and the global
   * ones, subscribed to its type), and moves the scan's watermark forward to `through`: one statement.
   * Returns how many events and deliveries were new.
   */
  async enqueue(events: readonly OutboxEvent[], at: Date, watermark: { scan: HealthScan; through: Date }): Promise<{ events: number; deliveries: number }> {
    const { rows } = await this.db.query<{ events: number; deliveries: number }>(
      `WITH e AS (
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[])
           AS e (id, type, serial, group_name, account_id, not_after, body)
       ), inserted AS (
         INSERT INTO notification_events (id, type, serial, group_name, account_id, not_after, body, created_at)
         SELECT id, type, serial, group_name, account_id, not_after::timestamptz, body, $8 FROM e
         ON CONFLICT ON CONSTRAINT notification_events_once DO NOTHING
         RETURNING id, type, group_name
       ), deliveries AS (
         INSERT INTO notification_deliveries (event_id, webhook_id, status, attempts, next_attempt_at, created_at)
         SELECT i.id, w.id, 'pending', 0, $8, $8
         FROM inserted i JOIN webhooks w
           ON w.removed_at IS NULL AND (w.group_name IS NULL OR w.group_name = i.group_name) AND w.events @> jsonb_build_array(i.type)
         RETURNING event_id
       ), mark AS (
         INSERT INTO notification_watermarks (scan, through) VALUES ($9, $10)
         ON CONFLICT (scan) DO UPDATE SET through = greatest(notification_watermarks.through, EXCLUDED.through)
       )
       SELECT (SELECT count(*) FROM inserted)::int AS events, (SELECT count(*) FROM deliveries)::int AS deliveries`,
      [
        events.map((e) => e.id),
        events.map((e) => e.type),
        events.map((e) => e.serial),
        events.map((e) => e.group ?? null),
        events.map((e) => e.accountId ?? null),
        events.map((e) => e.notAfter.toISOString()),
        events.map((e) => e.body),
        at,
        watermark.scan,
        watermark.through,
      ],
    );
    return { events: Number(rows[0]?.events ?? 0), deliveries: Number(rows[0]?.deliveries ?? 0) };
  }

  /** The contacts (owners) of these groups, for the events' bodies. */
  async owners(groups: readonly string[]): Promise<Map<string, string[]>> {
    const { rows } = await this.db.query<{ name: string; contacts: unknown }>('SELECT name, contacts FROM groups WHERE name = ANY($1::text[])', [[...groups]]);
    return new Map(rows.map((row) => [row.name, stringArray(row.contacts)]));
  }

  /** Pending deliveries due at `now`, soonest first (notification_deliveries_due), of webhooks not removed. */
  async due(now: Date, limit: number): Promise<DueDelivery[]> {
    const { rows } = await this.db.query<{
      event_id: string;
      webhook_id: string;
      type: NotificationType;
      attempts: number;
      body: string;
      url: string;
      secret_sealed: Uint8Array;
    }>(
      `SELECT d.event_id, d.webhook_id, e.type, d.attempts, e.body, w.url, w.secret_sealed
       FROM notification_deliveries d
       JOIN notification_events e ON e.id = d.event_id
       JOIN webhooks w ON w.id = d.webhook_id
       WHERE d.status = 'pending' AND d.next_attempt_at <= $1 AND w.removed_at IS NULL
       ORDER BY d.next_attempt_at, d.event_id, d.webhook_id LIMIT $2`,
      [now, limit],
    );
    return rows.map((row) => ({
      eventId: row.event_id,
      webhookId: row.webhook_id,
      type: row.type,
      attempts: Number(row.attempts),
      body: row.body,
      url: row.url,
      secretSealed: row.secret_sealed,
    }));
  }

  /**
   * An attempt's outcome: delivered, due again at `retryAt`, or failed for good (neither). A compare-and-set
   * on the attempt count, so an instance that lost the delivery job's lease cannot count an attempt twice.
   */
  async recordAttempt(
    delivery: { eventId: string; webhookId: string; attempts: number },
    at: Date,
    outcome: { delivered: true } | { delivered: false; error: string; retryAt?: Date },
  ): Promise<boolean> {
    const status = outcome.delivered ? 'delivered' : outcome.retryAt === undefined ? 'failed' : 'pending';
    const result = await this.db.query(
      `UPDATE notification_deliveries
       SET attempts = attempts + 1, last_attempt_at = $4, status = $5, next_attempt_at = $6, last_error = $7, delivered_at = $8
       WHERE event_id = $1 AND webhook_id = $2 AND attempts = $3 AND status = 'pending'`,
      [
        delivery.eventId,
        delivery.webhookId,
        delivery.attempts,
        at,
        status,
        outcome.delivered ? null : (outcome.retryAt ?? null),
        outcome.delivered ? null : outcome.error.slice(0, 500),
        outcome.delivered ? at : null,
      ],
    );
    return result.rowCount > 0;
  }

  /**
   * Deletes (with their deliveries) events of these types whose certificate expired before `cutoff` and that
   * have nothing pending, at most `limit` per type; returns how many. Their conditions cannot come back: the
   * scans never look behind their watermarks.
   */
  async purge(types: readonly string[], cutoff: Date, limit: number): Promise<number> {
    const { rows } = await this.db.query<{ n: number }>(
      `WITH gone AS (
         DELETE FROM notification_events WHERE id IN (
           SELECT e.id FROM unnest($3::text[]) AS t (type)
           CROSS JOIN LATERAL (
             SELECT x.id FROM notification_events x
             WHERE x.type = t.type AND x.not_after < $1
               AND NOT EXISTS (SELECT 1 FROM notification_deliveries d WHERE d.event_id = x.id AND d.status = 'pending')
             ORDER BY x.not_after LIMIT $2) AS e)
         RETURNING 1)
       SELECT count(*)::int AS n FROM gone`,
      [cutoff, limit, [...types]],
    );
    return Number(rows[0]?.n ?? 0);
  }
}
