import type { Account } from '../core/account.js';
import type { KeyFacts } from '../core/key-facts.js';
import type { Identifier } from '../core/identifier.js';
import type { Authorization, Challenge, Order } from '../core/order.js';
import type { RevocationReason } from '../core/certificate.js';

/**
 * What the ACME wire layer (acme/) may ask of the registration authority. acme/ imports this interface
 * only; ra/ implements it. Every method throws CaError with a kind that acme/ maps to an RFC 8555 problem.
 * Methods taking `account` expect a *valid* account already authenticated by the JWS layer; they enforce
 * ownership themselves (another account's order/authorization -> CaError 'unauthorized').
 */
export interface AcmeRegistrationAuthority {
  /** Directory meta: whether newAccount requires EAB (RFC 8555 §7.1.1 externalAccountRequired). */
  readonly externalAccountRequired: boolean;

  /**
   * The account-key policy (RFC 8555 §6.2; policy/key-policy.ts): throws 'badPublicKey' naming the limit
   * when a JWS key may not be an account key. `where` names the key in the refusal ("JWS jwk").
   */
  checkAccountKey(facts: KeyFacts, where: string): void;

  // ----- accounts (RFC 8555 §7.3) -----
  findAccount(id: string): Promise<Account | undefined>;
  /**
   * A valid account just authenticated a request (its JWS verified). Synchronous and free of I/O: it only
   * notes the sighting; when accounts were last seen is written in batches, off the request's path.
   */
  accountSeen?(accountId: string): void;
  findAccountByThumbprint(thumbprint: string): Promise<Account | undefined>;
  /**
   * newAccount. Returns the existing account (created=false) when the key is already registered
   * (§7.3.1: 200 + Location). onlyReturnExisting with an unknown key -> 'accountDoesNotExist'.
   * EAB (§7.3.4): `externalAccountBinding` is the flattened JWS object from the payload; the RA verifies
   * its MAC (HS256/384/512), that its protected `url` equals `newAccountUrl`, that its payload is the
   * outer JWK, and binds the credential; missing when required -> 'externalAccountRequired'.
   */
  newAccount(request: {
    publicJwk: Record<string, string>;
    jwkThumbprint: string;
    contacts: string[];
    termsOfServiceAgreed: boolean;
    onlyReturnExisting: boolean;
    externalAccountBinding?: { protected: string; payload: string; signature: string };
    newAccountUrl: string;
  }): Promise<{ account: Account; created: boolean }>;
  /** Update contacts and/or deactivate (§7.3.2, §7.3.6). Deactivation is final. */
  updateAccount(account: Account, changes: { contacts?: string[]; deactivate?: boolean }): Promise<Account>;
  /** keyChange (§7.3.5) after acme/ has verified inner and outer JWS; 'conflict' (409) when the new key is in use. */
  changeAccountKey(account: Account, newJwk: Record<string, string>, newThumbprint: string): Promise<Account>;
  /** Order ids of the account, newest first, paged (§7.1.2.1). */
  listOrderIds(account: Account, cursor: string | undefined, limit: number): Promise<{ ids: string[]; nextCursor?: string }>;

  // ----- orders, authorizations, challenges (§7.4, §7.5) -----
  /** `replaces` is an ARI certID (RFC 9773 §5). */
  newOrder(account: Account, request: { identifiers: Identifier[]; notBefore?: Date; notAfter?: Date; replaces?: string; profile?: string }): Promise<Order>;
  getOrder(account: Account, orderId: string): Promise<Order>;
  /**
   * newAuthz (§7.4.1): a new pending authorization for the identifier (created), or the valid one the account
   * already holds for it (not created). The same identifier and network policy as newOrder; a wildcard is
   * 'rejectedIdentifier'.
   */
  newAuthorization(account: Account, identifier: Identifier): Promise<{ authorization: Authorization; created: boolean }>;
  getAuthorization(account: Account, authorizationId: string): Promise<Authorization>;
  /** §7.5.2 client deactivation. */
  deactivateAuthorization(account: Account, authorizationId: string): Promise<Authorization>;
  getChallenge(account: Account, challengeId: string): Promise<{ challenge: Challenge; authorization: Authorization }>;
  /** §7.5.1: the client says it is ready; validation is scheduled (status -> processing) and runs asynchronously. */
  respondToChallenge(account: Account, challengeId: string): Promise<{ challenge: Challenge; authorization: Authorization }>;
  /** §7.4 finalize: 'orderNotReady' unless ready; CSR checks -> 'badCSR'/'badPublicKey'; returns the order (processing or valid). */
  finalizeOrder(account: Account, orderId: string, csrDer: Uint8Array): Promise<Order>;

  // ----- certificates (§7.4.2, §7.6) -----
  /** The certificate and its chain up to (excluding) the root, DER each, for download. */
  getCertificateChain(account: Account, serial: string): Promise<{ certificate: Uint8Array; chain: Uint8Array[] }>;
  /**
   * revokeCert (§7.6). Authorized when signed by the issuing account, by an account holding valid
   * authorizations for every identifier in the certificate, or by the certificate's own key (`by.jwk`).
   * Reasons other than 0,1,3,4,5 -> 'badRevocationReason'; already revoked -> 'alreadyRevoked'.
   */
  revokeCertificate(request: {
    certificateDer: Uint8Array;
    reason?: number;
    by: { account: Account } | { jwk: Record<string, string>; jwkThumbprint: string };
  }): Promise<void>;

  // ----- ARI (RFC 9773) -----
  /**
   * certID -> suggested window; 'malformed' for a bad certID, 'notFound' for an unknown certificate. An
   * incident's certificate carries its explanationURL (§4.2).
   */
  renewalInfo(certId: string): Promise<{ start: Date; end: Date; retryAfterSeconds: number; explanationUrl?: string }>;

  /**
   * Refuses a JWS key that an incident blocked (its key is considered compromised): 'badPublicKey' naming the
   * incident. Checked against memory only (no database round trip per request).
   */
  refuseBlockedAccountKey?(key: { jwk: Record<string, string>; thumbprint: string; accountId?: string; group?: string }): Promise<void>;
}

export type { RevocationReason };
