/**
 * JobRunner against an in-memory LeaseStore with the repository's semantics and a FakeClock: lease times
 * come from the clock (moved by hand to cross expiries), scheduling from real timers, kept short here.
 */
import { setTimeout as sleep } from 'node:timers/promises';

import t, { type Test } from 'tap';

import { FakeClock } from '../../../src/core/clock.js';
import { isCaError } from '../../../src/core/errors.js';
import { type Job, type JobContext, JobRunner, type LeaseStore } from '../../../src/core/jobs.js';
import type { Logger } from '../../../src/core/logger.js';

const LEASE_MS = 600;
const INTERVAL_MS = 20;

interface Row {
  holder: string;
  token: number;
  expiresAt: number;
}

/** The semantics of LeaseRepository, plus ways to fail: a cut-off holder, refused or hanging renewals. */
class MemoryLeases implements LeaseStore {
  readonly rows = new Map<string, Row>();
  /** Holders whose every call fails, as if their process lost the database (or died). */
  readonly partitioned = new Set<string>();
  hangRenewals = false;
  failRenewals = 0;
  renewals = 0;

  private reach(holder: string): void {
    if (this.partitioned.has(holder)) throw new Error(`${holder} cannot reach the database`);
  }

  async acquire(name: string, holder: string, now: Date, expiresAt: Date): Promise<{ token: number } | undefined> {
    this.reach(holder);
    return this.take(name, holder, now, expiresAt);
  }

  take(name: string, holder: string, now: Date, expiresAt: Date): { token: number } | undefined {
    const row = this.rows.get(name);
    if (row !== undefined && row.expiresAt > now.getTime() && row.holder !== holder) return undefined;
    const token = (row?.token ?? 0) + 1;
    this.rows.set(name, { holder, token, expiresAt: expiresAt.getTime() });
    return { token };
  }

  async renew(name: string, holder: string, token: number, now: Date, expiresAt: Date): Promise<boolean> {
    this.reach(holder);
    if (this.hangRenewals) return new Promise<boolean>(() => undefined);
    if (this.failRenewals > 0) {
      this.failRenewals -= 1;
      throw new Error('statement timeout');
    }
    this.renewals += 1;
    const row = this.rows.get(name);
    if (row === undefined || row.holder !== holder || row.token !== token || row.expiresAt <= now.getTime()) return false;
    row.expiresAt = expiresAt.getTime();
    return true;
  }

  async release(name: string, holder: string, token: number): Promise<void> {
    this.reach(holder);
    const row = this.rows.get(name);
    if (row !== undefined && row.holder === holder && row.token === token) row.expiresAt = Number.NEGATIVE_INFINITY;
  }
}

interface LogEntry {
  level: 'info' | 'warn' | 'error';
  details: object;
  message: string;
}

function recordingLogger(entries: LogEntry[]): Logger {
  return {
    info: (details, message) => entries.push({ level: 'info', details, message }),
    warn: (details, message) => entries.push({ level: 'warn', details, message }),
    error: (details, message) => entries.push({ level: 'error', details, message }),
    debug: () => undefined,
  };
}

/** Polls until cond holds; fails t (and returns false) after timeoutMs. */
async function until(t: Test, cond: () => boolean, what: string, timeoutMs = 5_000): Promise<boolean> {
  for (let waited = 0; waited < timeoutMs; waited += 5) {
    if (cond()) return true;
    await sleep(5);
  }
  t.fail(`timed out after ${timeoutMs} ms waiting for: ${what}`);
  return false;
}

/** A job that resolves only when its signal is aborted, and records why. */
function waitingJob(name = 'demo'): Job & { runs: JobContext[]; reasons: unknown[] } {
  const runs: JobContext[] = [];
  const reasons: unknown[] = [];
  return {
    name,
    intervalMs: INTERVAL_MS,
    runs,
    reasons,
    run: async (context) => {
      runs.push(context);
      await new Promise<void>((resolve) => context.signal.addEventListener('abort', () => resolve(), { once: true }));
      reasons.push(context.signal.reason);
    },
  };
}

function setup(t: Test) {
  const clock = new FakeClock();
  const leases = new MemoryLeases();
  const logs: LogEntry[] = [];
  const runners: JobRunner[] = [];
  const runner = (holder: string, leaseMs = LEASE_MS): JobRunner => {
    const made = new JobRunner({ leases, clock, holder, leaseMs, logger: recordingLogger(logs) });
    runners.push(made);
    return made;
  };
  t.teardown(async () => {
    leases.partitioned.clear();
    leases.hangRenewals = false;
    await Promise.all(runners.map((r) => r.stop()));
  });
  return { clock, leases, logs, runner };
}

