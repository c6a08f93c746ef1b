import type { Clock } from '../core/clock.js';
import { SECOND } from '../core/clock.js';
import type { ValidationOutcome, Validator } from '../va/validator.js';
import type { AcmeStores, ClaimedChallenge } from './acme-stores.js';
import type { DomainEvents } from '../core/events.js';
import type { Logger } from '../core/logger.js';
import type { Queryable } from '../db/database.js';

export interface SchedulerSettings {
  maxAttempts: number;
  /** How long a claimed challenge is leased to this instance before another may retry it. */
  leaseMs: number;
  /**
   * How often the `validation.retries` job polls the database for due work (retries, work left by a restart
   * or by another instance); the job runs on one instance at a time.
   */
  pollMs: number;
  /** Challenges validated concurrently by one instance (claimed from the database). */
  batch: number;
  /** How long a client's challenge response waits for the first attempt, run at once by the same instance. */
  inlineWaitMs: number;
}

export const DEFAULT_SCHEDULER: SchedulerSettings = { maxAttempts: 5, leaseMs: 60 * SECOND, pollMs: SECOND, batch: 32, inlineWaitMs: 2 * SECOND };

/** Where an attempt left the challenge: finished (valid/invalid, at `at`) or processing (a retry is due). */
export type AttemptResult = { status: 'valid'; at: Date } | { status: 'invalid' | 'processing' };

/**
 * Runs challenge validations asynchronously (RFC 8555 §7.5.1: the server validates after the client's
 * POST, the client polls). Work lives in the database — a challenge in `processing` with a due
 * next_attempt_at — so a restart resumes it and any instance can finish it: the `validation.retries` job
 * (one instance at a time) claims due challenges with a lease each (SKIP LOCKED), validates, and records the
 * outcome; a claimed challenge stays leased to its claimer even if the job moves to another instance. Retryable failures back off exponentially
 * until maxAttempts, then the challenge and its authorization become invalid.
 *
 * Up to `batch` claimed validations run at once, each on its own: one slow validation (a host that does not
 * answer until the timeout) does not hold back the others.
 *
 * A client's response is attempted at once by the instance that received it (validateNow): the response
 * statement records the challenge as processing and leased to this instance (leaseForInline), the attempt
 * runs, and the response waits up to inlineWaitMs for it, so the client usually finds the authorization
 * decided on its first poll. Persisted the same way as claimed work, so a crash mid-attempt is retried by
 * whichever instance finds the lease expired. Round trips per validation (each is a cost on the ACME hot path): the response statement
 * and one statement recording the outcome; claimed work adds the claim (shared by all claimed together).
 */
export class ValidationScheduler {
  private running = false;
  private again = false;
  private stopped = true;
  /** Set when work may be waiting for a free slot. */
  private waiting = false;
  /** Claimed validations under way, each holding its lease. */
  private readonly inFlight = new Set<Promise<void>>();
  /** First attempts started by this instance's own responses (validateNow). */
  private readonly inline = new Set<Promise<void>>();
  private readonly idle: (() => void)[] = [];
  /** The signal of the job's latest poll: while it is not aborted this instance polls (and may re-claim at once). */
  private pollSignal: AbortSignal | undefined;

  constructor(
    private readonly deps: {
      stores: AcmeStores;
      validator: Validator;
      /** `authorization.changed` after each decided validation (after commit: one statement on the pool). */
      events: DomainEvents<Queryable>;
      /** The account's URL (CAA accounturi, RFC 8657 §3); the URL scheme belongs to acme/, so compose.ts passes it. */
      accountUri?: (accountId: string) => string;
      clock: Clock;
      settings: SchedulerSettings;
      logger?: Logger;
    },
  ) {}

  /** Enables validation by this instance: first attempts of its own clients' responses, and polls. */
  start(): void {
    this.stopped = false;
  }

  /**
   * One poll — what the `validation.retries` job runs every pollMs: claims due challenges into the free slots
   * and starts them (they go on after the poll returns; stop() waits for them). `signal` is the job's: until
   * it aborts, a finished validation may claim again at once instead of waiting for the next poll.
   */
  async poll(signal?: AbortSignal): Promise<void> {
    if (this.stopped) return;
    this.pollSignal = signal;
    await this.loop();
  }

  /** Stops claiming, and waits for the validations under way. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.running) await new Promise<void>((resolve) => this.idle.push(resolve));
    await Promise.all([...this.inFlight, ...this.inline]);
  }

  /**
   * When a challenge answered now would be attempted by this instance at once: the lease to record with
   * it (ChallengeStore.respond's `due`). Undefined while stopped: the challenge is then left due for the
   * next claim, here after a restart or on another instance.
   */
  leaseForInline(now: Date): Date | undefined {
    return this.stopped ? undefined : new Date(now.getTime() + this.deps.settings.leaseMs);
  }

