/**
 * A job under a lease moves between processes sharing one PostgreSQL (DESIGN.md rule 7): two JobRunners in
 * two child processes (test/fixtures/job-runner-process.ts) and one job, `demo`, that records every run.
 * The holder is killed with SIGKILL: the other process runs the job within one lease plus one interval, and
 * never while the first still could. A holder that stops cleanly releases, and a third process takes over
 * at once. Only loopback PostgreSQL is contacted; every wait is bounded and every child killed at the end.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import t, { type Test } from 'tap';

import { systemClock } from '../../../src/core/clock.js';
import type { Database } from '../../../src/db/database.js';
import { migrate } from '../../../src/db/migrate.js';
import { openPgDatabase } from '../../../src/db/pg-database.js';
import { LeaseRepository } from '../../../src/db/repositories/lease-repository.js';
import { freshPgDatabase } from '../../helpers/databases.js';

const ROOT = join(import.meta.dirname, '..', '..', '..');
const SCRIPT = join(ROOT, 'test', 'fixtures', 'job-runner-process.ts');

const LEASE_MS = 3_000;
const INTERVAL_MS = 250;
const RUN_MS = 100;
/** Room for a loaded machine (two cores shared with other tests) on top of the bounds being asserted. */
const SLACK_MS = 1_500;

interface Run {
  holder: string;
  token: number;
  started: number;
  ended: number | undefined;
}

interface Instance {
  child: ChildProcessWithoutNullStreams;
  output(): string;
}

const now = (): number => systemClock.now().getTime();

async function runs(db: Database): Promise<Run[]> {
  const result = await db.query<{ holder: string; token: number; started_at: Date; ended_at: Date | null }>(
    'SELECT holder, token, started_at, ended_at FROM demo_runs ORDER BY started_at, id',
  );
  return result.rows.map((row) => ({
    holder: row.holder,
    token: Number(row.token),
    started: row.started_at.getTime(),
    ended: row.ended_at?.getTime(),
  }));
}

/** Polls until cond holds, up to timeoutMs; false (and t failed) when it never does. */
async function until(t: Test, what: string, timeoutMs: number, cond: () => Promise<boolean>): Promise<boolean> {
  const deadline = now() + timeoutMs;
  while (now() < deadline) {
    if (await cond()) return true;
    await sleep(50);
  }
  t.fail(`timed out after ${timeoutMs} ms waiting for: ${what}`);
  return false;
}

