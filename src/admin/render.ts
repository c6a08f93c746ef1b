import type { Account, EabCredential } from '../core/account.js';
import { REASON_CODES, type IssuedCertificate } from '../core/certificate.js';
import { DEFAULT_GROUP, type Group } from '../core/group.js';
import type { Page } from '../core/page.js';
import { toPem } from '../core/pem.js';
import type { AdminPrincipal, AdminToken, OperatorBinding } from '../core/principal.js';

/**
 * Domain objects -> the admin API's wire types (admin/schemas.ts), in this one place: what the API shows
 * is decided here, never by serializing a domain object whole (no secret, hash or internal field leaks
 * because a domain type grew one).
 */
const iso = (date: Date): string => date.toISOString();
const REASON_NAMES = new Map(Object.entries(REASON_CODES).map(([name, code]) => [code, name]));

export function renderPage<T>(page: Page<T>, render: (item: T) => unknown): { items: unknown[]; next?: string } {
  return { items: page.items.map(render), ...(page.nextCursor === undefined ? {} : { next: page.nextCursor }) };
}

export function renderPrincipal(principal: AdminPrincipal): Record<string, unknown> {
  return {
    actor: principal.actor,
    role: principal.role,
    groups: [...principal.groups],
    via: principal.via,
    ...(principal.expiresAt ? { expiresAt: iso(principal.expiresAt) } : {}),
  };
}

export function renderToken(token: AdminToken, now: Date): Record<string, unknown> {
  const status = token.revokedAt !== undefined ? 'revoked' : token.expiresAt.getTime() <= now.getTime() ? 'expired' : 'active';
  return {
    id: token.id,
    role: token.role,
    groups: token.groups,
    description: token.description,
    status,
    createdAt: iso(token.createdAt),
    createdBy: token.createdBy,
    expiresAt: iso(token.expiresAt),
    ...(token.revokedAt ? { revokedAt: iso(token.revokedAt) } : {}),
    ...(token.revokedBy ? { revokedBy: token.revokedBy } : {}),
    ...(token.lastUsedAt ? { lastUsedAt: iso(token.lastUsedAt) } : {}),
  };
}

export function renderOperator(binding: OperatorBinding): Record<string, unknown> {
  return {
    spkiSha256: binding.spkiSha256,
    name: binding.name,
    role: binding.role,
    groups: binding.groups,
    serial: binding.serial,
    createdAt: iso(binding.createdAt),
    createdBy: binding.createdBy,
  };
}

export function renderGroup(group: Group, policy: Record<string, unknown>): Record<string, unknown> {
  // The document form (maxValidity as 7d, ...) without its contacts, which the group carries itself.
  const { contacts: _contacts, ...rest } = policy;
  return { name: group.name, contacts: group.contacts, policy: rest, ...(group.updatedAt ? { updatedAt: iso(group.updatedAt) } : {}) };
}

export function renderEab(credential: EabCredential): Record<string, unknown> {
  const status = credential.revokedAt !== undefined ? 'revoked' : credential.boundAccountId !== undefined ? 'bound' : 'unused';
  return {
    kid: credential.kid,
    group: credential.group ?? DEFAULT_GROUP,
    ...(credential.labels ? { labels: credential.labels } : {}),
    status,
    createdAt: iso(credential.createdAt),
    ...(credential.boundAccountId ? { boundAccountId: credential.boundAccountId } : {}),
    ...(credential.boundAt ? { boundAt: iso(credential.boundAt) } : {}),
    ...(credential.revokedAt ? { revokedAt: iso(credential.revokedAt) } : {}),
  };
}

export function renderCertificate(certificate: IssuedCertificate, now: Date): Record<string, unknown> {
  const status = certificate.status === 'revoked' ? 'revoked' : certificate.notAfter.getTime() <= now.getTime() ? 'expired' : 'valid';
  return {
    serial: certificate.serial,
    issuerId: certificate.issuerId,
    status,
    identifiers: certificate.identifiers.map((identifier) => ({ type: identifier.type, value: identifier.value })),
    notBefore: iso(certificate.notBefore),
    notAfter: iso(certificate.notAfter),
    profile: certificate.profile ?? 'tls-server',
    ...(certificate.group ? { group: certificate.group } : {}),
    ...(certificate.labels ? { labels: certificate.labels } : {}),
    ...(certificate.accountId ? { accountId: certificate.accountId } : {}),
    createdAt: iso(certificate.createdAt),
    ...(certificate.revokedAt ? { revokedAt: iso(certificate.revokedAt) } : {}),
    ...(certificate.revocationReason !== undefined ? { revocationReason: REASON_NAMES.get(certificate.revocationReason) ?? 'unspecified' } : {}),
    pem: toPem(certificate.der),
  };
}

export function renderAccount(account: Account): Record<string, unknown> {
  return {
    id: account.id,
    status: account.status,
    contacts: account.contacts,
    group: account.group ?? DEFAULT_GROUP,
    ...(account.labels ? { labels: account.labels } : {}),
    ...(account.eabKid ? { eabKid: account.eabKid } : {}),
    jwkThumbprint: account.jwkThumbprint,
    createdAt: iso(account.createdAt),
  };
}
