import { Writable } from 'node:stream';
import { pino } from 'pino';
import type { FastifyInstance } from 'fastify';
import type { Account } from '../../../src/core/account.js';
import { FakeClock, HOUR, DAY } from '../../../src/core/clock.js';
import { CaError } from '../../../src/core/errors.js';
import type { Identifier } from '../../../src/core/identifier.js';
import type { Authorization, Challenge, Order } from '../../../src/core/order.js';
import type { AcmeRegistrationAuthority } from '../../../src/ra/acme-registration-authority.js';
import { buildAcmeApp } from '../../../src/http/acme-app.js';
import { MemoryNonceStore } from '../../helpers/memory-nonces.js';
import { nonceKeyFromPassphrase, SignedNonceStore, type NonceStore, type SpentNonces } from '../../../src/acme/nonce-store.js';
import { InjectClient, makeAccountKey, type TestKey } from '../../helpers/acme-jws.js';
import { builders, type Builders } from '../../helpers/builders.js';
import type { KeyFacts } from '../../../src/core/key-facts.js';
import { ACCOUNT_KEY_POLICY, checkKeyFacts } from '../../../src/policy/key-policy.js';

/**
 * A small in-memory stand-in for the registration authority, enough to drive the wire layer: accounts are
 * real (a map keyed by id and thumbprint), orders/authorizations/challenges are canned, and any method can be
 * made to throw via `failNext`. Records what it was asked so tests can check what acme/ passed down.
 */
export class FakeRa implements AcmeRegistrationAuthority {
  externalAccountRequired = false;
  readonly accounts = new Map<string, Account>();
  readonly orders = new Map<string, Order>();
  readonly authorizations = new Map<string, Authorization>();
  readonly calls: { method: string; args: unknown[] }[] = [];
  readonly revocations: Parameters<AcmeRegistrationAuthority['revokeCertificate']>[0][] = [];
  /** The next call of this method throws this error instead. */
  readonly failNext = new Map<string, unknown>();
  private next = 1;
  /** Builds accounts, orders and authorizations stamped with the clock's time. */
  private readonly build: Builders;

  constructor(readonly clock: FakeClock) {
    this.build = builders(clock);
  }

  private record(method: string, ...args: unknown[]): void {
    this.calls.push({ method, args });
    const failure = this.failNext.get(method);
    if (failure !== undefined) {
      this.failNext.delete(method);
      throw failure;
    }
  }

  callsOf(method: string): unknown[][] {
    return this.calls.filter((c) => c.method === method).map((c) => c.args);
  }

  private owned<T extends { accountId: string }>(account: Account, thing: T | undefined, what: string): T {
    if (!thing) throw new CaError('notFound', `no such ${what}`);
    if (thing.accountId !== account.id) throw new CaError('unauthorized', `this ${what} belongs to another account`);
    return thing;
  }

  checkAccountKey(facts: KeyFacts, where: string): void {
    checkKeyFacts(facts, ACCOUNT_KEY_POLICY, where);
  }

  async findAccount(id: string): Promise<Account | undefined> {
    this.record('findAccount', id);
    return this.accounts.get(id);
  }

  async findAccountByThumbprint(thumbprint: string): Promise<Account | undefined> {
    this.record('findAccountByThumbprint', thumbprint);
    return [...this.accounts.values()].find((a) => a.jwkThumbprint === thumbprint);
  }

  async newAccount(request: Parameters<AcmeRegistrationAuthority['newAccount']>[0]): Promise<{ account: Account; created: boolean }> {
    this.record('newAccount', request);
    const existing = [...this.accounts.values()].find((a) => a.jwkThumbprint === request.jwkThumbprint);
    if (existing) return { account: existing, created: false };
    if (request.onlyReturnExisting) throw new CaError('accountDoesNotExist', 'no account exists with this key');
    if (this.externalAccountRequired && !request.externalAccountBinding) {
      throw new CaError('externalAccountRequired', 'this server requires an external account binding');
    }
    const account = this.build.buildAccount({
      id: `acct${this.next++}`,
      contacts: request.contacts,
      publicJwk: request.publicJwk,
      jwkThumbprint: request.jwkThumbprint,
      termsOfServiceAgreed: request.termsOfServiceAgreed,
    });
    this.accounts.set(account.id, account);
    return { account, created: true };
  }

  async updateAccount(account: Account, changes: { contacts?: string[]; deactivate?: boolean }): Promise<Account> {
    this.record('updateAccount', account, changes);
    const updated: Account = { ...account };
    if (changes.contacts) updated.contacts = changes.contacts;
    if (changes.deactivate) updated.status = 'deactivated';
    this.accounts.set(updated.id, updated);
    return updated;
  }

  async changeAccountKey(account: Account, newJwk: Record<string, string>, newThumbprint: string): Promise<Account> {
    this.record('changeAccountKey', account, newJwk, newThumbprint);
    const updated: Account = { ...account, publicJwk: newJwk, jwkThumbprint: newThumbprint };
    this.accounts.set(updated.id, updated);
    return updated;
  }

