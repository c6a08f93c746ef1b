import type { Account } from '../core/account.js';
import type { IssuedCertificate } from '../core/certificate.js';
import { DEFAULT_GROUP } from '../core/group.js';
import type { GroupHealth, HealthEntry, OverdueAccount } from '../core/health.js';
import type { LinkedCertificate } from '../core/lineage.js';
import type { KeyReportEntry } from '../core/subject-key.js';
import type { Webhook, WebhookDelivery } from '../core/webhook.js';

/**
 * The inventory's domain objects -> wire types (admin/inventory-schemas.ts), field by field: a webhook's
 * secret, for one, has no way out of here because nothing here reads it.
 */
const iso = (date: Date): string => date.toISOString();
const optional = <T>(key: string, value: T | undefined, map: (v: T) => unknown = (v) => v): Record<string, unknown> => (value === undefined ? {} : { [key]: map(value) });

export function renderSummary(certificate: IssuedCertificate, now: Date, predecessor?: string): Record<string, unknown> {
  const status = certificate.status === 'revoked' ? 'revoked' : certificate.notAfter.getTime() <= now.getTime() ? 'expired' : 'valid';
  return {
    serial: certificate.serial,
    status,
    identifiers: certificate.identifiers.map((identifier) => `${identifier.type}:${identifier.value}`),
    notBefore: iso(certificate.notBefore),
    notAfter: iso(certificate.notAfter),
    createdAt: iso(certificate.createdAt),
    issuerId: certificate.issuerId,
    ...optional('profile', certificate.profile),
    ...optional('group', certificate.group),
    ...optional('labels', certificate.labels),
    ...optional('accountId', certificate.accountId),
    spkiSha256: certificate.spkiSha256,
    ...optional('replaces', certificate.replacesSerial),
    ...optional('predecessor', predecessor),
    ...optional('revokedAt', certificate.revokedAt, iso),
  };
}

export function renderLinked(linked: LinkedCertificate, now: Date): Record<string, unknown> {
  return renderSummary(linked.certificate, now, linked.predecessorSerial);
}

export function renderGroupHealth(group: GroupHealth): Record<string, unknown> {
  return { ...group };
}

export function renderHealthEntry(entry: HealthEntry, now: Date): Record<string, unknown> {
  return { certificate: renderLinked(entry, now), renewalDueAt: iso(entry.renewalDueAt), ...optional('accountLastSeenAt', entry.accountLastSeenAt, iso) };
}

export function renderOverdueAccount(account: OverdueAccount): Record<string, unknown> {
  return {
    accountId: account.accountId,
    ...optional('group', account.group),
    ...optional('status', account.status),
    ...optional('lastSeenAt', account.lastSeenAt, iso),
    certificates: account.certificates,
    firstNotAfter: iso(account.firstNotAfter),
  };
}

export function renderKeyEntry(entry: KeyReportEntry & { weakness?: string }, now: Date): Record<string, unknown> {
  return {
    spkiSha256: entry.key.spkiSha256,
    kind: entry.key.kind,
    firstSeenAt: iso(entry.key.firstSeenAt),
    lastNotAfter: iso(entry.key.lastNotAfter),
    ...optional('weakness', entry.weakness),
    certificateCount: entry.certificateCount,
    accounts: entry.accounts,
    groups: entry.groups,
    certificates: entry.certificates.map((certificate) => renderSummary(certificate, now)),
  };
}

export function renderInactiveAccount(seen: { account: Account; lastSeenAt?: Date }): Record<string, unknown> {
  return {
    id: seen.account.id,
    group: seen.account.group ?? DEFAULT_GROUP,
    contacts: seen.account.contacts,
    createdAt: iso(seen.account.createdAt),
    ...optional('lastSeenAt', seen.lastSeenAt, iso),
  };
}

export function renderWebhook(webhook: Webhook): Record<string, unknown> {
  return {
    id: webhook.id,
    ...optional('group', webhook.group),
    url: webhook.url,
    events: webhook.events,
    description: webhook.description,
    createdAt: iso(webhook.createdAt),
    createdBy: webhook.createdBy,
    ...optional('removedAt', webhook.removedAt, iso),
    ...optional('removedBy', webhook.removedBy),
  };
}

export function renderDelivery(delivery: WebhookDelivery): Record<string, unknown> {
  return {
    eventId: delivery.eventId,
    type: delivery.type,
    serial: delivery.serial,
    status: delivery.status,
    attempts: delivery.attempts,
    ...optional('nextAttemptAt', delivery.nextAttemptAt, iso),
    ...optional('lastAttemptAt', delivery.lastAttemptAt, iso),
    ...optional('lastError', delivery.lastError),
    ...optional('deliveredAt', delivery.deliveredAt, iso),
    createdAt: iso(delivery.createdAt),
  };
}
