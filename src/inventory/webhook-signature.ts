import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * How a webhook request proves it comes from this Chancery and was not replayed: HMAC-SHA256, keyed with the
 * webhook's secret (its UTF-8 bytes, as shown once when the webhook was created), over
 * `<timestamp>.<body>` — the Unix time of the attempt in seconds, a full stop, and the raw request body.
 * Sent as `Chancery-Signature: v1=<hex>` with `Chancery-Timestamp: <timestamp>`. A receiver recomputes it
 * over the bytes it received, compares in constant time, and refuses timestamps more than a few minutes
 * from its own clock; it deduplicates on `Chancery-Event-Id` (the same on every retry).
 */
export const SIGNATURE_HEADER = 'chancery-signature';
export const TIMESTAMP_HEADER = 'chancery-timestamp';
export const EVENT_ID_HEADER = 'chancery-event-id';
export const EVENT_TYPE_HEADER = 'chancery-event-type';

const SECRET_PREFIX = 'whsec_';

/** A new webhook secret: 256 random bits. */
export function newWebhookSecret(): string {
  return `${SECRET_PREFIX}${randomBytes(32).toString('base64url')}`;
}

export function signWebhook(secret: string, timestamp: number, body: string): string {
  return `v1=${createHmac('sha256', Buffer.from(secret, 'utf8')).update(`${timestamp}.`).update(body, 'utf8').digest('hex')}`;
}

/**
 * A receiver's check (also what tests use): the signature matches and the timestamp is within `toleranceSeconds`
 * of `now` (Unix seconds).
 */
export function verifyWebhook(secret: string, headers: { signature?: string; timestamp?: string }, body: string, now: number, toleranceSeconds = 300): boolean {
  const timestamp = Number(headers.timestamp);
  if (!Number.isSafeInteger(timestamp) || Math.abs(now - timestamp) > toleranceSeconds) return false;
  const expected = Buffer.from(signWebhook(secret, timestamp, body));
  const given = Buffer.from(headers.signature ?? '');
  return given.length === expected.length && timingSafeEqual(given, expected);
}
