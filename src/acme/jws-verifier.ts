import { constants, createPublicKey, verify as verifyWithKey, type KeyObject } from 'node:crypto';
import { calculateJwkThumbprint } from 'jose';
import type { Account } from '../core/account.js';
import { CaError } from '../core/errors.js';
import type { KeyFacts } from '../core/key-facts.js';
import type { AcmeRegistrationAuthority } from '../ra/acme-registration-authority.js';
import type { AcmeLinker } from './linker.js';
import { isWellFormedNonce, type NonceStore } from './nonce-store.js';
import { decodeBase64url, parseFlattenedJws, parseKeyChange, type FlattenedJwsObject } from './schemas.js';
import { rejectDuplicateMembers } from './strict-json.js';

/**
 * Verification of every ACME POST (RFC 8555 §6.2-§6.5) and of the keyChange inner JWS (§7.3.5).
 *
 * The checks run in a fixed order so that a request learns the most specific problem it can act on, and so
 * that nothing is looked up or consumed for a request that is not even a JWS:
 *   1. shape: flattened JWS JSON, protected header only (§6.2)                         -> malformed
 *      canonical base64url parts (RFC 4648 §3.5), no member named twice in any JSON
 *      object of the request (strict-json.ts; the payload's own checked at step 8)
 *   2. protected header: alg allowed (§6.2)                                              -> badSignatureAlgorithm
 *      exactly one of jwk/kid, the one this resource wants (§6.2)                       -> malformed
 *      nonce present (§6.5) / url present (§6.4)                                         -> badNonce / malformed
 *   3. key: jwk is public, a supported type and size; or kid names an existing account  -> malformed /
 *      (§7.3); alg matches the key type                                                     badPublicKey /
 *                                                                                           accountDoesNotExist /
 *                                                                                           badSignatureAlgorithm
 *   4. signature (node:crypto, algorithm pinned to the header's alg)                    -> malformed
 *   5. nonce consumed (§6.5): after the signature, so a forger cannot burn nonces        -> badNonce
 *   6. url equals the URL the request arrived on (§6.4)                                 -> unauthorized
 *   7. the account is valid (§7.3.6: deactivated accounts may do nothing)               -> unauthorized
 *   8. payload: "" is POST-as-GET (§6.3), otherwise JSON                                -> malformed
 * For a kid-signed request from an account this verifier has seen before, steps 3-5 cost one database round
 * trip instead of two (verifyByAccount); what is checked, and in which order, stays the same.
 */

/**
 * RFC 8555 §6.2: servers MUST accept ES256 and SHOULD accept EdDSA; RS256 and PS256 cover RSA account keys
 * (certbot's default is RS256). `none` and the MAC algorithms (HS*) are refused because §6.2 forbids them: the
 * request must be signed with the account's asymmetric key. ES512/P-521 is left out, matching the key policy.
 */
export const SUPPORTED_JWS_ALGORITHMS = ['ES256', 'ES384', 'RS256', 'PS256', 'EdDSA'] as const;
export type SupportedJwsAlgorithm = (typeof SUPPORTED_JWS_ALGORITHMS)[number];

/** A public JWK holding exactly kty and the members RFC 7638 §3.2 hashes (what core Account.publicJwk stores). */
export type PublicJwk = Record<string, string>;

export interface AcmeProtectedHeader {
  alg: SupportedJwsAlgorithm;
  url: string;
  nonce?: string;
  kid?: string;
  jwk?: Record<string, unknown>;
  [parameter: string]: unknown;
}

export interface VerifiedRequest {
  /** The parsed JSON payload, or null for POST-as-GET (§6.3). */
  payload: unknown;
  postAsGet: boolean;
  protectedHeader: AcmeProtectedHeader;
  /** Present for kid-signed requests: the (valid) account that signed. */
  account?: Account;
  /** Present for jwk-signed requests: the signing key, public members only, and its RFC 7638 thumbprint. */
  jwk?: PublicJwk;
  thumbprint?: string;
}

/**
 * Which key identification a resource takes (§6.2): newAccount and revokeCert-with-the-certificate-key use
 * `jwk`; every other resource `kid`; revokeCert accepts either (§7.6).
 */
export type KeyMode = 'jwk' | 'kid' | 'either';
/** `json`: the request carries a payload; `postAsGet`: only "" is allowed; `either`: the resource does both. */
export type PayloadMode = 'json' | 'postAsGet' | 'either';

