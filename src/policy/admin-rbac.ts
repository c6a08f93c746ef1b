import type { AdminPrincipal, AdminRole } from '../core/principal.js';

/**
 * Who may do what on the admin API: one pure table, role x action -> grant (the admin wire layer asks it
 * before every handler and scopes what the handler reads by the answer; DESIGN.md rule 8).
 * - admin: everything, every group.
 * - group-admin: reads and acts on its own groups only — their certificates, EAB keys, accounts, the
 *   group's policy (narrowing only: policy/group-permissions.ts) and group-admin tokens for those groups.
 * - auditor: reads everything, changes nothing.
 * `own-groups` grants the action on resources of the principal's groups; another group's resource must
 * then look exactly like one that does not exist (404), so a group-admin learns nothing about it.
 */
export type AdminAction =
  | 'self.read'
  | 'token.list'
  | 'token.create'
  | 'token.revoke'
  | 'operator.list'
  | 'operator.bind'
  | 'operator.unbind'
  | 'group.list'
  | 'group.read'
  | 'policy.export'
  | 'policy.apply'
  | 'policy.replace'
  | 'eab.list'
  | 'eab.create'
  | 'eab.revoke'
  | 'certificate.list'
  | 'certificate.read'
  | 'certificate.revoke'
  | 'account.list'
  | 'account.read'
  | 'account.deactivate'
  | 'audit.read'
  | 'certificate.label'
  | 'report.read'
  | 'webhook.list'
  | 'webhook.create'
  | 'webhook.remove'
  | 'incident.list'
  | 'incident.read'
  | 'incident.declare'
  | 'incident.close';

export type Grant = 'any' | 'own-groups' | 'none';

/** Reads: an auditor's whole remit. */
const READS = [
  'self.read',
  'token.list',
  'operator.list',
  'group.list',
  'group.read',
  'policy.export',
  'eab.list',
  'certificate.list',
  'certificate.read',
  'account.list',
  'account.read',
  'audit.read',
  'report.read',
  'webhook.list',
  'incident.list',
  'incident.read',
] as const satisfies readonly AdminAction[];

export const ADMIN_ACTIONS: readonly AdminAction[] = [
  ...READS,
  'token.create',
  'token.revoke',
  'operator.bind',
  'operator.unbind',
  'policy.apply',
  'policy.replace',
  'eab.create',
  'eab.revoke',
  'certificate.revoke',
  'account.deactivate',
  'certificate.label',
  'webhook.create',
  'webhook.remove',
  'incident.declare',
  'incident.close',
];

function table(grant: (action: AdminAction) => Grant): Record<AdminAction, Grant> {
  return Object.fromEntries(ADMIN_ACTIONS.map((action) => [action, grant(action)])) as Record<AdminAction, Grant>;
}

/**
 * Incidents span groups (one key, one issuer, a whole estate): an admin declares and closes them, an
 * auditor follows them; a group-admin hears of its own certificates through the owners' notifications.
 */
const INCIDENT_ACTIONS: readonly AdminAction[] = ['incident.list', 'incident.read', 'incident.declare', 'incident.close'];

/**
 * An admin's alone: operators (binding a client certificate grants a role) and replacing the whole policy
 * (every group at once); a group-admin narrows its own group with policy.apply.
 */
const ADMIN_ONLY: readonly AdminAction[] = ['operator.list', 'operator.bind', 'operator.unbind', 'policy.replace', ...INCIDENT_ACTIONS];

export const RBAC: Readonly<Record<AdminRole, Readonly<Record<AdminAction, Grant>>>> = {
  admin: table(() => 'any'),
  auditor: table((action) => ((READS as readonly AdminAction[]).includes(action) ? 'any' : 'none')),
  'group-admin': table((action) => (action === 'self.read' ? 'any' : ADMIN_ONLY.includes(action) ? 'none' : 'own-groups')),
};

/** What the principal may do: refused, or allowed over every group or over a list of groups. */
export type Decision = { allowed: false } | { allowed: true; scope: Scope };
/** `all`: every group (and resources in none); otherwise only resources of these groups. */
export type Scope = 'all' | readonly string[];

export function decide(principal: Pick<AdminPrincipal, 'role' | 'groups'>, action: AdminAction): Decision {
  const grant = RBAC[principal.role][action];
  if (grant === 'none') return { allowed: false };
  return { allowed: true, scope: grant === 'any' ? 'all' : [...principal.groups] };
}

/** Whether a resource of `group` (undefined: in no group) is within `scope`. */
export function inScope(scope: Scope, group: string | undefined): boolean {
  return scope === 'all' || (group !== undefined && scope.includes(group));
}

/** The most a token may live (the bound: a year), whatever configuration says. */
export const MAX_TOKEN_LIFETIME_MS = 366 * 24 * 60 * 60 * 1000;

export interface TokenRequest {
  role: AdminRole;
  groups: readonly string[];
  expiresAt: Date;
}

/**
 * Why `creator` may not mint this token (escalation: a role above its own, groups beyond its own, a lifetime
 * beyond its own), or undefined. Shape errors (a group-admin token without groups) are bad input, checked
 * by the service; this is the privilege rule alone. An admin may mint any token; an auditor none (the table).
 */
export function tokenEscalation(creator: Pick<AdminPrincipal, 'role' | 'groups' | 'expiresAt'>, request: TokenRequest): string | undefined {
  if (creator.role === 'admin') return undefined;
  if (creator.role !== 'group-admin') return 'this role may not create tokens';
  if (request.role !== 'group-admin') return `a group-admin may create only group-admin tokens, not ${request.role} tokens`;
  const foreign = request.groups.filter((group) => !creator.groups.includes(group));
  if (foreign.length > 0) return `a group-admin may create tokens only for its own groups (${creator.groups.join(', ')})`;
  if (creator.expiresAt !== undefined && request.expiresAt.getTime() > creator.expiresAt.getTime()) {
    return `a group-admin may create tokens expiring no later than its own credential (${creator.expiresAt.toISOString()})`;
  }
  return undefined;
}