  async listOrderIds(account: Account, cursor: string | undefined, limit: number): Promise<{ ids: string[]; nextCursor?: string }> {
    this.record('listOrderIds', account, cursor, limit);
    // Two pages of canned ids: page 1 then page 2 ("p2").
    if (cursor === 'p2') return { ids: ['order-old'] };
    return { ids: ['order-new'], nextCursor: 'p2' };
  }

  /** Creates a canned pending order with one authorization (http-01 + dns-01) per identifier. */
  addOrder(accountId: string, identifiers: Identifier[], status: Order['status'] = 'pending'): Order {
    const n = this.next++;
    const authorizationIds = identifiers.map((identifier, i) => {
      const id = `authz${n}x${i}`;
      const wildcard = identifier.value.startsWith('*.');
      const challenge = (type: Challenge['type'], j: number): Challenge =>
        this.build.buildChallenge({ id: `chall${n}x${i}x${j}`, authorizationId: id, type, token: `token${n}${i}${j}`.padEnd(43, 'A') });
      this.authorizations.set(
        id,
        this.build.buildAuthorization({
          id,
          accountId,
          identifier: { type: identifier.type, value: wildcard ? identifier.value.slice(2) : identifier.value },
          wildcard,
          challenges: wildcard ? [challenge('dns-01', 0)] : [challenge('http-01', 0), challenge('dns-01', 1)],
        }),
      );
      return id;
    });
    const order = this.build.buildOrder({ id: `order${n}`, accountId, status, identifiers, authorizationIds });
    this.orders.set(order.id, order);
    return order;
  }

  async newOrder(account: Account, request: { identifiers: Identifier[]; notBefore?: Date; notAfter?: Date; replaces?: string; profile?: string }): Promise<Order> {
    this.record('newOrder', account, request);
    const rejected = request.identifiers.filter((id) => id.value.endsWith('.forbidden.test'));
    if (rejected.length > 0) {
      throw new CaError('rejectedIdentifier', 'policy forbids issuing for some identifiers', {
        subproblems: rejected.map((identifier) => ({ kind: 'rejectedIdentifier' as const, detail: `${identifier.value} is outside the allowed domains`, identifier })),
      });
    }
    const order = this.addOrder(account.id, request.identifiers);
    if (request.notBefore) order.notBefore = request.notBefore;
    if (request.notAfter) order.notAfter = request.notAfter;
    return order;
  }

  async newAuthorization(account: Account, identifier: Identifier): Promise<{ authorization: Authorization; created: boolean }> {
    this.record('newAuthorization', account, identifier);
    if (identifier.value.startsWith('*.')) throw new CaError('rejectedIdentifier', 'wildcards cannot be pre-authorized');
    const order = this.addOrder(account.id, [identifier]);
    return { authorization: this.authorizations.get(order.authorizationIds[0]!)!, created: true };
  }

  async getOrder(account: Account, orderId: string): Promise<Order> {
    this.record('getOrder', account, orderId);
    return this.owned(account, this.orders.get(orderId), 'order');
  }

  async getAuthorization(account: Account, authorizationId: string): Promise<Authorization> {
    this.record('getAuthorization', account, authorizationId);
    return this.owned(account, this.authorizations.get(authorizationId), 'authorization');
  }

  async deactivateAuthorization(account: Account, authorizationId: string): Promise<Authorization> {
    this.record('deactivateAuthorization', account, authorizationId);
    const authz = this.owned(account, this.authorizations.get(authorizationId), 'authorization');
    authz.status = 'deactivated';
    return authz;
  }

  private findChallenge(account: Account, challengeId: string): { challenge: Challenge; authorization: Authorization } {
    for (const authorization of this.authorizations.values()) {
      const challenge = authorization.challenges.find((c) => c.id === challengeId);
      if (challenge) return { challenge, authorization: this.owned(account, authorization, 'challenge') };
    }
    throw new CaError('notFound', 'no such challenge');
  }

  async getChallenge(account: Account, challengeId: string): Promise<{ challenge: Challenge; authorization: Authorization }> {
    this.record('getChallenge', account, challengeId);
    return this.findChallenge(account, challengeId);
  }

  async respondToChallenge(account: Account, challengeId: string): Promise<{ challenge: Challenge; authorization: Authorization }> {
    this.record('respondToChallenge', account, challengeId);
    const found = this.findChallenge(account, challengeId);
    found.challenge.status = 'processing';
    found.challenge.nextAttemptAt = new Date(this.clock.now().getTime() + 5000);
    return found;
  }

  async finalizeOrder(account: Account, orderId: string, csrDer: Uint8Array): Promise<Order> {
    this.record('finalizeOrder', account, orderId, csrDer);
    const order = this.owned(account, this.orders.get(orderId), 'order');
    if (order.status !== 'ready') throw new CaError('orderNotReady', `order is ${order.status}, not ready`);
    order.status = 'valid';
    order.certificateSerial = '0a1b2c';
    return order;
  }

