import { createHash } from 'node:crypto';
import type { Account } from '../core/account.js';
import { accountActor, keyActor, type Actor } from '../core/audit.js';
import type { KeyFacts } from '../core/key-facts.js';
import { ACCOUNT_KEY_POLICY, checkKeyFacts } from '../policy/key-policy.js';
import type { IssuerRecord, RevocationReason } from '../core/certificate.js';
import type { Clock } from '../core/clock.js';
import { CaError } from '../core/errors.js';
import type { Identifier } from '../core/identifier.js';
import type { Authorization, Challenge, Order } from '../core/order.js';
import type { AccountService, NewAccountInput } from './account-service.js';
import type { AcmeRegistrationAuthority } from './acme-registration-authority.js';
import type { AcmeStoreAccess } from './acme-stores.js';
import { jwkToSpki } from '../core/jwk.js';
import type { OrderService } from './order-service.js';
import type { RenewalInfoService } from './renewal-info.js';

/** RFC 8555 §7.6: the reasons a subscriber may give (others are for the CA itself). */
const SUBSCRIBER_REASONS: readonly number[] = [0, 1, 3, 4, 5];

/**
 * The revoker the ACME path hands a checked request to (revocation/ Revoker, declared here: ra/ does not
 * import revocation/). The subscriber checks of RFC 8555 §7.6 — who may revoke, which reasons — stay here.
 */
export interface CertificateRevoker {
  revoke(serial: string, reason: RevocationReason, options: { actor: Actor }): Promise<unknown>;
}

/** What the RA reads from a certificate presented for revocation (ca/ provides it). */
export type CertificateReader = (der: Uint8Array) => { serialHex: string; spki: Buffer };

/** Keys incidents blocked, as the RA checks them (ra/incident-directory.ts). */
export interface BlockedKeyCheck {
  anyBlocked(): Promise<boolean>;
  refuseBlocked(spki: Uint8Array | string, use: 'csr' | 'account-key', who?: { accountId?: string; group?: string }): Promise<void>;
}

/**
 * The ACME registration authority: the AcmeRegistrationAuthority interface over the account, order,
 * revocation and renewal-info services. Knows nothing of HTTP or JWS.
 */
export class AcmeRa implements AcmeRegistrationAuthority {
  readonly externalAccountRequired: boolean;
  private issuerList: Promise<IssuerRecord[]> | undefined;
  /** JWK thumbprint -> SHA-256 of its SubjectPublicKeyInfo (hex); bounded. */
  private readonly spkiByThumbprint = new Map<string, string>();

  constructor(
    private readonly deps: {
      access: AcmeStoreAccess;
      accounts: AccountService;
      orders: OrderService;
      revocation: CertificateRevoker;
      renewal: RenewalInfoService;
      readCertificate: CertificateReader;
      issuers: () => Promise<IssuerRecord[]>;
      clock: Clock;
      eabRequired: boolean;
      /** Notes accounts that authenticate (inventory/account-activity.ts; compose.ts passes it). */
      activity?: { seen(accountId: string): void };
      /** Keys incidents blocked (ra/incident-directory.ts), checked in memory on every request. */
      blockedKeys?: BlockedKeyCheck;
    },
  ) {
    this.externalAccountRequired = deps.eabRequired;
  }

  checkAccountKey(facts: KeyFacts, where: string): void {
    checkKeyFacts(facts, ACCOUNT_KEY_POLICY, where);
  }

  findAccount(id: string): Promise<Account | undefined> {
    return this.deps.access.stores.accounts.findById(id);
  }

  accountSeen(accountId: string): void {
    this.deps.activity?.seen(accountId);
  }

  findAccountByThumbprint(thumbprint: string): Promise<Account | undefined> {
    return this.deps.access.stores.accounts.findByThumbprint(thumbprint);
  }

  newAccount(request: NewAccountInput): Promise<{ account: Account; created: boolean }> {
    return this.deps.accounts.newAccount(request);
  }

  updateAccount(account: Account, changes: { contacts?: string[]; deactivate?: boolean }): Promise<Account> {
    return this.deps.accounts.update(account, changes);
  }

  async changeAccountKey(account: Account, newJwk: Record<string, string>, newThumbprint: string): Promise<Account> {
    await this.refuseBlockedAccountKey({ jwk: newJwk, thumbprint: newThumbprint, accountId: account.id, ...(account.group === undefined ? {} : { group: account.group }) });
    return this.deps.accounts.changeKey(account, newJwk, newThumbprint);
  }

  async refuseBlockedAccountKey(key: { jwk: Record<string, string>; thumbprint: string; accountId?: string; group?: string }): Promise<void> {
    const blocked = this.deps.blockedKeys;
    if (blocked === undefined || !(await blocked.anyBlocked())) return;
    // A thumbprint names exactly one key, so its SPKI hash can be remembered (DESIGN.md rule 7).
    let spkiSha256 = this.spkiByThumbprint.get(key.thumbprint);
    if (spkiSha256 === undefined) {
      spkiSha256 = createHash('sha256').update(jwkToSpki(key.jwk)).digest('hex');
      if (this.spkiByThumbprint.size >= 10_000) this.spkiByThumbprint.delete(this.spkiByThumbprint.keys().next().value as string);
      this.spkiByThumbprint.set(key.thumbprint, spkiSha256);
    }
    await blocked.refuseBlocked(spkiSha256, 'account-key', { ...(key.accountId === undefined ? {} : { accountId: key.accountId }), ...(key.group === undefined ? {} : { group: key.group }) });
  }

  listOrderIds(account: Account, cursor: string | undefined, limit: number): Promise<{ ids: string[]; nextCursor?: string }> {
    return this.deps.access.stores.orders.listIdsByAccount(account.id, cursor, limit);
  }

