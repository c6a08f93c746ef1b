import type { Group, GroupPolicy } from '../core/group.js';
import { ALL_CHALLENGE_TYPES, formatDuration, type PolicyCeiling } from './group-policy.js';
import { KEY_TYPES } from '../core/group.js';
import type { PolicyIssue } from './policy-issue.js';

/**
 * Who may change what in the groups (decided here; the admin API enforces it with its roles):
 * - an admin (the central team) may change anything within the ceiling: create and remove groups, set
 *   identifier scopes and pre-approved names, set any limit;
 * - a group's own admin may change only that group, and there only narrow it: identifier scopes and
 *   pre-approved names stay as an admin set them, and every limit may only get stricter than it was
 *   (fewer challenge types, key types, curves or profiles; a larger RSA minimum; a shorter maximum
 *   validity; wildcards off). Owners (contacts) and default labels describe the group, not its reach: its
 *   admin keeps them current.
 * A field left out is the ceiling, so "stricter than it was" compares what each side allows in effect.
 */
export type PolicyActor = { role: 'admin' } | { role: 'group-admin'; group: string };

/** Why `actor` may not turn `before` into `after` (every group, as a whole set); empty when it may. */
export function refusedChanges(actor: PolicyActor, before: readonly Group[], after: readonly Group[], ceiling: PolicyCeiling): PolicyIssue[] {
  if (actor.role === 'admin') return [];
  const issues: PolicyIssue[] = [];
  const old = new Map(before.map((g) => [g.name, g]));
  const now = new Map(after.map((g) => [g.name, g]));
  for (const name of new Set([...old.keys(), ...now.keys()])) {
    const was = old.get(name);
    const is = now.get(name);
    if (was !== undefined && is !== undefined && same(was, is)) continue;
    const path = ['groups', name];
    if (name !== actor.group) {
      const what = was === undefined ? 'create' : is === undefined ? 'remove' : 'change';
      issues.push({ path, rule: 'admin-only', message: `only an admin may ${what} group "${name}"; a group admin of "${actor.group}" may change only that group` });
    } else if (was === undefined || is === undefined) {
      issues.push({ path, rule: 'admin-only', message: `only an admin may ${was === undefined ? 'create' : 'remove'} group "${name}"` });
    } else {
      issues.push(...narrowingOnly(name, was.policy, is.policy, ceiling));
    }
  }
  return issues;
}

function narrowingOnly(name: string, was: GroupPolicy, is: GroupPolicy, ceiling: PolicyCeiling): PolicyIssue[] {
  const issues: PolicyIssue[] = [];
  const at = (field: string): (string | number)[] => ['groups', name, field];
  const adminOnly = (field: string, what: string): void =>
    void issues.push({ path: at(field), rule: 'admin-only', message: `only an admin sets the ${what} of group "${name}"` });
  const wider = (field: string, message: string): void =>
    void issues.push({ path: at(field), rule: 'narrowing-only', message: `${message}: a group admin may only narrow the group within what an admin gave it` });

  if (!sameJson(was.identifiers, is.identifiers)) adminOnly('identifiers', 'identifier scopes');
  if (!sameJson(was.preapproved, is.preapproved)) adminOnly('preapproved', 'pre-approved names');
  if (!(was.wildcards ?? true) && (is.wildcards ?? true)) wider('wildcards', 'wildcards were off');
  const subset = <T extends string>(field: string, before: readonly T[] | undefined, after: readonly T[] | undefined, all: readonly T[]): void => {
    const allowed = new Set(before ?? all);
    const added = (after ?? all).filter((item) => !allowed.has(item));
    if (added.length) wider(field, `${field} adds ${added.join(', ')}`);
  };
  subset('challengeTypes', was.challengeTypes, is.challengeTypes, ALL_CHALLENGE_TYPES);
  subset('keyTypes', was.keyTypes, is.keyTypes, KEY_TYPES);
  subset('ecdsaCurves', was.ecdsaCurves, is.ecdsaCurves, ceiling.keys.allowedCurves);
  subset('profiles', was.profiles, is.profiles, ceiling.profileIds);
  const minBefore = was.rsaMinBits ?? ceiling.keys.minRsaBits;
  const minAfter = is.rsaMinBits ?? ceiling.keys.minRsaBits;
  if (minAfter < minBefore) wider('rsaMinBits', `rsaMinBits lowered from ${minBefore} to ${minAfter}`);
  const maxBefore = was.maxValidityMs ?? ceiling.maxValidityMs;
  const maxAfter = is.maxValidityMs ?? ceiling.maxValidityMs;
  if (maxAfter > maxBefore) wider('maxValidity', `maxValidity raised from ${formatDuration(maxBefore)} to ${formatDuration(maxAfter)}`);
  return issues;
}

function same(a: Group, b: Group): boolean {
  return sameJson(a.contacts, b.contacts) && sameJson(a.policy, b.policy);
}

/** Structural equality of plain data (key order ignored). */
export function sameJson(a: unknown, b: unknown): boolean {
  return canonicalJson(a) === canonicalJson(b);
}

function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (typeof value === 'object' && value !== null) {
    return `{${Object.keys(value)
      .sort()
      .filter((k) => (value as Record<string, unknown>)[k] !== undefined)
      .map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(value) ?? 'undefined';
}
