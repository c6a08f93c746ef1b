import type { Actor } from '../core/audit.js';
import { CaError } from '../core/errors.js';
import type { Group } from '../core/group.js';
import type { Scope } from '../policy/admin-rbac.js';
import type { PolicyActor } from '../policy/group-permissions.js';
import { groupDocumentOf, parsePolicyDocument, policyDocumentOf, POLICY_DOCUMENT_VERSION } from '../policy/policy-document.js';
import type { PolicyIssue } from '../policy/policy-issue.js';
import type { ApplyOutcome } from '../ra/group-service.js';

/** The GroupService (ra/) as the admin API uses it. */
export interface GroupPolicyService {
  list(): Promise<Group[]>;
  apply(groups: readonly Group[], options: { actor: Actor; role?: PolicyActor; dryRun?: boolean }): Promise<ApplyOutcome>;
}

/** What a policy change did, or why it may not: `forbidden` when every issue is a permission rule (403). */
export type PolicyResult =
  | { ok: true; applied: boolean; changes: { group: string; change: 'created' | 'updated' | 'removed'; fields: { field: string; before?: unknown; after?: unknown }[] }[] }
  | { ok: false; forbidden: boolean; issues: PolicyIssue[] };

const PERMISSION_RULES = new Set(['admin-only', 'narrowing-only']);

/**
 * Groups and their policies as the admin API reads and changes them, on the departments' GroupService:
 * a group-admin sees its own groups and narrows one of them (policy/group-permissions.ts decides what
 * narrowing is); only an admin applies a whole document.
 */
export class PolicyAdmin {
  constructor(private readonly deps: { groups: GroupPolicyService }) {}

  async list(scope: Scope): Promise<Group[]> {
    return (await this.deps.groups.list()).filter((group) => scope === 'all' || scope.includes(group.name));
  }

  async get(name: string, scope: Scope): Promise<Group> {
    const group = (await this.list(scope)).find((g) => g.name === name);
    if (group === undefined) throw new CaError('notFound', `no group "${name.slice(0, 64)}"`);
    return group;
  }

  /** The policy document of the groups in scope, as `chancery policy export` writes it. */
  async export(scope: Scope): Promise<Record<string, unknown>> {
    return policyDocumentOf(await this.list(scope));
  }

  /** The policy document `name` has in a document (its `groups.<name>` member). */
  document(group: Group): Record<string, unknown> {
    return groupDocumentOf(group);
  }

  /** Makes the groups exactly what `document` says (an admin's: the table grants it to admins only). */
  async applyDocument(actor: Actor, document: unknown, dryRun: boolean): Promise<PolicyResult> {
    const parsed = parsePolicyDocument(document);
    if (parsed.groups === undefined) return { ok: false, forbidden: false, issues: parsed.issues };
    return this.result(await this.deps.groups.apply(parsed.groups, { actor, role: { role: 'admin' }, dryRun }));
  }

  /** Replaces one group's document (its contacts and policy); a group-admin's may only narrow it. */
  async applyGroup(actor: Actor, scope: Scope, name: string, groupDocument: unknown, dryRun: boolean): Promise<PolicyResult> {
    await this.get(name, scope);
    const parsed = parsePolicyDocument({ version: POLICY_DOCUMENT_VERSION, groups: { [name]: groupDocument } });
    const replacement = parsed.groups?.[0];
    if (replacement === undefined) return { ok: false, forbidden: false, issues: parsed.issues.map((issue) => ({ ...issue, path: issue.path.slice(2) })) };
    const all = await this.deps.groups.list();
    const groups = all.map((group) => (group.name === name ? replacement : group));
    const role: PolicyActor = scope === 'all' ? { role: 'admin' } : { role: 'group-admin', group: name };
    return this.result(await this.deps.groups.apply(groups, { actor, role, dryRun }));
  }

  private result(outcome: ApplyOutcome): PolicyResult {
    if (!outcome.ok) return { ok: false, forbidden: outcome.issues.every((issue) => PERMISSION_RULES.has(issue.rule)), issues: outcome.issues };
    return { ok: true, applied: outcome.applied, changes: outcome.changes.map((change) => ({ group: change.name, change: change.change, fields: change.fields.map((f) => ({ ...f })) })) };
  }
}
