import type { IssuedCertificate, RevocationReason } from '../core/certificate.js';
import type { Clock } from '../core/clock.js';
import { CaError } from '../core/errors.js';
import type { CertificateStoreSlice } from './acme-stores.js';

/** RFC 5280 §5.3.1 reason names, as the CLI and logs spell them. */
export const REASON_CODES: Record<string, RevocationReason> = {
  unspecified: 0,
  keyCompromise: 1,
  cACompromise: 2,
  affiliationChanged: 3,
  superseded: 4,
  cessationOfOperation: 5,
  certificateHold: 6,
  removeFromCRL: 8,
  privilegeWithdrawn: 9,
  aACompromise: 10,
};

export type RevocationListener = (certificate: IssuedCertificate) => Promise<void> | void;

/**
 * The one place a certificate becomes revoked — ACME revokeCert, `chancery revoke` and bulk incident
 * revocation all come here — so the state change and everything that must follow it (CRL regeneration,
 * OCSP re-signing: issue #4) happen the same way for every path.
 */
export class RevocationService {
  private readonly listeners: RevocationListener[] = [];

  constructor(private readonly deps: { certificates: Pick<CertificateStoreSlice, 'findBySerial' | 'revoke'>; clock: Clock }) {}

  onRevoked(listener: RevocationListener): void {
    this.listeners.push(listener);
  }

  /** Revokes by serial; 'notFound' for an unknown serial, 'alreadyRevoked' when it already is. */
  async revoke(serial: string, reason: RevocationReason): Promise<IssuedCertificate> {
    const revoked = await this.deps.certificates.revoke(serial, this.deps.clock.now(), reason);
    if (!revoked) {
      const existing = await this.deps.certificates.findBySerial(serial);
      if (!existing) throw new CaError('notFound', `no certificate with serial ${serial}`);
      throw new CaError('alreadyRevoked', `certificate ${serial} was already revoked`);
    }
    for (const listener of this.listeners) await listener(revoked);
    return revoked;
  }
}
