import type { Account } from '../core/account.js';
import type { IssuedCertificate } from '../core/certificate.js';
import { parseCertId } from '../core/cert-id.js';
import { DAY, HOUR, type Clock } from '../core/clock.js';
import { CaError, type Problem } from '../core/errors.js';
import type { Identifier } from '../core/identifier.js';
import { newId } from '../core/ids.js';
import type { Authorization, Challenge, ChallengeType, Order } from '../core/order.js';
import type { CertificateProfile } from '../core/profile.js';
import { checkIdentifiers } from '../policy/identifier-policy.js';
import type { AcmeStoreAccess, AcmeStores } from './acme-stores.js';
import type { CertificateIssuance } from './certificate-issuance.js';
import { jwkToSpki } from './jwk.js';

export interface OrderSettings {
  orderLifetimeMs: number;
  /** An authorization is reused while it stays valid this much longer (issue #3: configurable window). */
  authorizationLifetimeMs: number;
  profile: CertificateProfile;
  /** Key identifiers of the issuers whose certificates may be named in `replaces`. */
  issuerKeyIds: Buffer[];
}

/**
 * Orders, authorizations and challenges (RFC 8555 §7.1.3-7.1.6, §7.4, §7.5). Order status is derived from
 * its authorizations whenever it is read, so whichever instance validated a challenge, every instance
 * answers the same.
 */
export class OrderService {
  constructor(
    private readonly deps: {
      access: AcmeStoreAccess;
      issuance: CertificateIssuance;
      clock: Clock;
      settings: OrderSettings;
      /** Called when a challenge becomes processing, so validation starts at once. */
      onChallengeReady: () => void;
    },
  ) {}

  private get stores(): AcmeStores {
    return this.deps.access.stores;
  }

  async newOrder(account: Account, request: { identifiers: Identifier[]; notBefore?: Date; notAfter?: Date; replaces?: string }): Promise<Order> {
    const now = this.deps.clock.now();
    const { settings } = this.deps;
    const identifiers = checkIdentifiers(request.identifiers, settings.profile.maxIdentifiers);
    for (const id of identifiers) {
      if (id.type === 'ip' && id.value.startsWith('*')) throw new CaError('rejectedIdentifier', 'IP identifiers cannot be wildcards');
    }
    this.checkValidityRequest(request.notBefore, request.notAfter, now);
    const replacesSerial = request.replaces ? await this.checkReplaces(account, request.replaces) : undefined;

    const authorizationIds: string[] = [];
    const fresh: Authorization[] = [];
    let earliestExpiry = now.getTime() + settings.orderLifetimeMs;
    for (const id of identifiers) {
      const wildcard = id.type === 'dns' && id.value.startsWith('*.');
      const base: Identifier = wildcard ? { type: 'dns', value: id.value.slice(2) } : id;
      // Reuse only when it outlives the order comfortably (Boulder-style margin of one day).
      const reusable = await this.stores.authorizations.findReusable(account.id, base, wildcard, new Date(now.getTime() + DAY));
      const authorization = reusable ?? this.newAuthorization(account, base, wildcard, now);
      if (!reusable) fresh.push(authorization);
      authorizationIds.push(authorization.id);
      earliestExpiry = Math.min(earliestExpiry, authorization.expires.getTime());
    }
    const order: Order = {
      id: newId(),
      accountId: account.id,
      status: 'pending',
      identifiers,
      authorizationIds,
      notBefore: request.notBefore,
      notAfter: request.notAfter,
      expires: new Date(earliestExpiry),
      replacesSerial,
      createdAt: now,
    };
    await this.deps.access.transaction((tx) => tx.orders.insertWithAuthorizations(order, fresh));
    return this.refresh(order);
  }

  async getOrder(account: Account, orderId: string): Promise<Order> {
    const order = await this.stores.orders.findById(orderId);
    if (!order) throw new CaError('notFound', `order ${orderId} does not exist`);
    if (order.accountId !== account.id) throw new CaError('unauthorized', `order ${orderId} belongs to another account`);
    return this.refresh(order);
  }