t.test('ok/one holder at a time among two runners', async (t) => {
  const { leases, runner } = setup(t);
  const runs: string[] = [];
  let active = 0;
  let maxActive = 0;
  const job = (holder: string): Job => ({
    name: 'demo',
    intervalMs: INTERVAL_MS,
    run: async () => {
      active += 1;
      maxActive = Math.max(maxActive, active);
      runs.push(holder);
      await sleep(5);
      active -= 1;
    },
  });
  const a = runner('a');
  const b = runner('b');
  a.register(job('a'));
  b.register(job('b'));
  a.start();
  b.start();
  await until(t, () => runs.length >= 8, 'eight runs');
  const winner = runs[0]!;
  t.ok(
    runs.every((holder) => holder === winner),
    `every run by ${winner}`,
  );
  t.equal(maxActive, 1, 'never two runs at once');
  t.equal((winner === 'a' ? a : b).heldToken('demo'), 1);
  t.equal((winner === 'a' ? b : a).heldToken('demo'), undefined, 'the other runner holds nothing');
  t.equal(leases.rows.get('demo')?.holder, winner);
});

t.test('ok/renewals keep the lease across several lease lengths of clock time', async (t) => {
  const { clock, leases, runner } = setup(t);
  const a = runner('a');
  const b = runner('b');
  const runs: string[] = [];
  a.register({ name: 'demo', intervalMs: INTERVAL_MS, run: async () => void runs.push('a') });
  b.register({ name: 'demo', intervalMs: INTERVAL_MS, run: async () => void runs.push('b') });
  a.start();
  await until(t, () => a.heldToken('demo') === 1, 'a holds the lease');
  b.start();
  for (let step = 0; step < 6; step += 1) {
    const renewals = leases.renewals;
    clock.advance(LEASE_MS / 2);
    await until(t, () => leases.renewals > renewals, `renewal after step ${step}`);
  }
  t.equal(a.heldToken('demo'), 1, 'a still holds its first lease after 3 lease lengths');
  t.equal(b.heldToken('demo'), undefined);
  t.notOk(runs.includes('b'), 'b never ran');
});

t.test('ok/another runner takes over once the holder is cut off and the lease expires', async (t) => {
  const { clock, leases, logs, runner } = setup(t);
  const a = runner('a');
  const b = runner('b');
  const events: string[] = [];
  const job = (holder: string): Job => ({
    name: 'demo',
    intervalMs: INTERVAL_MS,
    run: async ({ signal }) => {
      events.push(`${holder}:start`);
      await Promise.race([sleep(15), new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }))]);
      events.push(`${holder}:end`);
    },
  });
  a.register(job('a'));
  b.register(job('b'));
  a.start();
  await until(t, () => a.heldToken('demo') === 1, 'a holds the lease');
  b.start();
  await sleep(100);
  t.equal(b.heldToken('demo'), undefined, 'b waits while a holds the lease');

  // a can no longer renew: it gives the lease up on its own, a tenth of a lease before the expiry.
  leases.partitioned.add('a');
  await until(t, () => a.heldToken('demo') === undefined, 'a gives the lease up');
  t.ok(logs.some((e) => e.level === 'warn' && /job lease lost: no renewal was confirmed/.test(e.message)));
  await sleep(50);
  t.equal(b.heldToken('demo'), undefined, 'b still waits: by the clock the lease has not expired');

  clock.advance(LEASE_MS);
  await until(t, () => b.heldToken('demo') === 2, 'b takes the lease over with the next token');
  await until(t, () => events.includes('b:start'), 'b runs the job');
  const firstB = events.indexOf('b:start');
  t.equal(events.slice(0, firstB).filter((e) => e === 'a:start').length, events.slice(0, firstB).filter((e) => e === 'a:end').length, "every one of a's runs ended before b's first");
  t.notOk(events.slice(firstB).includes('a:start'), 'a never runs again while cut off');
});

