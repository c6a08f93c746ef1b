import type { Account } from '../core/account.js';
import type { IssuedCertificate } from '../core/certificate.js';
import { parseCertId } from '../core/cert-id.js';
import { DAY, type Clock } from '../core/clock.js';
import { CaError, isCaError, type Problem } from '../core/errors.js';
import type { DomainEvent, DomainEvents } from '../core/events.js';
import type { Identifier } from '../core/identifier.js';
import { newId } from '../core/ids.js';
import { jwkToSpki } from '../core/jwk.js';
import type { Authorization, AuthorizationStatus, Challenge, ChallengeType, Order, OrderStatus } from '../core/order.js';
import type { ProfileRegistry } from '../policy/profiles.js';
import type { Queryable } from '../db/database.js';
import {
  certificateLabels,
  checkGroupIdentifiers,
  checkGroupValidity,
  groupChallengeTypes,
  groupProfileId,
  isPreapproved,
  mayReuse,
  narrowProfile,
  type GroupRules,
  type GroupSet,
} from '../policy/group-policy.js';
import { checkIdentifiers } from '../policy/identifier-policy.js';
import { validityWindow } from '../policy/validity.js';
import type { AcmeStoreAccess, AcmeStores, ClaimedChallenge } from './acme-stores.js';
import type { CertificateIssuance } from './certificate-issuance.js';
import { changeWithEvent, changeWithEvents } from './event-transaction.js';
import { refuseByNetworkPolicy, type IdentifierNetworkCheck } from './identifier-network-check.js';
import { INTERRUPTED_ISSUANCE } from './order-recovery.js';
import type { AttemptResult } from './validation-scheduler.js';

export interface OrderSettings {
  orderLifetimeMs: number;
  /** How long a new authorization stays valid, and so how long later orders of the account reuse it. */
  authorizationLifetimeMs: number;
  /** The profile registry (draft-ietf-acme-profiles): an order names one or gets the default. */
  profiles: ProfileRegistry;
  /** Key identifiers of the issuers whose certificates may be named in `replaces`. */
  issuerKeyIds: Buffer[];
}

const SPKI_CACHE_SIZE = 10_000;

/**
 * CAA checking at finalize (va/ CaaChecker, declared here: ra/ does not import va/ values), with how old a
 * validation may be before CAA is checked again (validation.caa.recheckHours).
 */
export interface CaaRecheck {
  recheckMs: number;
  check(request: { name: string; wildcard: boolean; accountUri?: string; method?: ChallengeType }): Promise<{ ok: true } | { ok: false; problem: Problem; retryable: boolean }>;
  /** The account's URL for RFC 8657 accounturi (the URL scheme belongs to acme/). */
  accountUri(accountId: string): string;
}

/** The slice of the ValidationScheduler the order service drives (see its leaseForInline / validateNow). */
export interface InlineValidation {
  leaseForInline(now: Date): Date | undefined;
  validateNow(work: ClaimedChallenge): Promise<AttemptResult | undefined>;
  /** Claim due work now (a challenge left for the scheduler). */
  kick(): void;
}

/**
 * The group policy of an account, as the order service reads it on every order and finalize: from memory
 * (ra/ GroupDirectory), never a database round trip on the hot path.
 */
export interface GroupPolicies {
  rulesFor(subject: { group?: string }): Promise<{ set: GroupSet; rules: GroupRules }>;
}

/** What a certificate download needs of a certificate; none of it ever changes once issued. */
export type DownloadableCertificate = Pick<IssuedCertificate, 'serial' | 'issuerId' | 'accountId' | 'der'>;

/** The signer's health as finalize asks it (keys/ SignerHealth): cached for seconds, never signs. */
export interface SigningAvailability {
  check(): Promise<{ ok: boolean; reason?: string }>;
  /** Seconds until it is worth asking again: the Retry-After of a finalize refused meanwhile. */
  readonly retryAfterSeconds: number;
}

/** Certificates this instance issued most recently, kept for their download (OrderService.recentlyIssued). */
const RECENTLY_ISSUED = 1024;

