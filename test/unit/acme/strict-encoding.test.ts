import { webcrypto } from 'node:crypto';
import t, { type Test } from 'tap';
import { decodeBase64url, isCanonicalBase64url } from '../../../src/acme/schemas.js';
import { duplicateMember } from '../../../src/acme/strict-json.js';
import { eabJws, keyChangeInner, makeAccountKey, signJws, type FlattenedJws, type TestKey } from '../../helpers/acme-jws.js';
import { BASE, body, harness, type Harness } from './fake-ra.js';

/**
 * Every JWS part has one spelling and every JSON object one member per name. Regression for what a fuzzer
 * found: a mutated request whose signature differed from a valid one only in the unused low bits of its
 * last base64url character was accepted (it decodes to the same bytes); likewise a nonce, a JWK coordinate
 * (a second RFC 7638 thumbprint, hence a second account, for one key), a CSR and an EAB MAC. And a member
 * named twice (RFC 7515 §5.2) was resolved last-wins instead of refused.
 */

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

/** `text` with the unused low bits of its last character set: the same bytes, spelled differently. */
function nonCanonical(text: string): string {
  const rest = text.length % 4;
  if (rest !== 2 && rest !== 3) throw new Error(`no unused bits in a ${text.length}-character value`);
  const value = ALPHABET.indexOf(text.at(-1)!);
  return text.slice(0, -1) + ALPHABET[value | 1]!;
}

t.test('isCanonicalBase64url and decodeBase64url', async (t) => {
  const cases: [string, boolean][] = [
    ['', true],
    ['AAAA', true],
    ['AA', true], // 1 byte, 4 unused bits all zero
    ['AB', false], // the same byte, an unused bit set
    ['AP', false],
    ['AQ', true], // 0x01
    ['AAA', true], // 2 bytes, 2 unused bits zero
    ['AAB', false],
    ['AAE', true],
    ['A', false], // 4n+1 encodes nothing
    ['AAAAA', false],
    [Buffer.from('any carnal pleas').toString('base64url'), true],
  ];
  for (const [value, canonical] of cases) {
    t.equal(isCanonicalBase64url(value), canonical, `${canonical ? 'ok' : 'fail'}/${JSON.stringify(value)}`);
    if (canonical) t.equal(decodeBase64url(value, 'x').toString('base64url'), value, `ok/${JSON.stringify(value)} round-trips`);
    else t.throws(() => decodeBase64url(value, 'x'), /not (canonical )?base64url/, `fail/${JSON.stringify(value)} refused`);
  }
  try {
    decodeBase64url('AB', 'csr');
    t.fail('accepted');
  } catch (error) {
    t.equal((error as { kind?: string }).kind, 'malformed', 'a malformed CaError');
  }
});

t.test('duplicateMember', async (t) => {
  const cases: [string, string, string | undefined][] = [
    ['ok/flat', '{"a":1,"b":2}', undefined],
    ['ok/same name in sibling objects', '{"a":{"x":1},"b":{"x":2}}', undefined],
    ['ok/same name at two depths', '{"x":{"x":{"x":1}}}', undefined],
    ['ok/objects in an array', '[{"a":1},{"a":2}]', undefined],
    ['ok/names inside string values', '{"a":"\\"a\\":1,\\"a\\"","b":"{\\"b\\":1}"}', undefined],
    ['ok/escaped backslash before the closing quote', '{"a":"\\\\","b":"\\\\\\\\"}', undefined],
    ['ok/not an object', '"a"', undefined],
    ['fail/flat', '{"a":1,"a":2}', 'a'],
    ['fail/nested', '{"o":{"k":1,"k":1}}', 'k'],
    ['fail/in an array', '[1,{"a":[],"a":{}}]', 'a'],
    ['fail/after a nested object closes', '{"a":{"b":1},"c":2,"a":3}', 'a'],
    ['fail/escaped spelling of the same name', '{"ab":1,"a\\u0062":2}', 'ab'],
    ['fail/whitespace around', '{ "url" : "x" , "url" : "y" }', 'url'],
  ];
  for (const [name, text, duplicate] of cases) {
    JSON.parse(text); // every case is JSON
    t.equal(duplicateMember(text), duplicate, name);
  }
});

