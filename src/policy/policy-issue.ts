/**
 * Something wrong with a policy (a file being applied, a group being changed): where (a path into the
 * policy document, e.g. ["groups", "payments", "identifiers", 0, "suffix"]), which rule refused it, and a
 * message a person can act on. The CLI turns the path into a line of the file.
 */
export interface PolicyIssue {
  path: readonly (string | number)[];
  rule: PolicyRule;
  message: string;
}

/**
 * The rules a policy is checked against. Field names are the field's own form rule; the others:
 * - `document`: the file's shape (a mapping with `groups`);
 * - `unknown-key`: a key the format does not have (a typo would otherwise be silently ignored);
 * - `narrowing-only`: a group may only narrow the global limits in configuration, never widen them;
 * - `scope-overlap`: two groups may hold overlapping identifier scopes only when both mark them shared;
 * - `preapproved-in-scope`: a pre-approved name must be one the group may order;
 * - `default-group`: the `default` group (accounts without EAB) is always there;
 * - `group-in-use`: a group that accounts or EAB credentials name cannot be removed;
 * - `admin-only`: what only an admin may change (groups, identifier scopes, pre-approved names);
 * - `narrowing-only` (again) for a group's own admin: only narrower than the group was.
 */
export type PolicyRule =
  | 'document'
  | 'unknown-key'
  | 'group-name'
  | 'contacts'
  | 'identifiers'
  | 'wildcards'
  | 'challengeTypes'
  | 'keyTypes'
  | 'rsaMinBits'
  | 'ecdsaCurves'
  | 'maxValidity'
  | 'profiles'
  | 'labels'
  | 'preapproved'
  | 'narrowing-only'
  | 'scope-overlap'
  | 'preapproved-in-scope'
  | 'default-group'
  | 'group-in-use'
  | 'admin-only';

/** "groups.payments.identifiers[0].suffix" */
export function formatPath(path: readonly (string | number)[]): string {
  return path.map((part, i) => (typeof part === 'number' ? `[${part}]` : i === 0 ? part : `.${part}`)).join('');
}
