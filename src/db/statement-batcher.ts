/**
 * Coalesces concurrent calls of one statement into one round trip. Each database statement costs
 * PostgreSQL a fixed ~0.1-0.3 ms of CPU beyond its work (executor start-up, constraint and trigger set-up,
 * commit, two context switches); under load most ACME requests spend a nonce at the same moment, so one
 * statement for all of them saves most of that (docs/benchmarks.md, bench:acme).
 *
 * Items submitted in the same turn of the event loop go together; while `maxInFlight` batches are
 * running, new items wait and leave together when one returns. An idle batcher adds no delay beyond the
 * end of the current I/O phase. `run` answers item i with result i; if it throws, every item of that
 * batch gets the error — or, with `retryAlone`, each item of a failed batch runs again on its own and gets
 * its own answer or error (for writes, where one item's constraint violation must not fail the others; a
 * batch statement is atomic, so the failed one wrote nothing).
 */
export class StatementBatcher<I, O> {
  private queue: { item: I; resolve: (value: O) => void; reject: (error: unknown) => void }[] = [];
  private inFlight = 0;
  private scheduled = false;

  constructor(
    private readonly run: (items: I[]) => Promise<O[]>,
    options: { maxBatch?: number; maxInFlight?: number; retryAlone?: boolean } = {},
  ) {
    this.options = { maxBatch: options.maxBatch ?? 100, maxInFlight: options.maxInFlight ?? 1, retryAlone: options.retryAlone ?? false };
  }

  private readonly options: { maxBatch: number; maxInFlight: number; retryAlone: boolean };

  submit(item: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      if (!this.scheduled && this.inFlight < this.options.maxInFlight) {
        this.scheduled = true;
        setImmediate(() => {
          this.scheduled = false;
          this.pump();
        });
      }
    });
  }

  private pump(): void {
    while (this.inFlight < this.options.maxInFlight && this.queue.length > 0) {
      const batch = this.queue.splice(0, this.options.maxBatch);
      this.inFlight += 1;
      void this.runBatch(batch).finally(() => {
        this.inFlight -= 1;
        this.pump();
      });
    }
  }

  private async runBatch(batch: StatementBatcher<I, O>['queue']): Promise<void> {
    try {
      const results = await this.run(batch.map((entry) => entry.item));
      if (results.length !== batch.length) throw new Error(`batched statement answered ${results.length} of ${batch.length} items`);
      batch.forEach((entry, i) => entry.resolve(results[i]!));
    } catch (error) {
      if (this.options.retryAlone && batch.length > 1) {
        await Promise.all(batch.map((entry) => this.runBatch([entry])));
        return;
      }
      for (const entry of batch) entry.reject(error);
    }
  }
}

/**
 * The rows of a batched statement split back per item: item i (0-based) gets the rows whose number is
 * i + 1 (WITH ORDINALITY numbers a batch's items from 1), in the order they came.
 */
export function rowsPerItem<R>(rows: readonly R[], items: number, itemNumber: (row: R) => number): R[][] {
  const perItem: R[][] = Array.from({ length: items }, () => []);
  for (const row of rows) perItem[itemNumber(row) - 1]!.push(row);
  return perItem;
}