/**
 * Orders, authorizations and challenges (RFC 8555 §7.1.3-7.1.6, §7.4, §7.5). Order status is derived from
 * its authorizations whenever it is read, so whichever instance validated a challenge, every instance
 * answers the same.
 */
export class OrderService {
  private readonly spkiByThumbprint = new Map<string, Buffer>();
  /** Serial -> certificate, oldest first; bounded by RECENTLY_ISSUED. */
  private readonly recent = new Map<string, DownloadableCertificate>();

  constructor(
    private readonly deps: {
      access: AcmeStoreAccess;
      issuance: CertificateIssuance;
      clock: Clock;
      events: DomainEvents<Queryable>;
      settings: OrderSettings;
      /** Runs a challenge's first attempt as soon as the client answers it (ValidationScheduler). */
      validation: InlineValidation;
      /** The validation network policy's verdict on an identifier (ip identifiers in denied ranges). */
      identifierNetworkCheck: IdentifierNetworkCheck;
      /** CAA re-checked at finalize for old validations; absent while validation.caa.enabled is off. */
      caa?: CaaRecheck;
      /** Whether the CA can sign now (cached, never signs); asked before an order is claimed. */
      signing?: SigningAvailability;
      /** The account's group policy (narrowing the global limits): identifiers, challenges, keys, validity, profiles. */
      groups: GroupPolicies;
    },
  ) {}

  private get stores(): AcmeStores {
    return this.deps.access.stores;
  }

  async newOrder(account: Account, request: { identifiers: Identifier[]; notBefore?: Date; notAfter?: Date; replaces?: string; profile?: string }): Promise<Order> {
    const now = this.deps.clock.now();
    const { settings } = this.deps;
    const { set, rules } = await this.deps.groups.rulesFor(account);
    // The group's profile (its allowed list; its first when the order names none), cut to its maxValidity.
    const profile = narrowProfile(settings.profiles.resolve(groupProfileId(rules, request.profile, settings.profiles.defaultId)), rules);
    const identifiers = checkIdentifiers(request.identifiers, profile.maxIdentifiers);
    for (const id of identifiers) {
      if (id.type === 'ip' && id.value.startsWith('*')) throw new CaError('rejectedIdentifier', 'IP identifiers cannot be wildcards');
    }
    // RFC 8555 §7.1.3: rejectedIdentifier, one subproblem per identifier the group's policy refuses.
    checkGroupIdentifiers(set, rules, identifiers);
    refuseByNetworkPolicy(identifiers, this.deps.identifierNetworkCheck);
    // Refused now rather than at finalize, after the client proved control (RFC 8555 §7.4).
    checkGroupValidity(rules, request, now, 'malformed');
    validityWindow(profile, request, now);
    const replacesSerial = request.replaces ? await this.checkReplaces(account, request.replaces) : undefined;

    // Reuse only when it outlives the order comfortably (Boulder-style margin of one day). One read for all
    // the names of the order.
    const wanted = identifiers.map((id) => {
      const wildcard = id.type === 'dns' && id.value.startsWith('*.');
      return { identifier: wildcard ? { type: 'dns' as const, value: id.value.slice(2) } : id, wildcard };
    });
    const reusable = await this.stores.authorizations.findReusableMany(account.id, wanted, new Date(now.getTime() + DAY));
    const authorizationIds: string[] = [];
    const fresh: Authorization[] = [];
    const chosen: Authorization[] = [];
    let earliestExpiry = now.getTime() + settings.orderLifetimeMs;
    for (const { identifier, wildcard } of wanted) {
      const reused = reusable.find(
        (a) => a.wildcard === wildcard && a.identifier.type === identifier.type && a.identifier.value === identifier.value && mayReuse(rules, a),
      );
      const authorization = reused ?? this.freshAuthorization(account, identifier, wildcard, now, rules);
      if (!reused) fresh.push(authorization);
      chosen.push(authorization);
      authorizationIds.push(authorization.id);
      earliestExpiry = Math.min(earliestExpiry, authorization.expires.getTime());
    }
    const order: Order = {
      id: newId(),
      accountId: account.id,
      // §7.1.6: an order whose authorizations are all valid already (every one reused) is ready at once.
      status: chosen.every((a) => a.status === 'valid' && a.expires > now) ? 'ready' : 'pending',
      identifiers,
      authorizationIds,
      notBefore: request.notBefore,
      notAfter: request.notAfter,
      expires: new Date(earliestExpiry),
      replacesSerial,
      profile: profile.name,
      createdAt: now,
    };
    // One statement stores the authorizations, challenges, order and links atomically (rule 6); a
    // pre-approved authorization's event commits with it (the audit entry of an issuance without a challenge).
    const preapproved = fresh.filter((a) => a.status === 'valid').map((a) => this.preapprovedEvent(account, rules, a, order.id));
    await changeWithEvents(this.deps, (stores) => stores.orders.insertWithAuthorizations(order, fresh), [this.orderEvent(order, order.status), ...preapproved]);
    return order;
  }

