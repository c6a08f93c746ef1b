import { parseCertId } from '../core/cert-id.js';
import { HOUR, MINUTE, type Clock } from '../core/clock.js';
import { CaError } from '../core/errors.js';
import { incidentWindow, type OpenIncident } from '../core/incident.js';
import type { CertificateStoreSlice } from './acme-stores.js';

/** RFC 9773 §4.3 Retry-After when configuration says nothing (ari.retryAfterSeconds). */
export const DEFAULT_ARI_RETRY_AFTER_SECONDS = HOUR / 1000;

/** The open incident covering a certificate (ra/ IncidentDirectory): no database read while none is open. */
export interface IncidentLookup {
  incidentOf(serial: string): Promise<OpenIncident | undefined>;
}

/** What renewalInfo answers (RFC 9773 §4.2): the window, the explanation of an incident, and Retry-After (§4.3). */
export interface RenewalInfo {
  start: Date;
  end: Date;
  retryAfterSeconds: number;
  explanationUrl?: string;
}

/**
 * ACME Renewal Information (RFC 9773 §4.2). The suggested window is the middle third of the validity
 * (renewing a third of the way before expiry leaves two thirds of the margin for retries; a profile may change it later); a revoked certificate gets a window already in the
 * past so clients renew at once (§4.2). A certificate an open incident covers gets a window that has already
 * begun (core/incident.ts incidentWindow) and the incident's explanationURL. Retry-After is
 * ari.retryAfterSeconds: the longest a client that polls as told takes to see an incident.
 */
export class RenewalInfoService {
  private readonly retryAfterSeconds: number;

  constructor(
    private readonly deps: {
      certificates: Pick<CertificateStoreSlice, 'findBySerial'>;
      issuerKeyIds: Buffer[];
      clock: Clock;
      retryAfterSeconds?: number;
      incidents?: IncidentLookup;
    },
  ) {
    this.retryAfterSeconds = deps.retryAfterSeconds ?? DEFAULT_ARI_RETRY_AFTER_SECONDS;
  }

  async renewalInfo(certId: string): Promise<RenewalInfo> {
    const parsed = parseCertId(certId);
    if (!this.deps.issuerKeyIds.some((keyId) => keyId.equals(parsed.authorityKeyId))) {
      throw new CaError('notFound', `certificate ${certId} was not issued by this CA`);
    }
    // Both reads at once: the incident lookup costs no time of its own, and nothing while no incident is open.
    const [certificate, incident] = await Promise.all([this.deps.certificates.findBySerial(parsed.serialHex), this.deps.incidents?.incidentOf(parsed.serialHex)]);
    if (!certificate) throw new CaError('notFound', `certificate ${certId} is unknown`);
    const retryAfterSeconds = this.retryAfterSeconds;
    const explained = incident?.explanationUrl === undefined ? {} : { explanationUrl: incident.explanationUrl };
    if (certificate.status === 'revoked') {
      const now = this.deps.clock.now().getTime();
      return { start: new Date(now - 2 * HOUR), end: new Date(now - MINUTE), retryAfterSeconds, ...explained };
    }
    const from = certificate.notBefore.getTime();
    const third = (certificate.notAfter.getTime() - from) / 3;
    const own = { start: new Date(from + third), end: new Date(from + 2 * third) };
    if (incident === undefined) return { ...own, retryAfterSeconds };
    return { ...incidentWindow(own, incident), retryAfterSeconds, ...explained };
  }
}