export interface VerifyOptions {
  key: KeyMode;
  payload: PayloadMode;
}

export interface JwsVerifierDeps {
  /**
   * findAccount for kid requests; checkAccountKey is the account-key policy (policy/, through the RA);
   * accountSeen notes each account that authenticated a request (when it was last seen).
   */
  ra: Pick<AcmeRegistrationAuthority, 'findAccount' | 'checkAccountKey' | 'accountSeen' | 'refuseBlockedAccountKey'>;
  nonces: NonceStore;
  linker: AcmeLinker;
}

/** Members that only a private (or symmetric) JWK has (RFC 7518 §6.2.2, §6.3.2, §6.4.1; RFC 8037 §2). */
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];
/** Coordinate sizes of the curves a JWK may name (RFC 7518 §6.2.1.2); which are allowed is the key policy's call. */
const CURVE_BYTES: Record<string, number> = { 'P-256': 32, 'P-384': 48, 'P-521': 66 };

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Why a kid request's signature fails, as a client can act on it: after a key change (RFC 8555 §7.3.5) the
 * old key is no longer the account's, and a client still signing with it needs to be told so.
 */
const NOT_THE_ACCOUNT_KEY = ": it does not verify with the account's current key (a key replaced by keyChange is no longer the account's key)";

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** UTF-8 JSON from bytes, with no member named twice in an object (strict-json.ts); `failure` says what was not JSON. */
function parseJson(bytes: Uint8Array, what: string, failure: string): unknown {
  let text: string;
  let value: unknown;
  try {
    text = utf8.decode(bytes);
    value = JSON.parse(text);
  } catch {
    throw new CaError('malformed', failure);
  }
  rejectDuplicateMembers(text, what);
  return value;
}

function decodeJson(base64url: string, what: string): unknown {
  return parseJson(Buffer.from(base64url, 'base64url'), what, `${what} is not base64url-encoded UTF-8 JSON`);
}

function bitLength(bytes: Buffer): number {
  const first = bytes[0] ?? 0;
  return bytes.length === 0 ? 0 : (bytes.length - 1) * 8 + (32 - Math.clz32(first));
}

/**
 * RFC 7518 §2 Base64urlUInt: minimal big-endian octets. A leading zero octet would give the same key a second
 * RFC 7638 thumbprint, i.e. a second account for one key, so it is refused.
 */
function uintMember(jwk: Record<string, unknown>, member: string, where: string): Buffer {
  const value = jwk[member];
  if (typeof value !== 'string' || value.length === 0) throw new CaError('malformed', `${where} lacks the "${member}" member`);
  const bytes = decodeBase64url(value, `${where}.${member}`);
  if (bytes.length === 0 || bytes[0] === 0) {
    throw new CaError('malformed', `${where}.${member} is not a minimal Base64urlUInt (RFC 7518 §2): no leading zero octets`);
  }
  return bytes;
}

function fixedMember(jwk: Record<string, unknown>, member: string, length: number, where: string): string {
  const value = jwk[member];
  if (typeof value !== 'string') throw new CaError('malformed', `${where} lacks the "${member}" member`);
  if (decodeBase64url(value, `${where}.${member}`).length !== length) {
    throw new CaError('badPublicKey', `${where}.${member} must be ${length} bytes for ${String(jwk.crv)}`);
  }
  return value;
}

/**
 * A JWK from a request -> the public members RFC 7638 hashes, after the account-key policy (`checkKey`:
 * policy/key-policy.ts through the RA). The JWK's own form is checked here: members present and of the sizes
 * its curve needs, integers minimal. Private members are refused outright (§6.2 puts the *public* key in
 * `jwk`; a client that sends `d` has leaked its key).
 */
