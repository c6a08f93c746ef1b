import { generateKeyPairSync, webcrypto } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { toPem } from '../../src/core/pem.js';
import type { ValidationOutcome, Validator } from '../../src/va/validator.js';
import { InjectClient, makeAccountKey, signJws, type FlattenedJws, type SignOptions } from '../helpers/acme-jws.js';
import { makeCsr, openssl, requireOpenssl, writeTemp } from '../helpers/openssl.js';
import { composeForTest } from '../helpers/runtime.js';

/**
 * Fuzzing the wire (fixed seeds, so a failure replays): JWS requests (mutated header members and encodings,
 * duplicate members, bytes flipped after signing), CSRs at finalize (truncated, bit-flipped, random, huge),
 * OCSP requests (GET and POST) and URL paths, through the real stack with app.inject(). Every case must be
 * refused the way its protocol says: an RFC 8555 problem document (4xx) on the ACME listener, an OCSP
 * response (malformedRequest for what is not a request) on the public one, never a 5xx, and nothing stored:
 * the row count of every table is the same afterwards (DESIGN.md rule 3). The one exception is the spent-
 * nonce set: an authentic request refused for what it asks still spends its nonce (RFC 8555 §6.5), so that
 * table may grow by at most one row per case sent with a fresh nonce.
 *
 * Replay a failure: the message names the seed and case number; run with FUZZ_ONLY=<group>:<case>.
 */
requireOpenssl();

const SEEDS = { jws: 0x6a77_7301, csr: 0x6373_7201, ocsp: 0x6f63_7301, paths: 0x7061_7401 } as const;
const COUNTS = { jws: 1500, csr: 400, ocsp: 600, paths: 800 } as const;
const only = process.env.FUZZ_ONLY?.split(':');

/** mulberry32: small, fast, and the same sequence on every machine for a seed. */
class Rng {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0;
  }
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let z = this.state;
    z = Math.imul(z ^ (z >>> 15), z | 1);
    z ^= z + Math.imul(z ^ (z >>> 7), z | 61);
    return ((z ^ (z >>> 14)) >>> 0) / 4294967296;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }
  bytes(n: number): Buffer {
    const out = Buffer.alloc(n);
    for (let i = 0; i < n; i++) out[i] = this.int(256);
    return out;
  }
}

const B64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

// ---------- the system under test ----------

const validator: Validator & { outcome: ValidationOutcome } = { outcome: { valid: true }, validate: async () => validator.outcome };
const { chancery } = await composeForTest({ validator });
t.teardown(() => chancery.close());
const BASE = chancery.acmeUrl;
const apps = await chancery.apps();
const acme = apps.acme;
const publicApp = apps.public;
const client = new InjectClient(acme, BASE);

const key = await makeAccountKey('ES256');
const created = await client.post('/acme/new-account', key, { payload: { termsOfServiceAgreed: true } });
if (created.statusCode !== 201) throw new Error(`newAccount: ${created.body}`);
const kid = String(created.headers.location);
const ORDER_NAME = 'fuzz.example.internal';
const orderResponse = await client.post('/acme/new-order', key, { kid, payload: { identifiers: [{ type: 'dns', value: ORDER_NAME }] } });
const orderUrl = String(orderResponse.headers.location);
const order = JSON.parse(orderResponse.body) as { authorizations: string[]; finalize: string };
for (const authzUrl of order.authorizations) {
  const authz = JSON.parse((await client.post(authzUrl, key, { kid, payload: '' })).body) as { challenges: { type: string; url: string }[] };
  await client.post(authz.challenges.find((c) => c.type === 'http-01')!.url, key, { kid, payload: {} });
}
await chancery.services.scheduler.runOnce();
const orderStatus = async (): Promise<string> => (JSON.parse((await client.post(orderUrl, key, { kid, payload: '' })).body) as { status: string }).status;
if ((await orderStatus()) !== 'ready') throw new Error('the fuzz order did not become ready');
const goodCsr = (await makeCsr({ keyType: 'ec-p256', sans: [`DNS:${ORDER_NAME}`] })).der;
const otherCsr = (await makeCsr({ keyType: 'ec-p256', sans: ['DNS:other.example.internal'] })).der;

