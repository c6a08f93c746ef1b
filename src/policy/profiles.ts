import { DAY, HOUR } from '../core/clock.js';
import { CaError } from '../core/errors.js';
import { DEFAULT_PROFILE, PROFILE_IDS, type CertificateProfile, type ExtendedKeyUsage, type ProfileId } from '../core/profile.js';

/** One profile's settings (config profiles.<id>); `validityMs` undefined takes the issuance default. */
export interface ProfileSettings {
  validityMs: number | undefined;
  ekus: readonly ExtendedKeyUsage[];
  description: string;
}

export interface ProfileRegistrySettings {
  defaultId: ProfileId;
  /** issuance.validityDays: the validity of profiles that set none. */
  defaultValidityDays: number;
  profiles: Readonly<Record<ProfileId, ProfileSettings>>;
}

/** RFC 9608 §4 leaves "short" to policy; a week is the CA/B Forum's short-lived bound (BR 4.9.1.1, 7 days). */
export const SHORT_LIVED_MAX_MS = 7 * DAY;
/** The backdate of notBefore: an hour, but never more than a tenth of a short validity. */
const MAX_BACKDATE_MS = HOUR;

/**
 * The certificate profile registry (draft-ietf-acme-profiles): the fixed ids, each filled in from
 * configuration. `short-lived` is the noRevAvail profile (RFC 9608): its validity may not exceed a week.
 */
export class ProfileRegistry {
  readonly defaultId: ProfileId;
  private readonly profiles: ReadonlyMap<ProfileId, CertificateProfile>;

  constructor(settings: ProfileRegistrySettings) {
    const built = new Map<ProfileId, CertificateProfile>();
    for (const id of PROFILE_IDS) {
      const given = settings.profiles[id];
      const validityMs = given.validityMs ?? settings.defaultValidityDays * DAY;
      const noRevAvail = id === 'short-lived';
      if (noRevAvail && validityMs > SHORT_LIVED_MAX_MS) {
        throw new CaError('badConfig', `profiles.short-lived.validity must be at most 7d (RFC 9608 noRevAvail is for short-lived certificates); got ${validityMs / HOUR}h`);
      }
      // An operator's certificate authenticates a person to the admin API; it must never pass as a server's.
      if (id === 'operator' && (given.ekus.length !== 1 || given.ekus[0] !== 'clientAuth')) {
        throw new CaError('badConfig', 'profiles.operator.ekus must be clientAuth alone: operator certificates authenticate people to the admin listener');
      }
      if (given.ekus.length === 0) throw new CaError('badConfig', `profiles.${id}.ekus must name at least one of serverAuth, clientAuth`);
      built.set(id, {
        ...DEFAULT_PROFILE,
        name: id,
        description: given.description,
        validityMs,
        backdateMs: Math.min(MAX_BACKDATE_MS, Math.floor(validityMs / 10)),
        extendedKeyUsages: [...given.ekus],
        noRevAvail,
      });
    }
    this.profiles = built;
    this.defaultId = settings.defaultId;
  }

  /** The profile of an order: the one named, or the default; 'invalidProfile' for an id not in the registry. */
  resolve(requested: string | undefined): CertificateProfile {
    const id = requested ?? this.defaultId;
    const profile = this.profiles.get(id as ProfileId);
    if (profile === undefined) {
      throw new CaError('invalidProfile', `profile "${id.slice(0, 64)}" is not offered; choose one of ${PROFILE_IDS.join(', ')}`);
    }
    return profile;
  }

  get(id: string): CertificateProfile | undefined {
    return this.profiles.get(id as ProfileId);
  }

  /** Every profile, in registry order (the directory lists them). */
  all(): CertificateProfile[] {
    return [...this.profiles.values()];
  }
}

/** The registry from configuration (config profiles.* and issuance.validityDays). */
export function profileRegistryFromConfig(config: {
  profiles: { default: ProfileId } & Record<ProfileId, { validity: number | undefined; ekus: ExtendedKeyUsage[]; description: string }>;
  issuance: { validityDays: number };
}): ProfileRegistry {
  const profiles = Object.fromEntries(
    PROFILE_IDS.map((id) => [id, { validityMs: config.profiles[id].validity, ekus: config.profiles[id].ekus, description: config.profiles[id].description }]),
  ) as unknown as Record<ProfileId, ProfileSettings>;
  return new ProfileRegistry({ defaultId: config.profiles.default, defaultValidityDays: config.issuance.validityDays, profiles });
}