export function toPublicJwk(raw: unknown, where: string, checkKey: (facts: KeyFacts, where: string) => void): PublicJwk {
  if (!isObject(raw)) throw new CaError('malformed', `${where} must be a JSON object`);
  const leaked = PRIVATE_MEMBERS.filter((m) => m in raw);
  if (leaked.length > 0) {
    throw new CaError('malformed', `${where} contains private key material (${leaked.map((m) => `"${m}"`).join(', ')}); send only the public key`);
  }
  const kty = raw.kty;
  if (typeof kty !== 'string') throw new CaError('malformed', `${where} lacks "kty"`);
  switch (kty) {
    case 'EC': {
      const crv = raw.crv;
      if (typeof crv !== 'string') throw new CaError('malformed', `${where} lacks "crv"`);
      checkKey({ family: 'ec', curve: crv }, where);
      const size = CURVE_BYTES[crv];
      if (size === undefined) throw new CaError('badPublicKey', `${where} is on curve ${crv}, which is not supported`);
      return { kty, crv, x: fixedMember(raw, 'x', size, where), y: fixedMember(raw, 'y', size, where) };
    }
    case 'RSA': {
      const n = uintMember(raw, 'n', where);
      const e = uintMember(raw, 'e', where);
      // More than 8 octets of exponent is never a key anyone uses; bounded before turning it into a number.
      const publicExponent = e.length > 8 ? 2n ** 64n : BigInt(`0x${e.toString('hex')}`);
      checkKey({ family: 'rsa', bits: bitLength(n), publicExponent }, where);
      return { kty, n: raw.n as string, e: raw.e as string };
    }
    case 'OKP': {
      if (raw.crv !== 'Ed25519') {
        throw new CaError('badPublicKey', `${where} is an OKP key on ${String(raw.crv)}; only Ed25519 is accepted (RFC 8037)`);
      }
      checkKey({ family: 'ed25519' }, where);
      return { kty, crv: 'Ed25519', x: fixedMember(raw, 'x', 32, where) };
    }
    default:
      throw new CaError('badPublicKey', `${where} has key type "${kty}"; account keys must be EC, RSA or OKP (Ed25519)`);
  }
}

/** The key type each algorithm needs. */
const KEY_FOR_ALGORITHM: Record<SupportedJwsAlgorithm, { kty: string; crv?: string; text: string }> = {
  ES256: { kty: 'EC', crv: 'P-256', text: 'an EC P-256 key' },
  ES384: { kty: 'EC', crv: 'P-384', text: 'an EC P-384 key' },
  RS256: { kty: 'RSA', text: 'an RSA key' },
  PS256: { kty: 'RSA', text: 'an RSA key' },
  EdDSA: { kty: 'OKP', crv: 'Ed25519', text: 'an Ed25519 key' },
};

function fitsKey(alg: SupportedJwsAlgorithm, jwk: PublicJwk): boolean {
  const need = KEY_FOR_ALGORITHM[alg];
  return jwk.kty === need.kty && (need.crv === undefined || jwk.crv === need.crv);
}

/** A mismatch (ES256 over an RSA key, ES256 over P-384) is refused. */
function checkAlgorithmFitsKey(alg: SupportedJwsAlgorithm, jwk: PublicJwk): void {
  const need = KEY_FOR_ALGORITHM[alg];
  if (!fitsKey(alg, jwk)) {
    const have = jwk.kty === 'RSA' ? 'RSA' : `${jwk.kty} ${jwk.crv ?? ''}`.trim();
    throw new CaError('badSignatureAlgorithm', `JWS algorithm ${alg} requires ${need.text}, but the key is ${have}`);
  }
}

function checkAlgorithm(alg: unknown, what: string): SupportedJwsAlgorithm {
  if (typeof alg !== 'string' || alg.length === 0) throw new CaError('malformed', `${what} lacks "alg"`);
  if (!(SUPPORTED_JWS_ALGORITHMS as readonly string[]).includes(alg)) {
    // §6.2: `none` and MAC algorithms MUST be refused; anything else we do not implement is refused the same
    // way, with the list of what we accept (problem.ts adds `algorithms` to the document).
    throw new CaError('badSignatureAlgorithm', `JWS algorithm ${JSON.stringify(alg)} is not supported; use one of ${SUPPORTED_JWS_ALGORITHMS.join(', ')}`);
  }
  return alg as SupportedJwsAlgorithm;
}

/**
 * A small least-recently-used map. Used for values that cannot go wrong (DESIGN.md rule 7): imported keys
 * (a JWK always imports to the same key) and hints that are checked against the database before use.
 */
class Lru<K, V> {
  private readonly map = new Map<K, V>();
  constructor(private readonly capacity: number) {}
  get(key: K): V | undefined {
    const value = this.map.get(key);
    if (value !== undefined) {
      // Map keeps insertion order: re-inserting makes this the most recently used entry.
      this.map.delete(key);
      this.map.set(key, value);
    }
    return value;
  }
  set(key: K, value: V): void {
    this.map.delete(key);
    this.map.set(key, value);
    if (this.map.size > this.capacity) this.map.delete(this.map.keys().next().value as K);
  }
}

