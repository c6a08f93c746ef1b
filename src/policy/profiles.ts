import { DAY } from '../core/clock.js';
import { DEFAULT_PROFILE, type CertificateProfile } from '../core/profile.js';

/**
 * The certificate profile end-entity certificates are issued under, from the configured limits
 * (issuance.validityDays). Policy fills profiles in; ca/ checks each TBS against the one it is given
 * (DESIGN.md layers).
 */
export function profileFromSettings(settings: { validityDays: number }): CertificateProfile {
  return { ...DEFAULT_PROFILE, validityMs: settings.validityDays * DAY };
}
