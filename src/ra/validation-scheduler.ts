import type { Clock } from '../core/clock.js';
import { SECOND } from '../core/clock.js';
import type { Challenge } from '../core/order.js';
import type { ValidationOutcome, Validator } from '../va/validator.js';
import type { AcmeStores } from './acme-stores.js';

export interface SchedulerSettings {
  maxAttempts: number;
  /** How long a claimed challenge is leased to this instance before another may retry it. */
  leaseMs: number;
  /** How often the database is polled for due work (after a restart, or work from other instances). */
  pollMs: number;
  /** Challenges validated concurrently by one instance. */
  batch: number;
}

export const DEFAULT_SCHEDULER: SchedulerSettings = { maxAttempts: 5, leaseMs: 60 * SECOND, pollMs: SECOND, batch: 32 };

/**
 * Runs challenge validations asynchronously (RFC 8555 §7.5.1: the server validates after the client's
 * POST, the client polls). Work lives in the database — a challenge in `processing` with a due
 * next_attempt_at — so a restart resumes it and several instances share it: each claims a batch with a
 * lease (SKIP LOCKED), validates, and records the outcome. Retryable failures back off exponentially
 * until maxAttempts, then the challenge and its authorization become invalid.
 */
export class ValidationScheduler {
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private again = false;
  private stopped = true;
  private readonly idle: (() => void)[] = [];

  constructor(
    private readonly deps: {
      stores: AcmeStores;
      validator: Validator;
      clock: Clock;
      settings: SchedulerSettings;
      logger?: { warn(obj: object, msg: string): void };
    },
  ) {}

  start(): void {
    this.stopped = false;
    this.schedule(0);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.running) await new Promise<void>((resolve) => this.idle.push(resolve));
  }

  /** New work exists (a client answered a challenge): run now rather than at the next poll. */
  kick(): void {
    if (this.stopped) return;
    if (this.running) this.again = true;
    else this.schedule(0);
  }

  /** One pass: claim due challenges and validate them. Returns how many were processed (tests call this). */
  async runOnce(): Promise<number> {
    const now = this.deps.clock.now();
    const { settings, stores } = this.deps;
    const claimed = await stores.challenges.claimDue(now, new Date(now.getTime() + settings.leaseMs), settings.batch);
    await Promise.all(claimed.map((challenge) => this.attempt(challenge)));
    return claimed.length;
  }

  private schedule(delayMs: number): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.loop(), delayMs);
    this.timer.unref();
  }

  private async loop(): Promise<void> {
    if (this.running || this.stopped) return;
    this.running = true;
    let processed = 0;
    try {
      do {
        this.again = false;
        processed = await this.runOnce();
      } while ((processed > 0 || this.again) && !this.stopped);
    } catch (error) {
      this.deps.logger?.warn({ err: error }, 'validation pass failed; will retry');
    } finally {
      this.running = false;
      for (const resolve of this.idle.splice(0)) resolve();
      if (!this.stopped) this.schedule(this.deps.settings.pollMs);
    }
  }

  private async attempt(challenge: Challenge): Promise<void> {
    const { stores, validator, clock, settings } = this.deps;
    const authorization = await stores.authorizations.findById(challenge.authorizationId);
    const account = authorization ? await stores.accounts.findById(authorization.accountId) : undefined;
    if (!authorization || !account || authorization.status !== 'pending') {
      await stores.challenges.markInvalid(challenge.id, { kind: 'malformed', detail: 'authorization is no longer pending' });
      return;
    }
    let outcome: ValidationOutcome;
    try {
      outcome = await validator.validate({
        type: challenge.type,
        identifier: authorization.identifier,
        token: challenge.token,
        // RFC 8555 §8.1: keyAuthorization = token || '.' || base64url(JWK_Thumbprint(accountKey))
        keyAuthorization: `${challenge.token}.${account.jwkThumbprint}`,
      });
    } catch (error) {
      // The VA reports network failures as outcomes; a throw is a bug, retried like a transient failure.
      this.deps.logger?.warn({ err: error, challenge: challenge.id }, 'validator threw');
      outcome = { valid: false, problem: { kind: 'serverInternal', detail: 'validation failed unexpectedly' }, retryable: true };
    }
    const attempts = challenge.attempts + 1;
    if (outcome.valid) {
      await stores.challenges.markValid(challenge.id, clock.now());
      await stores.authorizations.updateStatus(authorization.id, ['pending'], 'valid');
      return;
    }
    if (outcome.retryable && attempts < settings.maxAttempts) {
      const backoffMs = Math.min(2 ** (attempts - 1) * SECOND, 60 * SECOND);
      await stores.challenges.recordRetry(challenge.id, attempts, new Date(clock.now().getTime() + backoffMs), outcome.problem);
      return;
    }
    await stores.challenges.markInvalid(challenge.id, outcome.problem);
    await stores.authorizations.updateStatus(authorization.id, ['pending'], 'invalid');
  }
}
