import t from 'tap';
import { StatementBatcher, rowsPerItem, type StatementBatcherOptions } from '../../../src/db/statement-batcher.js';

/** Concurrent submissions share one run; each caller gets its own result or the batch's error. */

function deferred<T>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

/** A batcher whose statement answers each item with itself, and the batches it ran. */
function echoBatcher(options: StatementBatcherOptions = {}): { batcher: StatementBatcher<number, number>; runs: number[][] } {
  const runs: number[][] = [];
  const batcher = new StatementBatcher(async (items: number[]) => {
    runs.push(items);
    return items;
  }, options);
  return { batcher, runs };
}

await t.test('items submitted together go in one run, answered in order', async (t) => {
  const runs: number[][] = [];
  const batcher = new StatementBatcher(async (items: number[]) => {
    runs.push(items);
    return items.map((n) => n * 10);
  });
  t.same(await Promise.all([1, 2, 3].map((n) => batcher.submit(n))), [10, 20, 30]);
  t.same(runs, [[1, 2, 3]]);
});

await t.test('while a run is in flight, new items wait and then leave together', async (t) => {
  const runs: string[][] = [];
  const gates: ReturnType<typeof deferred<void>>[] = [];
  const batcher = new StatementBatcher(async (items: string[]) => {
    runs.push(items);
    const gate = deferred<void>();
    gates.push(gate);
    await gate.promise;
    return items.map((s) => s.toUpperCase());
  });
  const first = batcher.submit('a');
  await new Promise((r) => setImmediate(r));
  t.same(runs, [['a']], 'the first item left at once');
  const later = ['b', 'c', 'd'].map((s) => batcher.submit(s));
  await new Promise((r) => setImmediate(r));
  t.equal(runs.length, 1, 'nothing else runs while one run is in flight (maxInFlight 1)');
  gates[0]!.resolve();
  t.equal(await first, 'A');
  await new Promise((r) => setImmediate(r));
  t.same(runs[1], ['b', 'c', 'd'], 'the waiting items went in one run');
  gates[1]!.resolve();
  t.same(await Promise.all(later), ['B', 'C', 'D']);
});

await t.test('maxBatch splits a long queue; maxInFlight runs batches side by side', async (t) => {
  const { batcher, runs } = echoBatcher({ maxBatch: 2, maxInFlight: 2 });
  t.same(await Promise.all([1, 2, 3, 4, 5].map((n) => batcher.submit(n))), [1, 2, 3, 4, 5]);
  t.same(runs, [[1, 2], [3, 4], [5]]);
});

await t.test('after a batch of several, an item reaching an idle batcher is held for company; a full batch leaves at once', async (t) => {
  // A hold far longer than the test: the second run can only have left because the batch filled up.
  const { batcher, runs } = echoBatcher({ maxBatch: 2, holdMs: 60_000 });
  await Promise.all([1, 2].map((n) => batcher.submit(n)));
  const third = batcher.submit(3);
  await new Promise((r) => setImmediate(r));
  await new Promise((r) => setImmediate(r));
  t.same(runs, [[1, 2]], 'the lone arrival waits: the previous batch showed other requests running');
  t.same(await Promise.all([third, batcher.submit(4)]), [3, 4]);
  t.same(runs, [[1, 2], [3, 4]], 'held and joined, then sent as soon as the batch was full');
});

await t.test('a lone client is never held: after a one-item batch the next item leaves at once', async (t) => {
  const { batcher, runs } = echoBatcher({ holdMs: 60_000 });
  t.equal(await batcher.submit(1), 1);
  t.equal(await batcher.submit(2), 2, 'answered without waiting for the hold');
  t.same(runs, [[1], [2]]);
});

await t.test('a failed run rejects each of its items; the next run is unaffected', async (t) => {
  let fail = true;
  const batcher = new StatementBatcher(async (items: number[]) => {
    if (fail) throw new Error('connection lost');
    return items;
  });
  const results = await Promise.allSettled([1, 2].map((n) => batcher.submit(n)));
  t.same(
    results.map((r) => (r.status === 'rejected' ? (r.reason as Error).message : 'ok')),
    ['connection lost', 'connection lost'],
  );
  fail = false;
  t.equal(await batcher.submit(3), 3);
});

await t.test('a run that answers the wrong number of items rejects them all', async (t) => {
  const batcher = new StatementBatcher(async (items: number[]) => items.slice(1));
  await t.rejects(Promise.all([1, 2].map((n) => batcher.submit(n))), /answered 1 of 2 items/);
});

await t.test('rows of a batched statement go back to their items, in order; an item without rows gets none', async (t) => {
  const rows = [
    { n: 2, v: 'b1' },
    { n: 1, v: 'a1' },
    { n: 2, v: 'b2' },
  ];
  t.same(
    rowsPerItem(rows, 3, (row) => row.n).map((group) => group.map((row) => row.v)),
    [['a1'], ['b1', 'b2'], []],
  );
});
