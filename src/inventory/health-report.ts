import { DAY, type Clock } from '../core/clock.js';
import { CaError } from '../core/errors.js';
import type { GroupHealth, HealthCondition, HealthEntry, OverdueAccount } from '../core/health.js';
import type { Page } from '../core/page.js';
import type { Scope } from '../policy/admin-rbac.js';
import { scopeGroups } from './scope-groups.js';

interface HealthWindow {
  now: Date;
  soon: Date;
  since: Date;
}

/** What the report needs of the database (db/repositories/health-repository.ts). */
export interface HealthStore {
  certificates(condition: HealthCondition, window: HealthWindow, groups: readonly string[] | undefined, page: { cursor?: string; limit: number }): Promise<Page<HealthEntry>>;
  summary(window: HealthWindow, groups: readonly string[] | undefined): Promise<GroupHealth[]>;
  accounts(window: HealthWindow, groups: readonly string[] | undefined, page: { cursor?: string; limit: number }): Promise<Page<OverdueAccount>>;
  asOf(): Promise<Date | undefined>;
}

/** The report's N when none is asked for: expiring within, and expired in the last, 14 days. */
export const DEFAULT_HEALTH_DAYS = 14;

export interface HealthSummary {
  at: Date;
  days: number;
  /** How far the health detector had looked when the report was read (undefined: it has not run yet). */
  asOf?: Date;
  groups: GroupHealth[];
}

/**
 * Renewal health (`GET /admin/v1/reports/health`, `chancery report health`): by group with its owners, the
 * certificates nobody is renewing (core/health.ts) and the accounts that hold them with when each was last
 * seen. Read from what the health detector recorded (src/inventory/health-detector.ts, every minute) and
 * checked against each certificate as it is now; `asOf` says how fresh that is.
 */
export class HealthReport {
  constructor(private readonly deps: { store: HealthStore; clock: Clock }) {}

  async summary(scope: Scope, filter: { days?: number; group?: string }): Promise<HealthSummary> {
    const { window, days } = this.window(filter.days);
    const [groups, asOf] = await Promise.all([this.deps.store.summary(window, scopeGroups(scope, filter.group)), this.deps.store.asOf()]);
    return { at: window.now, days, ...(asOf === undefined ? {} : { asOf }), groups };
  }

  certificates(scope: Scope, condition: HealthCondition, filter: { days?: number; group?: string }, page: { cursor?: string; limit: number }): Promise<Page<HealthEntry>> {
    return this.deps.store.certificates(condition, this.window(filter.days).window, scopeGroups(scope, filter.group), page);
  }

  accounts(scope: Scope, filter: { days?: number; group?: string }, page: { cursor?: string; limit: number }): Promise<Page<OverdueAccount>> {
    return this.deps.store.accounts(this.window(filter.days).window, scopeGroups(scope, filter.group), page);
  }

  private window(asked: number | undefined): { window: HealthWindow; days: number } {
    const days = asked ?? DEFAULT_HEALTH_DAYS;
    if (!Number.isInteger(days) || days < 1 || days > 3650) throw new CaError('malformed', 'days must be an integer from 1 to 3650');
    const now = this.deps.clock.now();
    return { window: { now, soon: new Date(now.getTime() + days * DAY), since: new Date(now.getTime() - days * DAY) }, days };
  }
}
