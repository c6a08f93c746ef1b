import { createHmac, createSecretKey, hkdfSync, timingSafeEqual, type KeyObject } from 'node:crypto';
import type { Account } from '../core/account.js';
import type { Clock } from '../core/clock.js';
import { fillRandom, randomBuffer } from '../core/random-pool.js';
import { isCanonicalBase64url } from './schemas.js';

/**
 * Anti-replay nonces (RFC 8555 §6.5). Every POST must carry a nonce this server issued and that has not been
 * used; each is good exactly once. Production uses SignedNonceStore below: any instance can tell a nonce
 * issued by any other (a shared key), and single use is enforced in the database (DESIGN.md rule 7).
 */
export interface NonceStore {
  /** A fresh nonce for a Replay-Nonce header. */
  issue(): Promise<string>;
  /**
   * Marks the nonce used. True exactly once for a nonce issue() returned (and has not expired); false for
   * unknown, expired or already used ones. Implementations must make this atomic across processes
   * (e.g. a unique INSERT) so two racing requests cannot both succeed with one nonce.
   */
  consume(nonce: string): Promise<boolean>;
  /**
   * Optional: consume() and a read of the account `accountId` (as AcmeRegistrationAuthority.findAccount) in
   * one database round trip. The JWS verifier uses it when it already knows the account's key from an
   * earlier request, so a kid-signed request costs one round trip instead of two; the account read here is
   * what the request is judged by (status, current key), never the remembered copy.
   */
  consumeAndFindAccount?(nonce: string, accountId: string): Promise<{ consumed: boolean; account: Account | undefined }>;
}

/**
 * 128 bits from the CSPRNG, base64url without padding (RFC 8555 §6.5.1 requires base64url; the entropy makes
 * nonces unguessable, so a stored nonce can only be used by someone who received it).
 */
export function generateNonce(): string {
  return randomBuffer(16).toString('base64url');
}

/**
 * RFC 8555 §6.5.1: the nonce value is base64url (no padding). A JWS whose nonce is not is `malformed`; one that
 * is well formed but unknown is `badNonce`. The length bound keeps junk out of the store lookup. Canonical
 * only (RFC 4648 §3.5): a nonce spelled with other unused bits decodes to the same bytes but is not the
 * string this server issued.
 */
export function isWellFormedNonce(value: string): boolean {
  return /^[A-Za-z0-9_-]{1,128}$/.test(value) && isCanonicalBase64url(value);
}

/** Where a SignedNonceStore records spent nonces: the database in production (rule 7). */
export interface SpentNonces {
  /**
   * Records `id` as spent; true if it was not spent before. Must be one atomic statement (a unique key), so
   * of two instances racing with one nonce exactly one gets true.
   */
  spend(id: Uint8Array): Promise<boolean>;
  /** spend() plus a read of the account, in one round trip (see NonceStore.consumeAndFindAccount). */
  spendAndFindAccount?(id: Uint8Array, accountId: string): Promise<{ spent: boolean; account: Account | undefined }>;
}

export interface SignedNonceOptions {
  /** Secret shared by every instance (derive it with nonceKeyFromPassphrase). */
  key: Uint8Array;
  clock: Clock;
  spent: SpentNonces;
  /** How long an issued nonce stays good; default NONCE_LIFETIME_MS. */
  maxAgeMs?: number;
  /**
   * How far instances' clocks may disagree: a nonce stamped up to this far in the future is accepted, and its
   * spent record is kept this much longer than maxAge, so an instance whose clock is behind cannot accept it
   * again after another instance purged the record.
   */
  clockSkewMs?: number;
}

/**
 * How long an issued nonce stays good. RFC 8555 §6.5 sets no lifetime; clients use the nonce of the previous
 * response and retry on badNonce with the fresh one it carries (§6.5), so a stale nonce costs one round trip.
 * The lifetime bounds the spent set: about (requests per second) x (lifetime + clock skew) rows.
 */
export const NONCE_LIFETIME_MS = 15 * 60 * 1000;

const TIME_BYTES = 6; // milliseconds since 1970, big-endian: good until the year 10889
const RANDOM_BYTES = 16;
const MAC_BYTES = 16;
/** The part of a nonce recorded when it is spent: issued-at first, so records sort by age (see SpentNonces). */
const ID_BYTES = TIME_BYTES + RANDOM_BYTES;
const NONCE_BYTES = ID_BYTES + MAC_BYTES;
const MAC_LABEL = Buffer.from('chancery/acme-nonce/v1\0');

/**
 * A 256-bit nonce key from the installation passphrase (the one that seals EAB keys and software CA keys),
 * which every instance sharing a database already shares. HKDF with its own label, so this key says nothing
 * about the passphrase or the other keys derived from it.
 */
