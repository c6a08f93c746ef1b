import type { IssuedCertificate, RevocationReason } from '../core/certificate.js';
import type { Clock } from '../core/clock.js';
import { DAY } from '../core/clock.js';
import { CaError } from '../core/errors.js';
import type { Page } from '../core/page.js';
import type { AdminPrincipal } from '../core/principal.js';
import { inScope, type Scope } from '../policy/admin-rbac.js';
import { groupsFilter } from './account-admin.js';

export interface AdminCertificateStore {
  findBySerial(serial: string): Promise<IssuedCertificate | undefined>;
  list(
    filter: { status?: 'valid' | 'revoked'; groups?: readonly string[]; expiring?: { from: Date; to: Date } },
    page: { cursor?: string; limit: number },
  ): Promise<Page<IssuedCertificate>>;
}

/** The Revoker (revocation/), as this service uses it: every revocation path goes through it. */
export interface AdminRevoker {
  revoke(serial: string, reason: RevocationReason, options: { invalidityDate?: Date; actor?: AdminPrincipal['actor'] }): Promise<IssuedCertificate>;
}

export interface CertificateListFilter {
  status?: 'valid' | 'revoked';
  group?: string;
  /** Valid certificates whose notAfter is within this many days from now. */
  expiringWithinDays?: number;
}

/**
 * Certificates as administrators see them (the full search comes with the inventory): by serial, a few
 * filters, revocation through the Revoker. A group-admin sees its groups' certificates only; certificates
 * recorded with no group (issued outside ACME, or before groups existed) are an admin's and auditor's.
 */
export class CertificateAdmin {
  constructor(private readonly deps: { certificates: AdminCertificateStore; revoker: AdminRevoker; clock: Clock }) {}

  async get(serial: string, scope: Scope): Promise<IssuedCertificate> {
    const certificate = await this.deps.certificates.findBySerial(serial);
    if (certificate === undefined || !inScope(scope, certificate.group)) throw new CaError('notFound', `no certificate with serial ${serial}`);
    return certificate;
  }

  list(scope: Scope, filter: CertificateListFilter, page: { cursor?: string; limit: number }): Promise<Page<IssuedCertificate>> {
    const now = this.deps.clock.now();
    const expiring = filter.expiringWithinDays === undefined ? undefined : { from: now, to: new Date(now.getTime() + filter.expiringWithinDays * DAY) };
    return this.deps.certificates.list({ ...(filter.status ? { status: filter.status } : {}), ...groupsFilter(scope, filter.group), ...(expiring ? { expiring } : {}) }, page);
  }

  async revoke(by: AdminPrincipal, scope: Scope, serial: string, reason: RevocationReason, invalidityDate?: Date): Promise<IssuedCertificate> {
    await this.get(serial, scope);
    return this.deps.revoker.revoke(serial, reason, { actor: by.actor, ...(invalidityDate === undefined ? {} : { invalidityDate }) });
  }
}
