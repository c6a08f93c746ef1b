import type { Account, EabCredential } from '../core/account.js';
import type { AuditDraft } from '../core/audit.js';
import type { IssuedCertificate, RevocationReason } from '../core/certificate.js';
import type { Problem } from '../core/errors.js';
import type { Labels } from '../core/group.js';
import type { Identifier } from '../core/identifier.js';
import type { Authorization, Challenge, Order, OrderStatus, AuthorizationStatus } from '../core/order.js';
import type { Queryable } from '../db/database.js';

/**
 * The slices of the database the ACME RA uses, declared here (DESIGN.md: the consumer states the
 * interface) and implemented by db/ repositories. All times are passed in from the Clock.
 */
export interface AccountStore {
  insert(account: Account): Promise<void>;
  findById(id: string): Promise<Account | undefined>;
  findByThumbprint(thumbprint: string): Promise<Account | undefined>;
  updateContacts(id: string, contacts: string[]): Promise<Account>;
  deactivate(id: string): Promise<Account>;
  updateKey(id: string, publicJwk: Record<string, string>, thumbprint: string): Promise<Account>;
}

export interface EabStore {
  /** Throws CaError('notFound') when `group` does not exist. */
  insert(credential: { kid: string; hmacKeyEncrypted: Uint8Array; group?: string; labels?: Labels; createdAt: Date }): Promise<void>;
  find(kid: string): Promise<{ credential: EabCredential; hmacKeyEncrypted: Uint8Array } | undefined>;
  bind(kid: string, accountId: string, at: Date): Promise<boolean>;
}

/** How far an order's authorizations are: all `total` must be `usable` (valid, unexpired) for it to be ready. */
export interface OrderProgress {
  total: number;
  usable: number;
  /** The first authorization (in order position) that can no longer become valid, if any. */
  failedId?: string;
}

export interface OrderStore {
  /** One atomic statement: needs no transaction around it. */
  insertWithAuthorizations(order: Order, newAuthorizations: Authorization[]): Promise<void>;
  findById(id: string): Promise<Order | undefined>;
  /** The order and its authorizations' progress, in one read. */
  findWithProgress(id: string, now: Date): Promise<{ order: Order; progress: OrderProgress } | undefined>;
  /**
   * Finalization's compare-and-set (from -> processing, only if unexpired with every authorization usable at
   * `now`) together with the serial reservation of DESIGN.md rule 2; false (and nothing changed) when the
   * order could not be claimed.
   */
  claimForIssuance(id: string, from: OrderStatus[], now: Date, serial: string, issuerId: string): Promise<boolean>;
  /**
   * processing -> invalid with `error` for orders claimed at or before `claimedBefore` (at most `limit`);
   * the orders that moved.
   */
  failStuckProcessing(claimedBefore: Date, error: Problem, limit: number): Promise<Order[]>;
  listIdsByAccount(accountId: string, cursor: string | undefined, limit: number): Promise<{ ids: string[]; nextCursor?: string }>;
  updateStatus(id: string, from: OrderStatus[], to: OrderStatus, fields?: { error?: Problem; certificateSerial?: string }): Promise<Order | undefined>;
  findActiveByReplaces(serial: string): Promise<Order | undefined>;
}

export interface AuthorizationStore {
  /** Authorizations with their challenges (two statements: run it in a transaction to make it atomic). */
  insertMany(authorizations: readonly Authorization[]): Promise<void>;
  findById(id: string): Promise<Authorization | undefined>;
  findByIds(ids: string[]): Promise<Authorization[]>;
  findReusable(accountId: string, identifier: Identifier, wildcard: boolean, validAfter: Date): Promise<Authorization | undefined>;
  /** findReusable for several identifiers in one read: at most one per (identifier, wildcard), any order. */
  findReusableMany(accountId: string, wanted: { identifier: Identifier; wildcard: boolean }[], validAfter: Date): Promise<Authorization[]>;
  updateStatus(id: string, from: AuthorizationStatus[], to: AuthorizationStatus): Promise<Authorization | undefined>;
}

/** A challenge claimed for validation with what validating it needs. */
export interface ClaimedChallenge {
  challenge: Challenge;
  authorization: Omit<Authorization, 'challenges'>;
  /** RFC 7638 thumbprint of the account key (the key authorization, RFC 8555 §8.1). */
  accountThumbprint: string;
}

export interface ChallengeStore {
  findById(id: string): Promise<Challenge | undefined>;
  /**
   * §7.5.1 the client's response in one statement: pending -> processing if the authorization is the
   * account's, pending and unexpired at `now`; the challenge and its authorization as they are afterwards,
   * whether it moved (`started`) or not. Undefined for an unknown challenge.
   */
  respond(id: string, accountId: string, now: Date, due?: Date): Promise<{ challenge: Challenge; authorization: Authorization; started: boolean } | undefined>;
  claimDueForValidation(now: Date, leaseUntil: Date, limit: number): Promise<ClaimedChallenge[]>;
  recordRetry(id: string, attempts: number, nextAttemptAt: Date, error?: Problem): Promise<unknown>;
  /** processing -> valid, and the authorization pending -> valid, in one statement. */
  markValidWithAuthorization(id: string, at: Date): Promise<void>;
  /** processing -> invalid, and the authorization pending -> invalid, in one statement. */
  markInvalidWithAuthorization(id: string, error: Problem): Promise<void>;
}

/**
 * A certificate's first OCSP response (`good`, RFC 6960), pre-signed before the certificate is stored so
 * both are stored in one statement: a relying party can ask as soon as the client has the certificate, and
 * a separate statement per issuance would cost a round trip.
 */
export interface FirstOcspResponse {
  der: Uint8Array;
  thisUpdate: Date;
  nextUpdate: Date;
  /** When the refresher re-signs it. */
  refreshAfter: Date;
  /** Which responder certificate of the issuer signed it. */
  responderGeneration?: number;
  updatedAt: Date;
}

export interface CertificateStoreSlice {
  reserveSerial(serial: string, issuerId: string, at: Date): Promise<void>;
  insert(certificate: IssuedCertificate): Promise<void>;
  /**
   * Stores the certificate and moves its order processing -> valid in one statement; false if the order did
   * not move. `ocsp`, when given, is the certificate's first OCSP response, and `records` the audit entries
   * of the issuance (DESIGN.md rule 8), stored in the same statement.
   */
  insertForOrder(certificate: IssuedCertificate, orderId: string, ocsp?: FirstOcspResponse, records?: readonly AuditDraft[]): Promise<boolean>;
  findBySerial(serial: string): Promise<IssuedCertificate | undefined>;
  /** valid -> revoked at `at`; `invalidityDate` (RFC 5280 §5.3.2) is stored when given. Undefined if it was not valid. */
  revoke(serial: string, at: Date, reason: RevocationReason, invalidityDate?: Date): Promise<IssuedCertificate | undefined>;
}

export interface AcmeStores {
  accounts: AccountStore;
  eab: EabStore;
  orders: OrderStore;
  authorizations: AuthorizationStore;
  challenges: ChallengeStore;
  certificates: CertificateStoreSlice;
}

/**
 * The stores on the database, and the same stores inside one transaction together with its handle (for the
 * in-transaction phase of domain events).
 */
export interface AcmeStoreAccess {
  stores: AcmeStores;
  transaction<T>(fn: (stores: AcmeStores, tx: Queryable) => Promise<T>): Promise<T>;
}
