import type { Account, EabCredential } from '../core/account.js';
import type { IssuedCertificate, RevocationReason } from '../core/certificate.js';
import type { Problem } from '../core/errors.js';
import type { Identifier } from '../core/identifier.js';
import type { Authorization, Challenge, Order, OrderStatus, AuthorizationStatus } from '../core/order.js';

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
  insert(credential: { kid: string; hmacKeyEncrypted: Uint8Array; group?: string; createdAt: Date }): Promise<void>;
  find(kid: string): Promise<{ credential: EabCredential; hmacKeyEncrypted: Uint8Array } | undefined>;
  bind(kid: string, accountId: string, at: Date): Promise<boolean>;
}

export interface NonceStoreSlice {
  insert(value: string, expiresAt: Date): Promise<void>;
  consume(value: string, now: Date): Promise<boolean>;
  purgeExpired(now: Date): Promise<number>;
}

export interface OrderStore {
  insertWithAuthorizations(order: Order, newAuthorizations: Authorization[]): Promise<void>;
  findById(id: string): Promise<Order | undefined>;
  listIdsByAccount(accountId: string, cursor: string | undefined, limit: number): Promise<{ ids: string[]; nextCursor?: string }>;
  updateStatus(id: string, from: OrderStatus[], to: OrderStatus, fields?: { error?: Problem; certificateSerial?: string }): Promise<Order | undefined>;
  findActiveByReplaces(serial: string): Promise<Order | undefined>;
}

export interface AuthorizationStore {
  findById(id: string): Promise<Authorization | undefined>;
  findByIds(ids: string[]): Promise<Authorization[]>;
  findReusable(accountId: string, identifier: Identifier, wildcard: boolean, validAfter: Date): Promise<Authorization | undefined>;
  updateStatus(id: string, from: AuthorizationStatus[], to: AuthorizationStatus): Promise<Authorization | undefined>;
}

export interface ChallengeStore {
  findById(id: string): Promise<Challenge | undefined>;
  startProcessing(id: string, now: Date): Promise<Challenge | undefined>;
  claimDue(now: Date, leaseUntil: Date, limit: number): Promise<Challenge[]>;
  recordRetry(id: string, attempts: number, nextAttemptAt: Date, error?: Problem): Promise<unknown>;
  markValid(id: string, at: Date): Promise<Challenge>;
  markInvalid(id: string, error: Problem): Promise<Challenge>;
}

export interface CertificateStoreSlice {
  reserveSerial(serial: string, issuerId: string, at: Date): Promise<void>;
  insert(certificate: IssuedCertificate): Promise<void>;
  findBySerial(serial: string): Promise<IssuedCertificate | undefined>;
  revoke(serial: string, at: Date, reason: RevocationReason): Promise<IssuedCertificate | undefined>;
}

export interface AcmeStores {
  accounts: AccountStore;
  eab: EabStore;
  orders: OrderStore;
  authorizations: AuthorizationStore;
  challenges: ChallengeStore;
  certificates: CertificateStoreSlice;
}

/** The stores on the database, and the same stores inside one transaction. */
export interface AcmeStoreAccess {
  stores: AcmeStores;
  transaction<T>(fn: (stores: AcmeStores) => Promise<T>): Promise<T>;
}
