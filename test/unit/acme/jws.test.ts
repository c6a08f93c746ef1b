import t from 'tap';
import { SUPPORTED_JWS_ALGORITHMS } from '../../../src/acme/jws-verifier.js';
import {
  algNoneJws,
  hmacJws,
  makeAccountKey,
  makeP521Key,
  makeSmallRsaKey,
  signJws,
  swapPayload,
  tamperSignature,
  type TestJwsAlgorithm,
} from '../../helpers/acme-jws.js';
import { BASE, body, harness, type Harness } from './fake-ra.js';
import type { TestKey } from '../../helpers/acme-jws.js';

/**
 * JWS verification of POST requests through the whole wire layer (RFC 8555 §6.2-§6.5): every refusal is a
 * problem document of the right type, carries a fresh Replay-Nonce, and reaches no mutating RA method.
 */

await t.test('ok/every supported algorithm creates and reads an account', async (t) => {
  const h = await harness();
  for (const alg of ['ES256', 'ES384', 'RS256', 'PS256', 'EdDSA'] as TestJwsAlgorithm[]) {
    const key = await makeAccountKey(alg);
    const created = await h.client.post('/acme/new-account', key, { payload: { termsOfServiceAgreed: true } });
    t.equal(created.statusCode, 201, `${alg}: ${created.body}`);
    const kid = String(created.headers.location);
    const [args] = h.ra.callsOf('newAccount').slice(-1);
    t.same((args![0] as { publicJwk: unknown }).publicJwk, key.publicJwk, `${alg}: the RA got the public members only`);
    t.equal((args![0] as { jwkThumbprint: unknown }).jwkThumbprint, key.thumbprint, `${alg}: RFC 7638 thumbprint`);
    const read = await h.client.post(kid.slice(BASE.length), key, { kid, payload: '' });
    t.equal(read.statusCode, 200, `${alg}: POST-as-GET of the account`);
    t.equal(body(read).status, 'valid');
  }
});

interface Case {
  name: string;
  /** Builds the request; returns the path and the raw body to POST. */
  build: (h: Harness, ctx: { kid: string; nonce: string; key: Awaited<ReturnType<typeof makeAccountKey>> }) => Promise<{ path: string; body: unknown }>;
  status: number;
  type: string;
  detail: RegExp;
}

const ORDER = '/acme/order/order1';
const url = (path: string): string => `${BASE}${path}`;