t.test('a killed holder is taken over within one lease; a stopped one at once; runs never overlap', async (t) => {
  const pg = await freshPgDatabase(t);
  if (pg === undefined) return;
  const db = await openPgDatabase(pg.url, { poolSize: 2, keyedPoolSize: 1, onIdleError: () => undefined });
  const instances: Instance[] = [];
  // Kills the children still running. Whether this runs before or after freshPgDatabase's drop does not
  // matter: DROP DATABASE ... WITH (FORCE) ends any connection still open on it.
  t.teardown(async () => {
    for (const { child } of instances) {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = once(child, 'exit');
        child.kill('SIGKILL');
        await exited;
      }
    }
    await db.close();
  });
  await migrate(db, systemClock);
  await db.query(
    `CREATE TABLE demo_runs (id serial PRIMARY KEY, holder text NOT NULL, token bigint NOT NULL,
       started_at timestamptz NOT NULL, ended_at timestamptz)`,
  );
  const leases = new LeaseRepository(db);

  const startInstance = async (holder: string): Promise<Instance> => {
    const child = spawn(process.execPath, ['--import', 'tsx', SCRIPT, pg.url, holder, String(LEASE_MS), String(INTERVAL_MS), String(RUN_MS)], {
      cwd: ROOT,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let text = '';
    child.stdout.on('data', (chunk: Buffer) => (text += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (text += chunk.toString()));
    const instance = { child, output: () => text };
    instances.push(instance);
    const ready = await until(t, `${holder} to start`, 60_000, async () => {
      if (child.exitCode !== null) throw new Error(`${holder} exited with ${child.exitCode}:\n${text}`);
      return /^ready$/m.test(text);
    });
    if (!ready) throw new Error(`${holder} did not start:\n${text}`);
    return instance;
  };
  const runsOf = async (holder: string): Promise<Run[]> => (await runs(db)).filter((run) => run.holder === holder);

  // a takes the lease and runs the job; b starts next to it and must wait.
  const a = await startInstance('a');
  t.ok(await until(t, 'a runs the job', 10_000, async () => (await runsOf('a')).length >= 2), 'a runs the job');
  await startInstance('b');
  await sleep(LEASE_MS + 500);
  t.equal((await runsOf('b')).length, 0, 'b never runs while a holds the lease (for more than a lease)');
  t.ok((await runsOf('a')).length >= 6, 'a keeps running every interval, renewing its lease between runs');

  // Kill a outright: no release, no goodbye. Its lease as last seen bounds when b may take over.
  const [seen] = (await leases.list()).filter((lease) => lease.name === 'demo');
  t.equal(seen?.holder, 'a');
  const killed = once(a.child, 'exit');
  const killedAt = now();
  a.child.kill('SIGKILL');
  await killed;

  const taken = await until(t, 'b runs the job after a was killed', LEASE_MS + INTERVAL_MS + 15_000, async () => (await runsOf('b')).length > 0);
  if (!taken) return;
  const firstB = (await runsOf('b'))[0]!;
  t.ok(
    firstB.started - killedAt <= LEASE_MS + INTERVAL_MS + SLACK_MS,
    `b took over ${firstB.started - killedAt} ms after the kill (lease ${LEASE_MS} + interval ${INTERVAL_MS} + slack ${SLACK_MS})`,
  );
  t.ok(
    firstB.started >= seen!.expiresAt!.getTime(),
    `b ran only once a's lease had expired (${firstB.started - seen!.expiresAt!.getTime()} ms after)`,
  );
  const aTokens = (await runsOf('a')).map((run) => run.token);
  t.ok(aTokens.every((token) => token < firstB.token), `b's token ${firstB.token} is above a's (${[...new Set(aTokens)].join(', ')})`);

  // c starts and waits; b stops cleanly (SIGTERM) and releases, so c need not wait for an expiry: b's lease
  // was renewed at most a third of a lease before the stop, so it would have lasted two thirds more.
  const c = await startInstance('c');
  await sleep(500);
  t.equal((await runsOf('c')).length, 0, 'c waits while b holds the lease');
  const b = instances[1]!;
  const stopped = once(b.child, 'exit');
  const stoppedAt = now();
  b.child.kill('SIGTERM');
  const [code] = (await stopped) as [number | null];
  t.equal(code, 0, `b stopped cleanly${code === 0 ? '' : `:\n${b.output()}`}`);
  const released = await until(t, 'c runs the job after b stopped', LEASE_MS + 15_000, async () => (await runsOf('c')).length > 0);
  if (!released) return;
  const firstC = (await runsOf('c'))[0]!;
  t.ok(
    firstC.started - stoppedAt < (2 * LEASE_MS) / 3,
    `c took over ${firstC.started - stoppedAt} ms after b was told to stop: released, not expired`,
  );
  t.ok((await runsOf('b')).every((run) => run.ended !== undefined), "b's runs all ended: stop waited for them");

  // Stop c too, so every run has ended, then check that no two runs ever overlapped. a's run in progress
  // when it was killed ended then.
  const cStopped = once(c.child, 'exit');
  c.child.kill('SIGTERM');
  await cStopped;
  const all = (await runs(db)).map((run) => ({ ...run, ended: run.ended ?? (run.holder === 'a' ? killedAt : Number.POSITIVE_INFINITY) }));
  const overlaps = all.slice(1).filter((run, i) => run.started < all[i]!.ended);
  t.same(overlaps, [], `no two of the ${all.length} runs overlap`);
  const holders = all.map((run) => run.holder).filter((holder, i, list) => i === 0 || holder !== list[i - 1]);
  t.same(holders, ['a', 'b', 'c'], 'the job moved a -> b -> c and never back');
  const tokens = all.map((run) => run.token);
  t.ok(
    tokens.every((token, i) => i === 0 || token >= tokens[i - 1]!),
    'tokens never go back',
  );
});
