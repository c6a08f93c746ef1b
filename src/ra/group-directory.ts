import type { Clock } from '../core/clock.js';
import { CaError } from '../core/errors.js';
import type { Group } from '../core/group.js';
import { compileGroups, groupOf, type GroupRules, type GroupSet } from '../policy/group-policy.js';

/** The one read the directory makes (db/ GroupRepository.list): every group. */
export interface GroupSource {
  list(): Promise<Group[]>;
}

/** The LISTEN/NOTIFY channel a policy change announces itself on (in its transaction: heard once committed). */
export const GROUPS_CHANNEL = 'chancery_groups';

/**
 * How long a snapshot is trusted while this instance is not hearing other instances' changes (LISTEN off,
 * or its connection lost and not yet back): a policy change made elsewhere takes effect here within this.
 */
export const UNHEARD_SNAPSHOT_MS = 5_000;

/**
 * Every group's policy, compiled, as the ACME hot path reads it: newOrder and finalize find the account's
 * group without a database round trip. Groups are few and change rarely (a policy apply), so the whole set
 * is one snapshot, loaded on first use. It stays honest across instances (DESIGN.md rule 7): a policy change
 * NOTIFYs GROUPS_CHANNEL inside its transaction and every instance drops its snapshot when it hears it; while
 * an instance cannot hear (no LISTEN, or the connection lost), a snapshot is trusted for UNHEARD_SNAPSHOT_MS
 * only, and the snapshot is dropped again when hearing resumes (what was said meanwhile is lost).
 */
export class GroupDirectory {
  private snapshot: { set: GroupSet; loadedAt: number } | undefined;
  private loading: Promise<GroupSet> | undefined;
  /** Bumped by every invalidation: a load that started before one must not install what it read. */
  private generation = 0;
  private listening = false;

  constructor(private readonly deps: { source: GroupSource; clock: Clock }) {}

  /** The current snapshot (one read when there is none, shared by concurrent callers). */
  async current(): Promise<GroupSet> {
    const held = this.snapshot;
    if (held !== undefined && (this.listening || this.deps.clock.now().getTime() - held.loadedAt < UNHEARD_SNAPSHOT_MS)) return held.set;
    return this.load();
  }

  /**
   * The compiled policy of the account's (or credential's) group — `default` without one — with the whole
   * set (a group without scopes is checked against the others'). A group missing from the snapshot (created
   * a moment ago elsewhere, its NOTIFY still on the way) is read again once.
   */
  async rulesFor(subject: { group?: string }): Promise<{ set: GroupSet; rules: GroupRules }> {
    const name = groupOf(subject);
    let set = await this.current();
    let rules = set.rules(name);
    if (rules === undefined) {
      this.invalidate();
      set = await this.current();
      rules = set.rules(name);
    }
    // accounts.group_name references groups (0009_groups): a group with accounts cannot be removed.
    if (rules === undefined) throw new CaError('serverInternal', `group "${name}" is not in the database`);
    return { set, rules };
  }

  /** Drops the snapshot: a change was heard (or made here). */
  invalidate(): void {
    this.generation += 1;
    this.snapshot = undefined;
    this.loading = undefined;
  }

  /** Whether changes made elsewhere are being heard; any change of state drops the snapshot. */
  setListening(listening: boolean): void {
    this.listening = listening;
    this.invalidate();
  }

  private load(): Promise<GroupSet> {
    if (this.loading !== undefined) return this.loading;
    const generation = this.generation;
    const loadedAt = this.deps.clock.now().getTime();
    const loading = this.deps.source.list().then(
      (groups) => {
        const set = compileGroups(groups);
        if (this.generation === generation) {
          this.snapshot = { set, loadedAt };
          this.loading = undefined;
        }
        return set;
      },
      (error: unknown) => {
        if (this.loading === loading) this.loading = undefined;
        throw error;
      },
    );
    this.loading = loading;
    return loading;
  }
}