// A certificate to ask OCSP about, and openssl's request for it.
const leafKey = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'der' });
const leaf = await chancery.services.issuance.issueForKey(leafKey, [{ type: 'dns', value: 'ocsp-fuzz.example.internal' }]);
const leafFile = await writeTemp('leaf.pem', toPem(leaf.der));
const issuerFile = await writeTemp('issuer.pem', toPem(chancery.hierarchy.intermediate.der));
const requestFile = join(leafFile, '..', 'request.der');
const made = await openssl(['ocsp', '-sha256', '-issuer', issuerFile, '-cert', leafFile, '-no_nonce', '-reqout', requestFile]);
if (made.code !== 0) throw new Error(`openssl ocsp: ${made.stderr}`);
const goodOcspRequest = await readFile(requestFile);

async function tableCounts(): Promise<Record<string, number>> {
  const { rows } = await chancery.db.query<{ name: string }>("SELECT table_name AS name FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY 1");
  const counts: Record<string, number> = {};
  for (const { name } of rows) counts[name] = (await chancery.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM "${name}"`)).rows[0]!.n;
  return counts;
}
const before = await tableCounts();
let freshNonces = 0;
const started = performance.now();

// ---------- checking answers ----------

interface Answer {
  statusCode: number;
  headers: Record<string, unknown>;
  body: string;
  rawPayload: Buffer;
}

/** An RFC 8555 §6.7 problem document with a 4xx status, or why it is not one. */
function problemFault(response: Answer): string | undefined {
  if (response.statusCode >= 500) return `status ${response.statusCode}`;
  if (response.statusCode < 400) return `accepted with ${response.statusCode}`;
  if (response.headers['content-type'] !== 'application/problem+json') return `content-type ${String(response.headers['content-type'])}`;
  try {
    const body = JSON.parse(response.body) as { type?: unknown; status?: unknown };
    if (typeof body.type !== 'string' || !body.type.startsWith('urn:ietf:params:acme:error:')) return `type ${String(body.type)}`;
    if (body.status !== response.statusCode) return `body status ${String(body.status)}`;
  } catch {
    return 'body is not JSON';
  }
  return undefined;
}

/** OCSPResponseStatus (RFC 6960 §4.2.1) of a DER OCSPResponse, or undefined when it is not one. */
function ocspStatus(der: Buffer): number | undefined {
  if (der[0] !== 0x30 || der.length < 5) return undefined;
  let offset = 2;
  const first = der[1]!;
  if (first & 0x80) offset += first & 0x7f;
  if (der[offset] !== 0x0a || der[offset + 1] !== 0x01) return undefined;
  return der[offset + 2];
}
const OCSP = { successful: 0, malformedRequest: 1, internalError: 2, tryLater: 3, unauthorized: 6 } as const;

interface Failure {
  group: string;
  index: number;
  what: string;
  fault: string;
}
const failures: Failure[] = [];
const tally: Record<string, Record<string, number>> = {};
function record(group: string, index: number, what: string, fault: string | undefined, outcome: string): void {
  const counts = (tally[group] ??= {});
  counts[outcome] = (counts[outcome] ?? 0) + 1;
  if (fault !== undefined) failures.push({ group, index, what, fault });
}
const selected = (group: string, index: number): boolean => only === undefined || (only[0] === group && (only[1] === undefined || Number(only[1]) === index));

// ---------- JWS ----------

const b64u = (data: string | Uint8Array): string => Buffer.from(data).toString('base64url');

/** The last character of `text` changed so that it decodes to the same bytes: only the unused low bits differ. */
function trailingBitsVariant(text: string, rng: Rng): string | undefined {
  const rest = text.length % 4;
  if (rest === 0) return undefined;
  const unused = rest === 2 ? 0x0f : 0x03;
  const value = B64URL.indexOf(text.at(-1)!);
  const other = (value & ~unused) | (1 + rng.int(unused));
  return text.slice(0, -1) + B64URL[other]!;
}

/** A flattened JWS serialized by hand, so members can repeat or change type. */
function serialize(members: [string, unknown][]): string {
  return `{${members.map(([name, value]) => `${JSON.stringify(name)}:${JSON.stringify(value)}`).join(',')}}`;
}

/** Signs a protected header given as JSON text (so it can hold duplicate members) over `payload`. */
async function signRawHeader(headerJson: string, payload: string): Promise<FlattenedJws> {
  // signJws serializes the header itself; a header with a repeated member has to be signed by hand.
  const protectedB64 = b64u(headerJson);
  const signature = await webcrypto.subtle.sign({ name: 'ECDSA', hash: 'SHA-256' }, key.privateKey as webcrypto.CryptoKey, Buffer.from(`${protectedB64}.${payload}`));
  return { protected: protectedB64, payload, signature: b64u(new Uint8Array(signature)) };
}

interface JwsCase {
  what: string;
  path: string;
  body: string | Buffer;
  contentType?: string;
}

const NEW_ORDER = '/acme/new-order';
const orderPath = new URL(orderUrl).pathname;
const validOrderPayload = { identifiers: [{ type: 'dns', value: 'fuzz-new.example.internal' }] };

async function jwsCase(rng: Rng): Promise<JwsCase> {
  const nonce = await client.newNonce();
  freshNonces++;
  // Two targets: a POST-as-GET read (order) and a JSON request that would create something (newOrder).
  const target = rng.next() < 0.5 ? { path: orderPath, payload: '' as unknown } : { path: NEW_ORDER, payload: validOrderPayload as unknown };
  const url = `${BASE}${target.path}`;
  const signed = (options: Partial<SignOptions> = {}): Promise<FlattenedJws> => signJws(key, { url, nonce, kid, payload: target.payload, ...options });
  const kind = rng.int(24);
  switch (kind) {
    case 0: {
      // One character of one part replaced by another (the classic mutation).
      const jws = await signed();
      const part = rng.pick(['protected', 'payload', 'signature'] as const);
      const text = jws[part];
      if (text.length === 0) return { what: 'empty payload replaced by one character', path: target.path, body: JSON.stringify({ ...jws, payload: 'e30' }) };
      const at = rng.int(text.length);
      let replacement = rng.pick([...B64URL]);
      if (replacement === text[at]) replacement = replacement === 'A' ? 'B' : 'A';
      return { what: `${part}[${at}] ${text[at]} -> ${replacement}`, path: target.path, body: JSON.stringify({ ...jws, [part]: text.slice(0, at) + replacement + text.slice(at + 1) }) };
    }
    case 1: {
      // Non-canonical base64url: the last character's unused bits set, same bytes after decoding.
      const jws = await signed();
      const part = rng.pick(['protected', 'signature', 'payload'] as const);
      const variant = trailingBitsVariant(jws[part], rng);
      if (variant === undefined) return { what: `${part}: 4n+1 characters`, path: target.path, body: JSON.stringify({ ...jws, [part]: `${jws[part]}A` }) };
      return { what: `non-canonical ${part} (trailing bits)`, path: target.path, body: JSON.stringify({ ...jws, [part]: variant }) };
    }
    case 2: {
      const jws = await signed();
      const part = rng.pick(['protected', 'payload', 'signature'] as const);
      const how = rng.pick(['pad', 'std-alphabet', 'space', 'newline', 'truncate', 'append', 'empty', 'percent'] as const);
      const text = jws[part];
      const mutated = {
        pad: `${text}${'='.repeat(1 + rng.int(2))}`,
        'std-alphabet': text.includes('-') || text.includes('_') ? text.replace(/-/g, '+').replace(/_/g, '/') : `${text}+`,
        space: `${text.slice(0, 3)} ${text.slice(3)}`,
        newline: `${text.slice(0, 5)}\n${text.slice(5)}`,
        truncate: text.slice(0, Math.max(0, text.length - 1 - rng.int(4))),
        append: `${text}${rng.pick([...B64URL])}${rng.pick([...B64URL])}${rng.pick([...B64URL])}${rng.pick([...B64URL])}`,
        empty: '',
        percent: `${text.slice(0, 2)}%41${text.slice(2)}`,
      }[how];
      if (mutated === text) return { what: `${part}: ${how} (no-op) -> swapped`, path: target.path, body: JSON.stringify({ ...jws, protected: jws.signature, signature: jws.protected }) };
      return { what: `${part}: ${how}`, path: target.path, body: JSON.stringify({ ...jws, [part]: mutated }) };
    }
    case 3: {
      // Duplicate members in the flattened JWS: the good value last (what a last-wins parser keeps).
      const jws = await signed();
      const decoy = await signJws(key, { url: `${BASE}/acme/new-account`, nonce, kid, payload: '' });
      const part = rng.pick(['protected', 'payload', 'signature'] as const);
      const members: [string, unknown][] = [
        [part, decoy[part]],
        ['protected', jws.protected],
        ['payload', jws.payload],
        ['signature', jws.signature],
      ];
      return { what: `duplicate "${part}" in the JWS object`, path: target.path, body: serialize(members) };
    }
    case 4: {
      // Duplicate members in the protected header, signed: again the good value last.
      const member = rng.pick(['alg', 'nonce', 'url', 'kid'] as const);
      const good: Record<string, string> = { alg: 'ES256', kid, nonce, url };
      const decoy: Record<string, string> = { alg: 'HS256', kid: `${BASE}/acme/acct/nobody`, nonce: 'AAAA', url: `${BASE}/acme/new-account` };
      const names = ['alg', 'kid', 'nonce', 'url'];
      const parts = names.map((name) => (name === member ? `"${name}":${JSON.stringify(decoy[name])},"${name}":${JSON.stringify(good[name])}` : `"${name}":${JSON.stringify(good[name])}`));
      const payload = target.payload === '' ? '' : b64u(JSON.stringify(target.payload));
      return { what: `duplicate "${member}" in the protected header`, path: target.path, body: JSON.stringify(await signRawHeader(`{${parts.join(',')}}`, payload)) };
    }
    case 5: {
      // Duplicate members in the payload (newOrder), signed.
      const payloadJson = `{"identifiers":[{"type":"dns","value":"a.example.internal"}],"identifiers":${JSON.stringify(validOrderPayload.identifiers)}}`;
      const jws = await signJws(key, { url: `${BASE}${NEW_ORDER}`, nonce, kid, payload: null, rawPayload: payloadJson });
      return { what: 'duplicate "identifiers" in the payload', path: NEW_ORDER, body: JSON.stringify(jws) };
    }
    case 6: {
      const alg = rng.pick(['none', 'HS256', 'RS256', 'ES384', 'ES512', 'EdDSA', '', 'es256', 'ES256 ', null, 1, {}, []] as const);
      if (typeof alg === 'string' && ['RS256', 'ES384', 'ES512', 'EdDSA'].includes(alg)) {
        return { what: `alg ${alg} over a P-256 key`, path: target.path, body: JSON.stringify(await signed({ alg })) };
      }
      return { what: `alg ${JSON.stringify(alg)}`, path: target.path, body: JSON.stringify(await signed({ header: { alg } })) };
    }
    case 7: {
      const value = rng.pick([undefined, '', 'AAAA', 1, null, {}, 'a'.repeat(200), 'not base64!', b64u(rng.bytes(38))] as const);
      const header = value === undefined ? {} : { nonce: value };
      return { what: `nonce ${JSON.stringify(value)?.slice(0, 30)}`, path: target.path, body: JSON.stringify(await signJws(key, { url, nonce: value === undefined ? null : nonce, kid, payload: target.payload, header })) };
    }
    case 8: {
      // A non-canonical spelling of a fresh nonce: same bytes, another string.
      const variant = trailingBitsVariant(nonce, rng) ?? `${nonce}A`;
      return { what: 'nonce with trailing bits set', path: target.path, body: JSON.stringify(await signJws(key, { url, nonce: variant, kid, payload: target.payload })) };
    }
    case 9: {
      const value = rng.pick([`${BASE}/acme/new-account`, `${url}/`, url.replace('https:', 'http:'), '', 1, null, `${url}?x=1`, url.toUpperCase()] as const);
      return { what: `url ${JSON.stringify(value)}`, path: target.path, body: JSON.stringify(await signed({ header: { url: value } })) };
    }
    case 10: {
      const value = rng.pick([`${BASE}/acme/acct/nobody`, `${kid}x`, 1, null, '', kid.replace('https:', 'http:'), `${kid}/`] as const);
      return { what: `kid ${JSON.stringify(value)}`, path: target.path, body: JSON.stringify(await signed({ header: { kid: value } })) };
    }
    case 11:
      return { what: 'jwk and kid', path: target.path, body: JSON.stringify(await signed({ jwk: true })) };
    case 12:
      return { what: 'neither jwk nor kid', path: target.path, body: JSON.stringify(await signJws(key, { url, nonce, payload: target.payload })) };
    case 13: {
      // Signed by hand: jose will not sign a crit it does not know.
      const extra = rng.pick([{ crit: ['b64'], b64: false }, { b64: false }, { crit: ['exp'], exp: 1 }, { jwk: { kty: 'EC', crv: 'P-256', x: 'AA', y: 'AA', d: 'AA' } }] as const);
      const header = JSON.stringify({ alg: 'ES256', kid, nonce, url, ...extra });
      const payload = target.payload === '' ? '' : b64u(JSON.stringify(target.payload));
      return { what: `header ${JSON.stringify(extra).slice(0, 40)}`, path: target.path, body: JSON.stringify(await signRawHeader(header, payload)) };
    }
    case 14: {
      // Payloads the resource does not take, signed.
      if (target.path === orderPath) {
        const rawPayload = rng.pick(['{}', 'null', '""', '[]', '{"status":"valid"}']);
        return { what: `POST-as-GET with payload ${rawPayload}`, path: target.path, body: JSON.stringify(await signed({ payload: null, rawPayload })) };
      }
      const payload = rng.pick([
        [],
        'x',
        {},
        { identifiers: [] },
        { identifiers: {} },
        { identifiers: [{ type: 'dns' }] },
        { identifiers: [{ type: 'email', value: 'a@b.example' }] },
        { identifiers: [{ type: 'dns', value: '' }] },
        { identifiers: [{ type: 'dns', value: 'x'.repeat(300) }] },
        { identifiers: [{ type: 'dns', value: 'a..b.example' }] },
        { identifiers: [{ type: 'dns', value: '-bad-.example' }] },
        { identifiers: [{ type: 'ip', value: '999.1.1.1' }] },
        { identifiers: [{ type: 'dns', value: 'ok.example.internal' }], notBefore: 'yesterday' },
        { identifiers: [{ type: 'dns', value: 'ok.example.internal' }], notBefore: '2030-01-02T00:00:00Z', notAfter: '2030-01-01T00:00:00Z' },
        { identifiers: [{ type: 'dns', value: 'ok.example.internal' }], replaces: 'not-a-cert-id' },
        { identifiers: [{ type: 'dns', value: 'ok.example.internal' }], notAfter: '2030-02-30T00:00:00Z' },
      ]);
      return { what: `newOrder payload ${JSON.stringify(payload).slice(0, 60)}`, path: NEW_ORDER, body: JSON.stringify(await signJws(key, { url: `${BASE}${NEW_ORDER}`, nonce, kid, payload })) };
    }
    case 15: {
      const rawPayload = rng.pick(['{', '{"identifiers":', '\u00ff', '\ufeff{}', 'true', '1e999', '{"a":"\\ud800"}']);
      const asBytes = rng.next() < 0.3;
      const jws = asBytes
        ? // Bytes that are not UTF-8 at all.
          await signRawHeader(JSON.stringify({ alg: 'ES256', kid, nonce, url: `${BASE}${NEW_ORDER}` }), b64u(Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d])))
        : await signJws(key, { url: `${BASE}${NEW_ORDER}`, nonce, kid, payload: null, rawPayload });
      return { what: asBytes ? 'payload not UTF-8' : `payload ${JSON.stringify(rawPayload)}`, path: NEW_ORDER, body: JSON.stringify(jws) };
    }
    case 16: {
      // The flattened JWS's own shape.
      const jws = await signed();
      const shape = rng.pick(['header', 'signatures', 'extra', 'missing', 'number', 'object', 'array', 'null'] as const);
      const member = rng.pick(['protected', 'payload', 'signature'] as const);
      const body = {
        header: { ...jws, header: { alg: 'ES256' } },
        signatures: { ...jws, signatures: [{ protected: jws.protected, signature: jws.signature }] },
        extra: { ...jws, extra: 1 },
        missing: Object.fromEntries(Object.entries(jws).filter(([name]) => name !== member)),
        number: { ...jws, [member]: 12345 },
        object: { ...jws, [member]: {} },
        array: { ...jws, [member]: [jws[member]] },
        null: { ...jws, [member]: null },
      }[shape];
      return { what: `JWS object: ${shape} (${member})`, path: target.path, body: JSON.stringify(body) };
    }
    case 17: {
      // Bytes flipped in the serialized request after signing.
      const text = Buffer.from(JSON.stringify(await signed()));
      const flips = 1 + rng.int(3);
      for (let i = 0; i < flips; i++) {
        const at = rng.int(text.length);
        text[at] = text[at]! ^ (1 << rng.int(8));
      }
      return { what: `${flips} bit(s) flipped in the body`, path: target.path, body: text };
    }
    case 18: {
      const body = rng.pick([
        '',
        'null',
        '[]',
        '"jws"',
        '{}',
        '{"protected":"","payload":"","signature":""}',
        `${'['.repeat(5000)}${']'.repeat(5000)}`,
        `{"a":${'{"a":'.repeat(2000)}1${'}'.repeat(2000)}}`,
        rng.bytes(200).toString('latin1'),
      ]);
      return { what: `body ${JSON.stringify(body.slice(0, 30))}`, path: target.path, body };
    }
    case 19:
      return { what: 'body over the size limit', path: target.path, body: JSON.stringify({ protected: 'A'.repeat(70_000), payload: '', signature: '' }) };
    case 20: {
      const contentType = rng.pick(['application/json', 'text/plain', '', 'application/jose', 'multipart/form-data; boundary=x', 'application/x-www-form-urlencoded']);
      return { what: `content-type ${JSON.stringify(contentType)}`, path: target.path, body: JSON.stringify(await signed()), contentType };
    }
    case 21: {
      // A whole part of another valid request swapped in (signature over other bytes).
      const jws = await signed();
      const other = await signJws(key, { url: `${BASE}/acme/new-account`, nonce, kid, payload: '' });
      const part = rng.pick(['protected', 'payload', 'signature'] as const);
      if (jws[part] === other[part]) return { what: 'signature from another request', path: target.path, body: JSON.stringify({ ...jws, signature: other.signature }) };
      return { what: `${part} from another request`, path: target.path, body: JSON.stringify({ ...jws, [part]: other[part] }) };
    }
    case 22: {
      // A valid request replayed: its nonce is spent by the first copy.
      const jws = await signed({ payload: '', url: `${BASE}${orderPath}` });
      await client.postBody(orderPath, jws);
      return { what: 'replayed request', path: orderPath, body: JSON.stringify(jws) };
    }
    default: {
      // The signed request sent to another resource than its url names (RFC 8555 §6.4).
      const jws = await signJws(key, { url: `${BASE}${orderPath}`, nonce, kid, payload: '' });
      const path = rng.pick([NEW_ORDER, '/acme/new-account', `${orderPath}/x`, '/acme/revoke-cert', '/acme/key-change']);
      return { what: `request for ${orderPath} sent to ${path}`, path, body: JSON.stringify(jws) };
    }
  }
}

await t.test(`JWS: ${COUNTS.jws} mutated requests, each a problem document`, async () => {
  const rng = new Rng(SEEDS.jws);
  for (let index = 0; index < COUNTS.jws; index++) {
    const c = await jwsCase(rng);
    if (!selected('jws', index)) continue;
    const response = await acme.inject({
      method: 'POST',
      url: c.path,
      headers: c.contentType === undefined ? { 'content-type': 'application/jose+json' } : c.contentType === '' ? {} : { 'content-type': c.contentType },
      payload: c.body,
    });
    const fault = problemFault(response);
    record('jws', index, c.what, fault, fault === undefined ? `${response.statusCode} ${(JSON.parse(response.body) as { type: string }).type.split(':').at(-1)}` : 'FAULT');
  }
});

// ---------- CSRs at finalize ----------

const finalizePath = new URL(order.finalize).pathname;

function csrCase(rng: Rng): { what: string; csr: string } {
  const kind = rng.int(8);
  const der = Buffer.from(goodCsr);
  switch (kind) {
    case 0: {
      const length = rng.int(der.length);
      return { what: `truncated to ${length} bytes`, csr: der.subarray(0, length).toString('base64url') };
    }
    case 1:
    case 2: {
      const flips = 1 + rng.int(3);
      const at: number[] = [];
      for (let i = 0; i < flips; i++) {
        const position = rng.int(der.length);
        at.push(position);
        der[position] = der[position]! ^ (1 << rng.int(8));
      }
      return { what: `bits flipped at ${at.join(',')}`, csr: der.toString('base64url') };
    }
    case 3:
      return { what: 'random bytes', csr: rng.bytes(1 + rng.int(600)).toString('base64url') };
    case 4:
      return { what: 'trailing bytes after the CSR', csr: Buffer.concat([der, rng.bytes(1 + rng.int(40))]).toString('base64url') };
    case 5:
      return { what: 'huge (over the body limit)', csr: rng.bytes(60_000).toString('base64url') };
    case 6:
      return { what: 'huge junk inside the body limit', csr: rng.bytes(30_000).toString('base64url') };
    default: {
      const how = rng.pick(['other names', 'PEM', 'standard base64', 'empty', 'non-canonical'] as const);
      const csr = {
        'other names': otherCsr.toString('base64url'),
        PEM: `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64')}\n-----END CERTIFICATE REQUEST-----`,
        'standard base64': der.toString('base64'),
        empty: '',
        'non-canonical': trailingBitsVariant(der.toString('base64url'), rng) ?? `${der.toString('base64url')}A`,
      }[how];
      return { what: how, csr };
    }
  }
}

