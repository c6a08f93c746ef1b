import { parseCertId } from '../core/cert-id.js';
import { HOUR, MINUTE, type Clock } from '../core/clock.js';
import { CaError } from '../core/errors.js';
import type { CertificateStoreSlice } from './acme-stores.js';

/** RFC 9773 §4.3: how long a client should wait before asking again. */
const RETRY_AFTER_SECONDS = (6 * HOUR) / 1000;

/**
 * ACME Renewal Information (RFC 9773 §4.2). The suggested window is the middle third of the validity
 * (renewing a third of the way before expiry leaves two thirds of the margin for retries; a profile may change it later); a revoked certificate gets a window already in the
 * past so clients renew at once (§4.2).
 */
export class RenewalInfoService {
  constructor(private readonly deps: { certificates: Pick<CertificateStoreSlice, 'findBySerial'>; issuerKeyIds: Buffer[]; clock: Clock }) {}

  async renewalInfo(certId: string): Promise<{ start: Date; end: Date; retryAfterSeconds: number }> {
    const parsed = parseCertId(certId);
    if (!this.deps.issuerKeyIds.some((keyId) => keyId.equals(parsed.authorityKeyId))) {
      throw new CaError('notFound', `certificate ${certId} was not issued by this CA`);
    }
    const certificate = await this.deps.certificates.findBySerial(parsed.serialHex);
    if (!certificate) throw new CaError('notFound', `certificate ${certId} is unknown`);
    if (certificate.status === 'revoked') {
      const now = this.deps.clock.now().getTime();
      return { start: new Date(now - 2 * HOUR), end: new Date(now - MINUTE), retryAfterSeconds: RETRY_AFTER_SECONDS };
    }
    const from = certificate.notBefore.getTime();
    const third = (certificate.notAfter.getTime() - from) / 3;
    return { start: new Date(from + third), end: new Date(from + 2 * third), retryAfterSeconds: RETRY_AFTER_SECONDS };
  }
}
