import { DEFAULT_GROUP, type Group } from '../core/group.js';
import type { Identifier } from '../core/identifier.js';
import { canonicalIp, compileScope, describeScope, scopeCovers, scopeReaches, scopesOverlap } from './identifier-scope.js';
import { formatDuration, type PolicyCeiling } from './group-policy.js';
import type { PolicyIssue } from './policy-issue.js';

/**
 * The rules a whole set of groups must meet together, beyond each field's form (policy-document.ts):
 * - narrowing-only: every limit within the ceiling (the configuration's profiles, their longest validity,
 *   the certificate key policy). A group that says more than the ceiling would mislead its readers; the
 *   ceiling would win at issuance anyway.
 * - scope-overlap: no two groups hold overlapping identifier scopes unless both mark them shared — a name
 *   belongs to one department unless the central team says otherwise, on both sides.
 * - preapproved-in-scope: a pre-approved name is one the group may order (within its scopes; for a group
 *   without scopes, in no other group's).
 * - default-group: the `default` group exists (accounts without EAB belong to it).
 * Pure: the same set gives the same issues, in a stable order.
 */
export function validateGroups(groups: readonly Group[], ceiling: PolicyCeiling): PolicyIssue[] {
  const issues: PolicyIssue[] = [];
  if (!groups.some((g) => g.name === DEFAULT_GROUP)) {
    issues.push({ path: ['groups'], rule: 'default-group', message: `the "${DEFAULT_GROUP}" group must stay: accounts made without EAB belong to it` });
  }
  for (const group of groups) issues.push(...narrowingIssues(group, ceiling));
  issues.push(...overlapIssues(groups));
  issues.push(...preapprovedIssues(groups));
  return issues;
}

function narrowingIssues(group: Group, ceiling: PolicyCeiling): PolicyIssue[] {
  const issues: PolicyIssue[] = [];
  const p = group.policy;
  const at = (...rest: (string | number)[]): (string | number)[] => ['groups', group.name, ...rest];
  const widen = (path: (string | number)[], message: string): void =>
    void issues.push({ path, rule: 'narrowing-only', message: `${message}: a group may only narrow the global limits in configuration` });
  if (p.maxValidityMs !== undefined && p.maxValidityMs > ceiling.maxValidityMs) {
    widen(at('maxValidity'), `maxValidity ${formatDuration(p.maxValidityMs)} is longer than the longest profile validity, ${formatDuration(ceiling.maxValidityMs)}`);
  }
  if (p.rsaMinBits !== undefined && (p.rsaMinBits < ceiling.keys.minRsaBits || p.rsaMinBits > ceiling.keys.maxRsaBits)) {
    widen(at('rsaMinBits'), `rsaMinBits ${p.rsaMinBits} is outside ${ceiling.keys.minRsaBits}-${ceiling.keys.maxRsaBits}, the RSA sizes certificate keys may have`);
  }
  p.ecdsaCurves?.forEach((curve, index) => {
    if (!(ceiling.keys.allowedCurves as readonly string[]).includes(curve)) {
      widen(at('ecdsaCurves', index), `curve ${curve} is not one certificate keys may use (${ceiling.keys.allowedCurves.join(', ')})`);
    }
  });
  p.profiles?.forEach((id, index) => {
    if (!ceiling.profileIds.includes(id)) widen(at('profiles', index), `profile ${id} is not offered (${ceiling.profileIds.join(', ')})`);
  });
  return issues;
}

function overlapIssues(groups: readonly Group[]): PolicyIssue[] {
  const issues: PolicyIssue[] = [];
  const scoped = groups.flatMap((group) => (group.policy.identifiers ?? []).map((scope, index) => ({ group: group.name, index, scope: compileScope(scope) })));
  for (const [i, a] of scoped.entries()) {
    for (const b of scoped.slice(i + 1)) {
      if (a.group === b.group || !scopesOverlap(a.scope, b.scope) || (a.scope.shared && b.scope.shared)) continue;
      // Reported on the later one, where the reader of a diff most likely added it.
      const unshared = [a, b].filter((s) => !s.scope.shared).map((s) => `group "${s.group}"`);
      issues.push({
        path: ['groups', b.group, 'identifiers', b.index],
        rule: 'scope-overlap',
        message: `${describeScope(b.scope)} of group "${b.group}" overlaps ${describeScope(a.scope)} of group "${a.group}": groups may share names only when both mark the scope shared (not marked in ${unshared.join(' and ')})`,
      });
    }
  }
  return issues;
}

function preapprovedIssues(groups: readonly Group[]): PolicyIssue[] {
  const issues: PolicyIssue[] = [];
  const claims = groups.flatMap((group) => (group.policy.identifiers ?? []).map((scope) => ({ group: group.name, scope: compileScope(scope) })));
  for (const group of groups) {
    const own = group.policy.identifiers?.map(compileScope);
    group.policy.preapproved?.forEach((name, index) => {
      const identifier: Identifier = canonicalIp(name) === undefined ? { type: 'dns', value: name } : { type: 'ip', value: name };
      const path = ['groups', group.name, 'preapproved', index];
      if (own !== undefined) {
        if (!own.some((scope) => scopeCovers(scope, identifier))) {
          issues.push({ path, rule: 'preapproved-in-scope', message: `pre-approved ${name} is outside the identifier scopes of group "${group.name}"` });
        }
        return;
      }
      const claim = claims.find((c) => c.group !== group.name && scopeReaches(c.scope, identifier));
      if (claim) {
        issues.push({
          path,
          rule: 'preapproved-in-scope',
          message: `pre-approved ${name} is in the scope ${describeScope(claim.scope)} of group "${claim.group}", which group "${group.name}" (no scopes of its own) may not order`,
        });
      }
    });
  }
  return issues;
}