/**
 * How each algorithm is checked with node:crypto (RFC 7518 §3.1 table): ECDSA signatures are R || S of the
 * curve's size (§3.4, not DER); RSASSA-PSS uses MGF1 with the same hash and a salt as long as the hash
 * (§3.5); EdDSA hashes nothing itself (RFC 8037 §3.1).
 *
 * Why node:crypto and not jose's flattenedVerify: jose verifies through WebCrypto, which runs every
 * verification as a job on libuv's thread pool; on a busy server the hand-off (and the thread wake-up it
 * costs) was the largest single item of a request after the database in a CPU profile of bench:acme. crypto.verify runs
 * the same OpenSSL check synchronously in well under 0.1 ms. jose remains the JOSE library for everything
 * else (thumbprints, RFC 7638); the JWS structure checks are ours either way (parseFlattenedJws,
 * parseProtectedHeader refuse what ACME does not allow: unprotected headers, crit, b64).
 */
const NODE_VERIFY: Record<SupportedJwsAlgorithm, { hash: string | null; signatureBytes?: number; options: object }> = {
  ES256: { hash: 'sha256', signatureBytes: 64, options: { dsaEncoding: 'ieee-p1363' } },
  ES384: { hash: 'sha384', signatureBytes: 96, options: { dsaEncoding: 'ieee-p1363' } },
  RS256: { hash: 'sha256', options: { padding: constants.RSA_PKCS1_PADDING } },
  PS256: { hash: 'sha256', options: { padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 } },
  EdDSA: { hash: null, options: {} },
};

/**
 * Public keys imported from JWKs, by JWK: importing costs more than verifying, and an account signs every
 * request with the same key. The mapping is immutable, so the cache needs no invalidation (DESIGN.md rule 7);
 * it is bounded so a flood of new keys costs memory only up to the bound.
 */
const KEY_CACHE_SIZE = 10_000;

function importKey(cache: Lru<string, KeyObject>, jwk: PublicJwk, what: string): KeyObject {
  const cacheKey = JSON.stringify(jwk);
  const cached = cache.get(cacheKey);
  if (cached !== undefined) return cached;
  let key: KeyObject;
  try {
    key = createPublicKey({ key: { ...jwk }, format: 'jwk' });
  } catch (cause) {
    // e.g. an EC point not on the curve: the members were well formed but are not a key.
    throw new CaError('badPublicKey', `${what} key is not a valid ${jwk.kty} public key`, { cause });
  }
  cache.set(cacheKey, key);
  return key;
}

/**
 * Verifies the signature of `jws` (RFC 7515 §5.2: over ASCII(protected) || '.' || ASCII(payload)) with `jwk`,
 * for `alg` only, so the header cannot pick another algorithm; returns the decoded payload. The caller has
 * checked that `alg` fits the key (checkAlgorithmFitsKey) and refused crit/b64 (parseProtectedHeader).
 */
function verifySignature(cache: Lru<string, KeyObject>, jws: FlattenedJwsObject, alg: SupportedJwsAlgorithm, jwk: PublicJwk, what: string, hint = ''): Uint8Array {
  const key = importKey(cache, jwk, what);
  const method = NODE_VERIFY[alg];
  const signature = decodeBase64url(jws.signature, `${what} signature`);
  const payload = decodeBase64url(jws.payload, `${what} payload`);
  let valid = false;
  if (method.signatureBytes === undefined || signature.length === method.signatureBytes) {
    try {
      valid = verifyWithKey(method.hash, Buffer.from(`${jws.protected}.${jws.payload}`, 'ascii'), { key, ...method.options }, signature);
    } catch {
      valid = false; // e.g. an RSA signature longer than the modulus
    }
  }
  if (!valid) throw new CaError('malformed', `${what} signature is invalid${hint}`);
  return payload;
}

