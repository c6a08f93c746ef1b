import { createHash, generateKeyPairSync, KeyObject, sign as nodeSign } from 'node:crypto';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { calculateJwkThumbprint, exportJWK, FlattenedSign, generateKeyPair, type CryptoKey } from 'jose';

/**
 * Test-side ACME JWS construction (RFC 8555 §6.2): account keys, well-formed flattened JWS requests, and the
 * deliberately broken ones the wire-layer tests need (alg none, HS256, both jwk and kid, tampered signature,
 * keys too small for any honest client library to produce). jose signs the honest ones; node:crypto signs the
 * ones jose rightly refuses to make.
 */

export type TestJwsAlgorithm = 'ES256' | 'ES384' | 'RS256' | 'PS256' | 'EdDSA';

export interface FlattenedJws {
  protected: string;
  payload: string;
  signature: string;
}

export interface TestKey {
  alg: string;
  /** jose CryptoKey for honest keys; a node KeyObject for the undersized RSA key. */
  privateKey: CryptoKey | KeyObject;
  publicJwk: Record<string, string>;
  /** RFC 7638 SHA-256 thumbprint, base64url. */
  thumbprint: string;
}

function b64u(data: string | Uint8Array): string {
  return Buffer.from(data).toString('base64url');
}

/** Only the members RFC 7638 hashes, plus kty: what the server stores as the account key. */
function publicMembers(jwk: Record<string, unknown>): Record<string, string> {
  const keep = jwk.kty === 'RSA' ? ['kty', 'n', 'e'] : jwk.kty === 'EC' ? ['kty', 'crv', 'x', 'y'] : ['kty', 'crv', 'x'];
  return Object.fromEntries(keep.map((k) => [k, String(jwk[k])]));
}

export async function makeAccountKey(alg: TestJwsAlgorithm = 'ES256'): Promise<TestKey> {
  const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true, ...(alg === 'EdDSA' ? { crv: 'Ed25519' } : {}) });
  const publicJwk = publicMembers((await exportJWK(publicKey)) as Record<string, unknown>);
  return { alg, privateKey, publicJwk, thumbprint: await calculateJwkThumbprint(publicJwk, 'sha256') };
}

/** An RSA key below the 2048-bit floor (jose will not generate or sign with one; node:crypto will). */
export async function makeSmallRsaKey(bits = 1024): Promise<TestKey> {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: bits });
  const publicJwk = publicMembers(publicKey.export({ format: 'jwk' }) as Record<string, unknown>);
  return { alg: 'RS256', privateKey, publicJwk, thumbprint: await calculateJwkThumbprint(publicJwk, 'sha256') };
}

/** An EC key on a curve the server does not accept (P-521), signed with ES512. */
export async function makeP521Key(): Promise<TestKey> {
  const { publicKey, privateKey } = await generateKeyPair('ES512', { extractable: true });
  const publicJwk = publicMembers((await exportJWK(publicKey)) as Record<string, unknown>);
  return { alg: 'ES512', privateKey, publicJwk, thumbprint: await calculateJwkThumbprint(publicJwk, 'sha256') };
}

export interface SignOptions {
  url: string;
  /** Omitted from the header when null. */
  nonce: string | null;
  /** Account URL; sets `kid`. */
  kid?: string;
  /** Put the key's public JWK (or the given object) in `jwk`. */
  jwk?: true | Record<string, unknown>;
  /** '' means POST-as-GET; anything else is JSON-encoded. */
  payload: unknown;
  /** Payload bytes as is (overrides `payload`), e.g. to send something that is not JSON. */
  rawPayload?: string;
  /** Extra or overriding protected-header members. */
  header?: Record<string, unknown>;
  /** Header `alg` if not the key's own (e.g. to claim ES384 over a P-256 key). */
  alg?: string;
}

function buildHeader(key: TestKey, options: SignOptions): Record<string, unknown> {
  const header: Record<string, unknown> = { alg: options.alg ?? key.alg };
  if (options.jwk !== undefined) header.jwk = options.jwk === true ? key.publicJwk : options.jwk;
  if (options.kid !== undefined) header.kid = options.kid;
  if (options.nonce !== null) header.nonce = options.nonce;
  header.url = options.url;
  return { ...header, ...options.header };
}