  /**
   * §7.4.1 pre-authorization: checked like an order's identifiers (policy, network policy), then the valid
   * authorization the account holds for it if one outlives the reuse margin, else a new pending one —
   * which later orders reuse like any other (findReusableMany).
   */
  async newAuthorization(account: Account, requested: Identifier): Promise<{ authorization: Authorization; created: boolean }> {
    const now = this.deps.clock.now();
    const [identifier] = checkIdentifiers([requested], 1) as [Identifier];
    if (identifier.value.startsWith('*')) {
      throw new CaError('rejectedIdentifier', `${identifier.value}: pre-authorization cannot cover a wildcard (RFC 8555 §7.4.1); order it, and prove it with dns-01`, {
        subproblems: [{ kind: 'rejectedIdentifier', detail: 'wildcards cannot be pre-authorized', identifier }],
      });
    }
    const { set, rules } = await this.deps.groups.rulesFor(account);
    checkGroupIdentifiers(set, rules, [identifier]);
    refuseByNetworkPolicy([identifier], this.deps.identifierNetworkCheck);
    const held = await this.stores.authorizations.findReusable(account.id, identifier, false, new Date(now.getTime() + DAY));
    if (held?.status === 'valid' && mayReuse(rules, held)) return { authorization: held, created: false };
    const authorization = this.freshAuthorization(account, identifier, false, now, rules);
    const raised: DomainEvent[] = [{ type: 'authorization.changed', authorizationId: authorization.id, status: authorization.status }];
    if (authorization.status === 'valid') raised.push(this.preapprovedEvent(account, rules, authorization));
    // Two statements (authorization, challenges): one transaction, so no authorization is left without them.
    await this.deps.access.transaction(async (stores, tx) => {
      await stores.authorizations.insertMany([authorization]);
      for (const event of raised) await this.deps.events.committing(event, tx);
    });
    for (const event of raised) await this.deps.events.committed(event);
    return { authorization, created: true };
  }

  async getOrder(account: Account, orderId: string): Promise<Order> {
    const found = await this.stores.orders.findWithProgress(orderId, this.deps.clock.now());
    if (!found) throw new CaError('notFound', `order ${orderId} does not exist`);
    if (found.order.accountId !== account.id) throw new CaError('unauthorized', `order ${orderId} belongs to another account`);
    return this.refresh(found.order, found.progress);
  }

  async getAuthorization(account: Account, authorizationId: string): Promise<Authorization> {
    const authorization = await this.stores.authorizations.findById(authorizationId);
    if (!authorization) throw new CaError('notFound', `authorization ${authorizationId} does not exist`);
    if (authorization.accountId !== account.id) throw new CaError('unauthorized', `authorization ${authorizationId} belongs to another account`);
    return this.expireIfDue(authorization, this.deps.clock.now());
  }

