import type { Clock } from '../core/clock.js';
import { MINUTE } from '../core/clock.js';
import type { AdminAuthFailure, DomainEvents } from '../core/events.js';
import type { Logger } from '../core/logger.js';
import type { Queryable } from '../db/database.js';

interface Window {
  startedAt: number;
  failures: number;
  /** Failures of this window not yet reported by an event. */
  unreported: number;
  reason: AdminAuthFailure;
}

/** Sources tracked at most (each entry lives a minute); beyond it the oldest window is dropped. */
const MAX_SOURCES = 10_000;

/**
 * Failed admin API authentications, per source address, in one-minute windows. A source past
 * `maxPerMinute` failures is refused before its credential is even looked at until its window ends, so a
 * token cannot be guessed at speed. Each source raises `admin.auth.failed` at most once a minute: its
 * first failure at once, the rest of that minute together when the minute is over (the audit log records
 * them without one entry per guess). Per instance and bounded by a minute of state: a limiter needs no
 * agreement between instances (DESIGN.md rule 7 allows a short-lived in-process entry).
 */
export class AuthFailureLimiter {
  private readonly windows = new Map<string, Window>();
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly deps: {
      clock: Clock;
      events: DomainEvents<Queryable>;
      /** Runs fn in a transaction of its own: the event's audit entry is written there (DESIGN.md rule 8). */
      transaction: <T>(fn: (tx: Queryable) => Promise<T>) => Promise<T>;
      maxPerMinute: number;
      logger?: Logger;
    },
  ) {
    this.timer = setInterval(() => void this.flush(), 10_000);
    this.timer.unref();
  }

  /** Whether the source has failed too often this minute: refuse it without checking anything. */
  blocked(source: string): boolean {
    const window = this.current(source);
    return window !== undefined && window.failures >= this.deps.maxPerMinute;
  }

  /** Seconds until a blocked source may try again. */
  retryAfterSeconds(source: string): number {
    const window = this.windows.get(source);
    return window === undefined ? 1 : Math.max(1, Math.ceil((window.startedAt + MINUTE - this.deps.clock.now().getTime()) / 1000));
  }

  async failed(source: string, reason: AdminAuthFailure): Promise<void> {
    const now = this.deps.clock.now().getTime();
    let window = this.current(source);
    if (window === undefined) {
      await this.report(source); // what is left of its previous window
      window = { startedAt: now, failures: 1, unreported: 0, reason };
      this.windows.delete(source);
      if (this.windows.size >= MAX_SOURCES) this.windows.delete(this.windows.keys().next().value as string);
      this.windows.set(source, window);
      await this.raise(source, 1, reason);
      return;
    }
    window.failures += 1;
    window.unreported += 1;
    window.reason = reason;
  }

  /** Reports the failures of windows that are over. */
  async flush(): Promise<void> {
    const now = this.deps.clock.now().getTime();
    for (const [source, window] of [...this.windows]) {
      if (now - window.startedAt < MINUTE) continue;
      await this.report(source);
      this.windows.delete(source);
    }
  }

  stop(): void {
    clearInterval(this.timer);
  }

  private current(source: string): Window | undefined {
    const window = this.windows.get(source);
    return window !== undefined && this.deps.clock.now().getTime() - window.startedAt < MINUTE ? window : undefined;
  }

  private async report(source: string): Promise<void> {
    const window = this.windows.get(source);
    if (window === undefined || window.unreported === 0) return;
    const { unreported, reason } = window;
    window.unreported = 0;
    await this.raise(source, unreported, reason);
  }

  private async raise(source: string, failures: number, reason: AdminAuthFailure): Promise<void> {
    try {
      // No change to attach it to: the refusal's entry is its own transaction's, then its followers run.
      const event = { type: 'admin.auth.failed', source, failures, at: this.deps.clock.now(), reason } as const;
      await this.deps.transaction((tx) => this.deps.events.committing(event, tx));
      await this.deps.events.committed(event);
    } catch (error) {
      this.deps.logger?.error({ err: error, source }, 'recording failed admin authentications failed');
    }
  }
}