await t.test(`CSRs: ${COUNTS.csr} broken CSRs at finalize, each a problem document, the order still ready`, async (t) => {
  const rng = new Rng(SEEDS.csr);
  for (let index = 0; index < COUNTS.csr; index++) {
    const c = csrCase(rng);
    if (!selected('csr', index)) continue;
    const nonce = await client.newNonce();
    freshNonces++;
    const jws = await signJws(key, { url: order.finalize, nonce, kid, payload: { csr: c.csr } });
    const response = await acme.inject({ method: 'POST', url: finalizePath, headers: { 'content-type': 'application/jose+json' }, payload: JSON.stringify(jws) });
    const fault = problemFault(response);
    record('csr', index, c.what, fault, fault === undefined ? `${response.statusCode} ${(JSON.parse(response.body) as { type: string }).type.split(':').at(-1)}` : 'FAULT');
  }
  t.equal(await orderStatus(), 'ready', 'the order is still ready: no broken CSR claimed it');
});

// ---------- OCSP ----------

function ocspCase(rng: Rng): { what: string; method: 'GET' | 'POST'; url: string; body?: Buffer; mustBeMalformed: boolean } {
  const method = rng.next() < 0.5 ? 'GET' : 'POST';
  const kind = rng.int(7);
  let der: Buffer;
  let what: string;
  let mustBeMalformed = true;
  switch (kind) {
    case 0:
      der = goodOcspRequest.subarray(0, rng.int(goodOcspRequest.length));
      what = `truncated to ${der.length}`;
      break;
    case 1:
    case 2: {
      der = Buffer.from(goodOcspRequest);
      const flips = 1 + rng.int(3);
      for (let i = 0; i < flips; i++) {
        const at = rng.int(der.length);
        der[at] = der[at]! ^ (1 << rng.int(8));
      }
      what = `${flips} bit(s) flipped`;
      // A flip inside the serial or a hash still makes a well-formed request (for another certificate).
      mustBeMalformed = false;
      break;
    }
    case 3:
      der = rng.bytes(rng.int(300));
      what = `random ${der.length} bytes`;
      // One random byte string in a few billion is a DER OCSPRequest; the seed fixes which were drawn.
      break;
    case 4:
      der = Buffer.concat([goodOcspRequest, rng.bytes(1 + rng.int(20))]);
      what = 'trailing bytes';
      break;
    case 5:
      der = rng.bytes(method === 'POST' ? 70_000 : 6_000);
      what = 'huge';
      break;
    default: {
      // Encodings GET must refuse (RFC 6960 Appendix A.1: url-encoded base64).
      const text = rng.pick(['%zz', '%ff%fe', 'AAAA====', '!!!!', '%00', 'a b', '....', '%2e%2e%2f']);
      return { what: `GET path ${JSON.stringify(text)}`, method: 'GET', url: `/ocsp/${text}`, mustBeMalformed: true };
    }
  }
  if (method === 'POST') return { what: `POST ${what}`, method, url: '/ocsp', body: der, mustBeMalformed };
  return { what: `GET ${what}`, method, url: `/ocsp/${encodeURIComponent(der.toString('base64'))}`, mustBeMalformed };
}