  /** §7.1.6: a pending or valid authorization past its expiry is expired; persisted when first noticed. */
  private async expireIfDue(authorization: Authorization, now: Date): Promise<Authorization> {
    if (['pending', 'valid'].includes(authorization.status) && authorization.expires <= now) {
      return (await this.updateAuthorization(authorization.id, ['pending', 'valid'], 'expired')) ?? authorization;
    }
    return authorization;
  }

  async deactivateAuthorization(account: Account, authorizationId: string): Promise<Authorization> {
    const authorization = await this.getAuthorization(account, authorizationId);
    // §7.5.2: only pending or valid authorizations can be deactivated.
    const updated = await this.updateAuthorization(authorization.id, ['pending', 'valid'], 'deactivated');
    if (!updated) throw new CaError('malformed', `authorization ${authorizationId} is ${authorization.status} and cannot be deactivated`);
    return updated;
  }

  async getChallenge(account: Account, challengeId: string): Promise<{ challenge: Challenge; authorization: Authorization }> {
    const challenge = await this.stores.challenges.findById(challengeId);
    if (!challenge) throw new CaError('notFound', `challenge ${challengeId} does not exist`);
    const authorization = await this.getAuthorization(account, challenge.authorizationId);
    return { challenge, authorization };
  }

  /**
   * §7.5.1: mark the challenge processing; validation runs asynchronously (and survives restarts). One
   * statement checks ownership and state and makes the change; the answer is read in the same statement.
   */
  async respondToChallenge(account: Account, challengeId: string): Promise<{ challenge: Challenge; authorization: Authorization }> {
    const now = this.deps.clock.now();
    const lease = this.deps.validation.leaseForInline(now);
    const result = await this.stores.challenges.respond(challengeId, account.id, now, lease ?? now);
    if (!result) throw new CaError('notFound', `challenge ${challengeId} does not exist`);
    const { challenge, authorization, started } = result;
    if (authorization.accountId !== account.id) throw new CaError('unauthorized', `authorization ${authorization.id} belongs to another account`);
    if (started) {
      if (lease === undefined) {
        this.deps.validation.kick();
        return { challenge, authorization };
      }
      const { challenges: _all, ...bare } = authorization;
      const attempt = await this.deps.validation.validateNow({ challenge, authorization: bare, accountThumbprint: account.jwkThumbprint });
      // Decided while the client waited: it sees the outcome now instead of on a later poll.
      if (attempt?.status === 'valid') {
        // As ChallengeRepository.markValidWithAuthorization left them, without reading them back.
        const { nextAttemptAt: _due, error: _error, ...rest } = challenge;
        const validated: Challenge = { ...rest, status: 'valid', validatedAt: attempt.at };
        const challenges = authorization.challenges.map((c) => (c.id === challenge.id ? validated : c));
        return { challenge: validated, authorization: { ...authorization, status: 'valid', challenges } };
      }
      if (attempt !== undefined) return this.getChallenge(account, challengeId);
      return { challenge, authorization };
    }
    // Not started: say why, as getChallenge + the checks below would have.
    const current = await this.expireIfDue(authorization, now);
    if (challenge.status !== 'pending') return { challenge, authorization: current }; // idempotent, §7.5.1
    if (current.status !== 'pending') {
      throw new CaError('malformed', `authorization ${current.id} is ${current.status}; its challenges can no longer be answered`);
    }
    // Pending and pending, yet not started: another request started it a moment ago. Answer with it now.
    return this.getChallenge(account, challengeId);
  }