function parseProtectedHeader(jws: FlattenedJwsObject, what: string): Record<string, unknown> {
  const header = decodeJson(jws.protected, `${what} protected header`);
  if (!isObject(header)) throw new CaError('malformed', `${what} protected header must be a JSON object`);
  // RFC 8555 defines no critical extensions, and the RFC 7797 unencoded payload (b64=false) would make "" and
  // raw JSON ambiguous with POST-as-GET (§6.3); verifySignature signs over the encoded payload only, so both
  // are refused here.
  if (header.crit !== undefined || header.b64 !== undefined) {
    throw new CaError('malformed', `${what} uses "crit"/"b64" extensions, which ACME requests do not allow`);
  }
  return header;
}

/** What the verifier remembers of an account between requests: a hint, checked on every use (see verify). */
interface KnownAccountKey {
  jwk: PublicJwk;
  thumbprint: string;
}

function badNonce(): CaError {
  return new CaError('badNonce', 'JWS nonce is unknown, expired or already used; retry with the nonce from this response');
}

export class JwsVerifier {
  private readonly keys = new Lru<string, KeyObject>(KEY_CACHE_SIZE);
  /** Account id -> its key as last read; bounded like the key cache. */
  private readonly accountKeys = new Lru<string, KnownAccountKey>(KEY_CACHE_SIZE);

  constructor(private readonly deps: JwsVerifierDeps) {}

  private readonly checkKey = (facts: KeyFacts, where: string): void => this.deps.ra.checkAccountKey(facts, where);

  /**
   * Verifies a POST body for a resource. `requestUrl` is the external URL the request arrived on
   * (AcmeLinker.requestUrl). Throws CaError; returns only for an authentic, fresh request by a valid account
   * (or, for jwk requests, by the holder of the key).
   */
  async verify(body: Buffer | undefined, requestUrl: string, options: VerifyOptions): Promise<VerifiedRequest> {
    // 1. shape (§6.2)
    if (body === undefined || body.length === 0) throw new CaError('malformed', 'request body is empty; ACME requests are JWS objects (RFC 8555 §6.2)');
    const parsed = parseJson(body, 'request JWS', 'request body is not JSON; ACME requests are flattened JWS JSON objects (RFC 8555 §6.2)');
    const jws = parseFlattenedJws(parsed, 'request JWS');

    // 2. protected header
    const header = parseProtectedHeader(jws, 'JWS');
    const alg = checkAlgorithm(header.alg, 'JWS protected header');
    const hasJwk = header.jwk !== undefined;
    const hasKid = header.kid !== undefined;
    if (hasJwk && hasKid) throw new CaError('malformed', 'JWS protected header has both "jwk" and "kid"; RFC 8555 §6.2 requires exactly one');
    if (!hasJwk && !hasKid) throw new CaError('malformed', 'JWS protected header has neither "jwk" nor "kid"; RFC 8555 §6.2 requires exactly one');
    if (options.key === 'jwk' && hasKid) {
      throw new CaError('malformed', 'this resource requires a "jwk" header, not "kid" (RFC 8555 §6.2: newAccount is signed with the new key itself)');
    }
    if (options.key === 'kid' && hasJwk) {
      throw new CaError('malformed', 'this resource requires a "kid" header naming your account URL, not "jwk" (RFC 8555 §6.2)');
    }
    const nonce = header.nonce;
    if (nonce === undefined) throw new CaError('badNonce', 'JWS has no anti-replay "nonce" (RFC 8555 §6.5); get one from newNonce');
    if (typeof nonce !== 'string' || !isWellFormedNonce(nonce)) {
      throw new CaError('malformed', 'JWS "nonce" is not a base64url string (RFC 8555 §6.5.1)');
    }
    const url = header.url;
    if (typeof url !== 'string' || url.length === 0) throw new CaError('malformed', 'JWS protected header lacks "url" (RFC 8555 §6.4)');

    // 3.-5. the key, the signature, the nonce
    let account: Account | undefined;
    let jwk: PublicJwk | undefined;
    let thumbprint: string | undefined;
    let payloadBytes: Uint8Array;
    if (hasJwk) {
      jwk = toPublicJwk(header.jwk, 'JWS "jwk"', this.checkKey);
      checkAlgorithmFitsKey(alg, jwk);
      thumbprint = await calculateJwkThumbprint(jwk, 'sha256');
      payloadBytes = verifySignature(this.keys, jws, alg, jwk, 'JWS');
      await this.consumeNonce(nonce);
    } else {
      if (typeof header.kid !== 'string') throw new CaError('malformed', 'JWS "kid" must be a string: your account URL');
      const accountId = this.deps.linker.accountIdFromUrl(header.kid);
      if (accountId === undefined) {
        throw new CaError('malformed', `JWS "kid" ${JSON.stringify(header.kid)} is not an account URL of this server (${this.deps.linker.base}/acme/acct/<id>)`);
      }
      ({ account, payloadBytes } = await this.verifyByAccount(jws, alg, accountId, header.kid, nonce));
    }

    // 6. url (§6.4): binds the signature to this resource, so a request cannot be replayed at another one.
    if (url !== requestUrl) {
      throw new CaError('unauthorized', `JWS "url" ${JSON.stringify(url)} does not match the request URL ${JSON.stringify(requestUrl)} (RFC 8555 §6.4)`);
    }

    // 7. §7.3.6: a deactivated (or CA-revoked) account is refused every further request.
    if (account && account.status !== 'valid') {
      throw new CaError('unauthorized', `account ${header.kid as string} is ${account.status}`);
    }
    if (account) this.deps.ra.accountSeen?.(account.id);
    // A key an incident blocked is refused on every request (RFC 8555 §6.2 leaves the key policy to the server).
    const signer = account ? { jwk: account.publicJwk, thumbprint: account.jwkThumbprint, accountId: account.id, ...(account.group === undefined ? {} : { group: account.group }) } : jwk && thumbprint ? { jwk, thumbprint } : undefined;
    if (signer !== undefined) await this.deps.ra.refuseBlockedAccountKey?.(signer);

    // 8. payload
    const postAsGet = jws.payload === '';
    if (postAsGet && options.payload === 'json') {
      throw new CaError('malformed', 'this request needs a JSON payload; an empty payload means POST-as-GET (RFC 8555 §6.3)');
    }
    if (!postAsGet && options.payload === 'postAsGet') {
      throw new CaError('malformed', 'this resource is read with POST-as-GET: the JWS payload must be the empty string (RFC 8555 §6.3)');
    }
    const payload = postAsGet ? null : parseJson(payloadBytes, 'JWS payload', 'JWS payload is not UTF-8 JSON');

    const protectedHeader = header as AcmeProtectedHeader;
    const result: VerifiedRequest = { payload, postAsGet, protectedHeader };
    if (account) result.account = account;
    else {
      result.jwk = jwk;
      result.thumbprint = thumbprint;
    }
    return result;
  }

