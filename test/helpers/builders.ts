/**
 * Builders of the domain objects tests construct: `buildX(overrides)` returns a complete X with unique ids
 * (src/core/ids.ts) and times from a Date or a Clock, and the overrides on top.
 *
 * The module-level builders take their times from BUILD_EPOCH (FakeClock's default start). `builders(time,
 * defaults)` makes a set that reads its times from `time` (a FakeClock is read at each call, so a test that
 * advances it builds later objects) and puts a test file's own defaults under each call's overrides: the
 * values its assertions lean on (a shard, milliseconds that must survive a round trip), stated once.
 *
 * Random bytes stand in for key material, DER and digests: stores treat them as opaque. Tests that verify
 * signatures or parse certificates make real ones (helpers/acme-jws.ts, helpers/test-ca.ts).
 */
import { randomBytes } from 'node:crypto';

import type { Account, EabCredential } from '../../src/core/account.js';
import type { IssuedCertificate, IssuerRecord } from '../../src/core/certificate.js';
import { DAY, type Clock } from '../../src/core/clock.js';
import type { Identifier } from '../../src/core/identifier.js';
import { newId } from '../../src/core/ids.js';
import type { Authorization, Challenge, ChallengeType, Order } from '../../src/core/order.js';
import { DEFAULT_PROFILE_ID } from '../../src/core/profile.js';

/** FakeClock's default start; the time of the module-level builders. */
export const BUILD_EPOCH = new Date('2026-01-01T00:00:00.000Z');

/** The identifier of an authorization, order or certificate built without one. */
export const DEFAULT_IDENTIFIER: Readonly<Identifier> = { type: 'dns', value: 'web01.example.internal' };

/** Lifetimes of built objects: pending authorizations and orders, leaf certificates, issuers. */
export const AUTHORIZATION_LIFETIME = 7 * DAY;
export const ORDER_LIFETIME = 7 * DAY;
export const CERTIFICATE_LIFETIME = 90 * DAY;
export const ISSUER_LIFETIME = 3650 * DAY;

/** A certificate serial as db/ stores it: lower-case hex of 128 random bits, no leading zeros (RFC 5280 §4.1.2.2). */
export function newSerial(): string {
  return randomBytes(16).toString('hex').replace(/^0+/, '') || '1';
}

/**
 * The challenges offered for an identifier, in the order the repositories return them (by type): dns-01
 * alone for a wildcard (RFC 8555 §7.1.3), no dns-01 for an IP address (RFC 8738 §7).
 */
export function defaultChallengeTypes(identifier: Identifier, wildcard: boolean): ChallengeType[] {
  if (wildcard) return ['dns-01'];
  if (identifier.type === 'ip') return ['http-01', 'tls-alpn-01'];
  return ['dns-01', 'http-01', 'tls-alpn-01'];
}

/** Per-file defaults, applied under each call's overrides (copied per call, so builds share nothing). */
export interface BuilderDefaults {
  account?: Partial<Account>;
  authorization?: Partial<Authorization>;
  challenge?: Partial<Challenge>;
  order?: Partial<Order>;
  certificate?: Partial<IssuedCertificate>;
  eabCredential?: Partial<EabCredential>;
  issuer?: Partial<IssuerRecord>;
}

export interface Builders {
  /** A valid account with a random (EC-shaped, not a real point) public JWK, thumbprint and one contact. */
  buildAccount(overrides?: Partial<Account>): Account;
  /** A pending http-01 challenge with a 256-bit token, as the RA makes them. */
  buildChallenge(overrides?: Partial<Challenge>): Challenge;
  /**
   * A pending authorization expiring after AUTHORIZATION_LIFETIME, with pending challenges of the types
   * defaultChallengeTypes(identifier, wildcard) pointing at its id, unless `challenges` is given.
   */
  buildAuthorization(overrides?: Partial<Authorization>): Authorization;
  /** A pending order for DEFAULT_IDENTIFIER, without authorizations, expiring after ORDER_LIFETIME. */
  buildOrder(overrides?: Partial<Order>): Order;
  /**
   * buildOrder for these authorizations: their account, their identifiers ("*." before a wildcard's), their
   * ids in this order.
   */
  buildOrderFor(authorizations: readonly Authorization[], overrides?: Partial<Order>): Order;
  /** A valid certificate of issuer 'root' (the id insertRootIssuer stores) in shard 0, lasting CERTIFICATE_LIFETIME. */
  buildCertificate(overrides?: Partial<IssuedCertificate>): IssuedCertificate;
  /** An unbound EAB credential without a group. */
  buildEabCredential(overrides?: Partial<EabCredential>): EabCredential;
  /** A root issuer lasting ISSUER_LIFETIME; its key name and subject follow its id. */
  buildIssuer(overrides?: Partial<IssuerRecord>): IssuerRecord;
}

