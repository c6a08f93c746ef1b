import type { Labels } from './group.js';

/** An ACME account (RFC 8555 §7.1.2). The key is the public JWK the account signs with. */
export type AccountStatus = 'valid' | 'deactivated' | 'revoked';

export interface Account {
  id: string;
  status: AccountStatus;
  /** mailto: URIs (RFC 8555 §7.3). */
  contacts: string[];
  /** Public JWK (RFC 7517), exactly the members RFC 7638 hashes plus kty. */
  publicJwk: Record<string, string>;
  /** RFC 7638 SHA-256 thumbprint, base64url: the unique handle of the key. */
  jwkThumbprint: string;
  /** The EAB credential this account was bound to (RFC 8555 §7.3.4), if any. */
  eabKid?: string;
  /** The group (department) the account belongs to, from its EAB credential; `default` when absent. */
  group?: string;
  /** Its EAB credential's labels (absent when it has none), recorded with every certificate it gets. */
  labels?: Labels;
  termsOfServiceAgreed: boolean;
  createdAt: Date;
}

/** An External Account Binding credential (RFC 8555 §7.3.4). The HMAC key itself never leaves db/ + ra/. */
export interface EabCredential {
  kid: string;
  group?: string;
  /** Business context for the account bound with it and its certificates (absent when none). */
  labels?: Labels;
  createdAt: Date;
  boundAccountId?: string;
  boundAt?: Date;
  /** A revoked credential binds no account (an unused key that leaked). */
  revokedAt?: Date;
}