  /** Step 5 (§6.5): consumed only after the signature, so a request that is not authentic cannot spend someone else's nonce. */
  private async consumeNonce(nonce: string): Promise<void> {
    if (!(await this.deps.nonces.consume(nonce))) throw badNonce();
  }

  /**
   * Steps 3-5 for a kid-signed request: the account exists (§7.3), its key fits the alg and signed the
   * request, and the nonce is fresh.
   *
   * The plain way costs two database round trips: read the account for its key, verify, consume the nonce.
   * When this verifier has seen the account before and the nonce store can consume a nonce and read the
   * account in one statement, it verifies with the remembered key first and then does both at once: one
   * round trip. The remembered key is only a guess at which key to try; the account read with the nonce is
   * what decides (DESIGN.md rule 7: the cache cannot make a decision go wrong). If the account's key has
   * changed in between (keyChange, §7.3.5, possibly on another instance), the signature is checked again with
   * the current key and the request fails unless that one signed it; the nonce it spent was then spent by the
   * holder of the account's previous key, which harms no one.
   */
  private async verifyByAccount(
    jws: FlattenedJwsObject,
    alg: SupportedJwsAlgorithm,
    accountId: string,
    kid: string,
    nonce: string,
  ): Promise<{ account: Account; payloadBytes: Uint8Array }> {
    const known = this.accountKeys.get(accountId);
    const consumeAndFind = this.deps.nonces.consumeAndFindAccount?.bind(this.deps.nonces);
    if (known !== undefined && consumeAndFind !== undefined && fitsKey(alg, known.jwk)) {
      let payloadBytes: Uint8Array | undefined;
      try {
        payloadBytes = verifySignature(this.keys, jws, alg, known.jwk, 'JWS', NOT_THE_ACCOUNT_KEY);
      } catch {
        // Perhaps the account has a new key since (and the client signs with it): the plain way decides.
      }
      if (payloadBytes !== undefined) {
        const { consumed, account } = await consumeAndFind(nonce, accountId);
        // Accounts are never deleted, so an unknown account here is only a nonce we did not issue (refused
        // without a lookup): badNonce, as the plain way would say after verifying the signature.
        if (!consumed) throw badNonce();
        if (!account) throw new CaError('accountDoesNotExist', `no account exists at ${kid}`);
        this.rememberAccount(account);
        if (account.jwkThumbprint !== known.thumbprint) {
          checkAlgorithmFitsKey(alg, account.publicJwk);
          payloadBytes = verifySignature(this.keys, jws, alg, account.publicJwk, 'JWS', NOT_THE_ACCOUNT_KEY);
        }
        return { account, payloadBytes };
      }
    }
    const account = await this.deps.ra.findAccount(accountId);
    if (!account) throw new CaError('accountDoesNotExist', `no account exists at ${kid}`);
    checkAlgorithmFitsKey(alg, account.publicJwk);
    const payloadBytes = verifySignature(this.keys, jws, alg, account.publicJwk, 'JWS', NOT_THE_ACCOUNT_KEY);
    await this.consumeNonce(nonce);
    this.rememberAccount(account);
    return { account, payloadBytes };
  }

