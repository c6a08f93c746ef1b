import type { Actor } from '../core/audit.js';
import type { IssuedCertificate, RevocationReason } from '../core/certificate.js';
import type { Clock } from '../core/clock.js';
import { CaError } from '../core/errors.js';
import type { DomainEvents } from '../core/events.js';

/** The certificate store slice revocation uses (declared here, implemented by db/ CertificateRepository). */
export interface RevocationStore {
  findBySerial(serial: string): Promise<IssuedCertificate | undefined>;
  /** valid -> revoked at `at`; `invalidityDate` (RFC 5280 §5.3.2) is stored when given. Undefined if it was not valid. */
  revoke(serial: string, at: Date, reason: RevocationReason, invalidityDate?: Date): Promise<IssuedCertificate | undefined>;
}

/** One transaction: its handle for the in-transaction event phase, and the store on that same transaction. */
export interface RevocationTransactionScope<Tx> {
  tx: Tx;
  certificates: Pick<RevocationStore, 'revoke'>;
}

export interface RevokerDeps<Tx> {
  certificates: Pick<RevocationStore, 'findBySerial'>;
  clock: Clock;
  /** Runs fn in one transaction, committed if it resolves (DESIGN.md rule 6). */
  transaction: <T>(fn: (scope: RevocationTransactionScope<Tx>) => Promise<T>) => Promise<T>;
  events: DomainEvents<Tx>;
}

/**
 * The one place a certificate becomes revoked — ACME revokeCert, `chancery revoke` and bulk incident
 * revocation all come here — so the state change and everything that must follow it happen the same way
 * for every path: the status change and the `certificate.revoked` committing handlers (the revoked OCSP
 * response, so no instance reads `good` once the revocation is visible) in one transaction, then COMMIT,
 * then the committed handlers (caches, the CRL), then revoke() returns.
 */
export class Revoker<Tx> {
  constructor(private readonly deps: RevokerDeps<Tx>) {}

  /**
   * Revokes by serial; 'notFound' for an unknown serial, 'alreadyRevoked' when it already is.
   * `invalidityDate`: when the key is known or suspected to have been compromised, or the certificate
   * otherwise became invalid (RFC 5280 §5.3.2); carried in the CRL entry and the OCSP response. It may
   * precede issuance (a reused key) but not the revocation itself.
   */
  async revoke(serial: string, reason: RevocationReason, options: { invalidityDate?: Date; actor?: Actor } = {}): Promise<IssuedCertificate> {
    const at = this.deps.clock.now();
    const { invalidityDate } = options;
    // Who revokes (DESIGN.md rule 8): the caller says; a path that cannot is Chancery's own.
    const actor = options.actor ?? 'system:chancery';
    if (invalidityDate !== undefined && Number.isNaN(invalidityDate.getTime())) throw new CaError('malformed', 'invalidity date is not a date');
    if (invalidityDate !== undefined && invalidityDate.getTime() > at.getTime()) {
      throw new CaError('malformed', `invalidity date ${invalidityDate.toISOString()} is after the revocation time ${at.toISOString()}`);
    }
    const revoked = await this.deps.transaction(async ({ tx, certificates }) => {
      const certificate = await certificates.revoke(serial, at, reason, invalidityDate);
      if (certificate) await this.deps.events.committing({ type: 'certificate.revoked', certificate, actor }, tx);
      return certificate;
    });
    if (!revoked) {
      const existing = await this.deps.certificates.findBySerial(serial);
      if (!existing) throw new CaError('notFound', `no certificate with serial ${serial}`);
      throw new CaError('alreadyRevoked', `certificate ${serial} was already revoked`);
    }
    await this.deps.events.committed({ type: 'certificate.revoked', certificate: revoked, actor });
    return revoked;
  }
}
