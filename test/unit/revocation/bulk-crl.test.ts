/**
 * BulkCrlSchedule (revocation/bulk-crl.ts): while a bulk revocation runs, the CRLs of the scopes its chunks
 * touch are regenerated at most every interval, and after a regeneration at least REGENERATION_SPACING (4)
 * times as long as it took; publish() regenerates each scope of the run once, after the one under way.
 * Real timers: only lower bounds on waits are asserted (a timer never fires early).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import t from 'tap';
import { BulkCrlSchedule } from '../../../src/revocation/bulk-crl.js';

function recorder(tookMs: number): { calls: { scope: string; started: number; ended: number }[]; generate(issuerId: string, shard: number): Promise<void> } {
  const calls: { scope: string; started: number; ended: number }[] = [];
  return {
    calls,
    async generate(issuerId: string, shard: number) {
      const started = performance.now();
      await sleep(tookMs);
      calls.push({ scope: `${issuerId}/${shard}`, started, ended: performance.now() });
    },
  };
}

t.test('ok/the scopes chunks touch are regenerated once per interval, each once', async (t) => {
  const crl = recorder(1);
  const schedule = new BulkCrlSchedule({ crl, intervalMs: 30 });
  t.teardown(() => schedule.stop());
  schedule.revoked([{ issuerId: 'a', shard: 0 }]);
  schedule.revoked([{ issuerId: 'a', shard: 0 }, { issuerId: 'b', shard: 1 }]);
  t.equal(crl.calls.length, 0, 'nothing before the interval');
  await sleep(120);
  t.same(crl.calls.map((c) => c.scope).sort(), ['a/0', 'b/1'], 'each touched scope once');
});

t.test('ok/a slow regeneration spaces the next one by four times its duration', async (t) => {
  const crl = recorder(60);
  const schedule = new BulkCrlSchedule({ crl, intervalMs: 10 });
  t.teardown(() => schedule.stop());
  schedule.revoked([{ issuerId: 'a', shard: 0 }]);
  while (crl.calls.length === 0) await sleep(5);
  schedule.revoked([{ issuerId: 'a', shard: 0 }]);
  while (crl.calls.length === 1) await sleep(5);
  const gap = crl.calls[1]!.started - crl.calls[0]!.ended;
  t.ok(gap >= 4 * (crl.calls[0]!.ended - crl.calls[0]!.started) - 5, `waited ${gap.toFixed(0)} ms after a ${(crl.calls[0]!.ended - crl.calls[0]!.started).toFixed(0)} ms regeneration, not the 10 ms interval`);
});

t.test('ok/publish regenerates each scope of the run once, after the regeneration under way', async (t) => {
  const crl = recorder(40);
  const schedule = new BulkCrlSchedule({ crl, intervalMs: 5 });
  t.teardown(() => schedule.stop());
  schedule.revoked([{ issuerId: 'a', shard: 0 }]);
  await sleep(15); // the scheduled regeneration is under way
  await schedule.publish([{ issuerId: 'a', shard: 0 }, { issuerId: 'b', shard: 0 }]);
  t.same(crl.calls.map((c) => c.scope), ['a/0', 'a/0', 'b/0'], 'the one under way, then each scope once');
  t.ok(crl.calls[1]!.started >= crl.calls[0]!.ended, 'not overlapping the one under way');
});
