import type { Database, Queryable } from './database.js';

/** Thrown inside the producer when the consumer stopped reading: its transaction then rolls back. */
class StreamStopped extends Error {
  constructor() {
    super('the consumer stopped reading');
  }
}

/** The consumer read nothing for `stallMs`: the transaction was ended, and the consumer is told so. */
export class StreamStalled extends Error {
  constructor(stallMs: number) {
    super(`the reader took more than ${stallMs / 1000} s to take the next part; the transaction was ended`);
  }
}

/**
 * Items made inside one transaction, read by a consumer at its own pace: `produce` runs in
 * db.transaction and hands each item to `emit`, which returns once the consumer has room (at most
 * `buffered` items wait), so memory is bounded whatever the producer reads and a slow consumer slows the
 * reads. When the consumer stops early (break, return, an error) the producer's next `emit` throws, the
 * transaction rolls back and its connection goes back to the pool before the generator's return resolves.
 * A producer's failure is thrown to the consumer after the items emitted before it.
 *
 * `stallMs`: a consumer that takes nothing for this long while the producer waits ends the stream the same
 * way (its next read throws StreamStalled), so that a reader that stops without going away — an HTTP
 * client that no longer reads — cannot hold a connection and PostgreSQL's horizon for ever.
 */
export async function* streamInTransaction<T>(
  db: Pick<Database, 'transaction'>,
  produce: (tx: Queryable, emit: (item: T) => Promise<void>) => Promise<void>,
  options: { buffered?: number; stallMs?: number } = {},
): AsyncGenerator<T> {
  const buffered = options.buffered ?? 1;
  const queue: T[] = [];
  let stopped = false;
  let finished = false;
  let failure: { error: unknown } | undefined;
  let wakeConsumer: (() => void) | undefined;
  let wakeProducer: (() => void) | undefined;

  const emit = async (item: T): Promise<void> => {
    if (stopped) throw new StreamStopped();
    queue.push(item);
    wakeConsumer?.();
    while (queue.length > buffered && !stopped) {
      let stalled = false;
      let timer: NodeJS.Timeout | undefined;
      await new Promise<void>((resolve) => {
        wakeProducer = resolve;
        if (options.stallMs !== undefined) {
          timer = setTimeout(() => {
            stalled = true;
            resolve();
          }, options.stallMs);
        }
      });
      clearTimeout(timer);
      if (stalled && queue.length > buffered) throw new StreamStalled(options.stallMs!);
    }
    if (stopped) throw new StreamStopped();
  };
  const running = db
    .transaction((tx) => produce(tx, emit))
    .then(
      () => undefined,
      (error: unknown) => {
        if (!(error instanceof StreamStopped)) failure = { error };
      },
    )
    .finally(() => {
      finished = true;
      wakeConsumer?.();
    });

  try {
    for (;;) {
      if (queue.length > 0) {
        const item = queue.shift() as T;
        wakeProducer?.();
        yield item;
        continue;
      }
      if (finished) {
        if (failure !== undefined) throw failure.error;
        return;
      }
      // Nothing can run between the checks above and this: the producer wakes us through wakeConsumer.
      await new Promise<void>((resolve) => (wakeConsumer = resolve));
      wakeConsumer = undefined;
    }
  } finally {
    stopped = true;
    wakeProducer?.();
    await running;
  }
}
