import type { Database, Queryable } from './database.js';

/** Thrown inside the producer when the consumer stopped reading: its transaction then rolls back. */
class StreamStopped extends Error {
  constructor() {
    super('the consumer stopped reading');
  }
}

/**
 * Items made inside one transaction, read by a consumer at its own pace: `produce` runs in
 * db.transaction and hands each item to `emit`, which returns once the consumer has room (at most
 * `buffered` items wait), so memory is bounded whatever the producer reads and a slow consumer slows the
 * reads. When the consumer stops early (break, return, an error) the producer's next `emit` throws, the
 * transaction rolls back and its connection goes back to the pool before the generator's return resolves.
 * A producer's failure is thrown to the consumer after the items emitted before it.
 */
export async function* streamInTransaction<T>(
  db: Pick<Database, 'transaction'>,
  produce: (tx: Queryable, emit: (item: T) => Promise<void>) => Promise<void>,
  buffered = 1,
): AsyncGenerator<T> {
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
    while (queue.length > buffered && !stopped) await new Promise<void>((resolve) => (wakeProducer = resolve));
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
