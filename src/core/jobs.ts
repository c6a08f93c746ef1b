import { type Clock, SECOND } from './clock.js';
import { CaError } from './errors.js';
import { silentLogger, type Logger } from './logger.js';

/**
 * Named periodic jobs that run on at most one instance at a time.
 *
 * Any number of instances share one database (DESIGN.md rule 7), yet some background work must not run on
 * all of them at once: CRL regeneration, the OCSP refresher, validation retries, the nonce purge. Each such
 * job is guarded by a lease in the database (migrations/0006_job_leases.sql): whichever instance takes the
 * lease runs the job every interval and renews the lease well before it expires; the others keep trying to
 * take it. The holder keeps the lease between runs rather than releasing it after each one, so that a
 * holder that dies (SIGKILL, power, partition) is noticed by its silence alone: its lease expires and
 * another instance takes the job over within one lease plus one acquisition attempt. A holder that stops
 * cleanly releases its leases so another instance takes over at once.
 *
 * Lease times come from the injected Clock (rule 4) and are written by the application, never by SQL
 * (`now()`); scheduling (when to try, renew, give up) uses real timers, unref'd like the rest of the
 * background work so they never keep a process alive.
 *
 * A lease is a promise about time, and clocks of two machines differ: a holder that is paused (GC, a slow
 * disk, a partition) may still be running when another instance has taken over. The runner aborts the job's
 * signal as soon as it cannot show that it still holds the lease, and every run carries the lease's fencing
 * token (incremented on every acquisition): a job whose writes must never come from a stale holder stores
 * the token with them and refuses to overwrite work of a higher token.
 */

/** The shared lease table (src/db/repositories/lease-repository.ts; an in-memory one in tests). */
export interface LeaseStore {
  /**
   * Takes the lease `name` for `holder` until `expiresAt`, if it is free, expired at `now`, released, or
   * already held by `holder`. Every acquisition increments the fencing token; undefined when another holder
   * has it.
   */
  acquire(name: string, holder: string, now: Date, expiresAt: Date): Promise<{ token: number } | undefined>;
  /**
   * Extends the lease to `expiresAt` if `holder` still holds it with `token` and it has not expired at `now`.
   * False otherwise: the lease is lost and the job must stop.
   */
  renew(name: string, holder: string, token: number, now: Date, expiresAt: Date): Promise<boolean>;
  /** Frees the lease at once if `holder` still holds it with `token`; does nothing otherwise. */
  release(name: string, holder: string, token: number): Promise<void>;
}

export interface JobContext {
  /**
   * Aborted when the lease is lost (renewal refused, or not confirmed before the lease would expire) or the
   * runner stops. The job must stop promptly: another instance may already be running it.
   */
  signal: AbortSignal;
  /** The lease's fencing token for this run: higher than that of any earlier holder. */
  token: number;
}

export interface Job {
  /** The lease name: one lease per name across every instance sharing the database. */
  name: string;
  /** How often the holder runs the job. Runs of one job never overlap within a process. */
  intervalMs: number;
  /**
   * One pass of the job. Passes must be safe to repeat (do what is due): a new holder runs the job as soon
   * as it takes the lease, which may be shortly after the previous holder's last pass.
   */
  run(context: JobContext): Promise<void>;
}


export interface JobRunnerOptions {
  leases: LeaseStore;
  clock: Clock;
  /**
   * This instance's id in the lease table, unique per process (e.g. hostname, pid and random bytes): two
   * runners with the same holder would both "hold" a lease.
   */
  holder: string;
  /** How long a lease lasts without renewal (jobs.leaseSeconds); the takeover time after a crash. Default 30 s. */
  leaseMs?: number;
  logger?: Logger;
}

export const DEFAULT_LEASE_MS = 30 * SECOND;

interface HeldLease {
  token: number;
  /** Clock time (ms) the lease expires at, as last written to the store. */
  expiresAt: number;
  /**
   * The renewal in flight. Per lease, not per job: a renewal left hanging by a lease that was given up
   * must not hold back the renewals of the lease taken next.
   */
  renewing: Promise<void> | undefined;
}

