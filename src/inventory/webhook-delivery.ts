import { HOUR, MINUTE, SECOND, type Clock } from '../core/clock.js';
import { CaError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { NotificationType } from '../core/webhook.js';
import { secretContext, type SecretSealer } from './webhooks.js';
import { EVENT_ID_HEADER, EVENT_TYPE_HEADER, SIGNATURE_HEADER, signWebhook, TIMESTAMP_HEADER } from './webhook-signature.js';
import type { WebhookPost } from './webhook-http.js';

/** A delivery that is due (db/repositories/notification-outbox-repository.ts). */
export interface DueDelivery {
  eventId: string;
  webhookId: string;
  type: NotificationType;
  attempts: number;
  body: string;
  url: string;
  secretSealed: Uint8Array;
}

export interface DeliveryStore {
  due(now: Date, limit: number): Promise<DueDelivery[]>;
  recordAttempt(
    delivery: { eventId: string; webhookId: string; attempts: number },
    at: Date,
    outcome: { delivered: true } | { delivered: false; error: string; retryAt?: Date },
  ): Promise<boolean>;
}

/**
 * When a failed attempt is tried again: 10 s, 1 min, 5 min, 30 min, 2 h after the first five failures, then
 * every 6 h; the tenth failure is final. Index n is the wait after the (n + 1)th failed attempt.
 */
export const RETRY_DELAYS_MS: readonly number[] = [10 * SECOND, MINUTE, 5 * MINUTE, 30 * MINUTE, 2 * HOUR, 6 * HOUR, 6 * HOUR, 6 * HOUR, 6 * HOUR];
export const MAX_ATTEMPTS = RETRY_DELAYS_MS.length + 1;
/** How often the notifications.deliver job looks for due deliveries (the shortest retry delay is 10 s). */
export const DELIVERY_INTERVAL_MS = 5 * SECOND;
const BATCH = 100;
const CONCURRENCY = 8;

/**
 * Delivers the outbox (the notifications.deliver job, on one instance at a time under its lease): each due
 * delivery is POSTed with its stored body — the same bytes and event id on every attempt — signed with the
 * webhook's secret over the attempt's timestamp and the body (webhook-signature.ts). A 2xx answer delivers
 * it; anything else (another status, a refused or failed connection, a timeout) schedules the next attempt
 * by RETRY_DELAYS_MS, and the tenth failure ends it. An attempt whose outcome is not recorded (a crash, a
 * lost lease) is made again: delivery is at least once, and receivers deduplicate on the event id.
 */
export class WebhookDeliverer {
  constructor(
    private readonly deps: {
      store: DeliveryStore;
      post: WebhookPost;
      box: SecretSealer;
      clock: Clock;
      /** notifications.timeoutSeconds: how long one attempt may take, connection included. */
      timeoutMs: number;
      /** notifications.allowHttp, as it is now: an http webhook made while it was on is not sent once it is off. */
      allowHttp: boolean;
      logger?: Logger;
    },
  ) {}

  /** One pass: everything due now, in batches, until nothing is due or the signal aborts. Returns attempts made. */
  async run(signal?: AbortSignal): Promise<number> {
    let attempts = 0;
    for (;;) {
      signal?.throwIfAborted();
      const due = await this.deps.store.due(this.deps.clock.now(), BATCH);
      if (due.length === 0) return attempts;
      let next = 0;
      const worker = async (): Promise<void> => {
        while (next < due.length && signal?.aborted !== true) {
          const delivery = due[next++]!;
          await this.attempt(delivery, signal);
          attempts += 1;
        }
      };
      await Promise.all(Array.from({ length: Math.min(CONCURRENCY, due.length) }, worker));
      if (due.length < BATCH) return attempts;
    }
  }

  private async attempt(delivery: DueDelivery, signal: AbortSignal | undefined): Promise<void> {
    const { clock, store } = this.deps;
    const started = clock.now();
    let error: string | undefined;
    try {
      const status = await this.send(delivery, started, signal);
      if (status >= 200 && status < 300) {
        await store.recordAttempt(delivery, clock.now(), { delivered: true });
        return;
      }
      error = `HTTP ${status}`;
    } catch (caught) {
      // Cut short by the job's signal (lease lost, runner stopping): not the receiver's failure. Left pending
      // as it was, it is attempted again by whichever instance runs the job next.
      if (signal?.aborted === true) return;
      error = caught instanceof CaError ? caught.detail : caught instanceof Error ? caught.message : 'the attempt failed';
    }
    const failures = delivery.attempts + 1;
    const delay = RETRY_DELAYS_MS[failures - 1];
    const at = clock.now();
    await store.recordAttempt(delivery, at, { delivered: false, error, ...(delay === undefined ? {} : { retryAt: new Date(at.getTime() + delay) }) });
    this.deps.logger?.warn(
      { webhook: delivery.webhookId, event: delivery.eventId, attempt: failures, error, final: delay === undefined },
      delay === undefined ? 'webhook delivery failed for good' : 'webhook delivery failed; it is tried again',
    );
  }

  private async send(delivery: DueDelivery, at: Date, signal: AbortSignal | undefined): Promise<number> {
    if (new URL(delivery.url).protocol === 'http:' && !this.deps.allowHttp) {
      throw new CaError('malformed', 'http webhooks are not allowed (notifications.allowHttp is off)');
    }
    const secret = Buffer.from(this.deps.box.open(delivery.secretSealed, secretContext(delivery.webhookId))).toString('utf8');
    const timestamp = Math.floor(at.getTime() / 1000);
    const headers = {
      'content-type': 'application/json',
      'user-agent': 'Chancery-Webhooks/1',
      [EVENT_ID_HEADER]: delivery.eventId,
      [EVENT_TYPE_HEADER]: delivery.type,
      [TIMESTAMP_HEADER]: String(timestamp),
      [SIGNATURE_HEADER]: signWebhook(secret, timestamp, delivery.body),
    };
    // A timer, not the Clock: this bounds real waiting on a socket, not a point in the CA's time. A job that
    // loses its lease (or a runner that stops) cuts the attempt short; it is then made again.
    const timeout = AbortSignal.timeout(this.deps.timeoutMs);
    return this.deps.post(delivery.url, headers, delivery.body, signal === undefined ? timeout : AbortSignal.any([timeout, signal]));
  }
}
