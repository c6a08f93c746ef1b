import { DAY, SECOND } from '../core/clock.js';
import { CaError } from '../core/errors.js';
import type { CertificateProfile } from '../core/profile.js';

/** The bounds a client may ask for (RFC 8555 §7.1.3 order notBefore/notAfter). */
export interface RequestedValidity {
  notBefore?: Date;
  notAfter?: Date;
}

/**
 * A certificate's validity window under a profile — the one computation both newOrder (to refuse a request
 * early, RFC 8555 §7.4 "the server MUST return an error if it cannot fulfil the request") and issuance use.
 *
 * - notBefore: as asked (within one validity period of now), else backdated by the profile's backdate to
 *   absorb relying parties' clock skew.
 * - notAfter: as asked, else notBefore + validity - 1 s: RFC 5280 §4.1.2.5 counts both ends inclusively,
 *   so the span is exactly the profile's validity.
 * - A notAfter asked without notBefore may reach now + validity - 1 s; the backdate then shrinks so the span
 *   still fits the profile (a client asking "valid for the maximum" gets it, not a refusal).
 */
export function validityWindow(profile: Pick<CertificateProfile, 'name' | 'validityMs' | 'backdateMs'>, requested: RequestedValidity, now: Date): { notBefore: Date; notAfter: Date } {
  const { validityMs, backdateMs, name } = profile;
  const days = `${Number((validityMs / DAY).toFixed(4))} days`;
  if (requested.notBefore && Math.abs(requested.notBefore.getTime() - now.getTime()) > validityMs) {
    throw new CaError('malformed', `notBefore ${requested.notBefore.toISOString()} must be within ${days} of now`);
  }
  const start = requested.notBefore ?? now;
  const longest = start.getTime() + validityMs - SECOND;
  if (requested.notAfter === undefined) {
    const notBefore = requested.notBefore ?? new Date(now.getTime() - backdateMs);
    return { notBefore, notAfter: new Date(notBefore.getTime() + validityMs - SECOND) };
  }
  const notAfter = requested.notAfter;
  if (notAfter.getTime() <= start.getTime()) throw new CaError('malformed', 'notAfter must be later than notBefore');
  if (notAfter.getTime() <= now.getTime()) throw new CaError('malformed', 'notAfter is in the past');
  if (notAfter.getTime() > longest) {
    throw new CaError('malformed', `notAfter ${notAfter.toISOString()} exceeds the profile "${name}" validity of ${days}`);
  }
  const notBefore = requested.notBefore ?? new Date(Math.max(now.getTime() - backdateMs, notAfter.getTime() - validityMs + SECOND));
  return { notBefore, notAfter };
}