interface JobState {
  readonly job: Job;
  held: HeldLease | undefined;
  /** The next tick. */
  timer: NodeJS.Timeout | undefined;
  /** Renewal ticks while the lease is held. */
  renewTimer: NodeJS.Timeout | undefined;
  /** Fires when the lease can no longer be counted on: no renewal confirmed it in time. */
  deadlineTimer: NodeJS.Timeout | undefined;
  /** The tick or runNow in flight: they are serialized, so runs of one job never overlap in a process. */
  busy: Promise<unknown> | undefined;
  /** A tick fell due while busy: tick again as soon as the busy one ends. */
  due: boolean;
  controller: AbortController | undefined;
}


/**
 * Runs registered jobs under leases (see the top of this file). For each job: while it does not hold the
 * lease, it tries to take it every min(interval, lease / 3); once it holds it, it runs the job at once and
 * then every interval, and renews the lease every lease / 3 — during runs and between them. The lease is
 * treated as lost, and the running job's signal aborted, when a renewal is refused or when no renewal has
 * confirmed it by a tenth of a lease before it expires: that margin absorbs late timers and small clock
 * differences, so this instance gives up before another one may take over. A job that throws is logged and
 * runs again at the next interval.
 */
export class JobRunner {
  private readonly leases: LeaseStore;
  private readonly clock: Clock;
  private readonly holder: string;
  private readonly leaseMs: number;
  private readonly renewEveryMs: number;
  private readonly marginMs: number;
  private readonly logger: Logger;
  private readonly jobs = new Map<string, JobState>();
  private started = false;
  private stopping: Promise<void> | undefined;

  constructor(options: JobRunnerOptions) {
    const leaseMs = options.leaseMs ?? DEFAULT_LEASE_MS;
    if (!Number.isFinite(leaseMs) || leaseMs <= 0) throw new CaError('badConfig', `job lease must be a positive duration; got ${leaseMs} ms`);
    if (options.holder === '') throw new CaError('badConfig', 'job runner needs a non-empty holder id');
    this.leases = options.leases;
    this.clock = options.clock;
    this.holder = options.holder;
    this.leaseMs = leaseMs;
    this.renewEveryMs = leaseMs / 3;
    this.marginMs = leaseMs / 10;
    this.logger = options.logger ?? silentLogger;
  }

  register(job: Job): void {
    if (job.name === '') throw new CaError('badConfig', 'a job needs a name');
    if (this.jobs.has(job.name)) throw new CaError('conflict', `job ${job.name} is already registered`);
    if (!Number.isFinite(job.intervalMs) || job.intervalMs <= 0) {
      throw new CaError('badConfig', `job ${job.name}: interval must be a positive duration; got ${job.intervalMs} ms`);
    }
    const state: JobState = {
      job,
      held: undefined,
      timer: undefined,
      renewTimer: undefined,
      deadlineTimer: undefined,
      busy: undefined,
      due: false,
      controller: undefined,
    };
    this.jobs.set(job.name, state);
    if (this.started && this.stopping === undefined) this.schedule(state, 0);
  }

  /** Starts every job's loop: each tries to take its lease now. */
  start(): void {
    if (this.stopping !== undefined) throw new CaError('serverInternal', 'a stopped job runner cannot start again');
    if (this.started) return;
    this.started = true;
    for (const state of this.jobs.values()) this.schedule(state, 0);
  }

  /**
   * Runs `name` once now if its lease can be taken (or is held), after any run in flight; true if it ran.
   * A job that throws makes this reject with its error. Without start() (a CLI command) the lease is
   * released afterwards, so the serving instances take the job back at once.
   */
  async runNow(name: string): Promise<boolean> {
    const state = this.jobs.get(name);
    if (state === undefined) throw new CaError('notFound', `no job named ${name}`);
    return this.exclusive(state, async () => {
      if (this.stopping !== undefined) return false;
      if (!this.stillHeld(state) && !(await this.acquire(state))) return false;
      try {
        // This run stands for the current interval's.
        if (this.started) this.schedule(state, state.job.intervalMs);
        await this.runJob(state, true);
        return true;
      } finally {
        if (!this.started) await this.release(state);
      }
    });
  }