  /**
   * The first attempt of a challenge this instance has just leased (see leaseForInline), started now. Resolves
   * with where the attempt left the challenge, or undefined if it is still running after inlineWaitMs (it
   * goes on; stop() waits for it). Never rejects: a failure to record the outcome leaves the challenge to be
   * retried when its lease ends.
   */
  validateNow(work: ClaimedChallenge): Promise<AttemptResult | undefined> {
    // Stopped since the lease was taken: the lease runs out and the challenge is claimed after a restart.
    if (this.stopped) return Promise.resolve(undefined);
    const running = this.attempt(work).catch((error: unknown) => this.recordingFailed(work, error));
    // Tracked apart from claimed work: inline attempts are bounded by the requests that start them, and
    // must not take the claim's slots.
    const tracked = running.then(() => undefined);
    this.inline.add(tracked);
    void tracked.finally(() => this.inline.delete(tracked));
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), this.deps.settings.inlineWaitMs);
    });
    return Promise.race([running, timeout]).finally(() => clearTimeout(timer));
  }

  private recordingFailed(work: ClaimedChallenge, error: unknown): undefined {
    this.deps.logger?.warn({ err: error, challenge: work.challenge.id }, 'recording a validation failed; it is retried when its lease ends');
    return undefined;
  }

  /**
   * New work exists (a client answered a challenge, a slot came free): claim now rather than at the next
   * poll — when this instance is the one polling (its job's signal is live).
   */
  kick(): void {
    if (this.stopped || this.pollSignal === undefined || this.pollSignal.aborted) return;
    if (this.running) this.again = true;
    else void this.loop();
  }

  /** One pass: claim due challenges and validate them all. Returns how many were processed (tests call this). */
  async runOnce(): Promise<number> {
    const claimed = await this.claim(this.deps.settings.batch);
    await Promise.all(claimed.map((work) => this.attempt(work)));
    return claimed.length;
  }

  private claim(limit: number): Promise<ClaimedChallenge[]> {
    const now = this.deps.clock.now();
    return this.deps.stores.challenges.claimDueForValidation(now, new Date(now.getTime() + this.deps.settings.leaseMs), limit);
  }

  private async loop(): Promise<void> {
    if (this.running || this.stopped) return;
    this.running = true;
    try {
      let more: boolean;
      do {
        this.again = false;
        const room = this.deps.settings.batch - this.inFlight.size;
        if (room <= 0) {
          // Every slot is busy: the next validation to finish claims again.
          this.waiting = true;
          break;
        }
        const claimed = await this.claim(room);
        // A full claim means more may be due than there was room for.
        more = claimed.length === room;
        const launchedFull = more;
        for (const work of claimed) {
          const running: Promise<void> = this.attempt(work)
            .then(
              () => undefined,
              (error: unknown) => this.recordingFailed(work, error),
            )
            .finally(() => {
              this.inFlight.delete(running);
              if (launchedFull || this.waiting) {
                this.waiting = false;
                this.kick();
              }
            });
          this.inFlight.add(running);
        }
      } while ((more || this.again) && !this.stopped);
    } catch (error) {
      this.deps.logger?.warn({ err: error }, 'validation pass failed; will retry');
    } finally {
      this.running = false;
      for (const resolve of this.idle.splice(0)) resolve();
    }
  }

  private async attempt({ challenge, authorization, accountThumbprint }: ClaimedChallenge): Promise<AttemptResult> {
    const { stores, validator, clock, settings } = this.deps;
    if (authorization.status !== 'pending') {
      await stores.challenges.markInvalidWithAuthorization(challenge.id, { kind: 'malformed', detail: 'authorization is no longer pending' });
      return this.decided(authorization.id, { status: 'invalid' });
    }
    let outcome: ValidationOutcome;
    try {
      outcome = await validator.validate({
        type: challenge.type,
        identifier: authorization.identifier,
        token: challenge.token,
        // RFC 8555 §8.1: keyAuthorization = token || '.' || base64url(JWK_Thumbprint(accountKey))
        keyAuthorization: `${challenge.token}.${accountThumbprint}`,
        wildcard: authorization.wildcard,
        ...(this.deps.accountUri ? { accountUri: this.deps.accountUri(authorization.accountId) } : {}),
      });
    } catch (error) {
      // The VA reports network failures as outcomes; a throw is a bug, retried like a transient failure.
      this.deps.logger?.warn({ err: error, challenge: challenge.id }, 'validator threw');
      outcome = { valid: false, problem: { kind: 'serverInternal', detail: 'validation failed unexpectedly' }, retryable: true };
    }
    const attempts = challenge.attempts + 1;
    if (outcome.valid) {
      const at = clock.now();
      await stores.challenges.markValidWithAuthorization(challenge.id, at);
      return this.decided(authorization.id, { status: 'valid', at });
    }
    if (outcome.retryable && attempts < settings.maxAttempts) {
      const backoffMs = Math.min(2 ** (attempts - 1) * SECOND, 60 * SECOND);
      await stores.challenges.recordRetry(challenge.id, attempts, new Date(clock.now().getTime() + backoffMs), outcome.problem);
      return { status: 'processing' };
    }
    await stores.challenges.markInvalidWithAuthorization(challenge.id, outcome.problem);
    return this.decided(authorization.id, { status: 'invalid' });
  }

  private async decided(authorizationId: string, result: AttemptResult & { status: 'valid' | 'invalid' }): Promise<AttemptResult> {
    await this.deps.events.committed({ type: 'authorization.changed', authorizationId, status: result.status });
    return result;
  }
}