export function nonceKeyFromPassphrase(passphrase: string): Buffer {
  return Buffer.from(hkdfSync('sha256', Buffer.from(passphrase, 'utf8'), Buffer.from('chancery'), 'chancery/acme-nonce-key/v1', 32));
}

/**
 * Nonces that cost nothing to issue and one statement to spend (RFC 8555 §6.5).
 *
 *   nonce = base64url( issuedAt(6, ms, big-endian) || random(16) || HMAC-SHA256(key, label || issuedAt || random)[:16] )
 *
 * Issuing writes nothing: the MAC lets any instance holding the key check that this server issued the nonce
 * and when, without asking the database. Consuming checks the MAC and the age, then records issuedAt||random
 * in the spent set — one unique INSERT, so a nonce is accepted exactly once across every instance (rule 7),
 * and a forged or stale nonce is refused without touching the database at all. Spent records are kept until
 * the nonce would be too old anyway (plus the allowed clock skew), then purged (purgeCutoff).
 *
 * The key protects nothing secret: a party who knew it could mint nonces, but every request still needs the
 * account key's signature and each nonce still works once, so replaying a captured request stays impossible.
 */
export class SignedNonceStore implements NonceStore {
  /** A KeyObject: HMAC with it skips re-importing the key bytes on each of the two MACs per request. */
  private readonly key: KeyObject;
  private readonly skewMs: number;
  private readonly maxAgeMs: number;

  constructor(private readonly options: SignedNonceOptions) {
    if (options.key.length < 32) throw new Error('nonce key must be at least 256 bits');
    this.key = createSecretKey(Buffer.from(options.key));
    this.skewMs = options.clockSkewMs ?? 5 * 60 * 1000;
    this.maxAgeMs = options.maxAgeMs ?? NONCE_LIFETIME_MS;
  }

  async issue(): Promise<string> {
    const nonce = Buffer.allocUnsafe(NONCE_BYTES);
    nonce.writeUIntBE(this.options.clock.now().getTime(), 0, TIME_BYTES);
    fillRandom(nonce, TIME_BYTES, ID_BYTES);
    this.mac(nonce.subarray(0, ID_BYTES)).copy(nonce, ID_BYTES, 0, MAC_BYTES);
    return nonce.toString('base64url');
  }

  async consume(nonce: string): Promise<boolean> {
    const id = this.check(nonce);
    return id !== undefined && this.options.spent.spend(id);
  }

  async consumeAndFindAccount(nonce: string, accountId: string): Promise<{ consumed: boolean; account: Account | undefined }> {
    const { spent } = this.options;
    const id = this.check(nonce);
    // A nonce we did not issue is refused without a lookup; the verifier reports badNonce and reads the
    // account itself if it still needs it.
    if (id === undefined) return { consumed: false, account: undefined };
    if (spent.spendAndFindAccount === undefined) return { consumed: await spent.spend(id), account: undefined };
    const result = await spent.spendAndFindAccount(id, accountId);
    return { consumed: result.spent, account: result.account };
  }

  /**
   * Spent records below this value may be deleted: they belong to nonces issued more than maxAge plus the
   * clock skew ago, which check() refuses on every instance whose clock is within the skew. A record is
   * issuedAt || random, so every such record sorts below these 6 bytes (a range delete on the primary key).
   */
  purgeCutoff(): Buffer {
    const cutoff = Buffer.alloc(TIME_BYTES);
    cutoff.writeUIntBE(Math.max(0, this.options.clock.now().getTime() - this.maxAgeMs - this.skewMs), 0, TIME_BYTES);
    return cutoff;
  }

  /** The spent-set id (issuedAt || random) of an authentic nonce that is not too old; else undefined. */
  private check(nonce: string): Buffer | undefined {
    // base64url of 38 bytes is 51 characters; anything else is not ours (Buffer.from ignores junk characters,
    // the length check keeps that from mattering).
    if (nonce.length !== Math.ceil((NONCE_BYTES * 4) / 3)) return undefined;
    const bytes = Buffer.from(nonce, 'base64url');
    if (bytes.length !== NONCE_BYTES) return undefined;
    const id = bytes.subarray(0, ID_BYTES);
    if (!timingSafeEqual(this.mac(id).subarray(0, MAC_BYTES), bytes.subarray(ID_BYTES))) return undefined;
    const issuedAt = id.readUIntBE(0, TIME_BYTES);
    const now = this.options.clock.now().getTime();
    if (issuedAt > now + this.skewMs || now - issuedAt >= this.maxAgeMs) return undefined;
    return Buffer.from(id);
  }

  private mac(id: Buffer): Buffer {
    return createHmac('sha256', this.key).update(MAC_LABEL).update(id).digest();
  }
}
