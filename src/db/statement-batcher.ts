import { ConnectionLost } from './errors.js';

/**
 * Coalesces concurrent calls of one statement into one round trip. Each database statement costs
 * PostgreSQL a fixed ~0.1-0.3 ms of CPU beyond its work (executor start-up, constraint and trigger set-up,
 * commit, two context switches); under load most ACME requests spend a nonce at the same moment, so one
 * statement for all of them saves most of that (docs/benchmarks.md, bench:acme).
 *
 * Items submitted in the same turn of the event loop go together; while `maxInFlight` batches are
 * running, new items wait and leave together when one returns. An idle batcher adds no delay beyond the
 * end of the current I/O phase — unless items arrive often (the hold, below). `run` answers item i with
 * result i; if it throws, every item of that batch gets the error — or, with `retryAlone`, each item of a
 * failed batch runs again on its own and gets its own answer or error (for writes, where one item's
 * constraint violation must not fail the others; a batch statement is atomic, so the failed one wrote
 * nothing). Not after a lost connection, whose batch may have committed (ConnectionLost).
 *
 * The hold: when the previous batch of this statement carried more than one item (other requests are
 * running alongside), a batch that would start on an idle batcher first waits `holdMs` for company (or until
 * it holds `maxBatch` items). Under load a statement that has just returned is idle much of the time, and
 * without the hold the next arrival left alone or with one or two others; holding 3 ms gives batches about
 * a third larger and cuts PostgreSQL's CPU per issuance by about a seventh (docs/benchmarks.md, "Holding
 * batches under load"). A lone client's batches carry one item each, so it never waits for the hold.
 */
export const DEFAULT_BATCH_HOLD_MS = 3;

export interface StatementBatcherOptions {
  maxBatch?: number;
  maxInFlight?: number;
  retryAlone?: boolean;
  /** 0 turns the hold off. */
  holdMs?: number;
}

export class StatementBatcher<I, O> {
  private queue: { item: I; resolve: (value: O) => void; reject: (error: unknown) => void }[] = [];
  private inFlight = 0;
  private scheduled = false;
  private holdTimer: NodeJS.Timeout | undefined;
  /** Items in the batch that left last: more than one means requests are running side by side. */
  private lastBatchSize = 0;
  private readonly options: Required<StatementBatcherOptions>;

  constructor(
    private readonly run: (items: I[]) => Promise<O[]>,
    options: StatementBatcherOptions = {},
  ) {
    this.options = {
      maxBatch: options.maxBatch ?? 100,
      maxInFlight: options.maxInFlight ?? 1,
      retryAlone: options.retryAlone ?? false,
      holdMs: options.holdMs ?? DEFAULT_BATCH_HOLD_MS,
    };
  }

  submit(item: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      if (this.holdTimer !== undefined && this.queue.length >= this.options.maxBatch) {
        // Held long enough: a full batch leaves now.
        clearTimeout(this.holdTimer);
        this.holdTimer = undefined;
        this.scheduled = false;
        this.pump();
        return;
      }
      if (!this.scheduled && this.inFlight < this.options.maxInFlight) {
        this.scheduled = true;
        const go = (): void => {
          this.holdTimer = undefined;
          this.scheduled = false;
          this.pump();
        };
        const { holdMs } = this.options;
        if (holdMs > 0 && this.lastBatchSize > 1) this.holdTimer = setTimeout(go, holdMs);
        else setImmediate(go);
      }
    });
  }

  private pump(): void {
    while (this.inFlight < this.options.maxInFlight && this.queue.length > 0) {
      const batch = this.queue.splice(0, this.options.maxBatch);
      this.lastBatchSize = batch.length;
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
      // A batch that lost its connection may have committed: sending its items again would repeat them
      // (ConnectionLost; each caller decides, by re-reading, what became of its item).
      if (this.options.retryAlone && batch.length > 1 && !(error instanceof ConnectionLost)) {
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