  newOrder(account: Account, request: { identifiers: Identifier[]; notBefore?: Date; notAfter?: Date; replaces?: string; profile?: string }): Promise<Order> {
    return this.deps.orders.newOrder(account, request);
  }

  newAuthorization(account: Account, identifier: Identifier): Promise<{ authorization: Authorization; created: boolean }> {
    return this.deps.orders.newAuthorization(account, identifier);
  }

  getOrder(account: Account, orderId: string): Promise<Order> {
    return this.deps.orders.getOrder(account, orderId);
  }

  getAuthorization(account: Account, authorizationId: string): Promise<Authorization> {
    return this.deps.orders.getAuthorization(account, authorizationId);
  }

  deactivateAuthorization(account: Account, authorizationId: string): Promise<Authorization> {
    return this.deps.orders.deactivateAuthorization(account, authorizationId);
  }

  getChallenge(account: Account, challengeId: string): Promise<{ challenge: Challenge; authorization: Authorization }> {
    return this.deps.orders.getChallenge(account, challengeId);
  }

  respondToChallenge(account: Account, challengeId: string): Promise<{ challenge: Challenge; authorization: Authorization }> {
    return this.deps.orders.respondToChallenge(account, challengeId);
  }

  finalizeOrder(account: Account, orderId: string, csrDer: Uint8Array): Promise<Order> {
    return this.deps.orders.finalize(account, orderId, csrDer);
  }

  async getCertificateChain(account: Account, serial: string): Promise<{ certificate: Uint8Array; chain: Uint8Array[] }> {
    const certificate = this.deps.orders.recentlyIssued(serial) ?? (await this.deps.access.stores.certificates.findBySerial(serial));
    if (!certificate) throw new CaError('notFound', `certificate ${serial} does not exist`);
    if (certificate.accountId !== account.id) throw new CaError('unauthorized', `certificate ${serial} belongs to another account`);
    const issuers = await this.issuersFor(certificate.issuerId);
    const chain: Uint8Array[] = [];
    // Leaf's issuer first, then up to (not including) the self-signed root (RFC 8555 §9.1).
    for (let issuer = issuers.find((i) => i.id === certificate.issuerId); issuer && issuer.role !== 'root'; issuer = issuers.find((i) => i.id === issuer!.parentId)) {
      chain.push(issuer.der);
    }
    return { certificate: certificate.der, chain };
  }

  async revokeCertificate(request: {
    certificateDer: Uint8Array;
    reason?: number;
    by: { account: Account } | { jwk: Record<string, string>; jwkThumbprint: string };
  }): Promise<void> {
    const reason = request.reason ?? 0;
    if (!SUBSCRIBER_REASONS.includes(reason)) {
      throw new CaError('badRevocationReason', `reason ${reason} is not allowed; use one of ${SUBSCRIBER_REASONS.join(', ')} (RFC 8555 §7.6)`);
    }
    let presented: { serialHex: string; spki: Buffer };
    try {
      presented = this.deps.readCertificate(request.certificateDer);
    } catch (cause) {
      throw new CaError('malformed', 'certificate is not a DER X.509 certificate', { cause });
    }
    const stored = await this.deps.access.stores.certificates.findBySerial(presented.serialHex);
    if (!stored || !Buffer.from(stored.der).equals(Buffer.from(request.certificateDer))) {
      throw new CaError('notFound', 'this certificate was not issued by this CA');
    }
    if ('jwk' in request.by) {
      if (!jwkToSpki(request.by.jwk).equals(presented.spki)) {
        throw new CaError('unauthorized', "the request is not signed by the certificate's key");
      }
    } else if (stored.accountId !== request.by.account.id && !(await this.holdsAuthorizations(request.by.account, stored.identifiers))) {
      throw new CaError('unauthorized', 'the account neither issued this certificate nor holds valid authorizations for all its identifiers');
    }
    // RFC 8555 §7.6: signed by an account, or by the certificate's own key (its holder, by thumbprint).
    const actor = 'jwk' in request.by ? keyActor(request.by.jwkThumbprint) : accountActor(request.by.account.id);
    await this.deps.revocation.revoke(stored.serial, reason as RevocationReason, { actor });
  }

  /**
   * The CA certificates, kept after the first read: issuer rows never change once written (a rollover adds a
   * new one), so a cached list can only lack a newer issuer, never be wrong about one it has (DESIGN.md
   * rule 7). A certificate naming an issuer the list lacks reloads it. Saves a read per certificate download.
   */
  private async issuersFor(issuerId: string): Promise<IssuerRecord[]> {
    const cached = this.issuerList && (await this.issuerList.catch(() => undefined));
    if (cached?.some((i) => i.id === issuerId)) return cached;
    const loading = this.deps.issuers();
    this.issuerList = loading;
    try {
      return await loading;
    } catch (error) {
      if (this.issuerList === loading) this.issuerList = undefined; // a failed read is not kept
      throw error;
    }
  }

  renewalInfo(certId: string): Promise<{ start: Date; end: Date; retryAfterSeconds: number; explanationUrl?: string }> {
    return this.deps.renewal.renewalInfo(certId);
  }

  private async holdsAuthorizations(account: Account, identifiers: readonly Identifier[]): Promise<boolean> {
    const now = this.deps.clock.now();
    for (const id of identifiers) {
      const wildcard = id.type === 'dns' && id.value.startsWith('*.');
      const base: Identifier = wildcard ? { type: 'dns', value: id.value.slice(2) } : id;
      const held = await this.deps.access.stores.authorizations.findReusable(account.id, base, wildcard, now);
      if (held?.status !== 'valid') return false;
    }
    return true;
  }
}
