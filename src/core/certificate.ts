import type { Labels } from './group.js';
import type { Identifier } from './identifier.js';

/** RFC 5280 §5.3.1 CRLReason codes Chancery records. */
export type RevocationReason = 0 | 1 | 2 | 3 | 4 | 5 | 6 | 8 | 9 | 10;

export type CertificateStatus = 'valid' | 'revoked';

/** An issued end-entity certificate as the domain sees it (rows are mapped to this in db/). */
export interface IssuedCertificate {
  serial: string; // lower-case hex, no leading zeros beyond what DER needs
  issuerId: string;
  crlShard: number;
  der: Uint8Array;
  identifiers: Identifier[];
  spkiSha256: string; // hex
  notBefore: Date;
  notAfter: Date;
  status: CertificateStatus;
  revokedAt?: Date;
  revocationReason?: RevocationReason;
  invalidityDate?: Date;
  createdAt: Date;
  /** The ACME account that ordered it; absent for certificates issued outside ACME. */
  accountId?: string;
  /** The ACME order it finalized. */
  orderId?: string;
  /** Serial of the predecessor this certificate replaces (RFC 9773 §5). */
  replacesSerial?: string;
  /** The certificate profile it was issued under (draft-ietf-acme-profiles); DEFAULT_PROFILE_ID when absent. */
  profile?: string;
  /**
   * RFC 9608 noRevAvail: a short-lived certificate whose revocation is recorded but never published — no
   * CRL lists it and OCSP does not answer for it (its own lifetime is the bound on misuse).
   */
  noRevAvail?: boolean;
  /** The group (department) of the account that got it, as it was at issuance (inventory only, never in the X.509). */
  group?: string;
  /** Its labels at issuance: the group's default labels with the account's EAB labels over them (inventory only). */
  labels?: Labels;
}

/** A CA certificate Chancery holds: the root or an issuing intermediate. */
export type IssuerRole = 'root' | 'intermediate';

export interface IssuerRecord {
  id: string; // short stable id used in URLs (/ca/<id>.der, /crl/<id>/<shard>.crl)
  role: IssuerRole;
  keyName: string; // name in the KeyStore
  parentId?: string;
  der: Uint8Array;
  subject: string;
  notBefore: Date;
  notAfter: Date;
  createdAt: Date;
}

/** A delegated OCSP responder certificate (RFC 6960 §4.2.2.2) of one issuer, one per rotation generation. */
export interface OcspResponderRecord {
  issuerId: string;
  generation: number;
  /** Name of its key in the KeyStore. */
  keyName: string;
  serial: string;
  der: Buffer;
  notBefore: Date;
  notAfter: Date;
  createdAt: Date;
}

/** RFC 5280 §5.3.1 reason names, as the CLI, the admin API and logs spell them. */
export const REASON_CODES: Readonly<Record<string, RevocationReason>> = {
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
