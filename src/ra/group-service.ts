import type { Actor } from '../core/audit.js';
import type { Clock } from '../core/clock.js';
import type { DomainEvent, DomainEvents } from '../core/events.js';
import type { Group } from '../core/group.js';
import type { Queryable } from '../db/database.js';
import { refusedChanges, type PolicyActor } from '../policy/group-permissions.js';
import type { PolicyCeiling } from '../policy/group-policy.js';
import { validateGroups } from '../policy/group-validation.js';
import { diffGroups, type GroupChange } from '../policy/policy-diff.js';
import type { PolicyIssue } from '../policy/policy-issue.js';

/** The slice of the groups table a policy change uses (db/ GroupRepository). */
export interface GroupStore {
  list(): Promise<Group[]>;
  find(name: string): Promise<Group | undefined>;
  /** Serializes policy changes until the transaction ends. */
  lockForChange(): Promise<void>;
  insert(group: Group, at: Date): Promise<void>;
  update(group: Group, at: Date): Promise<void>;
  remove(name: string): Promise<void>;
  /** Accounts and EAB credentials naming each group (those named by none left out). */
  usage(names: readonly string[]): Promise<Map<string, { accounts: number; credentials: number }>>;
}

/** What applying a policy did, or would do (dry run), or why it may not. */
export type ApplyOutcome =
  | { ok: true; changes: GroupChange[]; applied: boolean }
  | { ok: false; issues: PolicyIssue[]; changes: GroupChange[] };

/**
 * Groups as a whole policy (policy as code: `chancery policy export` / `apply`, later the admin API):
 * checked as a set (policy/group-validation.ts) and against who is changing it (group-permissions.ts),
 * then applied in one transaction, under a lock that serializes policy changes, with one `group.changed`
 * event per group in that transaction (the audit entry, and the NOTIFY that makes every instance's
 * GroupDirectory drop its snapshot). A policy with any issue changes nothing.
 */
export class GroupService {
  constructor(
    private readonly deps: {
      store: GroupStore;
      transaction<T>(fn: (store: GroupStore, tx: Queryable) => Promise<T>): Promise<T>;
      events: DomainEvents<Queryable>;
      clock: Clock;
      ceiling: PolicyCeiling;
    },
  ) {}

  list(): Promise<Group[]> {
    return this.deps.store.list();
  }

  /**
   * Makes the stored groups exactly `groups`: creates, updates and removes. `role` is what the acting
   * principal may do (an admin unless said otherwise); `actor` names it in the events. With `dryRun` the
   * same checks run and the changes are computed, and nothing is written.
   */
  async apply(groups: readonly Group[], options: { actor: Actor; role?: PolicyActor; dryRun?: boolean }): Promise<ApplyOutcome> {
    const { ceiling, events, clock } = this.deps;
    const issues = validateGroups(groups, ceiling);
    if (issues.length > 0) return { ok: false, issues, changes: [] };
    const raised: DomainEvent[] = [];
    const outcome = await this.deps.transaction(async (store, tx): Promise<ApplyOutcome> => {
      await store.lockForChange();
      const before = await store.list();
      const changes = diffGroups(before, groups);
      const refused = [...refusedChanges(options.role ?? { role: 'admin' }, before, groups, ceiling), ...(await this.inUse(store, changes))];
      if (refused.length > 0) return { ok: false, issues: refused, changes };
      if (options.dryRun === true || changes.length === 0) return { ok: true, changes, applied: false };
      const at = clock.now();
      for (const change of changes) {
        if (change.change === 'created') await store.insert(change.after!, at);
        else if (change.change === 'updated') await store.update(change.after!, at);
        else await store.remove(change.name);
        const event: DomainEvent = {
          type: 'group.changed',
          group: change.name,
          change: change.change,
          ...(change.before ? { before: change.before } : {}),
          ...(change.after ? { after: { ...change.after, updatedAt: at } } : {}),
          actor: options.actor,
        };
        await events.committing(event, tx);
        raised.push(event);
      }
      return { ok: true, changes, applied: true };
    });
    for (const event of raised) await events.committed(event);
    return outcome;
  }

  /** group-in-use: a group that accounts or credentials name stays (their issuance depends on it). */
  private async inUse(store: GroupStore, changes: readonly GroupChange[]): Promise<PolicyIssue[]> {
    const removed = changes.filter((c) => c.change === 'removed').map((c) => c.name);
    const usage = await store.usage(removed);
    return [...usage].map(([name, { accounts, credentials }]) => ({
      path: ['groups'],
      rule: 'group-in-use' as const,
      message: `group "${name}" is left out but ${accounts} account(s) and ${credentials} EAB credential(s) belong to it: keep it in the file`,
    }));
  }
}
