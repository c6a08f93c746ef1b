import t from 'tap';
import { FakeClock } from '../../../src/core/clock.js';
import type { Group } from '../../../src/core/group.js';
import { GroupDirectory, UNHEARD_SNAPSHOT_MS } from '../../../src/ra/group-directory.js';

/**
 * The in-memory group snapshot the ACME hot path reads (DESIGN.md rule 7): one read for many requests;
 * dropped on every change heard; trusted for UNHEARD_SNAPSHOT_MS only while changes cannot be heard.
 */
function source(initial: Group[]) {
  let groups = initial;
  let reads = 0;
  let gate: Promise<void> | undefined;
  return {
    reads: () => reads,
    set: (next: Group[]) => void (groups = next),
    hold: () => {
      let release!: () => void;
      gate = new Promise((resolve) => (release = resolve));
      return () => {
        gate = undefined;
        release();
      };
    },
    list: async (): Promise<Group[]> => {
      reads += 1;
      const seen = groups;
      if (gate) await gate;
      return seen;
    },
  };
}
const g = (name: string, maxValidityMs?: number): Group => ({ name, contacts: [], policy: maxValidityMs === undefined ? {} : { maxValidityMs } });

await t.test('ok/while listening: one read serves every request until a change is heard', async (t) => {
  const clock = new FakeClock();
  const groups = source([g('default'), g('payments', 1000)]);
  const directory = new GroupDirectory({ source: groups, clock });
  directory.setListening(true);
  await Promise.all([directory.rulesFor({}), directory.rulesFor({ group: 'payments' }), directory.rulesFor({ group: 'payments' })]);
  t.equal(groups.reads(), 1, 'concurrent first requests share one read');
  clock.advance(60 * 60_000);
  t.equal((await directory.rulesFor({ group: 'payments' })).rules.maxValidityMs, 1000);
  t.equal(groups.reads(), 1, 'an hour later, still no read: nothing was heard');
  groups.set([g('default'), g('payments', 2000)]);
  directory.invalidate();
  t.equal((await directory.rulesFor({ group: 'payments' })).rules.maxValidityMs, 2000, 'the change, once heard');
  t.equal(groups.reads(), 2);
});

await t.test('ok/not listening (or the connection lost): a snapshot lives UNHEARD_SNAPSHOT_MS', async (t) => {
  const clock = new FakeClock();
  const groups = source([g('default')]);
  const directory = new GroupDirectory({ source: groups, clock });
  await directory.current();
  clock.advance(UNHEARD_SNAPSHOT_MS - 1);
  await directory.current();
  t.equal(groups.reads(), 1, 'within the bound: kept');
  clock.advance(1);
  await directory.current();
  t.equal(groups.reads(), 2, 'at the bound: read again');
  directory.setListening(true);
  await directory.current();
  t.equal(groups.reads(), 3, 'hearing resumes: what was said meanwhile is lost, so read again');
});

await t.test('ok/a read that started before a change does not install what it read', async (t) => {
  const clock = new FakeClock();
  const groups = source([g('default', 1)]);
  const directory = new GroupDirectory({ source: groups, clock });
  directory.setListening(true);
  const release = groups.hold();
  const early = directory.current();
  groups.set([g('default', 2)]);
  directory.invalidate();
  release();
  t.equal((await early).rules('default')?.maxValidityMs, 1, 'the early caller gets what was there when it asked');
  t.equal((await directory.current()).rules('default')?.maxValidityMs, 2, 'the next one reads again');
});

await t.test('ok/a group missing from the snapshot is read again once; fail/one that does not exist', async (t) => {
  const groups = source([g('default')]);
  const directory = new GroupDirectory({ source: groups, clock: new FakeClock() });
  directory.setListening(true);
  await directory.current();
  groups.set([g('default'), g('new')]);
  t.equal((await directory.rulesFor({ group: 'new' })).rules.name, 'new', 'created a moment ago elsewhere');
  await t.rejects(directory.rulesFor({ group: 'ghost' }), { kind: 'serverInternal', message: /group "ghost" is not in the database/ });
});
