import type { IssuedCertificate } from './certificate.js';

/**
 * A subject key as the key inventory knows it: by the SHA-256 of its SubjectPublicKeyInfo (hex), what the
 * key policy judges (`kind`: rsa/<bits>/<exponent>, ec/<curve>, ed25519 or other/<type>), and whether it has
 * been certified for more than one account or group — a key copied between machines or teams, which one
 * compromise exposes everywhere at once.
 */
export interface SubjectKey {
  spkiSha256: string;
  kind: string;
  firstSerial: string;
  firstSeenAt: Date;
  /** The latest notAfter of its certificates. */
  lastNotAfter: Date;
  sharedAccounts: boolean;
  sharedGroups: boolean;
}

/** A key of a report, with (some of) its certificates and how many it has in the reader's scope. */
export interface KeyReportEntry {
  key: SubjectKey;
  certificates: IssuedCertificate[];
  certificateCount: number;
  /** Distinct accounts and groups among those certificates ('' stands for none). */
  accounts: number;
  groups: number;
}