t.test('fail/a refused renewal aborts the running job until the lease is taken back', async (t) => {
  const { clock, leases, runner } = setup(t);
  const a = runner('a');
  const job = waitingJob();
  a.register(job);
  a.start();
  await until(t, () => job.runs.length === 1, 'the job runs');
  t.equal(job.runs[0]!.token, 1);

  // Another instance holds the lease now (say a's clock was far behind): a's next renewal is refused.
  t.ok(leases.take('demo', 'intruder', new Date(clock.now().getTime() + LEASE_MS), new Date(clock.now().getTime() + 2 * LEASE_MS)));
  await until(t, () => job.reasons.length === 1, 'the run is aborted');
  t.ok(isCaError(job.reasons[0], 'conflict'), 'aborted with a CaError(conflict)');
  t.match(String((job.reasons[0] as Error).message), /lost its lease: the renewal was refused/);
  t.equal(a.heldToken('demo'), undefined);
  await sleep(100);
  t.equal(job.runs.length, 1, 'no run while the intruder holds the lease');

  await leases.release('demo', 'intruder', 2);
  await until(t, () => job.runs.length === 2, 'a takes the lease back and runs again');
  t.equal(job.runs[1]!.token, 3, 'with a new token');
});

t.test('fail/a renewal that cannot complete before expiry aborts the job', async (t) => {
  const { leases, runner } = setup(t);
  const a = runner('a');
  const job = waitingJob();
  a.register(job);
  a.start();
  await until(t, () => job.runs.length === 1, 'the job runs');
  leases.hangRenewals = true;
  await until(t, () => job.reasons.length === 1, 'the run is aborted', LEASE_MS * 5);
  t.match(String((job.reasons[0] as Error).message), /no renewal was confirmed before it expired/);

  // By the clock the lease is still a's own, so a takes it again (a new token fences the aborted run).
  leases.hangRenewals = false;
  await until(t, () => job.runs.some((run) => run.token > 1), 'a runs again under a new lease');
  await sleep(LEASE_MS);
  const token = a.heldToken('demo');
  t.ok(token !== undefined && token > 1);
  await sleep(LEASE_MS * 1.5);
  t.equal(a.heldToken('demo'), token, "the renewal left hanging by the lost lease does not hold back the new lease's");
});

t.test('ok/a renewal that fails once is retried and the lease kept', async (t) => {
  const { leases, logs, runner } = setup(t);
  const a = runner('a');
  const job = waitingJob();
  a.register(job);
  a.start();
  await until(t, () => job.runs.length === 1, 'the job runs');
  leases.failRenewals = 1;
  const renewals = leases.renewals;
  await until(t, () => leases.renewals >= renewals + 2, 'two more renewals after the failed one');
  t.ok(logs.some((e) => e.level === 'warn' && /renewal failed; retrying/.test(e.message)));
  t.equal(job.reasons.length, 0, 'not aborted');
  t.equal(a.heldToken('demo'), 1);
});

t.test('ok/stop aborts, waits for the running job and releases, so another runner takes over at once', async (t) => {
  const { leases, runner } = setup(t);
  const a = runner('a');
  const b = runner('b');
  let finished = false;
  a.register({
    name: 'demo',
    intervalMs: INTERVAL_MS,
    run: async ({ signal }) => {
      await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }));
      await sleep(50); // cleaning up after the abort
      finished = true;
    },
  });
  const bJob = waitingJob();
  b.register(bJob);
  a.start();
  await until(t, () => a.heldToken('demo') === 1, 'a holds the lease');
  b.start();
  await a.stop();
  t.ok(finished, 'stop() returned after the job did');
  t.equal(leases.rows.get('demo')?.expiresAt, Number.NEGATIVE_INFINITY, 'released');
  t.equal(a.heldToken('demo'), undefined);
  // No clock movement: the release alone lets b in.
  await until(t, () => bJob.runs.length === 1, 'b runs');
  t.equal(bJob.runs[0]!.token, 2);
  t.throws(() => a.start(), /cannot start again/);
  t.equal(await a.runNow('demo'), false, 'a stopped runner runs nothing');
});

t.test('ok/a throwing job is logged and retried at the next interval, keeping its lease', async (t) => {
  const { logs, runner } = setup(t);
  const a = runner('a');
  let calls = 0;
  a.register({
    name: 'demo',
    intervalMs: INTERVAL_MS,
    run: async () => {
      calls += 1;
      if (calls <= 2) throw new Error(`boom ${calls}`);
    },
  });
  a.start();
  await until(t, () => calls >= 4, 'four runs');
  const errors = logs.filter((e) => e.level === 'error');
  t.equal(errors.length, 2);
  t.match(errors[0]!.message, /job failed; it runs again at the next interval/);
  t.match(String((errors[0]!.details as { err: Error }).err.message), /boom 1/);
  t.equal(a.heldToken('demo'), 1, 'the same lease throughout');
});