function payloadBytes(options: SignOptions): Uint8Array {
  if (options.rawPayload !== undefined) return new TextEncoder().encode(options.rawPayload);
  return options.payload === '' ? new Uint8Array() : new TextEncoder().encode(JSON.stringify(options.payload));
}

/** Signs with node:crypto directly: for algorithm/key combinations jose refuses to produce. */
function rawSign(pk: KeyObject, alg: string, input: string): string {
  const hash = alg.endsWith('384') ? 'sha384' : alg.endsWith('512') ? 'sha512' : 'sha256';
  if (alg === 'EdDSA') return b64u(nodeSign(null, Buffer.from(input), pk));
  if (alg.startsWith('ES')) return b64u(nodeSign(hash, Buffer.from(input), { key: pk, dsaEncoding: 'ieee-p1363' }));
  if (alg.startsWith('PS')) return b64u(nodeSign(hash, Buffer.from(input), { key: pk, padding: 6 /* RSA_PKCS1_PSS_PADDING */, saltLength: 32 }));
  return b64u(nodeSign(hash, Buffer.from(input), pk));
}

/** A flattened JWS (RFC 7515 §7.2.2) as an ACME client sends it. */
export async function signJws(key: TestKey, options: SignOptions): Promise<FlattenedJws> {
  const header = buildHeader(key, options);
  const payload = payloadBytes(options);
  const alg = String(header.alg);
  if (key.privateKey instanceof KeyObject || alg !== key.alg) {
    // An undersized RSA key, or a header alg differing from the key's: jose refuses both, so sign by hand.
    const nodeKey = key.privateKey instanceof KeyObject ? key.privateKey : KeyObject.from(key.privateKey);
    const protectedB64 = b64u(JSON.stringify(header));
    const payloadB64 = b64u(payload);
    return { protected: protectedB64, payload: payloadB64, signature: rawSign(nodeKey, alg, `${protectedB64}.${payloadB64}`) };
  }
  const jws = await new FlattenedSign(payload).setProtectedHeader(header as { alg: string }).sign(key.privateKey as CryptoKey);
  return { protected: jws.protected!, payload: jws.payload, signature: jws.signature };
}

/** RFC 8555 §6.2 forbids "none": a JWS with that alg and an empty signature. */
export function algNoneJws(options: Omit<SignOptions, 'alg'> & { jwk?: Record<string, unknown> }): FlattenedJws {
  const header: Record<string, unknown> = { alg: 'none', url: options.url, ...options.header };
  if (options.nonce !== null) header.nonce = options.nonce;
  if (options.kid !== undefined) header.kid = options.kid;
  if (options.jwk !== undefined && options.jwk !== true) header.jwk = options.jwk;
  return { protected: b64u(JSON.stringify(header)), payload: b64u(payloadBytes(options)), signature: '' };
}

/** A MAC-signed JWS (HS256), which §6.2 forbids for requests (it is only for the EAB inner JWS, §7.3.4). */
export async function hmacJws(secret: Uint8Array, options: Omit<SignOptions, 'jwk'>, alg = 'HS256'): Promise<FlattenedJws> {
  const header: Record<string, unknown> = { alg, url: options.url, ...options.header };
  if (options.nonce !== null) header.nonce = options.nonce;
  if (options.kid !== undefined) header.kid = options.kid;
  const jws = await new FlattenedSign(payloadBytes(options as SignOptions)).setProtectedHeader(header as { alg: string }).sign(secret);
  return { protected: jws.protected!, payload: jws.payload, signature: jws.signature };
}

/** Flips bits in the signature so it no longer verifies (but stays well-formed base64url of the right size). */
export function tamperSignature(jws: FlattenedJws): FlattenedJws {
  const bytes = Buffer.from(jws.signature, 'base64url');
  bytes[0] = bytes[0]! ^ 0x01;
  return { ...jws, signature: bytes.toString('base64url') };
}

