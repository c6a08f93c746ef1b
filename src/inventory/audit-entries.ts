import type { AuditDraft } from '../core/audit.js';
import { REASON_CODES } from '../core/certificate.js';
import type { Clock } from '../core/clock.js';
import type { DomainEvents, DomainEventType, EventOf } from '../core/events.js';

/**
 * Which domain event records which audit entry (DESIGN.md rule 8). One pure function per event type; the
 * entry is written with the change (in its statement or transaction) by DomainEvents and the AuditLog's
 * writer, so a change added later gets its entry by adding its line here, nothing else. Actions are
 * `<noun>.<verb>`, subjects `<noun>:<id>`; `at` is the change's own time where it has one, else the Clock.
 */
type Recorders = { [T in DomainEventType]?: (event: EventOf<T>, now: () => Date) => AuditDraft | undefined };

const REASON_NAMES = new Map(Object.entries(REASON_CODES).map(([name, code]) => [code, name]));

export const AUDIT_RECORDERS: Recorders = {
  'certificate.issued': ({ certificate, actor }) => ({
    at: certificate.createdAt,
    actor,
    action: 'certificate.issue',
    subject: `certificate:${certificate.serial}`,
    outcome: 'ok',
    ...(certificate.group === undefined ? {} : { group: certificate.group }),
    details: {
      issuer: certificate.issuerId,
      identifiers: certificate.identifiers.map((id) => `${id.type}:${id.value}`),
      ...(certificate.profile === undefined ? {} : { profile: certificate.profile }),
      notBefore: certificate.notBefore.toISOString(),
      notAfter: certificate.notAfter.toISOString(),
      ...(certificate.orderId === undefined ? {} : { order: certificate.orderId }),
      ...(certificate.replacesSerial === undefined ? {} : { replaces: certificate.replacesSerial }),
      ...(certificate.labels === undefined ? {} : { labels: certificate.labels }),
    },
  }),
  'certificate.revoked': ({ certificate, actor }, now) => ({
    at: certificate.revokedAt ?? now(),
    actor,
    action: 'certificate.revoke',
    subject: `certificate:${certificate.serial}`,
    outcome: 'ok',
    details: {
      reason: REASON_NAMES.get(certificate.revocationReason ?? 0) ?? String(certificate.revocationReason),
      ...(certificate.invalidityDate === undefined ? {} : { invalidityDate: certificate.invalidityDate.toISOString() }),
    },
  }),
  // Incidents: every step of one is recorded — declared, each revocation batch, closed — and each refused
  // use of a key it blocked.
  'incident.declared': ({ incident, actor }) => ({
    at: incident.declaredAt,
    actor,
    action: 'incident.declare',
    subject: `incident:${incident.name}`,
    outcome: 'ok',
    details: {
      id: incident.id,
      reason: REASON_NAMES.get(incident.reason) ?? String(incident.reason),
      revoke: incident.revoke,
      drill: incident.drill,
      renewBy: incident.renewBy.toISOString(),
      ...(incident.explanationUrl === undefined ? {} : { explanationUrl: incident.explanationUrl }),
      selection: incident.selection,
      affected: incident.affected,
      shortLived: incident.shortLived,
      blockedKeys: incident.blockedKeys,
    },
  }),
  'incident.closed': ({ incident, actor }, now) => ({
    at: incident.closedAt ?? now(),
    actor,
    action: 'incident.close',
    subject: `incident:${incident.name}`,
    outcome: 'ok',
    details: { id: incident.id },
  }),
  'incident.key.blocked': ({ incident, spkiSha256, use, accountId, group, at }) => ({
    at,
    actor: accountId === undefined ? `key:${spkiSha256}` : `account:${accountId}`,
    action: use === 'csr' ? 'incident.refuse-certificate-key' : 'incident.refuse-account-key',
    subject: `incident:${incident.name}`,
    outcome: 'refused',
    ...(group === undefined ? {} : { group }),
    details: { spkiSha256 },
  }),
  'revocation.bulk.planned': ({ run }) => ({
    at: run.createdAt,
    actor: run.actor,
    action: 'revocation.bulk-plan',
    subject: `revocation:${run.id}`,
    outcome: 'ok',
    details: {
      origin: run.origin,
      label: run.label,
      reason: REASON_NAMES.get(run.reason) ?? String(run.reason),
      total: run.total,
      shortLived: run.shortLived,
      ...(run.shortLivedUntil === undefined ? {} : { shortLivedUntil: run.shortLivedUntil.toISOString() }),
      unknown: run.unknown,
    },
  }),
  // One entry per chunk, naming every certificate it revoked (and those it left as they were).
  'certificates.revoked': ({ run, chunk, certificates, skipped, actor }, now) => ({
    at: certificates[0]?.revokedAt ?? now(),
    actor,
    action: 'certificate.revoke-batch',
    subject: `revocation:${run.id}`,
    outcome: 'ok',
    details: {
      origin: run.origin,
      chunk,
      reason: REASON_NAMES.get(run.reason) ?? String(run.reason),
      revoked: certificates.map((c) => c.serial),
      ...(skipped.length === 0 ? {} : { skipped }),
      ...(certificates[0]?.invalidityDate === undefined ? {} : { invalidityDate: certificates[0].invalidityDate.toISOString() }),
    },
  }),
  'revocation.bulk.finished': ({ run }, now) => ({
    at: run.publishedAt ?? now(),
    actor: run.actor,
    action: 'revocation.bulk-finish',
    subject: `revocation:${run.id}`,
    outcome: 'ok',
    details: { origin: run.origin, revoked: run.revoked, skipped: run.skipped, chunks: run.chunks, crls: run.scopes.map((s) => `${s.issuerId}/${s.shard}`) },
  }),
  'account.created': ({ account, actor }) => ({
    at: account.createdAt,
    actor: actor ?? `account:${account.id}`,
    action: 'account.create',
    subject: `account:${account.id}`,
    outcome: 'ok',
    ...(account.group === undefined ? {} : { group: account.group }),
    details: { keyThumbprint: account.jwkThumbprint, contacts: account.contacts, ...(account.eabKid === undefined ? {} : { eab: account.eabKid }) },
  }),
  'account.changed': ({ account, change, actor }, now) => ({
    at: now(),
    actor: actor ?? `account:${account.id}`,
    action: change === 'key' ? 'account.change-key' : 'account.change-contacts',
    subject: `account:${account.id}`,
    outcome: 'ok',
    ...(account.group === undefined ? {} : { group: account.group }),
    details: change === 'key' ? { keyThumbprint: account.jwkThumbprint } : { contacts: account.contacts },
  }),
  'account.deactivated': ({ account, actor }, now) => ({
    at: now(),
    actor: actor ?? `account:${account.id}`,
    action: 'account.deactivate',
    subject: `account:${account.id}`,
    outcome: 'ok',
    ...(account.group === undefined ? {} : { group: account.group }),
  }),
  'eab.used': ({ kid, accountId, group }, now) => ({
    at: now(),
    actor: `account:${accountId}`,
    action: 'eab.use',
    subject: `eab:${kid}`,
    outcome: 'ok',
    ...(group === undefined ? {} : { group }),
    details: { account: accountId },
  }),
  'eab.revoked': ({ kid, group, actor }, now) => ({
    at: now(),
    actor,
    action: 'eab.revoke',
    subject: `eab:${kid}`,
    outcome: 'ok',
    ...(group === undefined ? {} : { group, details: { group } }),
  }),
  // Tokens and operator bindings: never the token itself nor its hash (DESIGN.md: secrets reach no record).
  'admin.token.created': ({ token, actor }) => ({
    at: token.createdAt,
    actor,
    action: 'admin-token.create',
    subject: `token:${token.id}`,
    outcome: 'ok',
    ...(token.groups.length === 1 ? { group: token.groups[0] } : {}),
    details: { role: token.role, groups: token.groups, expiresAt: token.expiresAt.toISOString(), description: token.description },
  }),
  'admin.token.revoked': ({ token, actor }, now) => ({
    at: token.revokedAt ?? now(),
    actor,
    action: 'admin-token.revoke',
    subject: `token:${token.id}`,
    outcome: 'ok',
    ...(token.groups.length === 1 ? { group: token.groups[0] } : {}),
    details: { role: token.role, groups: token.groups },
  }),
  'admin.operator.bound': ({ binding, actor }) => ({
    at: binding.createdAt,
    actor,
    action: 'operator.bind',
    subject: `operator:${binding.name}`,
    outcome: 'ok',
    details: { role: binding.role, groups: binding.groups, serial: binding.serial, spkiSha256: binding.spkiSha256 },
  }),
  'admin.operator.unbound': ({ binding, actor }, now) => ({
    at: now(),
    actor,
    action: 'operator.unbind',
    subject: `operator:${binding.name}`,
    outcome: 'ok',
    details: { role: binding.role, groups: binding.groups, serial: binding.serial },
  }),
  // Aggregated by AuthFailureLimiter: at most one event per source address a minute, however many guesses.
  'admin.auth.failed': ({ source, failures, at, reason }) => ({
    at,
    actor: `source:${source}`,
    action: 'admin.authenticate',
    subject: `source:${source}`,
    outcome: 'refused',
    details: { failures, reason },
  }),
  'certificate.labels.changed': ({ serial, group, before, after, actor }, now) => ({
    at: now(),
    actor,
    action: 'certificate.label',
    subject: `certificate:${serial}`,
    outcome: 'ok',
    ...(group === undefined ? {} : { group }),
    details: { before, after },
  }),
  'webhook.created': ({ webhook, actor }) => ({
    at: webhook.createdAt,
    actor,
    action: 'webhook.create',
    subject: `webhook:${webhook.id}`,
    outcome: 'ok',
    ...(webhook.group === undefined ? {} : { group: webhook.group }),
    details: { url: webhook.url, events: webhook.events },
  }),
  'webhook.removed': ({ webhook, actor }, now) => ({
    at: webhook.removedAt ?? now(),
    actor,
    action: 'webhook.remove',
    subject: `webhook:${webhook.id}`,
    outcome: 'ok',
    ...(webhook.group === undefined ? {} : { group: webhook.group }),
    details: { url: webhook.url },
  }),
  'eab.created': ({ kid, group, actor }, now) => ({
    at: now(),
    actor,
    action: 'eab.create',
    subject: `eab:${kid}`,
    outcome: 'ok',
    ...(group === undefined ? {} : { group, details: { group } }),
  }),
  'ocsp.responder.issued': ({ issuerId, generation, serial, keyName, notAfter, actor }, now) => ({
    at: now(),
    actor,
    action: 'ocsp-responder.issue',
    subject: `certificate:${serial}`,
    outcome: 'ok',
    details: { issuer: issuerId, generation, keyName, notAfter: notAfter.toISOString() },
  }),
  // A name issued without a challenge because the account's group pre-approves it: who, what, for which order.
  'authorization.preapproved': ({ authorizationId, accountId, group, identifier, orderId }, now) => ({
    at: now(),
    actor: `account:${accountId}`,
    action: 'authorization.preapprove',
    subject: `authorization:${authorizationId}`,
    outcome: 'ok',
    group,
    details: { identifier: `${identifier.type}:${identifier.value}`, ...(orderId === undefined ? {} : { order: orderId }) },
  }),
  // A policy apply records one entry per group it changed, each with the group as it was and as it is.
  'group.changed': ({ group, change, before, after, actor }, now) => ({
    at: after?.updatedAt ?? now(),
    actor,
    action: change === 'created' ? 'group.create' : change === 'updated' ? 'group.update' : 'group.remove',
    subject: `group:${group}`,
    outcome: 'ok',
    group,
    details: {
      ...(before === undefined ? {} : { before: { contacts: before.contacts, policy: before.policy } }),
      ...(after === undefined ? {} : { after: { contacts: after.contacts, policy: after.policy } }),
    },
  }),
  'ca.created': ({ root, intermediate, keyStore, actor }) => ({
    at: root.createdAt,
    actor,
    action: 'ca.create',
    subject: `issuer:${root.id}`,
    outcome: 'ok',
    details: {
      keyStore,
      root: { id: root.id, subject: root.subject, keyName: root.keyName, notAfter: root.notAfter.toISOString() },
      intermediate: { id: intermediate.id, subject: intermediate.subject, keyName: intermediate.keyName, notAfter: intermediate.notAfter.toISOString() },
    },
  }),
};

/** Registers every recorder of AUDIT_RECORDERS on `events` (once, in compose.ts). */
export function recordAuditEntries<Tx>(events: DomainEvents<Tx>, clock: Clock): void {
  const now = (): Date => clock.now();
  for (const [type, recorder] of Object.entries(AUDIT_RECORDERS) as [DomainEventType, (event: never, now: () => Date) => AuditDraft | undefined][]) {
    events.onRecord(type, (event) => recorder(event as never, now));
  }
}