  async getAuthorization(account: Account, authorizationId: string): Promise<Authorization> {
    const authorization = await this.stores.authorizations.findById(authorizationId);
    if (!authorization) throw new CaError('notFound', `authorization ${authorizationId} does not exist`);
    if (authorization.accountId !== account.id) throw new CaError('unauthorized', `authorization ${authorizationId} belongs to another account`);
    if (['pending', 'valid'].includes(authorization.status) && authorization.expires <= this.deps.clock.now()) {
      return (await this.stores.authorizations.updateStatus(authorization.id, ['pending', 'valid'], 'expired')) ?? authorization;
    }
    return authorization;
  }

  async deactivateAuthorization(account: Account, authorizationId: string): Promise<Authorization> {
    const authorization = await this.getAuthorization(account, authorizationId);
    // §7.5.2: only pending or valid authorizations can be deactivated.
    const updated = await this.stores.authorizations.updateStatus(authorization.id, ['pending', 'valid'], 'deactivated');
    if (!updated) throw new CaError('malformed', `authorization ${authorizationId} is ${authorization.status} and cannot be deactivated`);
    return updated;
  }

  async getChallenge(account: Account, challengeId: string): Promise<{ challenge: Challenge; authorization: Authorization }> {
    const challenge = await this.stores.challenges.findById(challengeId);
    if (!challenge) throw new CaError('notFound', `challenge ${challengeId} does not exist`);
    const authorization = await this.getAuthorization(account, challenge.authorizationId);
    return { challenge, authorization };
  }

  /** §7.5.1: mark the challenge processing; validation runs asynchronously (and survives restarts). */
  async respondToChallenge(account: Account, challengeId: string): Promise<{ challenge: Challenge; authorization: Authorization }> {
    const { challenge, authorization } = await this.getChallenge(account, challengeId);
    if (challenge.status !== 'pending') return { challenge, authorization }; // idempotent, §7.5.1
    if (authorization.status !== 'pending') {
      throw new CaError('malformed', `authorization ${authorization.id} is ${authorization.status}; its challenges can no longer be answered`);
    }
    const started = await this.stores.challenges.startProcessing(challenge.id, this.deps.clock.now());
    this.deps.onChallengeReady();
    return { challenge: started ?? (await this.stores.challenges.findById(challenge.id)) ?? challenge, authorization };
  }

  /** §7.4: finalize a ready order with a CSR; the certificate is issued before the response. */
  async finalize(account: Account, orderId: string, csrDer: Uint8Array): Promise<Order> {
    const order = await this.getOrder(account, orderId);
    if (order.status !== 'ready') {
      throw new CaError('orderNotReady', `order ${orderId} is ${order.status}; it must be ready to finalize`);
    }
    // ready -> processing is a compare-and-set: two finalize calls cannot both issue.
    const claimed = await this.stores.orders.updateStatus(order.id, ['ready'], 'processing');
    if (!claimed) throw new CaError('orderNotReady', `order ${orderId} is already being finalized`);
    try {
      await this.deps.issuance.issueFromCsr(csrDer, {
        expectedIdentifiers: order.identifiers,
        notBefore: order.notBefore,
        notAfter: order.notAfter,
        forbiddenKeys: [jwkToSpki(account.publicJwk)],
        metadata: { accountId: account.id, orderId: order.id, replacesSerial: order.replacesSerial },
        persist: (certificate: IssuedCertificate) =>
          this.deps.access.transaction(async (tx) => {
            await tx.certificates.insert(certificate);
            const done = await tx.orders.updateStatus(order.id, ['processing'], 'valid', { certificateSerial: certificate.serial });
            if (!done) throw new CaError('serverInternal', `order ${order.id} left processing during issuance`);
          }),
      });
    } catch (error) {
      if (error instanceof CaError && isClientProblem(error)) {
        // A bad CSR changes nothing: the order goes back to ready so the client can try again.
        await this.stores.orders.updateStatus(order.id, ['processing'], 'ready');
      } else {
        await this.stores.orders.updateStatus(order.id, ['processing'], 'invalid', {
          error: { kind: 'serverInternal', detail: 'certificate issuance failed' },
        });
      }
      throw error;
    }
    return this.getOrder(account, orderId);
  }