const ORDER = '/acme/order/order1';
const url = (path: string): string => `${BASE}${path}`;

function post(h: Harness, path: string, jws: FlattenedJws | string): Promise<{ statusCode: number; body: string }> {
  return h.client.postBody(path, jws);
}

/** A protected header given as JSON text, signed with `key` (ES256): for headers a serializer would not write. */
async function signHeaderText(key: TestKey, headerText: string, payload: string): Promise<FlattenedJws> {
  const protectedB64 = Buffer.from(headerText).toString('base64url');
  const signature = await webcrypto.subtle.sign({ name: 'ECDSA', hash: 'SHA-256' }, key.privateKey as webcrypto.CryptoKey, Buffer.from(`${protectedB64}.${payload}`));
  return { protected: protectedB64, payload, signature: Buffer.from(signature).toString('base64url') };
}

function expectMalformed(t: Test, response: { statusCode: number; body: string }, detail: RegExp): void {
  t.equal(response.statusCode, 400, response.body);
  t.equal(body(response).type, 'urn:ietf:params:acme:error:malformed');
  t.match(body(response).detail, detail);
}

t.test('fail/regression: a signature that differs only in the unused bits of its last character', async (t) => {
  const h = await harness({ nonces: 'signed' });
  const { key, kid } = await h.register();
  // POST-as-GET of the account itself: the request the fuzzer's mutation came from was as valid as this.
  const path = new URL(kid).pathname;
  const jws = await signJws(key, { url: kid, nonce: await h.client.newNonce(), kid, payload: '' });
  t.equal(jws.signature.length % 4, 2, 'an ES256 signature (64 bytes) ends in a character with 4 unused bits');
  const mutated = { ...jws, signature: nonCanonical(jws.signature) };
  t.same(Buffer.from(mutated.signature, 'base64url'), Buffer.from(jws.signature, 'base64url'), 'the same signature bytes');
  expectMalformed(t, await post(h, path, mutated), /"signature" is not canonical base64url/);
  t.equal(h.spent.spent.size, 0, 'its nonce not spent');
  t.equal((await post(h, path, jws)).statusCode, 200, 'ok/the canonical request itself is accepted');
});

t.test('fail/a nonce spelled with its unused bits set', async (t) => {
  const h = await harness({ nonces: 'signed' });
  const { key, kid } = await h.register();
  const nonce = await h.client.newNonce();
  const jws = await signJws(key, { url: url(ORDER), nonce: nonCanonical(nonce), kid, payload: '' });
  expectMalformed(t, await post(h, ORDER, jws), /nonce/);
  t.equal(h.spent.spent.size, 0, 'nothing spent');
});

