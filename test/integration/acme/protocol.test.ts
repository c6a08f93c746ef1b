import t from 'tap';
import type { ValidationOutcome, Validator } from '../../../src/va/validator.js';
import { algNoneJws, hmacJws, InjectClient, makeAccountKey, signJws, tamperSignature, type TestKey } from '../../helpers/acme-jws.js';
import { makeCsr, openssl, requireOpenssl, writeTemp } from '../../helpers/openssl.js';
import { composeForTest } from '../../helpers/runtime.js';

/**
 * RFC 8555 through the real stack (acme/ + ra/ + db/ on PGlite) with app.inject(): the happy path, then
 * each bad request with its problem type and status — and nothing stored by any of them.
 */
requireOpenssl();
const validator: Validator & { outcome: ValidationOutcome } = { outcome: { valid: true }, validate: async () => validator.outcome };
const { chancery } = await composeForTest({ validator });
t.teardown(() => chancery.close());
const runtime = chancery;
const { hierarchy } = chancery;
const BASE = chancery.acmeUrl;
const app = (await chancery.apps()).acme;
const client = new InjectClient(app, BASE);

const TABLES = ['accounts', 'orders', 'authorizations', 'challenges', 'serials', 'certificates'] as const;
async function counts(): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const table of TABLES) {
    const { rows } = await runtime.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${table}`);
    out[table] = rows[0]!.n;
  }
  out.challengeStates = Number((await runtime.db.query<{ n: number }>("SELECT count(*)::int AS n FROM challenges WHERE status <> 'pending'")).rows[0]!.n);
  out.validOrders = Number((await runtime.db.query<{ n: number }>("SELECT count(*)::int AS n FROM orders WHERE status <> 'pending'")).rows[0]!.n);
  return out;
}

function problem(response: { statusCode: number; headers: Record<string, unknown>; body: string }): { type: string; detail: string } {
  return JSON.parse(response.body) as { type: string; detail: string };
}

async function newAccount(key: TestKey): Promise<string> {
  const response = await client.post('/acme/new-account', key, { payload: { termsOfServiceAgreed: true, contact: ['mailto:ops@example.internal'] } });
  if (response.statusCode !== 201) throw new Error(`newAccount: ${response.statusCode} ${response.body}`);
  return String(response.headers.location);
}

const aliceKey = await makeAccountKey('ES256');
const alice = await newAccount(aliceKey);
const bobKey = await makeAccountKey('ES384');
const bob = await newAccount(bobKey);

/** Creates an order for `names` and returns its URL and body. */
async function newOrder(kid: string, key: TestKey, names: string[]): Promise<{ url: string; body: Record<string, unknown> }> {
  const response = await client.post('/acme/new-order', key, { kid, payload: { identifiers: names.map((value) => ({ type: 'dns', value })) } });
  if (response.statusCode !== 201) throw new Error(`newOrder: ${response.statusCode} ${response.body}`);
  return { url: String(response.headers.location), body: JSON.parse(response.body) as Record<string, unknown> };
}

async function makeReady(kid: string, key: TestKey, order: { body: Record<string, unknown> }): Promise<void> {
  for (const authzUrl of order.body.authorizations as string[]) {
    const authz = JSON.parse((await client.post(authzUrl, key, { kid, payload: '' })).body) as { challenges: { type: string; url: string }[] };
    const challenge = authz.challenges.find((c) => c.type === 'http-01')!;
    const answered = await client.post(challenge.url, key, { kid, payload: {} });
    if (answered.statusCode !== 200) throw new Error(`challenge: ${answered.body}`);
  }
  await chancery.services.scheduler.runOnce();
}

await t.test('ok/account, order, challenge, finalize, download: PEM chain with Link headers', async (t) => {
  const order = await newOrder(alice, aliceKey, ['happy.example.internal']);
  t.equal(order.body.status, 'pending');
  await makeReady(alice, aliceKey, order);
  const ready = JSON.parse((await client.post(order.url, aliceKey, { kid: alice, payload: '' })).body) as Record<string, unknown>;
  t.equal(ready.status, 'ready');
  const csr = await makeCsr({ keyType: 'ec-p256', sans: ['DNS:happy.example.internal'] });
  const finalized = await client.post(String(ready.finalize), aliceKey, { kid: alice, payload: { csr: csr.der.toString('base64url') } });
  t.equal(finalized.statusCode, 200, finalized.body);
  const valid = JSON.parse(finalized.body) as Record<string, unknown>;
  t.equal(valid.status, 'valid');
  const download = await client.post(String(valid.certificate), aliceKey, { kid: alice, payload: '' });
  t.equal(download.statusCode, 200);
  t.equal(download.headers['content-type'], 'application/pem-certificate-chain');
  t.match(String(download.headers.link), /rel="index"/);
  t.notMatch(String(download.headers.link), /rel="up"/, 'no Link up: the chain is in the body (RFC 8555 §7.4.2)');
  const pem = download.body;
  t.equal(pem.match(/BEGIN CERTIFICATE/g)?.length, 2, 'leaf then intermediate');
  const rootFile = await writeTemp('root.pem', (await import('../../../src/core/pem.js')).toPem(hierarchy.root.der));
  const chainFile = await writeTemp('chain.pem', pem);
  const verify = await openssl(['verify', '-CAfile', rootFile, '-untrusted', chainFile, chainFile]);
  t.equal(verify.code, 0, verify.stderr);
});

interface BadCase {
  name: string;
  send: () => Promise<{ statusCode: number; headers: Record<string, unknown>; body: string }>;
  status: number;
  type: string;
  detail?: RegExp;
}

await t.test('bad requests', async (t) => {
const pendingOrder = await newOrder(alice, aliceKey, ['pending.example.internal']);
const readyOrder = await newOrder(alice, aliceKey, ['ready.example.internal']);
await makeReady(alice, aliceKey, readyOrder);
// Reading it records the derived pending -> ready transition before the counts below are taken.
await client.post(readyOrder.url, aliceKey, { kid: alice, payload: '' });
const readyFinalize = String(readyOrder.body.finalize);
const finalizeWith = async (csr: Buffer) => client.post(readyFinalize, aliceKey, { kid: alice, payload: { csr: csr.toString('base64url') } });

const cases: BadCase[] = [
  {
    name: 'fail/wrong content type',
    send: async () => client.postBody('/acme/new-order', await signJws(aliceKey, { url: `${BASE}/acme/new-order`, nonce: await client.takeNonce(), kid: alice, payload: { identifiers: [{ type: 'dns', value: 'x.example.internal' }] } }), 'application/json'),
    status: 415,
    type: 'malformed',
    detail: /application\/jose\+json/,
  },
  {
    name: 'fail/bad signature',
    send: async () => client.postBody('/acme/new-order', tamperSignature(await signJws(aliceKey, { url: `${BASE}/acme/new-order`, nonce: await client.takeNonce(), kid: alice, payload: { identifiers: [{ type: 'dns', value: 'x.example.internal' }] } }))),
    status: 400,
    type: 'malformed',
    detail: /signature/i,
  },
  {
    name: 'fail/alg none',
    send: async () => client.postBody('/acme/new-order', algNoneJws({ url: `${BASE}/acme/new-order`, nonce: await client.takeNonce(), kid: alice, payload: { identifiers: [{ type: 'dns', value: 'x.example.internal' }] } })),
    status: 400,
    type: 'badSignatureAlgorithm',
  },
  {
    name: 'fail/HS256',
    send: async () => client.postBody('/acme/new-order', await hmacJws(Buffer.alloc(32, 7), { url: `${BASE}/acme/new-order`, nonce: await client.takeNonce(), kid: alice, payload: { identifiers: [{ type: 'dns', value: 'x.example.internal' }] } })),
    status: 400,
    type: 'badSignatureAlgorithm',
  },
  {
    name: 'fail/both jwk and kid',
    send: async () => client.postBody('/acme/new-order', await signJws(aliceKey, { url: `${BASE}/acme/new-order`, nonce: await client.takeNonce(), kid: alice, jwk: true, payload: { identifiers: [{ type: 'dns', value: 'x.example.internal' }] } })),
    status: 400,
    type: 'malformed',
    detail: /jwk|kid/,
  },
  {
    name: 'fail/url mismatch',
    send: async () => client.postBody('/acme/new-order', await signJws(aliceKey, { url: `${BASE}/acme/new-account`, nonce: await client.takeNonce(), kid: alice, payload: { identifiers: [{ type: 'dns', value: 'x.example.internal' }] } })),
    status: 403,
    type: 'unauthorized',
    detail: /url/,
  },
  {
    name: 'fail/replayed nonce',
    send: async () => {
      const nonce = await client.newNonce();
      await client.postBody(alice, await signJws(aliceKey, { url: alice, nonce, kid: alice, payload: '' }));
      return client.postBody('/acme/new-order', await signJws(aliceKey, { url: `${BASE}/acme/new-order`, nonce, kid: alice, payload: { identifiers: [{ type: 'dns', value: 'x.example.internal' }] } }));
    },
    status: 400,
    type: 'badNonce',
  },
  {
    name: 'fail/POST-as-GET with a body',
    send: async () => client.post(pendingOrder.url, aliceKey, { kid: alice, payload: { status: 'ready' } }),
    status: 400,
    type: 'malformed',
  },
  {
    name: 'fail/unknown account',
    send: async () => client.post('/acme/new-order', aliceKey, { kid: `${BASE}/acme/acct/doesnotexist`, payload: { identifiers: [{ type: 'dns', value: 'x.example.internal' }] } }),
    status: 400,
    type: 'accountDoesNotExist',
  },
  {
    name: 'fail/CSR for a name not in the order',
    send: async () => finalizeWith((await makeCsr({ keyType: 'ec-p256', sans: ['DNS:ready.example.internal', 'DNS:other.example.internal'] })).der),
    status: 400,
    type: 'badCSR',
    detail: /not in the order/,
  },
  {
    name: 'fail/RSA-1024 CSR',
    send: async () => finalizeWith((await makeCsr({ keyType: 'rsa-1024', sans: ['DNS:ready.example.internal'] })).der),
    status: 400,
    type: 'badPublicKey',
    detail: /1024 bits/,
  },
  {
    name: 'fail/CSR with the account key',
    send: async () => {
      // A CSR whose key is alice's account key: openssl signs with the exported private key.
      const pem = await exportPrivatePem(aliceKey);
      const keyFile = await writeTemp('account.key', pem);
      const csrFile = `${keyFile}.csr`;
      await openssl(['req', '-new', '-key', keyFile, '-subj', '/', '-addext', 'subjectAltName=DNS:ready.example.internal', '-outform', 'DER', '-out', csrFile]);
      return finalizeWith(await (await import('node:fs/promises')).readFile(csrFile));
    },
    status: 400,
    type: 'badCSR',
    detail: /account key/,
  },
  {
    name: 'fail/finalize before ready',
    send: async () => client.post(String(pendingOrder.body.finalize), aliceKey, { kid: alice, payload: { csr: (await makeCsr({ keyType: 'ec-p256', sans: ['DNS:pending.example.internal'] })).der.toString('base64url') } }),
    status: 403,
    type: 'orderNotReady',
  },
  {
    name: 'fail/another account fetching your order',
    send: async () => client.post(pendingOrder.url, bobKey, { kid: bob, payload: '' }),
    status: 403,
    type: 'unauthorized',
  },
];

for (const c of cases) {
  await t.test(c.name, async (t) => {
    const before = await counts();
    const response = await c.send();
    t.equal(response.statusCode, c.status, response.body);
    t.equal(response.headers['content-type'], 'application/problem+json');
    const doc = problem(response);
    t.equal(doc.type, `urn:ietf:params:acme:error:${c.type}`, doc.detail);
    if (c.detail) t.match(doc.detail, c.detail);
    t.type(response.headers['replay-nonce'], 'string', 'a fresh nonce even on errors');
    t.same(await counts(), before, 'nothing stored');
  });
}

await t.test('ok/the ready order still finalizes after all the refused CSRs', async (t) => {
  const response = await finalizeWith((await makeCsr({ keyType: 'ec-p256', sans: ['DNS:ready.example.internal'] })).der);
  t.equal(response.statusCode, 200, response.body);
  t.equal((JSON.parse(response.body) as { status: string }).status, 'valid');
});
});

async function exportPrivatePem(key: TestKey): Promise<string> {
  const { KeyObject } = await import('node:crypto');
  const object = key.privateKey instanceof KeyObject ? key.privateKey : KeyObject.from(key.privateKey as never);
  return object.export({ type: 'pkcs8', format: 'pem' }).toString();
}