t.test('ok/a run longer than the interval is followed by the next at once, never overlapped', async (t) => {
  const { runner } = setup(t);
  const a = runner('a');
  let active = 0;
  let maxActive = 0;
  let runs = 0;
  a.register({
    name: 'demo',
    intervalMs: 10,
    run: async () => {
      active += 1;
      maxActive = Math.max(maxActive, active);
      await sleep(40);
      runs += 1;
      active -= 1;
    },
  });
  a.start();
  await until(t, () => runs >= 4, 'four runs');
  t.equal(maxActive, 1);
});

t.test('runNow', async (t) => {
  t.test('ok/without start it takes the lease, runs once and releases', async (t) => {
    const { leases, runner } = setup(t);
    const a = runner('a');
    const tokens: number[] = [];
    a.register({ name: 'demo', intervalMs: INTERVAL_MS, run: async ({ token }) => void tokens.push(token) });
    t.equal(await a.runNow('demo'), true);
    t.same(tokens, [1]);
    t.equal(a.heldToken('demo'), undefined);
    t.equal(leases.rows.get('demo')?.expiresAt, Number.NEGATIVE_INFINITY, 'released for the serving instances');
    await sleep(60);
    t.same(tokens, [1], 'no loop was started');
  });

  t.test('fail/while another instance holds the lease it does not run', async (t) => {
    const { clock, leases, runner } = setup(t);
    const a = runner('a');
    let ran = false;
    a.register({ name: 'demo', intervalMs: INTERVAL_MS, run: async () => void (ran = true) });
    leases.take('demo', 'other', clock.now(), new Date(clock.now().getTime() + LEASE_MS));
    t.equal(await a.runNow('demo'), false);
    t.notOk(ran);
  });

  t.test('fail/a job that throws rejects runNow, and the lease is still released', async (t) => {
    const { leases, runner } = setup(t);
    const a = runner('a');
    a.register({
      name: 'demo',
      intervalMs: INTERVAL_MS,
      run: async () => {
        throw new Error('boom');
      },
    });
    await t.rejects(a.runNow('demo'), /boom/);
    t.equal(leases.rows.get('demo')?.expiresAt, Number.NEGATIVE_INFINITY);
  });

  t.test('fail/an unknown job', async (t) => {
    const { runner } = setup(t);
    await t.rejects(runner('a').runNow('nope'), { kind: 'notFound', message: /no job named nope/ });
  });

  t.test('ok/on a started runner it runs under the held lease, after the run in flight', async (t) => {
    const { runner } = setup(t);
    const a = runner('a');
    let active = 0;
    let maxActive = 0;
    const tokens: number[] = [];
    a.register({
      name: 'demo',
      intervalMs: 10_000,
      run: async ({ token }) => {
        active += 1;
        maxActive = Math.max(maxActive, active);
        tokens.push(token);
        await sleep(30);
        active -= 1;
      },
    });
    a.start();
    await until(t, () => tokens.length === 1, 'the first run started');
    t.equal(await a.runNow('demo'), true);
    t.same(tokens, [1, 1], 'one lease for both runs');
    t.equal(maxActive, 1, 'runNow waited for the run in flight');
    t.equal(a.heldToken('demo'), 1, 'still held: the loop goes on');
  });
});

t.test('fail/bad options and registrations', async (t) => {
  const { runner } = setup(t);
  const clock = new FakeClock();
  const leases = new MemoryLeases();
  t.throws(() => new JobRunner({ leases, clock, holder: 'a', leaseMs: 0 }), { kind: 'badConfig', message: /positive duration/ });
  t.throws(() => new JobRunner({ leases, clock, holder: '' }), { kind: 'badConfig', message: /holder id/ });
  const a = runner('a');
  a.register({ name: 'demo', intervalMs: 10, run: async () => undefined });
  t.throws(() => a.register({ name: 'demo', intervalMs: 10, run: async () => undefined }), { kind: 'conflict', message: /already registered/ });
  t.throws(() => a.register({ name: 'other', intervalMs: 0, run: async () => undefined }), { kind: 'badConfig', message: /interval/ });
  t.throws(() => a.register({ name: '', intervalMs: 10, run: async () => undefined }), { kind: 'badConfig', message: /needs a name/ });
});