const cases: Case[] = [
  {
    name: 'fail/body is not JSON',
    build: async () => ({ path: ORDER, body: 'eyJhbGciOi.not-json' }),
    status: 400,
    type: 'malformed',
    detail: /not JSON/,
  },
  {
    name: 'fail/general JWS serialization',
    build: async (_h, { kid, nonce, key }) => {
      const jws = await signJws(key, { url: url(ORDER), nonce, kid, payload: '' });
      return { path: ORDER, body: { payload: jws.payload, signatures: [{ protected: jws.protected, signature: jws.signature }] } };
    },
    status: 400,
    type: 'malformed',
    detail: /general JWS serialization/,
  },
  {
    name: 'fail/unprotected header',
    build: async (_h, { kid, nonce, key }) => ({ path: ORDER, body: { ...(await signJws(key, { url: url(ORDER), nonce, kid, payload: '' })), header: { kid } } }),
    status: 400,
    type: 'malformed',
    detail: /unprotected "header"/,
  },
  {
    name: 'fail/alg none',
    build: async (_h, { kid, nonce }) => ({ path: ORDER, body: algNoneJws({ url: url(ORDER), nonce, kid, payload: '' }) }),
    status: 400,
    type: 'badSignatureAlgorithm',
    detail: /"none" is not supported/,
  },
  {
    name: 'fail/HS256 (a MAC is not an account signature)',
    build: async (_h, { kid, nonce }) => ({ path: ORDER, body: await hmacJws(new Uint8Array(32).fill(7), { url: url(ORDER), nonce, kid, payload: '' }) }),
    status: 400,
    type: 'badSignatureAlgorithm',
    detail: /"HS256" is not supported/,
  },
  {
    name: 'fail/ES512 on P-521',
    build: async (_h, { nonce }) => ({ path: '/acme/new-account', body: await signJws(await makeP521Key(), { url: url('/acme/new-account'), nonce, jwk: true, payload: {} }) }),
    status: 400,
    type: 'badSignatureAlgorithm',
    detail: /"ES512" is not supported/,
  },
  {
    name: 'fail/both jwk and kid',
    build: async (_h, { kid, nonce, key }) => ({ path: ORDER, body: await signJws(key, { url: url(ORDER), nonce, kid, jwk: true, payload: '' }) }),
    status: 400,
    type: 'malformed',
    detail: /both "jwk" and "kid"/,
  },
  {
    name: 'fail/neither jwk nor kid',
    build: async (_h, { nonce, key }) => ({ path: ORDER, body: await signJws(key, { url: url(ORDER), nonce, payload: '' }) }),
    status: 400,
    type: 'malformed',
    detail: /neither "jwk" nor "kid"/,
  },
  {
    name: 'fail/kid on newAccount',
    build: async (_h, { kid, nonce, key }) => ({ path: '/acme/new-account', body: await signJws(key, { url: url('/acme/new-account'), nonce, kid, payload: {} }) }),
    status: 400,
    type: 'malformed',
    detail: /requires a "jwk" header/,
  },
  {
    name: 'fail/jwk on newOrder',
    build: async (_h, { nonce, key }) => ({
      path: '/acme/new-order',
      body: await signJws(key, { url: url('/acme/new-order'), nonce, jwk: true, payload: { identifiers: [{ type: 'dns', value: 'a.test' }] } }),
    }),
    status: 400,
    type: 'malformed',
    detail: /requires a "kid" header/,
  },
  {
    name: 'fail/tampered signature',
    build: async (_h, { kid, nonce, key }) => ({ path: ORDER, body: tamperSignature(await signJws(key, { url: url(ORDER), nonce, kid, payload: '' })) }),
    status: 400,
    type: 'malformed',
    detail: /^JWS signature is invalid: it does not verify with the account's current key/,
  },
  {
    name: 'fail/payload swapped after signing',
    build: async (_h, { kid, nonce, key }) => ({
      path: '/acme/new-order',
      body: swapPayload(await signJws(key, { url: url('/acme/new-order'), nonce, kid, payload: { identifiers: [{ type: 'dns', value: 'a.test' }] } }), {
        identifiers: [{ type: 'dns', value: 'evil.test' }],
      }),
    }),
    status: 400,
    type: 'malformed',
    detail: /signature is invalid/,
  },
  {
    name: 'fail/no nonce',
    build: async (_h, { kid, key }) => ({ path: ORDER, body: await signJws(key, { url: url(ORDER), nonce: null, kid, payload: '' }) }),
    status: 400,
    type: 'badNonce',
    detail: /no anti-replay "nonce"/,
  },
  {
    name: 'fail/nonce is not base64url',
    build: async (_h, { kid, key }) => ({ path: ORDER, body: await signJws(key, { url: url(ORDER), nonce: 'not a nonce!', kid, payload: '' }) }),
    status: 400,
    type: 'malformed',
    detail: /nonce" is not a base64url/,
  },
  {
    name: 'fail/nonce never issued',
    build: async (_h, { kid, key }) => ({ path: ORDER, body: await signJws(key, { url: url(ORDER), nonce: 'AAAAAAAAAAAAAAAAAAAAAA', kid, payload: '' }) }),
    status: 400,
    type: 'badNonce',
    detail: /unknown, expired or already used/,
  },
  {
    name: 'fail/url of another resource',
    build: async (_h, { kid, nonce, key }) => ({ path: ORDER, body: await signJws(key, { url: url('/acme/order/other'), nonce, kid, payload: '' }) }),
    status: 403,
    type: 'unauthorized',
    detail: /does not match the request URL/,
  },
  {
    name: 'fail/url of another host',
    build: async (_h, { kid, nonce, key }) => ({ path: ORDER, body: await signJws(key, { url: `https://evil.test${ORDER}`, nonce, kid, payload: '' }) }),
    status: 403,
    type: 'unauthorized',
    detail: /RFC 8555 §6\.4/,
  },
  {
    name: 'fail/no url',
    build: async (_h, { kid, nonce, key }) => ({ path: ORDER, body: await signJws(key, { url: url(ORDER), nonce, kid, payload: '', header: { url: undefined } }) }),
    status: 400,
    type: 'malformed',
    detail: /lacks "url"/,
  },
  {
    name: 'fail/jwk with a private member',
    build: async (_h, { nonce, key }) => ({
      path: '/acme/new-account',
      body: await signJws(key, { url: url('/acme/new-account'), nonce, jwk: { ...key.publicJwk, d: 'AAAA' }, payload: {} }),
    }),
    status: 400,
    type: 'malformed',
    detail: /private key material \("d"\)/,
  },
  {
    name: 'fail/RSA key of 1024 bits',
    build: async (_h, { nonce }) => ({ path: '/acme/new-account', body: await signJws(await makeSmallRsaKey(1024), { url: url('/acme/new-account'), nonce, jwk: true, payload: {} }) }),
    status: 400,
    type: 'badPublicKey',
    detail: /RSA key of 1024 bits is too small/,
  },
  {
    name: 'fail/alg ES384 over a P-256 key',
    build: async (_h, { nonce, key }) => ({ path: '/acme/new-account', body: await signJws(key, { url: url('/acme/new-account'), nonce, jwk: true, payload: {}, alg: 'ES384' }) }),
    status: 400,
    type: 'badSignatureAlgorithm',
    detail: /ES384 requires an EC P-384 key, but the key is EC P-256/,
  },
  {
    name: 'fail/EC point not on the curve',
    build: async (_h, { nonce, key }) => ({
      path: '/acme/new-account',
      body: await signJws(key, { url: url('/acme/new-account'), nonce, jwk: { ...key.publicJwk, y: Buffer.alloc(32, 1).toString('base64url') }, payload: {} }),
    }),
    status: 400,
    type: 'badPublicKey',
    detail: /not a valid EC public key/,
  },
  {
    name: 'fail/kid of an unknown account',
    build: async (_h, { nonce, key }) => ({ path: ORDER, body: await signJws(key, { url: url(ORDER), nonce, kid: `${BASE}/acme/acct/nobody`, payload: '' }) }),
    status: 400,
    type: 'accountDoesNotExist',
    detail: /no account exists at/,
  },
  {
    name: 'fail/kid that is not an account URL of this server',
    build: async (_h, { nonce, key }) => ({ path: ORDER, body: await signJws(key, { url: url(ORDER), nonce, kid: 'https://elsewhere.test/acme/acct/1', payload: '' }) }),
    status: 400,
    type: 'malformed',
    detail: /not an account URL of this server/,
  },
  {
    name: 'fail/POST-as-GET with a body',
    build: async (_h, { kid, nonce, key }) => ({ path: ORDER, body: await signJws(key, { url: url(ORDER), nonce, kid, payload: {} }) }),
    status: 400,
    type: 'malformed',
    detail: /payload must be the empty string/,
  },
  {
    name: 'fail/newOrder with an empty (POST-as-GET) payload',
    build: async (_h, { kid, nonce, key }) => ({ path: '/acme/new-order', body: await signJws(key, { url: url('/acme/new-order'), nonce, kid, payload: '' }) }),
    status: 400,
    type: 'malformed',
    detail: /needs a JSON payload/,
  },
  {
    name: 'fail/payload is not JSON',
    build: async (_h, { kid, nonce, key }) => ({ path: '/acme/new-order', body: await signJws(key, { url: url('/acme/new-order'), nonce, kid, payload: null, rawPayload: '{not json' }) }),
    status: 400,
    type: 'malformed',
    detail: /payload is not UTF-8 JSON/,
  },
  {
    name: 'fail/unencoded payload extension (crit b64)',
    build: async (_h, { kid, nonce, key }) => ({ path: ORDER, body: await signJws(key, { url: url(ORDER), nonce, kid, payload: '', header: { b64: false, crit: ['b64'] } }) }),
    status: 400,
    type: 'malformed',
    detail: /"crit"\/"b64" extensions/,
  },
  {
    name: 'fail/account URL of another account',
    build: async (h, { kid, nonce, key }) => {
      const other = await h.register();
      const path = other.kid.slice(BASE.length);
      return { path, body: await signJws(key, { url: url(path), nonce, kid, payload: '' }) };
    },
    status: 403,
    type: 'unauthorized',
    detail: /signed by account .* not by/,
  },
];