await t.test(`OCSP: ${COUNTS.ocsp} broken requests (GET and POST), each an OCSP response`, async () => {
  const rng = new Rng(SEEDS.ocsp);
  for (let index = 0; index < COUNTS.ocsp; index++) {
    const c = ocspCase(rng);
    if (!selected('ocsp', index)) continue;
    const response = await publicApp.inject({
      method: c.method,
      url: c.url,
      ...(c.body ? { payload: c.body, headers: { 'content-type': 'application/ocsp-request' } } : {}),
    });
    const status = ocspStatus(response.rawPayload);
    let fault: string | undefined;
    if (response.statusCode !== 200) fault = `HTTP ${response.statusCode}`;
    else if (response.headers['content-type'] !== 'application/ocsp-response') fault = `content-type ${String(response.headers['content-type'])}`;
    else if (status === undefined) fault = 'not an OCSPResponse';
    else if (c.mustBeMalformed && status !== OCSP.malformedRequest) fault = `status ${status}, not malformedRequest`;
    else if (status !== OCSP.malformedRequest && status !== OCSP.unauthorized && status !== OCSP.successful) fault = `status ${status}`;
    record('ocsp', index, c.what, fault, fault === undefined ? `ocsp-status-${status}` : 'FAULT');
  }
});

// ---------- URL paths ----------