  /**
   * §7.4: finalize a ready order with a CSR; the certificate is issued before the response. Round trips: the
   * order read, then (after the CSR passed every check and the TBS is built) one statement that claims the
   * order (ready -> processing, a compare-and-set: two finalize calls cannot both issue) and reserves the
   * serial (rule 2), then after signing one statement that stores the certificate with the order turning
   * valid (rule 6). A CSR that fails a check changes nothing stored: the order stays ready (rule 3).
   */
  async finalize(account: Account, orderId: string, csrDer: Uint8Array): Promise<Order> {
    const order = await this.getOrder(account, orderId);
    if (order.status !== 'ready') {
      throw new CaError('orderNotReady', `order ${orderId} is ${order.status}; it must be ready to finalize`);
    }
    // The group's policy as it is now (it may have narrowed since the order was placed), before the claim:
    // a refusal leaves the order ready. The key is checked against it once the CSR is parsed.
    const { set, rules } = await this.deps.groups.rulesFor(account);
    checkGroupIdentifiers(set, rules, order.identifiers);
    const profile = narrowProfile(this.deps.settings.profiles.resolve(groupProfileId(rules, order.profile, this.deps.settings.profiles.defaultId)), rules);
    checkGroupValidity(rules, order, this.deps.clock.now(), 'badCSR');
    const labels = certificateLabels(rules, account.labels);
    // Before the claim: §7.1.6 has no way from processing back to ready, so an order claimed while the HSM is
    // away would be lost to the client; refused now, it stays ready for the retry.
    const signing = await this.deps.signing?.check();
    if (signing !== undefined && !signing.ok) {
      throw new CaError('unavailable', `the CA cannot sign right now (${signing.reason ?? 'signer unavailable'}); the order is still ready: finalize it again later`, {
        retryAfterSeconds: this.deps.signing!.retryAfterSeconds,
      });
    }
    if (this.deps.caa) await this.recheckCaa(account, order, this.deps.caa);
    let claimed = false;
    let certificateSerial: string | undefined;
    try {
      await this.deps.issuance.issueFromCsr(csrDer, {
        expectedIdentifiers: order.identifiers,
        notBefore: order.notBefore,
        notAfter: order.notAfter,
        profile,
        groupRules: rules,
        forbiddenKeys: [this.accountSpki(account)],
        // The inventory record (never the X.509 certificate): the group, and its labels under the account's.
        metadata: {
          accountId: account.id,
          orderId: order.id,
          replacesSerial: order.replacesSerial,
          group: rules.name,
          ...(Object.keys(labels).length > 0 ? { labels } : {}),
        },
        reserveSerial: async (serial, issuerId, at) => {
          if (!(await this.stores.orders.claimForIssuance(order.id, ['ready'], at, serial, issuerId))) {
            throw new CaError('orderNotReady', `order ${orderId} is already being finalized`);
          }
          claimed = true;
        },
        persist: async (certificate: IssuedCertificate, ocsp, committing, records) => {
          const store = async (stores: AcmeStores): Promise<void> => {
            if (!(await stores.certificates.insertForOrder(certificate, order.id, ocsp, records))) {
              // OrderRecovery ended the order while this finalize ran past acme.processingTimeoutSeconds: the
              // certificate is on record (it was signed) but the order is invalid, and says so.
              throw new CaError('orderNotReady', `order ${order.id} was ended while its certificate was being issued: submit a new order`);
            }
          };
          if (committing === undefined) await store(this.stores);
          else {
            await this.deps.access.transaction(async (stores, tx) => {
              await store(stores);
              await committing(tx);
            });
          }
          certificateSerial = certificate.serial;
          this.rememberIssued(certificate);
        },
      });
    } catch (error) {
      if (claimed && certificateSerial === undefined) {
        // Claimed, then failed while signing or storing: the order cannot be finalized again (§7.1.6). Its
        // serial stays reserved and unused (rule 2).
        await this.updateOrder(order, ['processing'], 'invalid', { error: INTERRUPTED_ISSUANCE });
        if (isCaError(error, 'keyStore')) {
          // The HSM failed under this one: a failure of ours that passes, not a bug (the signer's health is
          // probed before the next claim). The cause is logged by the wire layer, never sent.
          throw new CaError('unavailable', `signing failed; this order is now invalid: submit a new order`, { cause: error, retryAfterSeconds: 1 });
        }
      }
      throw error;
    }
    const issued: Order = { ...order, status: 'valid', certificateSerial };
    // The order turned valid in the certificate's own statement; its event follows the certificate's.
    await this.deps.events.committed(this.orderEvent(issued, 'valid'));
    return issued;
  }