for (const store of ['memory', 'signed'] as const) for (const c of cases) {
  // Every case against both nonce stores: the signed one also takes the one-round-trip path for accounts
  // the verifier has seen (register() + the request below make this account one it has not; see the tests
  // after this loop for the remembered path).
  await t.test(`${c.name} (${store} nonces)`, async (t) => {
    const h = await harness({ nonces: store });
    const { key, kid, account } = await h.register();
    h.ra.addOrder(account.id, [{ type: 'dns', value: 'a.test' }]);
    const nonce = await h.client.newNonce();
    const { path, body: requestBody } = await c.build(h, { kid, nonce, key });
    h.ra.calls.length = 0;
    const response = await h.client.postBody(path, requestBody);
    t.equal(response.statusCode, c.status, response.body);
    t.match(response.headers['content-type'], /^application\/problem\+json/);
    const problem = body(response);
    t.equal(problem.type, `urn:ietf:params:acme:error:${c.type}`);
    t.match(problem.detail, c.detail);
    t.equal(problem.status, c.status);
    if (c.type === 'badSignatureAlgorithm') t.same(problem.algorithms, [...SUPPORTED_JWS_ALGORITHMS], 'RFC 8555 §6.2 algorithms list');
    t.match(response.headers['replay-nonce'], /^[A-Za-z0-9_-]+$/, 'a fresh nonce on the error');
    t.match(String(response.headers.link), `<${BASE}/acme/directory>;rel="index"`);
    const reached = h.ra.calls.map((call) => call.method).filter((m) => m !== 'findAccount' && m !== 'findAccountByThumbprint');
    t.same(reached, [], 'no RA method beyond the account lookup was called');
  });
}