const SEGMENTS = [
  'acct', 'order', 'authz', 'chall', 'cert', 'new-order', 'new-account', 'new-nonce', 'finalize', 'renewal-info', 'revoke-cert', 'key-change',
  'directory', '..', '.', '', '%00', '%ff', '%c0%af', '%2e%2e', '%2F', '%25', '%', '%e9', 'caf%C3%A9', '~', ';x=1', '*', 'A'.repeat(300),
  'AAAAAAAAAAAAAAAAAAAAAA', 'x.y', '\u00e9', '%0d%0aX-Injected:%201', '<script>', "'", '"',
] as const;

function pathCase(rng: Rng): { app: 'acme' | 'public'; method: string; url: string } {
  const app = rng.next() < 0.7 ? 'acme' : 'public';
  const root = app === 'acme' ? rng.pick(['/acme', '/acme', '/acme', '', '//acme', '/ACME', '/acme%2f']) : rng.pick(['/ocsp', '/crl', '/ca', '', '/livez', '/readyz']);
  const segments = Array.from({ length: 1 + rng.int(4) }, () => rng.pick(SEGMENTS));
  const query = rng.next() < 0.2 ? rng.pick(['?', '?a=b', '?%ff', '?a=%', '#frag']) : '';
  const method = app === 'acme' ? rng.pick(['GET', 'POST', 'HEAD', 'PUT', 'DELETE', 'PATCH', 'OPTIONS']) : rng.pick(['GET', 'GET', 'POST', 'HEAD']);
  return { app, method, url: `${root}/${segments.join('/')}${query}` };
}