/** Replaces the payload after signing (signature then covers a different payload). */
export function swapPayload(jws: FlattenedJws, payload: unknown): FlattenedJws {
  return { ...jws, payload: b64u(JSON.stringify(payload)) };
}

/**
 * The External Account Binding of RFC 8555 §7.3.4: a JWS MACed with the EAB key (HS256 by default), protected
 * header {alg, kid: <EAB key id>, url: <newAccount URL>}, payload the account's public JWK.
 */
export async function eabJws(options: { kid: string; hmacKey: Uint8Array; url: string; accountJwk: Record<string, string>; alg?: string }): Promise<FlattenedJws> {
  const jws = await new FlattenedSign(new TextEncoder().encode(JSON.stringify(options.accountJwk)))
    .setProtectedHeader({ alg: options.alg ?? 'HS256', kid: options.kid, url: options.url })
    .sign(options.hmacKey);
  return { protected: jws.protected!, payload: jws.payload, signature: jws.signature };
}

/** RFC 8555 §7.3.5 inner JWS: signed by the new key, `jwk` header, same url as the outer, no nonce. */
export async function keyChangeInner(newKey: TestKey, options: { url: string; accountUrl: string; oldKey: Record<string, unknown>; header?: Record<string, unknown> }): Promise<FlattenedJws> {
  return signJws(newKey, {
    url: options.url,
    nonce: null,
    jwk: true,
    payload: { account: options.accountUrl, oldKey: options.oldKey },
    ...(options.header ? { header: options.header } : {}),
  });
}

/** SHA-256 of a string, hex; handy for stable fake ids in tests. */
export function sha256Hex(value: string): string {
  return createHash('sha256').update(value).digest('hex');
}

/**
 * A minimal ACME client over app.inject(): fetches nonces and posts JWS bodies with the right media type.
 * Paths are relative to the base (e.g. "/acme/new-order"); URLs signed are base + path.
 */
export class InjectClient {
  private nonce: string | undefined;

  constructor(
    readonly app: FastifyInstance,
    readonly base: string,
  ) {}

  url(path: string): string {
    return path.startsWith('http') ? path : `${this.base}${path}`;
  }

  async newNonce(): Promise<string> {
    const response = await this.app.inject({ method: 'HEAD', url: '/acme/new-nonce' });
    const nonce = response.headers['replay-nonce'];
    if (typeof nonce !== 'string') throw new Error(`no Replay-Nonce from new-nonce (status ${response.statusCode})`);
    return nonce;
  }

  /** Drops the remembered nonce (e.g. after a fake clock jumped past its lifetime): the next post fetches one. */
  forgetNonce(): void {
    this.nonce = undefined;
  }

  /** The nonce from the last response, or a fresh one. */
  async takeNonce(): Promise<string> {
    const nonce = this.nonce ?? (await this.newNonce());
    this.nonce = undefined;
    return nonce;
  }

  /** POSTs a body as application/jose+json; remembers the Replay-Nonce of the response. */
  async postBody(path: string, body: unknown, contentType = 'application/jose+json'): Promise<LightMyRequestResponse> {
    const response = await this.app.inject({
      method: 'POST',
      url: path.startsWith('http') ? new URL(path).pathname + new URL(path).search : path,
      headers: { 'content-type': contentType },
      payload: typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body),
    });
    const nonce = response.headers['replay-nonce'];
    if (typeof nonce === 'string') this.nonce = nonce;
    return response;
  }

  /** Signs `payload` for `path` with `key` (kid if given, else jwk) and POSTs it. */
  async post(path: string, key: TestKey, options: { kid?: string; payload: unknown; header?: Record<string, unknown> }): Promise<LightMyRequestResponse> {
    const jws = await signJws(key, {
      url: this.url(path),
      nonce: await this.takeNonce(),
      ...(options.kid !== undefined ? { kid: options.kid } : { jwk: true as const }),
      payload: options.payload,
      ...(options.header ? { header: options.header } : {}),
    });
    return this.postBody(path, jws);
  }
}