await t.test('fail/replayed nonce: badNonce with a fresh nonce that then works', async (t) => {
  const h = await harness();
  const { key, kid, account } = await h.register();
  const order = h.ra.addOrder(account.id, [{ type: 'dns', value: 'a.test' }]);
  const path = `/acme/order/${order.id}`;
  const nonce = await h.client.newNonce();
  const jws = await signJws(key, { url: url(path), nonce, kid, payload: '' });
  const first = await h.client.postBody(path, jws);
  t.equal(first.statusCode, 200);
  const replay = await h.client.postBody(path, jws);
  t.equal(replay.statusCode, 400);
  t.match(body(replay), { type: 'urn:ietf:params:acme:error:badNonce', detail: /already used/ });
  const fresh = String(replay.headers['replay-nonce']);
  t.not(fresh, nonce);
  const retry = await h.client.postBody(path, await signJws(key, { url: url(path), nonce: fresh, kid, payload: '' }));
  t.equal(retry.statusCode, 200, 'the nonce from the badNonce response is good');
});

await t.test('ok/a forged request does not spend the nonce it carries', async (t) => {
  const h = await harness();
  const { key, kid, account } = await h.register();
  const order = h.ra.addOrder(account.id, [{ type: 'dns', value: 'a.test' }]);
  const path = `/acme/order/${order.id}`;
  const nonce = await h.client.newNonce();
  const forged = tamperSignature(await signJws(key, { url: url(path), nonce, kid, payload: '' }));
  t.equal((await h.client.postBody(path, forged)).statusCode, 400);
  const honest = await h.client.postBody(path, await signJws(key, { url: url(path), nonce, kid, payload: '' }));
  t.equal(honest.statusCode, 200, 'the nonce was still good');
});

await t.test('fail/a deactivated account can do nothing (RFC 8555 §7.3.6)', async (t) => {
  const h = await harness();
  const { key, kid, account } = await h.register();
  h.ra.accounts.set(account.id, { ...account, status: 'deactivated' });
  const response = await h.client.post(kid.slice(BASE.length), key, { kid, payload: '' });
  t.equal(response.statusCode, 403);
  t.match(body(response), { type: 'urn:ietf:params:acme:error:unauthorized', detail: /is deactivated/ });
});

await t.test('ok/the JWS url may carry the query string the request used', async (t) => {
  const h = await harness();
  const { key, kid, account } = await h.register();
  const path = `/acme/acct/${account.id}/orders?cursor=p2`;
  const response = await h.client.post(path, key, { kid, payload: '' });
  t.equal(response.statusCode, 200, response.body);
  t.same(body(response), { orders: [`${BASE}/acme/order/order-old`] });
});

// ---- the one-round-trip path for accounts the verifier has seen (SignedNonceStore.consumeAndFindAccount) ----

/** A POST-as-GET of the account by `key` with a fresh nonce. */
async function readAccount(h: Harness, key: TestKey, kid: string): Promise<{ statusCode: number; body: string }> {
  return h.client.post(kid.slice(BASE.length), key, { kid, payload: '' });
}