  /**
   * A certificate this instance issued a moment ago, or undefined. ACME clients download the certificate
   * right after finalize (§7.4.2), and the download needs only what never changes once issued — its bytes,
   * issuer and account (a revoked certificate is still served, §7.6) — so it can skip the database read
   * without any cache deciding something wrongly (DESIGN.md rule 7). Another instance, or an older
   * certificate, is read from the database.
   */
  recentlyIssued(serial: string): DownloadableCertificate | undefined {
    return this.recent.get(serial);
  }

  private rememberIssued(certificate: IssuedCertificate): void {
    const { serial, issuerId, accountId, der } = certificate;
    this.recent.set(serial, accountId === undefined ? { serial, issuerId, der } : { serial, issuerId, accountId, der });
    if (this.recent.size > RECENTLY_ISSUED) this.recent.delete(this.recent.keys().next().value as string);
  }

  /**
   * Derives pending -> ready / invalid from the authorizations' progress and expiry (RFC 8555 §7.1.6),
   * persisting the change. Usually there is none to make: the validation that makes the last authorization
   * valid turns its orders ready in the same statement (ChallengeRepository.markValidWithAuthorization).
   */
  private async refresh(order: Order, progress: { total: number; usable: number; failedId?: string }): Promise<Order> {
    if (order.status !== 'pending' && order.status !== 'ready') return order;
    const now = this.deps.clock.now();
    if (order.expires <= now) {
      return (await this.updateOrder(order, ['pending', 'ready'], 'invalid', { error: { kind: 'malformed', detail: 'order expired' } })) ?? order;
    }
    if (order.status === 'ready') return order;
    if (progress.failedId !== undefined) {
      const failed = await this.stores.authorizations.findById(progress.failedId);
      const challengeError = failed?.challenges.find((c) => c.error)?.error;
      const error: Problem = {
        kind: challengeError?.kind ?? 'unauthorized',
        detail: `authorization for ${failed?.identifier.value ?? progress.failedId} is ${failed?.status ?? 'gone'}${challengeError ? `: ${challengeError.detail}` : ''}`,
      };
      return (await this.updateOrder(order, ['pending'], 'invalid', { error })) ?? order;
    }
    if (progress.total === order.authorizationIds.length && progress.usable === progress.total) {
      return (await this.updateOrder(order, ['pending'], 'ready')) ?? order;
    }
    return order;
  }

  /**
   * RFC 8659 at finalize: an authorization is reused for up to 30 days, CAA may have changed since it was
   * validated; one validated longer ago than recheckMs is checked again (before the claim, so a refusal leaves
   * the order ready). One read of the order's authorizations, only when CAA checking is on.
   */
  private async recheckCaa(account: Account, order: Order, caa: CaaRecheck): Promise<void> {
    const now = this.deps.clock.now().getTime();
    for (const authorization of await this.stores.authorizations.findByIds(order.authorizationIds)) {
      if (authorization.identifier.type !== 'dns') continue;
      const validated = authorization.challenges.find((c) => c.status === 'valid');
      if (validated?.validatedAt !== undefined && now - validated.validatedAt.getTime() <= caa.recheckMs) continue;
      const outcome = await caa.check({
        name: authorization.identifier.value,
        wildcard: authorization.wildcard,
        accountUri: caa.accountUri(account.id),
        ...(validated ? { method: validated.type } : {}),
      });
      if (!outcome.ok) {
        const shown = `${authorization.wildcard ? '*.' : ''}${authorization.identifier.value}`;
        throw new CaError('caa', `${shown}: ${outcome.problem.detail}`, {
          subproblems: [{ kind: 'caa', detail: outcome.problem.detail, identifier: { type: 'dns', value: shown } }],
        });
      }
    }
  }