/** Builders reading their times from `time` and starting from `defaults`. */
export function builders(time: Date | Clock = BUILD_EPOCH, defaults: BuilderDefaults = {}): Builders {
  const now = (): Date => (time instanceof Date ? new Date(time.getTime()) : time.now());
  const after = (from: Date, ms: number): Date => new Date(from.getTime() + ms);
  /** The file's defaults for a kind, then the call's overrides. */
  const given = <T>(kind: T | undefined, overrides: T | undefined): T => ({ ...structuredClone(kind), ...overrides }) as T;

  const buildChallenge = (overrides?: Partial<Challenge>): Challenge => {
    const o = given(defaults.challenge, overrides);
    return { id: newId(), authorizationId: newId(), type: 'http-01', token: newId(32), status: 'pending', attempts: 0, ...o };
  };

  const buildOrder = (overrides?: Partial<Order>): Order => {
    const o = given(defaults.order, overrides);
    const at = now();
    return {
      id: newId(),
      accountId: newId(),
      status: 'pending',
      identifiers: [{ ...DEFAULT_IDENTIFIER }],
      authorizationIds: [],
      expires: after(at, ORDER_LIFETIME),
      profile: DEFAULT_PROFILE_ID,
      createdAt: at,
      ...o,
    };
  };

  return {
    buildAccount(overrides) {
      const o = given(defaults.account, overrides);
      return {
        id: newId(),
        status: 'valid',
        contacts: ['mailto:ops@example.internal'],
        publicJwk: { kty: 'EC', crv: 'P-256', x: randomBytes(32).toString('base64url'), y: randomBytes(32).toString('base64url') },
        jwkThumbprint: randomBytes(32).toString('base64url'),
        termsOfServiceAgreed: true,
        createdAt: now(),
        ...o,
      };
    },

    buildChallenge,

    buildAuthorization(overrides) {
      const o = given(defaults.authorization, overrides);
      const id = o.id ?? newId();
      const identifier = o.identifier ?? { ...DEFAULT_IDENTIFIER };
      const wildcard = o.wildcard ?? false;
      const at = now();
      return {
        id,
        accountId: newId(),
        identifier,
        wildcard,
        status: 'pending',
        expires: after(at, AUTHORIZATION_LIFETIME),
        challenges: o.challenges ?? defaultChallengeTypes(identifier, wildcard).map((type) => buildChallenge({ authorizationId: id, type })),
        createdAt: at,
        ...o,
      };
    },

    buildOrder,

    buildOrderFor(authorizations, overrides) {
      const first = authorizations[0];
      return buildOrder({
        ...(first === undefined ? {} : { accountId: first.accountId }),
        identifiers: authorizations.map((a) => ({ type: a.identifier.type, value: a.wildcard ? `*.${a.identifier.value}` : a.identifier.value })),
        authorizationIds: authorizations.map((a) => a.id),
        ...overrides,
      });
    },

    buildCertificate(overrides) {
      const o = given(defaults.certificate, overrides);
      const at = now();
      return {
        serial: newSerial(),
        issuerId: 'root',
        crlShard: 0,
        der: new Uint8Array(randomBytes(300)),
        identifiers: [{ ...DEFAULT_IDENTIFIER }],
        spkiSha256: randomBytes(32).toString('hex'),
        notBefore: at,
        notAfter: after(at, CERTIFICATE_LIFETIME),
        status: 'valid',
        createdAt: at,
        profile: DEFAULT_PROFILE_ID,
        ...o,
      };
    },

    buildEabCredential(overrides) {
      return { kid: newId(), createdAt: now(), ...given(defaults.eabCredential, overrides) };
    },

    buildIssuer(overrides) {
      const o = given(defaults.issuer, overrides);
      const id = o.id ?? newId(6);
      const at = now();
      return {
        id,
        role: 'root',
        keyName: `${id}-key`,
        der: new Uint8Array(randomBytes(300)),
        subject: `CN=Chancery ${id}`,
        notBefore: at,
        notAfter: after(at, ISSUER_LIFETIME),
        createdAt: at,
        ...o,
      };
    },
  };
}

export const { buildAccount, buildChallenge, buildAuthorization, buildOrder, buildOrderFor, buildCertificate, buildEabCredential, buildIssuer } =
  builders();