  /** The fencing token of the lease this runner holds for `name`, if it holds it. */
  heldToken(name: string): number | undefined {
    return this.jobs.get(name)?.held?.token;
  }

  /** Aborts running jobs, waits for them to return, and releases every lease held. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      for (const state of this.jobs.values()) {
        if (state.timer !== undefined) clearTimeout(state.timer);
        state.timer = undefined;
        state.controller?.abort(new CaError('serverInternal', `job ${state.job.name} stopped: the job runner is stopping`));
      }
      await Promise.all([...this.jobs.values()].map((state) => state.busy?.catch(() => undefined)));
      await Promise.all([...this.jobs.values()].map((state) => this.release(state)));
    })();
    return this.stopping;
  }

  // ---------------------------------------------------------------------------------------------------

  private schedule(state: JobState, delayMs: number): void {
    if (state.timer !== undefined) clearTimeout(state.timer);
    state.timer = setTimeout(() => {
      state.timer = undefined;
      this.trigger(state);
    }, delayMs);
    state.timer.unref();
  }

  private trigger(state: JobState): void {
    if (!this.started || this.stopping !== undefined) return;
    if (state.busy !== undefined) {
      state.due = true;
      return;
    }
    void this.exclusive(state, () => this.tick(state)).catch((error: unknown) =>
      // tick() handles its own failures; this is a bug guard so a rejection never goes unhandled.
      this.logger.error({ err: error, job: state.job.name }, 'job tick failed'),
    );
  }

  /** Runs fn as the job's only tick/runNow in flight; a tick that fell due meanwhile runs right after. */
  private async exclusive<T>(state: JobState, fn: () => Promise<T>): Promise<T> {
    while (state.busy !== undefined) await state.busy.catch(() => undefined);
    const run = fn();
    state.busy = run;
    try {
      return await run;
    } finally {
      state.busy = undefined;
      if (state.due) {
        state.due = false;
        this.trigger(state);
      }
    }
  }

  private async tick(state: JobState): Promise<void> {
    if (!this.stillHeld(state) && !(await this.acquire(state))) {
      if (this.stopping === undefined) this.schedule(state, Math.min(state.job.intervalMs, this.renewEveryMs));
      return;
    }
    if (this.stopping !== undefined) return;
    // Armed before the run, so the period does not stretch by the run's duration; a run longer than the
    // interval is followed by the next one at once (trigger() marks it due).
    this.schedule(state, state.job.intervalMs);
    await this.runJob(state, false);
  }

  /** Whether the lease is held and, by the Clock, not yet within the margin of its expiry. */
  private stillHeld(state: JobState): boolean {
    const held = state.held;
    if (held === undefined) return false;
    if (this.clock.now().getTime() < held.expiresAt - this.marginMs) return true;
    this.lose(state, held, 'it expired before it was renewed');
    return false;
  }

  private async acquire(state: JobState): Promise<boolean> {
    const { name } = state.job;
    const now = this.clock.now().getTime();
    let lease: { token: number } | undefined;
    try {
      lease = await this.leases.acquire(name, this.holder, new Date(now), new Date(now + this.leaseMs));
    } catch (error) {
      this.logger.warn({ err: error, job: name }, 'could not try to acquire the job lease; trying again later');
      return false;
    }
    if (lease === undefined) return false;
    const held: HeldLease = { token: lease.token, expiresAt: now + this.leaseMs, renewing: undefined };
    state.held = held;
    // Acquired too late to count on (a slow database): let it lapse rather than run without a lease.
    if (!this.armDeadline(state, held)) return false;
    state.renewTimer = setInterval(() => this.renew(state), this.renewEveryMs);
    state.renewTimer.unref();
    this.logger.info({ job: name, holder: this.holder, token: held.token }, 'job lease acquired');
    return true;
  }

