import { REASON_CODES } from '../core/certificate.js';
import { CaError } from '../core/errors.js';
import { parseSerialText } from '../core/serial-number.js';
import { policyProblem } from './problem.js';
import { renderAccount, renderCertificate, renderEab, renderGroup, renderPage } from './render.js';
import { ADMIN_PREFIX, type AdminCall, type AdminOutcome, type AdminRoute } from './route.js';
import { pageOf } from './routes-identity.js';
import {
  accountSchema,
  certificateSchema,
  eabCreatedSchema,
  eabSchema,
  groupNameSchema,
  groupSchema,
  newEabSchema,
  page,
  params,
  policyChangeSchema,
  policyDocumentSchema,
  query,
  revokeSchema,
  serialParam,
} from './schemas.js';
import type { PolicyResult } from '../inventory/policy-admin.js';

const groupFilter = { group: groupNameSchema };

function serialOf(call: AdminCall): string {
  const serial = parseSerialText(call.params.serial ?? '');
  if (serial === undefined) throw new CaError('malformed', 'not a serial number');
  return serial;
}

function policyOutcome(result: PolicyResult): AdminOutcome {
  if (result.ok) return { body: { applied: result.applied, changes: result.changes } };
  const problem = policyProblem(
    result.forbidden ? 'this principal may not make these changes; nothing was changed' : 'the policy has problems; nothing was changed',
    result.issues.map((issue) => ({ path: [...issue.path], rule: issue.rule, message: issue.message })),
  );
  return { problem: result.forbidden ? { ...problem, status: 403, problem: { ...problem.problem, status: 403 } } : problem };
}

const dryRun = { dryRun: { type: 'boolean', default: false } };