  /** Derives pending -> ready / invalid from the authorizations and expiry, persisting the change. */
  async refresh(order: Order): Promise<Order> {
    if (order.status !== 'pending' && order.status !== 'ready') return order;
    const now = this.deps.clock.now();
    if (order.expires <= now) {
      return (await this.stores.orders.updateStatus(order.id, ['pending', 'ready'], 'invalid', {
        error: { kind: 'malformed', detail: 'order expired' },
      })) ?? order;
    }
    if (order.status === 'ready') return order;
    const authorizations = await this.stores.authorizations.findByIds(order.authorizationIds);
    const failed = authorizations.find((a) => a.status !== 'valid' && a.status !== 'pending');
    if (failed) {
      const challengeError = failed.challenges.find((c) => c.error)?.error;
      const error: Problem = {
        kind: challengeError?.kind ?? 'unauthorized',
        detail: `authorization for ${failed.identifier.value} is ${failed.status}${challengeError ? `: ${challengeError.detail}` : ''}`,
      };
      return (await this.stores.orders.updateStatus(order.id, ['pending'], 'invalid', { error })) ?? order;
    }
    if (authorizations.length === order.authorizationIds.length && authorizations.every((a) => a.status === 'valid' && a.expires > now)) {
      return (await this.stores.orders.updateStatus(order.id, ['pending'], 'ready')) ?? order;
    }
    return order;
  }

  private newAuthorization(account: Account, identifier: Identifier, wildcard: boolean, now: Date): Authorization {
    const id = newId();
    // RFC 8555 §7.1.4 / §8.4: wildcards only by dns-01; RFC 8738 §7: IP identifiers never by dns-01.
    const types: ChallengeType[] = wildcard ? ['dns-01'] : identifier.type === 'ip' ? ['http-01', 'tls-alpn-01'] : ['http-01', 'dns-01', 'tls-alpn-01'];
    return {
      id,
      accountId: account.id,
      identifier,
      wildcard,
      status: 'pending',
      expires: new Date(now.getTime() + this.deps.settings.authorizationLifetimeMs),
      challenges: types.map((type) => ({ id: newId(), authorizationId: id, type, token: newId(32), status: 'pending', attempts: 0 })),
      createdAt: now,
    };
  }

  /** RFC 8555 §7.1.3: honour notBefore/notAfter inside the profile, or reject them. */
  private checkValidityRequest(notBefore: Date | undefined, notAfter: Date | undefined, now: Date): void {
    const { validityMs, name } = this.deps.settings.profile;
    const start = notBefore ?? now;
    if (notBefore && Math.abs(notBefore.getTime() - now.getTime()) > validityMs) {
      throw new CaError('malformed', `notBefore must be within ${validityMs / DAY} days of now`);
    }
    if (notAfter) {
      if (notAfter <= start) throw new CaError('malformed', 'notAfter must be later than notBefore');
      if (notAfter <= now) throw new CaError('malformed', 'notAfter is in the past');
      if (notAfter.getTime() - start.getTime() > validityMs - 1000 + HOUR) {
        throw new CaError('malformed', `notAfter exceeds the profile "${name}" validity of ${validityMs / DAY} days`);
      }
    }
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

function isClientProblem(error: CaError): boolean {
  return ['badCSR', 'badPublicKey', 'malformed', 'rejectedIdentifier', 'unsupportedIdentifier'].includes(error.kind);
}
