import { inScope, type Scope } from '../policy/admin-rbac.js';

/**
 * The groups a report reads: an asked-for group within the caller's scope (one outside it reads nothing,
 * never revealing that it exists), or the whole scope (undefined: every group, and certificates in none).
 */
export function scopeGroups(scope: Scope, group: string | undefined): readonly string[] | undefined {
  if (group === undefined) return scope === 'all' ? undefined : scope;
  return inScope(scope, group) ? [group] : [];
}