  /** (Re)arms the timer that gives the lease up when no renewal confirms it in time; false if already too late. */
  private armDeadline(state: JobState, held: HeldLease): boolean {
    if (state.deadlineTimer !== undefined) clearTimeout(state.deadlineTimer);
    state.deadlineTimer = undefined;
    const remaining = held.expiresAt - this.marginMs - this.clock.now().getTime();
    if (remaining <= 0) {
      this.lose(state, held, 'it expired before it was renewed');
      return false;
    }
    state.deadlineTimer = setTimeout(() => this.lose(state, held, 'no renewal was confirmed before it expired'), remaining);
    state.deadlineTimer.unref();
    return true;
  }

  private renew(state: JobState): void {
    const held = state.held;
    // One renewal at a time: a renewal that hangs is cut short by the deadline timer, not by piling up more.
    if (held === undefined || held.renewing !== undefined || !this.stillHeld(state)) return;
    const { name } = state.job;
    const now = this.clock.now().getTime();
    held.renewing = (async () => {
      try {
        const renewed = await this.leases.renew(name, this.holder, held.token, new Date(now), new Date(now + this.leaseMs));
        // Lost, released or re-acquired meanwhile: a late answer must not revive an old lease.
        if (state.held !== held) return;
        if (renewed) {
          held.expiresAt = now + this.leaseMs;
          this.armDeadline(state, held);
        } else {
          this.lose(state, held, 'the renewal was refused (it expired or another instance holds it)');
        }
      } catch (error) {
        // Kept for now: the next renewal may succeed, and the deadline timer gives the lease up if none does.
        this.logger.warn({ err: error, job: name, token: held.token }, 'job lease renewal failed; retrying');
      } finally {
        held.renewing = undefined;
      }
    })();
  }

  /** Forgets the lease, aborts the run under it, and goes back to trying to acquire it. */
  private lose(state: JobState, held: HeldLease, reason: string): void {
    if (state.held !== held) return;
    this.forget(state);
    this.logger.warn({ job: state.job.name, holder: this.holder, token: held.token }, `job lease lost: ${reason}`);
    state.controller?.abort(new CaError('conflict', `job ${state.job.name} lost its lease: ${reason}`));
    if (this.started && this.stopping === undefined) this.schedule(state, Math.min(state.job.intervalMs, this.renewEveryMs));
  }

  private forget(state: JobState): void {
    state.held = undefined;
    if (state.renewTimer !== undefined) clearInterval(state.renewTimer);
    if (state.deadlineTimer !== undefined) clearTimeout(state.deadlineTimer);
    state.renewTimer = undefined;
    state.deadlineTimer = undefined;
  }

  private async release(state: JobState): Promise<void> {
    const held = state.held;
    if (held === undefined) return;
    this.forget(state);
    // A renewal still in flight needs no waiting for: whichever of the two statements runs first, the lease
    // ends up released (a renewal of a released lease is refused, as for an expired one), and its answer is
    // ignored because the lease is forgotten.
    try {
      await this.leases.release(state.job.name, this.holder, held.token);
      this.logger.info({ job: state.job.name, holder: this.holder, token: held.token }, 'job lease released');
    } catch (error) {
      // It then expires on its own, one lease from its last renewal.
      this.logger.warn({ err: error, job: state.job.name, token: held.token }, 'could not release the job lease');
    }
  }

  private async runJob(state: JobState, rethrow: boolean): Promise<void> {
    const held = state.held;
    if (held === undefined) return;
    const controller = new AbortController();
    state.controller = controller;
    try {
      await state.job.run({ signal: controller.signal, token: held.token });
    } catch (error) {
      if (controller.signal.aborted) {
        this.logger.warn({ err: error, job: state.job.name, token: held.token }, 'job stopped after its signal was aborted');
      } else {
        this.logger.error({ err: error, job: state.job.name, token: held.token }, 'job failed; it runs again at the next interval');
      }
      if (rethrow) throw error;
    } finally {
      state.controller = undefined;
    }
  }
}