  /** A compare-and-set on an authorization's status with its `authorization.changed` event; undefined when it lost. */
  private updateAuthorization(id: string, from: AuthorizationStatus[], to: AuthorizationStatus): Promise<Authorization | undefined> {
    return changeWithEvent(
      this.deps,
      'authorization.changed',
      (stores) => stores.authorizations.updateStatus(id, from, to),
      (updated) => (updated === undefined ? undefined : { type: 'authorization.changed', authorizationId: id, status: to }),
    );
  }

  /** A compare-and-set on the order's status with its `order.changed` event; undefined when it lost. */
  private updateOrder(order: Order, from: OrderStatus[], to: OrderStatus, fields?: { error?: Problem }): Promise<Order | undefined> {
    return changeWithEvent(
      this.deps,
      'order.changed',
      (stores) => stores.orders.updateStatus(order.id, from, to, fields),
      (updated) => (updated === undefined ? undefined : this.orderEvent(updated, to)),
    );
  }

  private orderEvent(order: Order, status: OrderStatus): { type: 'order.changed'; orderId: string; accountId: string; status: OrderStatus } {
    return { type: 'order.changed', orderId: order.id, accountId: order.accountId, status };
  }

  /**
   * The account key as SPKI (RFC 8555 §11.1: the certificate key must differ from it), remembered by RFC 7638
   * thumbprint: a thumbprint names exactly one key, so an entry cannot go wrong (DESIGN.md rule 7). Bounded.
   */
  private accountSpki(account: Account): Buffer {
    let spki = this.spkiByThumbprint.get(account.jwkThumbprint);
    if (spki === undefined) {
      spki = jwkToSpki(account.publicJwk);
      if (this.spkiByThumbprint.size >= SPKI_CACHE_SIZE) this.spkiByThumbprint.delete(this.spkiByThumbprint.keys().next().value as string);
      this.spkiByThumbprint.set(account.jwkThumbprint, spki);
    }
    return spki;
  }

  /**
   * A new authorization: pending with the challenge types the group allows, or — for a name the group
   * pre-approves (hosts that cannot answer a challenge) — valid at once, with no challenge (RFC 8555 §7.1.4
   * lets the server decide how an identifier is authorized).
   */
  private freshAuthorization(account: Account, identifier: Identifier, wildcard: boolean, now: Date, rules: GroupRules): Authorization {
    const id = newId();
    const preapproved = isPreapproved(rules, identifier, wildcard);
    const types = preapproved ? [] : groupChallengeTypes(rules, identifier, wildcard);
    return {
      id,
      accountId: account.id,
      identifier,
      wildcard,
      status: preapproved ? 'valid' : 'pending',
      expires: new Date(now.getTime() + this.deps.settings.authorizationLifetimeMs),
      challenges: types.map((type) => ({ id: newId(), authorizationId: id, type, token: newId(32), status: 'pending', attempts: 0 })),
      createdAt: now,
    };
  }

  private preapprovedEvent(account: Account, rules: GroupRules, authorization: Authorization, orderId?: string): DomainEvent {
    return {
      type: 'authorization.preapproved',
      authorizationId: authorization.id,
      accountId: account.id,
      group: rules.name,
      identifier: authorization.identifier,
      ...(orderId === undefined ? {} : { orderId }),
    };
  }

  /** RFC 9773 §5: the named certificate must be ours, the account's, and not already replaced. */
  private async checkReplaces(account: Account, certId: string): Promise<string> {
    const parsed = parseCertId(certId);
    if (!this.deps.settings.issuerKeyIds.some((keyId) => keyId.equals(parsed.authorityKeyId))) {
      throw new CaError('malformed', `replaces: certificate ${certId} was not issued by this CA`);
    }
    const certificate = await this.stores.certificates.findBySerial(parsed.serialHex);
    if (!certificate) throw new CaError('malformed', `replaces: certificate ${certId} is unknown`);
    if (certificate.accountId !== account.id) throw new CaError('unauthorized', `replaces: certificate ${certId} belongs to another account`);
    if (await this.stores.orders.findActiveByReplaces(certificate.serial)) {
      throw new CaError('alreadyReplaced', `certificate ${certId} has already been replaced`);
    }
    return certificate.serial;
  }
}