/** Groups and policies, EAB credentials, certificates and accounts. */
export const estateRoutes: AdminRoute[] = [
  {
    method: 'GET',
    url: `${ADMIN_PREFIX}/groups`,
    operationId: 'listGroups',
    summary: 'Groups (departments) and their policies',
    tag: 'groups',
    action: 'group.list',
    schema: { response: { type: 'object', additionalProperties: false, properties: { items: { type: 'array', items: groupSchema } }, required: ['items'] } },
    handle: async (call, s) => ({ body: { items: (await s.policy.list(call.scope)).map((group) => renderGroup(group, s.policy.document(group))) } }),
  },
  {
    method: 'GET',
    url: `${ADMIN_PREFIX}/groups/:name`,
    operationId: 'getGroup',
    summary: 'One group and its policy',
    tag: 'groups',
    action: 'group.read',
    schema: { params: params({ name: groupNameSchema }), response: groupSchema },
    handle: async (call, s) => {
      const group = await s.policy.get(call.params.name!, call.scope);
      return { body: renderGroup(group, s.policy.document(group)) };
    },
  },
  {
    method: 'PUT',
    url: `${ADMIN_PREFIX}/groups/:name/policy`,
    operationId: 'applyGroupPolicy',
    summary: "Replace one group's contacts and policy (a group-admin may only narrow its own group)",
    tag: 'groups',
    action: 'policy.apply',
    schema: { params: params({ name: groupNameSchema }), querystring: { type: 'object', additionalProperties: false, properties: dryRun }, body: policyDocumentSchema, response: policyChangeSchema },
    handle: async (call, s) => policyOutcome(await s.policy.applyGroup(call.principal.actor, call.scope, call.params.name!, call.body, call.query.dryRun === true)),
  },
  {
    method: 'GET',
    url: `${ADMIN_PREFIX}/policy`,
    operationId: 'exportPolicy',
    summary: 'The policy document of the groups in scope (as `chancery policy export`)',
    tag: 'groups',
    action: 'policy.export',
    schema: { response: policyDocumentSchema },
    handle: async (call, s) => ({ body: await s.policy.export(call.scope) }),
  },
  {
    method: 'PUT',
    url: `${ADMIN_PREFIX}/policy`,
    operationId: 'applyPolicy',
    summary: 'Make the groups exactly what a policy document says (as `chancery policy apply`)',
    tag: 'groups',
    action: 'policy.replace',
    schema: { querystring: { type: 'object', additionalProperties: false, properties: dryRun }, body: policyDocumentSchema, response: policyChangeSchema },
    handle: async (call, s) => policyOutcome(await s.policy.applyDocument(call.principal.actor, call.body, call.query.dryRun === true)),
  },
  {
    method: 'GET',
    url: `${ADMIN_PREFIX}/eab`,
    operationId: 'listEab',
    summary: 'External Account Binding credentials (never their keys)',
    tag: 'eab',
    action: 'eab.list',
    schema: { querystring: query(groupFilter), response: page(eabSchema) },
    handle: async (call, s) => ({ body: renderPage(await s.eab.list(call.scope, groupOnly(call), pageOf(call.query)), renderEab) }),
  },
  {
    method: 'POST',
    url: `${ADMIN_PREFIX}/eab`,
    operationId: 'createEab',
    summary: 'Create an EAB credential; its HMAC key is in this response only',
    tag: 'eab',
    action: 'eab.create',
    schema: { body: newEabSchema, response: eabCreatedSchema },
    handle: async (call, s) => {
      const { credential, hmacKey } = await s.eab.create(call.principal, call.scope, call.body as { group?: string; labels?: Record<string, string> });
      return { body: { credential: renderEab(credential), hmacKey } };
    },
  },
  {
    method: 'POST',
    url: `${ADMIN_PREFIX}/eab/:kid/revoke`,
    operationId: 'revokeEab',
    summary: 'Revoke an unused EAB credential',
    tag: 'eab',
    action: 'eab.revoke',
    schema: { params: params({ kid: { type: 'string', maxLength: 128 } }), response: eabSchema },
    handle: async (call, s) => ({ body: renderEab(await s.eab.revoke(call.principal, call.scope, call.params.kid!)) }),
  },
  // GET /certificates (search), its counts and exports: routes-certificate-search.ts.
  {
    method: 'GET',
    url: `${ADMIN_PREFIX}/certificates/:serial`,
    operationId: 'getCertificate',
    summary: 'One certificate by serial',
    tag: 'certificates',
    action: 'certificate.read',
    schema: { params: params({ serial: serialParam }), response: certificateSchema },
    handle: async (call, s) => ({ body: renderCertificate(await s.certificates.get(serialOf(call), call.scope), s.clock.now()) }),
  },
  {
    method: 'POST',
    url: `${ADMIN_PREFIX}/certificates/:serial/revoke`,
    operationId: 'revokeCertificate',
    summary: 'Revoke a certificate (OCSP re-signed and the CRL published before it answers)',
    tag: 'certificates',
    action: 'certificate.revoke',
    schema: { params: params({ serial: serialParam }), body: revokeSchema, response: certificateSchema },
    handle: async (call, s) => {
      const body = (call.body ?? {}) as { reason?: string; invalidityDate?: string };
      const reasonName = body.reason ?? 'unspecified';
      const reason = Object.hasOwn(REASON_CODES, reasonName) ? REASON_CODES[reasonName] : undefined;
      if (reason === undefined) throw new CaError('badRevocationReason', `unknown reason "${reasonName.slice(0, 40)}"; one of ${Object.keys(REASON_CODES).join(', ')}`);
      const invalidityDate = body.invalidityDate === undefined ? undefined : new Date(body.invalidityDate);
      const revoked = await s.certificates.revoke(call.principal, call.scope, serialOf(call), reason, invalidityDate);
      return { body: renderCertificate(revoked, s.clock.now()) };
    },
  },
  {
    method: 'GET',
    url: `${ADMIN_PREFIX}/accounts`,
    operationId: 'listAccounts',
    summary: 'ACME accounts, newest first',
    tag: 'accounts',
    action: 'account.list',
    schema: { querystring: query({ ...groupFilter, status: { type: 'string', enum: ['valid', 'deactivated', 'revoked'] } }), response: page(accountSchema) },
    handle: async (call, s) => {
      const q = call.query as { status?: 'valid' | 'deactivated' | 'revoked'; group?: string };
      return { body: renderPage(await s.accounts.list(call.scope, { ...(q.status ? { status: q.status } : {}), ...(q.group ? { group: q.group } : {}) }, pageOf(call.query)), renderAccount) };
    },
  },
  {
    method: 'GET',
    url: `${ADMIN_PREFIX}/accounts/:id`,
    operationId: 'getAccount',
    summary: 'One ACME account',
    tag: 'accounts',
    action: 'account.read',
    schema: { params: params({ id: { type: 'string', maxLength: 128 } }), response: accountSchema },
    handle: async (call, s) => ({ body: renderAccount(await s.accounts.get(call.params.id!, call.scope)) }),
  },
  {
    method: 'POST',
    url: `${ADMIN_PREFIX}/accounts/:id/deactivate`,
    operationId: 'deactivateAccount',
    summary: 'Deactivate an ACME account (RFC 8555 §7.3.6: final)',
    tag: 'accounts',
    action: 'account.deactivate',
    schema: { params: params({ id: { type: 'string', maxLength: 128 } }), response: accountSchema },
    handle: async (call, s) => ({ body: renderAccount(await s.accounts.deactivate(call.principal, call.scope, call.params.id!)) }),
  },
];

function groupOnly(call: AdminCall): { group?: string } {
  return typeof call.query.group === 'string' ? { group: call.query.group } : {};
}