  private rememberAccount(account: Account): void {
    this.accountKeys.set(account.id, { jwk: account.publicJwk, thumbprint: account.jwkThumbprint });
  }

  /**
   * RFC 8555 §7.3.5 keyChange, after verify() authenticated the outer JWS with the account's key (kid). The
   * outer payload is a JWS signed by the NEW key, proving possession of it:
   *   - inner has "jwk" (the new key), no "kid", and MUST omit "nonce" (the outer one already guards replay)
   *   - inner "url" equals the outer "url"
   *   - inner payload {account, oldKey}: account is the outer kid, oldKey is the account's current key
   * Returns the new key; whether another account already uses it is for the caller (409, §7.3.5).
   */
  async verifyKeyChange(outer: VerifiedRequest): Promise<{ newJwk: PublicJwk; newThumbprint: string }> {
    const account = outer.account;
    if (!account) throw new CaError('malformed', 'keyChange must be signed with "kid" by the account whose key changes');
    const inner = parseFlattenedJws(outer.payload, 'keyChange inner JWS');
    const header = parseProtectedHeader(inner, 'keyChange inner JWS');
    const alg = checkAlgorithm(header.alg, 'keyChange inner JWS protected header');
    if (header.kid !== undefined) throw new CaError('malformed', 'keyChange inner JWS must identify the new key with "jwk", not "kid" (RFC 8555 §7.3.5)');
    if (header.jwk === undefined) throw new CaError('malformed', 'keyChange inner JWS lacks "jwk": the new account key (RFC 8555 §7.3.5)');
    if (header.nonce !== undefined) throw new CaError('malformed', 'keyChange inner JWS must omit "nonce" (RFC 8555 §7.3.5)');
    if (header.url !== outer.protectedHeader.url) {
      throw new CaError('malformed', `keyChange inner JWS "url" ${JSON.stringify(header.url ?? null)} differs from the outer "url" (RFC 8555 §7.3.5)`);
    }
    const newJwk = toPublicJwk(header.jwk, 'keyChange inner "jwk"', this.checkKey);
    checkAlgorithmFitsKey(alg, newJwk);
    const payloadBytes = verifySignature(this.keys, inner, alg, newJwk, 'keyChange inner JWS');
    const innerPayload = parseJson(payloadBytes, 'keyChange inner JWS payload', 'keyChange inner JWS payload is not UTF-8 JSON');
    const request = parseKeyChange(innerPayload);
    const accountUrl = this.deps.linker.account(account.id);
    if (request.account !== accountUrl) {
      throw new CaError('unauthorized', `keyChange "account" ${JSON.stringify(request.account)} is not the account that signed the request (${accountUrl})`);
    }
    const oldKey = toPublicJwk(request.oldKey, 'keyChange "oldKey"', this.checkKey);
    if ((await calculateJwkThumbprint(oldKey, 'sha256')) !== account.jwkThumbprint) {
      throw new CaError('unauthorized', 'keyChange "oldKey" is not the current key of the account');
    }
    const newThumbprint = await calculateJwkThumbprint(newJwk, 'sha256');
    return { newJwk, newThumbprint };
  }
}
