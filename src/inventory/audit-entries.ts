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
