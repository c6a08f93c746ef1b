/**
 * PostgreSQL LISTEN/NOTIFY for both drivers, so an in-process cache may exist at all (DESIGN.md rule 7: an
 * in-process cache is fine only when every instance hears about changes). notify() runs on any Queryable:
 * inside a transaction the notification is delivered when, and only if, that transaction commits. listen()
 * keeps listening across lost connections and says when it was not (`lost`): a consumer must then assume
 * it missed notifications and drop what it cached.
 */
import { CaError } from '../core/errors.js';
import type { Database, Queryable, Subscription } from './database.js';

/** PostgreSQL refuses payloads of 8000 bytes or more. */
const MAX_PAYLOAD_BYTES = 7999;

export async function notify(on: Queryable, channel: string, payload: string): Promise<void> {
  if (Buffer.byteLength(payload, 'utf8') > MAX_PAYLOAD_BYTES) {
    throw new CaError('serverInternal', `NOTIFY payload on ${channel} is too long`);
  }
  await on.query('SELECT pg_notify($1, $2)', [channel, payload]);
}

export type ListenState = 'listening' | 'lost';

export interface ListenOptions {
  /** Told when the connection is lost (notifications may be missed from then on) and when it listens again. */
  onState?(state: ListenState, error?: Error): void;
  /** First delay before listening again after a loss; doubles up to maxRetryMs. */
  retryMs?: number;
  maxRetryMs?: number;
}

/**
 * Listens on `channel` until the returned subscription is closed. The first LISTEN must succeed (a
 * start-up that cannot hear its peers should fail loudly); afterwards a lost connection is retried with
 * exponential backoff, reporting `lost` then `listening` through onState.
 */
export async function listen(
  db: Database,
  channel: string,
  onMessage: (payload: string) => void,
  options: ListenOptions = {},
): Promise<Subscription> {
  if (db.listen === undefined) throw new CaError('serverInternal', `the ${db.driver} driver cannot LISTEN`);
  const listenOn = db.listen.bind(db);
  const retryMs = options.retryMs ?? 250;
  const maxRetryMs = options.maxRetryMs ?? 10_000;
  let closed = false;
  let current: Subscription | undefined;
  let timer: NodeJS.Timeout | undefined;

  const handlers = {
    message: (payload: string) => {
      if (!closed) onMessage(payload);
    },
    lost: (error: Error) => {
      current = undefined;
      if (closed) return;
      options.onState?.('lost', error);
      schedule(retryMs);
    },
  };

  const schedule = (delay: number): void => {
    timer = setTimeout(() => {
      timer = undefined;
      if (closed) return;
      listenOn(channel, handlers).then(
        (subscription) => {
          if (closed) {
            void subscription.close();
            return;
          }
          current = subscription;
          options.onState?.('listening');
        },
        (error: unknown) => {
          options.onState?.('lost', error instanceof Error ? error : new Error(String(error)));
          schedule(Math.min(delay * 2, maxRetryMs));
        },
      );
    }, delay);
    // Retrying must not keep a process alive that is otherwise done.
    timer.unref();
  };

  current = await listenOn(channel, handlers);
  return {
    close: async () => {
      closed = true;
      if (timer !== undefined) clearTimeout(timer);
      await current?.close();
      current = undefined;
    },
  };
}
