import t from 'tap';
import { FakeClock, HOUR, MINUTE } from '../../../src/core/clock.js';
import { AccountActivity, type AccountActivityStore } from '../../../src/inventory/account-activity.js';

/** Sightings are gathered in memory and written in batches: never a write per request. */
t.test('ok/a batch per flush, an account at most once an hour', async (t) => {
  const clock = new FakeClock('2026-05-01T00:00:00Z');
  const batches: { accountId: string; at: Date }[][] = [];
  let failing = false;
  const store: AccountActivityStore = {
    recordSeen: async (seen) => {
      if (failing) throw new Error('database away');
      batches.push([...seen]);
      return seen.length;
    },
    notSeenSince: async () => ({ items: [] }),
  };
  const activity = new AccountActivity({ store, clock });
  const first = clock.now();
  for (let i = 0; i < 1000; i += 1) {
    activity.seen('acct-a');
    activity.seen(`acct-${i % 3}`);
  }
  t.same(batches, [], 'nothing written by seen()');
  await activity.flush();
  t.equal(batches.length, 1, 'one statement');
  t.same(batches[0]!.map((s) => s.accountId).sort(), ['acct-0', 'acct-1', 'acct-2', 'acct-a']);
  t.ok(batches[0]!.every((s) => s.at.getTime() === first.getTime()), 'each at its first sighting');
  clock.advance(30 * MINUTE);
  activity.seen('acct-a');
  await activity.flush();
  t.equal(batches.length, 1, 'within the hour: nothing to write');
  clock.advance(31 * MINUTE);
  activity.seen('acct-a');
  failing = true;
  await t.rejects(activity.flush());
  failing = false;
  await activity.flush();
  t.same(batches[1], [{ accountId: 'acct-a', at: new Date(first.getTime() + 61 * MINUTE) }], 'kept over a failed write, written by the next');
  await activity.stop();
  t.equal(batches.length, 2);
  clock.advance(HOUR);
});

t.test('fail/days out of range', async (t) => {
  const activity = new AccountActivity({ store: { recordSeen: async () => 0, notSeenSince: async () => ({ items: [] }) }, clock: new FakeClock() });
  t.throws(() => activity.notSeen('all', { days: 0 }, { limit: 1 }), /days must be an integer/);
});
