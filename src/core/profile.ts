/**
 * Certificate profiles (draft-ietf-acme-profiles): what an end-entity certificate may contain. policy/
 * fills them in from configuration; ca/ checks each TBS against the one it is given (DESIGN.md rule 2)
 * without importing policy/.
 */
export type ExtendedKeyUsage = 'serverAuth' | 'clientAuth';

/** The fixed ids of the profile registry; groups allow profiles by these ids. */
export const PROFILE_IDS = ['tls-server', 'tls-client', 'mtls', 'short-lived', 'operator'] as const;
export type ProfileId = (typeof PROFILE_IDS)[number];

/** What an order without a profile gets, and what certificates issued before profiles existed were. */
export const DEFAULT_PROFILE_ID: ProfileId = 'tls-server';

export function isProfileId(value: string): value is ProfileId {
  return (PROFILE_IDS as readonly string[]).includes(value);
}

export interface CertificateProfile {
  /** The registry id (also the ACME `profile` name). */
  name: string;
  /** Shown to clients in the directory's meta.profiles. */
  description: string;
  validityMs: number;
  /** Backdate notBefore to absorb client clock skew (CABF BR 7.1.2.7 allows it; Boulder uses 1 h). */
  backdateMs: number;
  extendedKeyUsages: ExtendedKeyUsage[];
  maxIdentifiers: number;
  /**
   * RFC 9608: the certificate carries noRevAvail and neither a CRL distribution point nor an OCSP URL; its
   * revocation is recorded and never published. Only for short validity (the lifetime bounds misuse).
   */
  noRevAvail: boolean;
}

export const DEFAULT_PROFILE: CertificateProfile = {
  name: DEFAULT_PROFILE_ID,
  description: 'TLS server certificate (serverAuth)',
  validityMs: 30 * 24 * 60 * 60 * 1000,
  backdateMs: 60 * 60 * 1000,
  extendedKeyUsages: ['serverAuth'],
  maxIdentifiers: 100,
  noRevAvail: false,
};
