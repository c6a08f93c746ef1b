/**
 * A certificate profile: what an end-entity certificate may contain. Policy fills it in; ca/ checks each
 * TBS against it before signing (DESIGN.md rule 2) without importing policy/.
 */
export type ExtendedKeyUsage = 'serverAuth' | 'clientAuth';

export interface CertificateProfile {
  name: string;
  validityMs: number;
  /** Backdate notBefore to absorb client clock skew (CABF BR 7.1.2.7 allows it; Boulder uses 1 h). */
  backdateMs: number;
  extendedKeyUsages: ExtendedKeyUsage[];
  maxIdentifiers: number;
}

export const DEFAULT_PROFILE: CertificateProfile = {
  name: 'default',
  validityMs: 30 * 24 * 60 * 60 * 1000,
  backdateMs: 60 * 60 * 1000,
  extendedKeyUsages: ['serverAuth', 'clientAuth'],
  maxIdentifiers: 100,
};