t.test('fail/a JWK coordinate spelled with its unused bits set (a second thumbprint for one key)', async (t) => {
  const h = await harness({ nonces: 'signed' });
  const key = await makeAccountKey('ES256');
  const created = await h.client.post('/acme/new-account', key, { payload: { termsOfServiceAgreed: true } });
  t.equal(created.statusCode, 201);
  const jwk = { ...key.publicJwk, x: nonCanonical(key.publicJwk.x!) };
  const again = await signJws(key, { url: url('/acme/new-account'), nonce: await h.client.newNonce(), jwk, payload: { termsOfServiceAgreed: true } });
  expectMalformed(t, await post(h, '/acme/new-account', again), /"jwk"\.x" is not canonical/);
  t.equal(h.ra.accounts.size, 1, 'still one account for the key');
});

t.test('fail/a CSR spelled with its unused bits set', async (t) => {
  const h = await harness({ nonces: 'signed' });
  const { key, kid } = await h.register();
  let csr = Buffer.from([0x30, 0x03, 0x02, 0x01, 0x00]).toString('base64url');
  if (csr.length % 4 === 0) csr = Buffer.from([0x30, 0x02, 0x05, 0x00]).toString('base64url');
  const jws = await signJws(key, { url: url(`${ORDER}/finalize`), nonce: await h.client.newNonce(), kid, payload: { csr: nonCanonical(csr) } });
  expectMalformed(t, await post(h, `${ORDER}/finalize`, jws), /"csr" is not canonical base64url/);
  t.same(h.ra.callsOf('finalizeOrder'), [], 'the RA never saw it');
});

t.test('fail/an EAB MAC spelled with its unused bits set', async (t) => {
  const h = await harness({ nonces: 'signed' });
  const key = await makeAccountKey('ES256');
  const eab = await eabJws({ kid: 'eab-key-1', hmacKey: new Uint8Array(32).fill(9), url: url('/acme/new-account'), accountJwk: key.publicJwk });
  t.equal(eab.signature.length % 4, 3, 'an HS256 MAC (32 bytes) ends in a character with 2 unused bits');
  const payload = { termsOfServiceAgreed: true, externalAccountBinding: { ...eab, signature: nonCanonical(eab.signature) } };
  const response = await h.client.post('/acme/new-account', key, { payload });
  expectMalformed(t, response, /"externalAccountBinding" "signature" is not canonical base64url/);
  t.same(h.ra.callsOf('newAccount'), [], 'the RA never saw it');
});

t.test('fail/members named twice', async (t) => {
  const h = await harness({ nonces: 'signed' });
  const { key, kid } = await h.register();
  const good = await signJws(key, { url: url(ORDER), nonce: await h.client.newNonce(), kid, payload: '' });
  const decoy = await signJws(key, { url: url('/acme/new-account'), nonce: await h.client.newNonce(), kid, payload: '' });
  // The valid member last, where a last-wins parser would take it from.
  const twice = `{"protected":${JSON.stringify(decoy.protected)},"protected":${JSON.stringify(good.protected)},"payload":"","signature":${JSON.stringify(good.signature)}}`;
  expectMalformed(t, await post(h, ORDER, twice), /names the member "protected" twice/);

  const nonce = await h.client.newNonce();
  const header = `{"alg":"ES256","kid":${JSON.stringify(kid)},"nonce":${JSON.stringify(nonce)},"url":${JSON.stringify(url('/acme/new-account'))},"url":${JSON.stringify(url(ORDER))}}`;
  expectMalformed(t, await post(h, ORDER, await signHeaderText(key, header, '')), /protected header names the member "url" twice/);

  const payloadText = '{"identifiers":[{"type":"dns","value":"a.example.internal"}],"identifiers":[{"type":"dns","value":"b.example.internal"}]}';
  const order = await signJws(key, { url: url('/acme/new-order'), nonce: await h.client.newNonce(), kid, payload: null, rawPayload: payloadText });
  expectMalformed(t, await post(h, '/acme/new-order', order), /payload names the member "identifiers" twice/);
  t.same(h.ra.callsOf('newOrder'), [], 'no order reached the RA');

  const newKey = await makeAccountKey('ES256');
  const inner = await keyChangeInner(newKey, { url: url('/acme/key-change'), accountUrl: kid, oldKey: key.publicJwk });
  const innerText = JSON.stringify(inner).replace('{"protected"', `{"payload":${JSON.stringify(inner.payload)},"protected"`);
  const keyChange = await signJws(key, { url: url('/acme/key-change'), nonce: await h.client.newNonce(), kid, payload: null, rawPayload: innerText });
  expectMalformed(t, await post(h, '/acme/key-change', keyChange), /names the member "payload" twice/);
  t.same(h.ra.callsOf('changeAccountKey'), [], 'no key change reached the RA');
});
