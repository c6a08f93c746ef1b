import type { IssuedCertificate } from '../core/certificate.js';
import type { Clock } from '../core/clock.js';
import { CaError } from '../core/errors.js';
import type { AdminAuthFailure, DomainEvents } from '../core/events.js';
import { GROUP_NAME } from '../core/group.js';
import type { Page } from '../core/page.js';
import { certificateActor, type AdminPrincipal, type AdminRole, type OperatorBinding } from '../core/principal.js';
import type { Queryable } from '../db/database.js';
import { changeWithEvent, type StoreAccess } from './change-with-event.js';

/** The certificate profile whose certificates operators authenticate with (clientAuth only). */
export const OPERATOR_PROFILE = 'operator';

export interface OperatorStore {
  insert(binding: OperatorBinding): Promise<void>;
  find(spkiSha256: string): Promise<OperatorBinding | undefined>;
  list(page: { cursor?: string; limit: number }): Promise<Page<OperatorBinding>>;
  remove(spkiSha256: string): Promise<OperatorBinding | undefined>;
}

export interface OperatorCertificates {
  findBySerial(serial: string): Promise<IssuedCertificate | undefined>;
}

/** A client certificate as the TLS layer verified it (chain to our CA checked there). */
export interface PresentedCertificate {
  serial: string;
  spkiSha256: string;
}

/**
 * Operators who authenticate with a client certificate of the `operator` profile. An admin binds the key of
 * one certificate (its SubjectPublicKeyInfo SHA-256) to a role and groups; on every request the certificate
 * presented must also be on record here, of that profile, valid and not revoked — so revoking the
 * certificate ends its access at once, and a renewal that keeps the key keeps the binding.
 */
export class OperatorService {
  constructor(
    private readonly deps: {
      access: StoreAccess<OperatorStore>;
      certificates: OperatorCertificates;
      events: DomainEvents<Queryable>;
      clock: Clock;
      groupExists: (name: string) => Promise<boolean>;
    },
  ) {}

  async bind(by: AdminPrincipal, request: { serial: string; role: AdminRole; groups?: readonly string[]; name?: string }): Promise<OperatorBinding> {
    const groups = [...new Set(request.groups ?? [])];
    if (request.role === 'group-admin' && groups.length === 0) throw new CaError('malformed', 'a group-admin operator needs at least one group');
    if (request.role !== 'group-admin' && groups.length > 0) throw new CaError('malformed', `an ${request.role} acts on every group: give it no groups`);
    for (const group of groups) {
      if (!GROUP_NAME.test(group) || !(await this.deps.groupExists(group))) throw new CaError('notFound', `no group "${group.slice(0, 64)}"`);
    }
    const certificate = await this.deps.certificates.findBySerial(request.serial);
    if (certificate === undefined) throw new CaError('notFound', `no certificate with serial ${request.serial}`);
    const now = this.deps.clock.now();
    if (certificate.profile !== OPERATOR_PROFILE) {
      throw new CaError('malformed', `certificate ${certificate.serial} was issued under the ${certificate.profile ?? 'tls-server'} profile; operators authenticate with ${OPERATOR_PROFILE} certificates`);
    }
    if (certificate.status !== 'valid' || certificate.notAfter.getTime() <= now.getTime()) {
      throw new CaError('malformed', `certificate ${certificate.serial} is ${certificate.status === 'valid' ? 'expired' : 'revoked'}`);
    }
    const name = request.name ?? certificate.identifiers[0]?.value ?? certificate.serial;
    if (!/^[A-Za-z0-9][A-Za-z0-9.@_-]{0,127}$/.test(name)) throw new CaError('malformed', 'an operator name is 1-128 letters, digits, dots, @, dashes or underscores');
    const binding: OperatorBinding = { spkiSha256: certificate.spkiSha256, name, role: request.role, groups, serial: certificate.serial, createdAt: now, createdBy: by.actor };
    await changeWithEvent(this.deps, 'admin.operator.bound', (store) => store.insert(binding), () => ({ type: 'admin.operator.bound', binding, actor: by.actor }));
    return binding;
  }

  list(page: { cursor?: string; limit: number }): Promise<Page<OperatorBinding>> {
    return this.deps.access.stores.list(page);
  }

  async unbind(by: AdminPrincipal, spkiSha256: string): Promise<OperatorBinding> {
    const removed = await changeWithEvent(
      this.deps,
      'admin.operator.unbound',
      (store) => store.remove(spkiSha256),
      (binding) => (binding === undefined ? undefined : { type: 'admin.operator.unbound', binding, actor: by.actor }),
    );
    if (removed === undefined) throw new CaError('notFound', `no operator bound to key ${spkiSha256.slice(0, 64)}`);
    return removed;
  }

  async authenticate(presented: PresentedCertificate): Promise<{ principal: AdminPrincipal } | { failure: AdminAuthFailure }> {
    const binding = await this.deps.access.stores.find(presented.spkiSha256);
    if (binding === undefined) return { failure: 'unbound-certificate' };
    const certificate = await this.deps.certificates.findBySerial(presented.serial);
    const now = this.deps.clock.now();
    if (
      certificate === undefined ||
      certificate.spkiSha256 !== presented.spkiSha256 ||
      certificate.profile !== OPERATOR_PROFILE ||
      certificate.status !== 'valid' ||
      certificate.notAfter.getTime() <= now.getTime()
    ) {
      return { failure: 'certificate-not-valid' };
    }
    return { principal: { actor: certificateActor(binding.name), role: binding.role, groups: binding.groups, via: 'certificate', expiresAt: certificate.notAfter } };
  }
}