await t.test('ok/a remembered account is read with the nonce, in one call', async (t) => {
  const h = await harness({ nonces: 'signed' });
  const { key, kid } = await h.register();
  t.equal((await readAccount(h, key, kid)).statusCode, 200);
  t.equal(h.ra.callsOf('findAccount').length, 1, 'first request: the account is looked up');
  h.ra.calls.length = 0;
  h.spent.calls.length = 0;
  t.equal((await readAccount(h, key, kid)).statusCode, 200);
  t.equal((await readAccount(h, key, kid)).statusCode, 200);
  t.same(h.ra.callsOf('findAccount'), [], 'later requests: no separate lookup');
  t.same(h.spent.calls, ['spendAndFindAccount', 'spendAndFindAccount'], 'nonce and account in one call each');
});

await t.test('fail/a replayed nonce on the remembered path is badNonce', async (t) => {
  const h = await harness({ nonces: 'signed' });
  const { key, kid } = await h.register();
  t.equal((await readAccount(h, key, kid)).statusCode, 200);
  const path = kid.slice(BASE.length);
  const jws = await signJws(key, { url: kid, nonce: await h.client.newNonce(), kid, payload: '' });
  t.equal((await h.client.postBody(path, jws)).statusCode, 200);
  const replay = await h.client.postBody(path, jws);
  t.equal(replay.statusCode, 400);
  t.match(body(replay), { type: 'urn:ietf:params:acme:error:badNonce' });
});

await t.test('fail/a nonce this server did not issue is refused without touching the spent set', async (t) => {
  const h = await harness({ nonces: 'signed' });
  const { key, kid } = await h.register();
  t.equal((await readAccount(h, key, kid)).statusCode, 200);
  h.spent.calls.length = 0;
  const fake = Buffer.alloc(38, 1).toString('base64url');
  const response = await h.client.postBody(kid.slice(BASE.length), await signJws(key, { url: kid, nonce: fake, kid, payload: '' }));
  t.equal(response.statusCode, 400);
  t.match(body(response), { type: 'urn:ietf:params:acme:error:badNonce' });
  t.same(h.spent.calls, [], 'a MAC that does not verify costs no store call');
});

await t.test('fail/an account deactivated after it was remembered is refused (RFC 8555 §7.3.6)', async (t) => {
  const h = await harness({ nonces: 'signed' });
  const { key, kid, account } = await h.register();
  t.equal((await readAccount(h, key, kid)).statusCode, 200);
  // Deactivated elsewhere (another instance): this verifier still remembers the key, the store has the truth.
  h.ra.accounts.set(account.id, { ...account, status: 'deactivated' });
  const response = await readAccount(h, key, kid);
  t.equal(response.statusCode, 403);
  t.match(body(response), { type: 'urn:ietf:params:acme:error:unauthorized', detail: /is deactivated/ });
});

await t.test('ok/a key rolled over elsewhere: the new key works at once, the old one no longer (RFC 8555 §7.3.5)', async (t) => {
  const h = await harness({ nonces: 'signed' });
  const { key: oldKey, kid, account } = await h.register();
  t.equal((await readAccount(h, oldKey, kid)).statusCode, 200, 'the old key is remembered');
  const newKey = await makeAccountKey();
  h.ra.accounts.set(account.id, { ...account, publicJwk: newKey.publicJwk, jwkThumbprint: newKey.thumbprint });

  const stale = await readAccount(h, oldKey, kid);
  t.equal(stale.statusCode, 400, 'signed by the remembered, no longer current key');
  t.match(body(stale), { type: 'urn:ietf:params:acme:error:malformed', detail: /signature is invalid: .*no longer the account's key/ });

  t.equal((await readAccount(h, newKey, kid)).statusCode, 200, 'signed by the current key');
  t.equal((await readAccount(h, newKey, kid)).statusCode, 200, 'and remembered from then on');
  const again = await readAccount(h, oldKey, kid);
  t.equal(again.statusCode, 400, 'the old key stays refused');
});

await t.test('ok/a key rolled over elsewhere to another key type is verified with the current key', async (t) => {
  const h = await harness({ nonces: 'signed' });
  const { key: oldKey, kid, account } = await h.register();
  t.equal((await readAccount(h, oldKey, kid)).statusCode, 200);
  const rsa = await makeAccountKey('RS256');
  h.ra.accounts.set(account.id, { ...account, publicJwk: rsa.publicJwk, jwkThumbprint: rsa.thumbprint });
  t.equal((await readAccount(h, rsa, kid)).statusCode, 200, 'RS256 over the new RSA key');
  const stale = await readAccount(h, oldKey, kid);
  t.equal(stale.statusCode, 400);
  t.match(body(stale), { type: 'urn:ietf:params:acme:error:badSignatureAlgorithm' }, 'ES256 no longer fits the account key');
});
