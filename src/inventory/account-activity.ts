import type { Account } from '../core/account.js';
import { HOUR, MINUTE, type Clock } from '../core/clock.js';
import { CaError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { Page } from '../core/page.js';
import type { Scope } from '../policy/admin-rbac.js';
import { scopeGroups } from './scope-groups.js';

/** What account activity needs of the database (db/repositories/account-activity-repository.ts). */
export interface AccountActivityStore {
  recordSeen(seen: readonly { accountId: string; at: Date }[]): Promise<number>;
  notSeenSince(cutoff: Date, groups: readonly string[] | undefined, page: { cursor?: string; limit: number }): Promise<Page<{ account: Account; lastSeenAt?: Date }>>;
}

/** How often an instance writes the sightings it gathered. */
export const LAST_SEEN_FLUSH_MS = MINUTE;
/** An account's recorded sighting is renewed at most this often. */
export const LAST_SEEN_RESOLUTION_MS = HOUR;

/**
 * When each ACME account was last seen, without a write per request: the ACME layer reports every account
 * that authenticates a request (seen(): a map lookup, no I/O, off the request's path), each instance gathers
 * the accounts it has not recorded within the hour, and writes them in one statement a minute (flush()). The
 * statement itself skips accounts recorded within the hour by any instance, so an account's row changes at
 * most once an hour whatever the number of instances (DESIGN.md rule 7: nothing lives only here but what
 * a crash may lose — at most a minute of sightings).
 *
 * This runs on every instance, not under a job lease: each instance holds its own sightings.
 */
export class AccountActivity {
  /** Sightings not written yet: account id -> when it was first seen since the last flush. */
  private pending = new Map<string, Date>();
  /** Account id -> when this instance last wrote (or learned it need not write) its sighting, ms. */
  private readonly recorded = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> | undefined;

  constructor(private readonly deps: { store: AccountActivityStore; clock: Clock; logger?: Logger }) {}

  /** An account authenticated a request. Cheap enough for every request: two map lookups. */
  seen(accountId: string): void {
    if (this.pending.has(accountId)) return;
    const now = this.deps.clock.now();
    const last = this.recorded.get(accountId);
    if (last !== undefined && now.getTime() - last < LAST_SEEN_RESOLUTION_MS) return;
    this.pending.set(accountId, now);
  }

  /** Writes the gathered sightings (one statement); safe to call at any time, and once more at close. */
  flush(): Promise<void> {
    this.flushing ??= this.write().finally(() => (this.flushing = undefined));
    return this.flushing;
  }

  /** Starts the once-a-minute flush on this instance. */
  start(): void {
    if (this.timer !== undefined) return;
    this.timer = setInterval(() => {
      this.flush().catch((error: unknown) => this.deps.logger?.warn({ err: error }, 'could not record when accounts were last seen; retrying'));
    }, LAST_SEEN_FLUSH_MS);
    this.timer.unref();
  }

  /** Stops the timer and writes what is left. */
  async stop(): Promise<void> {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    await this.flush();
    // Sightings noted while a flush already in flight was writing wait for the next one: this one.
    if (this.pending.size > 0) await this.flush();
  }

  /**
   * Valid accounts not seen for `days` days (an account never seen counts from its creation), least
   * recently seen first, within the caller's scope.
   */
  notSeen(scope: Scope, filter: { days: number; group?: string }, page: { cursor?: string; limit: number }): Promise<Page<{ account: Account; lastSeenAt?: Date }>> {
    if (!Number.isInteger(filter.days) || filter.days < 1 || filter.days > 3650) throw new CaError('malformed', 'days must be an integer from 1 to 3650');
    const cutoff = new Date(this.deps.clock.now().getTime() - filter.days * 24 * HOUR);
    return this.deps.store.notSeenSince(cutoff, scopeGroups(scope, filter.group), page);
  }

  private async write(): Promise<void> {
    if (this.pending.size === 0) return;
    const batch = this.pending;
    this.pending = new Map();
    const seen = [...batch].map(([accountId, at]) => ({ accountId, at }));
    try {
      await this.deps.store.recordSeen(seen);
    } catch (error) {
      // Kept for the next flush (a later sighting of the same account does not replace the earlier one).
      for (const [accountId, at] of batch) if (!this.pending.has(accountId)) this.pending.set(accountId, at);
      throw error;
    }
    // Written, or already recorded within the hour by another instance: either way nothing to do for an hour.
    for (const { accountId, at } of seen) this.recorded.set(accountId, at.getTime());
    const horizon = this.deps.clock.now().getTime() - LAST_SEEN_RESOLUTION_MS;
    for (const [accountId, at] of this.recorded) if (at < horizon) this.recorded.delete(accountId);
  }
}