await t.test(`URL paths: ${COUNTS.paths} odd paths, never a 5xx; on ACME every error a problem document`, async () => {
  const rng = new Rng(SEEDS.paths);
  for (let index = 0; index < COUNTS.paths; index++) {
    const c = pathCase(rng);
    if (!selected('paths', index)) continue;
    const target = c.app === 'acme' ? acme : publicApp;
    const body = c.method === 'POST' || c.method === 'PUT' || c.method === 'PATCH' ? '{"protected":"e30","payload":"","signature":""}' : undefined;
    const response = await target.inject({
      method: c.method as 'GET',
      url: c.url,
      ...(body ? { payload: body, headers: { 'content-type': c.app === 'acme' ? 'application/jose+json' : 'application/ocsp-request' } } : {}),
    });
    let fault: string | undefined;
    if (response.statusCode >= 500) fault = `status ${response.statusCode}`;
    else if (c.app === 'acme' && response.statusCode >= 400 && response.headers['content-type'] !== 'application/problem+json') {
      fault = `content-type ${String(response.headers['content-type'])}`;
    } else if (
      c.app === 'public' &&
      // As the router sees it: inject resolves dot segments as a URL parser does (a raw request keeps them).
      new URL(c.url, 'http://localhost').pathname.startsWith('/ocsp/') &&
      c.method === 'GET' &&
      response.headers['content-type'] !== 'application/ocsp-response'
    ) {
      fault = `OCSP GET answered ${String(response.headers['content-type'])}`;
    }
    record('paths', index, `${c.app} ${c.method} ${c.url.slice(0, 80)}`, fault, fault === undefined ? `${c.app} ${response.statusCode}` : 'FAULT');
  }
});

// ---------- nothing stored ----------

await t.test('no case was accepted, answered 5xx or stored anything', async (t) => {
  t.comment(`${Object.values(tally).reduce((n, counts) => n + Object.values(counts).reduce((a, b) => a + b, 0), 0)} cases in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  for (const [group, counts] of Object.entries(tally)) t.comment(`${group}: ${JSON.stringify(counts)}`);
  if (process.env.FUZZ_VERBOSE) for (const f of failures) t.comment(`${f.group}:${f.index} ${f.what}: ${f.fault}`);
  t.same(
    failures.slice(0, 25).map((f) => `${f.group}:${f.index} ${f.what}: ${f.fault}`),
    [],
    `${failures.length} cases answered wrongly (replay one with FUZZ_ONLY=<group>:<case>)`,
  );
  const after = await tableCounts();
  const spent = after.spent_nonces! - before.spent_nonces!;
  t.ok(spent >= 0 && spent <= freshNonces, `spent nonces grew by ${spent} (at most one per case sent with a fresh nonce: ${freshNonces})`);
  t.same({ ...after, spent_nonces: 0 }, { ...before, spent_nonces: 0 }, 'every other table has the same row count');
});