  async getCertificateChain(account: Account, serial: string): Promise<{ certificate: Uint8Array; chain: Uint8Array[] }> {
    this.record('getCertificateChain', account, serial);
    if (serial !== '0a1b2c') throw new CaError('notFound', `no certificate with serial ${serial}`);
    return { certificate: Buffer.from('leaf certificate DER'), chain: [Buffer.from('issuer certificate DER')] };
  }

  async revokeCertificate(request: Parameters<AcmeRegistrationAuthority['revokeCertificate']>[0]): Promise<void> {
    this.record('revokeCertificate', request);
    this.revocations.push(request);
  }

  async renewalInfo(certId: string): Promise<{ start: Date; end: Date; retryAfterSeconds: number }> {
    this.record('renewalInfo', certId);
    if (certId.startsWith('unknown')) throw new CaError('notFound', 'no certificate with this certID');
    const now = this.clock.now().getTime();
    return { start: new Date(now + 10 * DAY), end: new Date(now + 12 * DAY), retryAfterSeconds: 6 * HOUR / 1000 };
  }
}

export const BASE = 'https://127.0.0.1:8443';

export interface Harness {
  app: FastifyInstance;
  ra: FakeRa;
  nonces: NonceStore;
  clock: FakeClock;
  /** The spent set behind nonces when the harness uses the signed store. */
  spent: MemorySpentNonces;
  client: InjectClient;
  /** Log lines (parsed JSON) written by the app's logger. */
  logs: Record<string, unknown>[];
  /** Registers an account for `key` directly in the fake RA; returns it with its kid URL. */
  register(key?: TestKey): Promise<{ key: TestKey; account: Account; kid: string }>;
}

/**
 * The spent set of a SignedNonceStore in memory, with the one-round-trip account read the database offers
 * (NonceRepository.spendAndFindAccount) answered from the fake RA's accounts.
 */
export class MemorySpentNonces implements SpentNonces {
  readonly spent = new Set<string>();
  readonly calls: string[] = [];
  constructor(private readonly ra: FakeRa) {}
  async spend(id: Uint8Array): Promise<boolean> {
    this.calls.push('spend');
    const key = Buffer.from(id).toString('hex');
    if (this.spent.has(key)) return false;
    this.spent.add(key);
    return true;
  }
  async spendAndFindAccount(id: Uint8Array, accountId: string): Promise<{ spent: boolean; account: Account | undefined }> {
    const spent = await this.spend(id);
    this.calls[this.calls.length - 1] = 'spendAndFindAccount';
    return { spent, account: this.ra.accounts.get(accountId) };
  }
}

export interface HarnessOptions {
  bodyLimit?: number;
  /**
   * 'signed': the production nonce store (SignedNonceStore, RFC 8555 §6.5) over MemorySpentNonces, so the
   * verifier's one-round-trip path for known accounts runs; default: the plain MemoryNonceStore.
   */
  nonces?: 'memory' | 'signed';
}

export async function harness(options: HarnessOptions = {}): Promise<Harness> {
  const clock = new FakeClock('2026-03-01T12:00:00Z');
  const ra = new FakeRa(clock);
  const spent = new MemorySpentNonces(ra);
  const nonces: NonceStore =
    options.nonces === 'signed'
      ? new SignedNonceStore({ key: nonceKeyFromPassphrase('unit-test-passphrase'), clock, spent, maxAgeMs: 15 * 60 * 1000 })
      : new MemoryNonceStore();
  const logs: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line.trim()) logs.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  const logger = pino({ level: 'debug' }, sink);
  const app = buildAcmeApp({
    ra,
    nonces,
    clock,
    logger,
    externalUrl: BASE,
    meta: { termsOfService: `${BASE}/terms`, website: 'https://pki.example.internal', caaIdentities: ['pki.example.internal'] },
    ...(options.bodyLimit !== undefined ? { bodyLimit: options.bodyLimit } : {}),
  });
  await app.ready();
  const client = new InjectClient(app, BASE);
  return {
    app,
    ra,
    nonces,
    spent,
    clock,
    client,
    logs,
    async register(key) {
      const k = key ?? (await makeAccountKey());
      const { account } = await ra.newAccount({
        publicJwk: k.publicJwk,
        jwkThumbprint: k.thumbprint,
        contacts: [],
        termsOfServiceAgreed: true,
        onlyReturnExisting: false,
        newAccountUrl: `${BASE}/acme/new-account`,
      });
      ra.calls.length = 0;
      return { key: k, account, kid: `${BASE}/acme/acct/${account.id}` };
    },
  };
}

/** The response body as JSON. */
export function body(response: { body: string }): Record<string, unknown> {
  return JSON.parse(response.body) as Record<string, unknown>;
}
