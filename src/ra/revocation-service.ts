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
 * Work that must commit together with the status change, or not at all: e.g. re-signing the certificate's
 * OCSP response (issue #4), so no instance can read `good` from the database once the revocation is visible.
 * `tx` is whatever the transaction runner hands out (the composition root uses the database's Queryable).
 * A hook that throws rolls the revocation back.
 */
export type BeforeCommitHook<Tx> = (tx: Tx, certificate: IssuedCertificate) => Promise<void>;

/** One transaction: the database handle for hooks, and the certificate store on that same transaction. */
export interface RevocationTransactionScope<Tx> {
  tx: Tx;
  certificates: Pick<CertificateStoreSlice, 'revoke'>;
}

export interface RevocationDeps<Tx> {
  certificates: Pick<CertificateStoreSlice, 'findBySerial' | 'revoke'>;
  clock: Clock;
  /** Runs fn in one transaction (committed if it resolves). Required once a beforeCommit hook is registered. */
  transaction?: <T>(fn: (scope: RevocationTransactionScope<Tx>) => Promise<T>) => Promise<T>;
}

/**
 * The one place a certificate becomes revoked — ACME revokeCert, `chancery revoke` and bulk incident
 * revocation all come here — so the state change and everything that must follow it (CRL regeneration,
 * OCSP re-signing: issue #4) happen the same way for every path.
 *
 * Order: status change + beforeCommit hooks in one transaction (rule 6), commit, then onRevoked listeners
 * (after-commit work such as cache invalidation or a CRL run), then revoke() returns.
 */
export class RevocationService<Tx = unknown> {
  private readonly listeners: RevocationListener[] = [];
  // Method syntax keeps RevocationService<Queryable> assignable where a RevocationService is expected.
  private readonly hooks: { run(tx: Tx, certificate: IssuedCertificate): Promise<void> }[] = [];

  constructor(private readonly deps: RevocationDeps<Tx>) {}

  onRevoked(listener: RevocationListener): void {
    this.listeners.push(listener);
  }

  /** Registers work that runs inside the revocation's transaction, after the status change, before COMMIT. */
  beforeCommit(hook: BeforeCommitHook<Tx>): void {
    if (this.deps.transaction === undefined) {
      throw new CaError('serverInternal', 'RevocationService needs a transaction runner for beforeCommit hooks');
    }
    this.hooks.push({ run: hook });
  }

  /**
   * Revokes by serial; 'notFound' for an unknown serial, 'alreadyRevoked' when it already is.
   * `invalidityDate`: when the key is known or suspected to have been compromised, or the certificate
   * otherwise became invalid (RFC 5280 §5.3.2); carried in the CRL entry and the OCSP response. It may precede issuance (a reused
   * key) but not the revocation itself.
   */
  async revoke(serial: string, reason: RevocationReason, options: { invalidityDate?: Date } = {}): Promise<IssuedCertificate> {
    const at = this.deps.clock.now();
    const { invalidityDate } = options;
    if (invalidityDate !== undefined && Number.isNaN(invalidityDate.getTime())) throw new CaError('malformed', 'invalidity date is not a date');
    if (invalidityDate !== undefined && invalidityDate.getTime() > at.getTime()) {
      throw new CaError('malformed', `invalidity date ${invalidityDate.toISOString()} is after the revocation time ${at.toISOString()}`);
    }
    const transaction = this.deps.transaction;
    const revoked =
      transaction === undefined
        ? await this.deps.certificates.revoke(serial, at, reason, invalidityDate)
        : await transaction(async ({ tx, certificates }) => {
            const certificate = await certificates.revoke(serial, at, reason, invalidityDate);
            if (certificate) for (const hook of this.hooks) await hook.run(tx, certificate);
            return certificate;
          });
    if (!revoked) {
      const existing = await this.deps.certificates.findBySerial(serial);
      if (!existing) throw new CaError('notFound', `no certificate with serial ${serial}`);
      throw new CaError('alreadyRevoked', `certificate ${serial} was already revoked`);
    }
    for (const listener of this.listeners) await listener(revoked);
    return revoked;
  }
}
