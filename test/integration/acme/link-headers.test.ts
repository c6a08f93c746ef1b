import t from 'tap';
import type { LightMyRequestResponse } from 'fastify';
import { certIdOf } from '../../../src/ca/cert-id.js';
import { fromPem } from '../../../src/core/pem.js';
import { acmeLinker, type AcmeRouteName } from '../../../src/acme/linker.js';
import type { ValidationOutcome, Validator } from '../../../src/va/validator.js';
import { InjectClient, keyChangeInner, makeAccountKey, signJws } from '../../helpers/acme-jws.js';
import { makeCsr, requireOpenssl } from '../../helpers/openssl.js';
import { composeForTest } from '../../helpers/runtime.js';

/**
 * Every Link header of every ACME response points at a resource on the ACME listener (DESIGN.md "URLs"):
 * clients follow them as ACME resources, by POST-as-GET (RFC 8555 §6.3) — Caddy's library does so for
 * rel="up" — so a link to another listener (the plain-HTTP public one, GET-only) is a request that can never
 * succeed. The whole composition root (compose(), as `serve` wires it) is driven through every route, errors
 * included, and each linked resource is then fetched the way a client would.
 */
requireOpenssl();
const validator: Validator & { outcome: ValidationOutcome } = { outcome: { valid: true }, validate: async () => validator.outcome };
const { chancery } = await composeForTest({ validator });
t.teardown(() => chancery.close());
const BASE = chancery.acmeUrl;
const app = (await chancery.apps()).acme;
const client = new InjectClient(app, BASE);
const linker = acmeLinker(BASE);

interface Seen {
  what: string;
  method: string;
  path: string;
  status: number;
  links: { url: string; rel: string }[];
}
const seen: Seen[] = [];

/** RFC 8288 Link values, one header or several. */
function parseLinks(header: unknown): { url: string; rel: string }[] {
  const values = header === undefined ? [] : Array.isArray(header) ? (header as string[]) : [String(header)];
  return values.flatMap((value) => [...value.matchAll(/<([^>]*)>\s*;\s*rel="?([^";,]+)"?/g)].map((m) => ({ url: m[1]!, rel: m[2]! })));
}

function record(what: string, method: string, path: string, response: LightMyRequestResponse): LightMyRequestResponse {
  const links = parseLinks(response.headers.link);
  // A Link header the parser could not read would escape the checks below.
  const raw = response.headers.link === undefined ? [] : ([] as unknown[]).concat(response.headers.link);
  if (raw.length !== links.length) throw new Error(`${what}: unparsed Link header ${JSON.stringify(response.headers.link)}`);
  seen.push({ what, method, path: new URL(path, BASE).pathname, status: response.statusCode, links });
  return response;
}

async function get(what: string, path: string, method: 'GET' | 'HEAD' = 'GET'): Promise<LightMyRequestResponse> {
  return record(what, method, path, await app.inject({ method, url: path.startsWith('http') ? new URL(path).pathname : path }));
}

const key = await makeAccountKey('ES256');
/** The account and its current key (after the rollover below, the new one). */
let account = { kid: '', key };
async function post(what: string, path: string, payload: unknown, options: { kid?: string; signer?: typeof key } = {}): Promise<LightMyRequestResponse> {
  return record(what, 'POST', path, await client.post(path, options.signer ?? key, { ...(options.kid !== undefined ? { kid: options.kid } : {}), payload }));
}

function json(response: LightMyRequestResponse): Record<string, unknown> {
  return JSON.parse(response.body) as Record<string, unknown>;
}

/** The directory's resources: newAuthz (RFC 8555 §7.4.1) is driven when the server offers it. */
let directory: Record<string, unknown> = {};

await t.test('drive every route', async (t) => {
  const directoryResponse = await get('directory', '/acme/directory');
  t.equal(directoryResponse.statusCode, 200);
  directory = json(directoryResponse);
  t.equal((await get('newNonce HEAD', '/acme/new-nonce', 'HEAD')).statusCode, 200);
  t.equal((await get('newNonce GET', '/acme/new-nonce')).statusCode, 204);

  const created = await post('newAccount', '/acme/new-account', { termsOfServiceAgreed: true, contact: ['mailto:ops@example.internal'] });
  t.equal(created.statusCode, 201, created.body);
  const kid = String(created.headers.location);
  t.equal((await post('newAccount existing', '/acme/new-account', { onlyReturnExisting: true })).statusCode, 200);
  t.equal((await post('account POST-as-GET', kid, '', { kid })).statusCode, 200);
  t.equal((await post('account update', kid, { contact: ['mailto:pki@example.internal'] }, { kid })).statusCode, 200);

  const ordered = await post('newOrder', '/acme/new-order', { identifiers: [{ type: 'dns', value: 'links.example.internal' }, { type: 'dns', value: 'links2.example.internal' }] }, { kid });
  t.equal(ordered.statusCode, 201, ordered.body);
  const orderUrl = String(ordered.headers.location);
  const order = json(ordered) as { authorizations: string[]; finalize: string };
  t.equal((await post('order POST-as-GET', orderUrl, '', { kid })).statusCode, 200);
  t.equal((await post('accountOrders', `${kid}/orders`, '', { kid })).statusCode, 200);

  for (const authzUrl of order.authorizations) {
    const authz = json(await post('authorization POST-as-GET', authzUrl, '', { kid })) as { challenges: { type: string; url: string }[] };
    const challenge = authz.challenges.find((c) => c.type === 'http-01')!;
    t.equal((await post('challenge POST-as-GET', challenge.url, '', { kid })).statusCode, 200);
    t.equal((await post('challenge respond', challenge.url, {}, { kid })).statusCode, 200);
  }
  await chancery.services.scheduler.runOnce();

  const csr = await makeCsr({ keyType: 'ec-p256', sans: ['DNS:links.example.internal', 'DNS:links2.example.internal'] });
  const finalized = await post('finalize', order.finalize, { csr: csr.der.toString('base64url') }, { kid });
  t.equal(finalized.statusCode, 200, finalized.body);
  const certificateUrl = String(json(finalized).certificate);
  const download = await post('certificate', certificateUrl, '', { kid });
  t.equal(download.statusCode, 200, download.body);
  const leaf = fromPem(download.body)[0]!;
  t.equal((await get('renewalInfo', `/acme/renewal-info/${certIdOf(leaf)}`)).statusCode, 200);

  // An authorization deactivated (§7.5.2), on an order of its own so the one above stays valid.
  const other = json(await post('newOrder (to deactivate)', '/acme/new-order', { identifiers: [{ type: 'dns', value: 'gone.example.internal' }] }, { kid })) as { authorizations: string[] };
  t.equal((await post('authorization deactivate', other.authorizations[0]!, { status: 'deactivated' }, { kid })).statusCode, 200);

  // RFC 8555 §7.4.1 pre-authorization.
  if (typeof directory.newAuthz === 'string') {
    t.equal((await post('newAuthz', directory.newAuthz, { identifier: { type: 'dns', value: 'pre.example.internal' } }, { kid })).statusCode, 201);
  }

  t.equal((await post('revokeCert', '/acme/revoke-cert', { certificate: Buffer.from(leaf).toString('base64url'), reason: 4 }, { kid })).statusCode, 200);
  t.equal((await post('revokeCert again (alreadyRevoked)', '/acme/revoke-cert', { certificate: Buffer.from(leaf).toString('base64url') }, { kid })).statusCode, 400);

  // RFC 8555 §7.3.5: the inner JWS is signed by the new key, the outer by the account's current key.
  const newKey = await makeAccountKey('ES384');
  const url = `${BASE}/acme/key-change`;
  const inner = await keyChangeInner(newKey, { url, accountUrl: kid, oldKey: key.publicJwk });
  t.equal((await post('keyChange', url, inner, { kid })).statusCode, 200);
  account = { kid, key: newKey };
  t.equal((await post('account with the new key', kid, '', { kid, signer: newKey })).statusCode, 200);
  t.ok((await post('account with the old key (refused)', kid, '', { kid })).statusCode >= 400, 'the old key is refused');

  // Refusals carry Link headers too (rel="index", §7.1).
  t.equal((await get('unknown path', '/acme/nothing-here')).statusCode, 404);
  t.equal((await get('GET on a POST-only resource', orderUrl)).statusCode, 405);
  const wrongType = await app.inject({ method: 'POST', url: '/acme/new-order', headers: { 'content-type': 'application/json' }, payload: '{}' });
  record('wrong content type', 'POST', '/acme/new-order', wrongType);
  t.equal(wrongType.statusCode, 415);
  const huge = await app.inject({ method: 'POST', url: '/acme/new-order', headers: { 'content-type': 'application/jose+json' }, payload: 'x'.repeat(200 * 1024) });
  record('body over the limit', 'POST', '/acme/new-order', huge);
  t.equal(huge.statusCode, 413);
  const stale = await signJws(newKey, { url: `${BASE}/acme/new-order`, nonce: 'bm90LWEtbm9uY2U', kid, payload: { identifiers: [{ type: 'dns', value: 'x.example.internal' }] } });
  record('bad nonce', 'POST', '/acme/new-order', await client.postBody('/acme/new-order', stale));
});

await t.test('every route was driven', async (t) => {
  // Every member of the route union must be listed (a new route does not compile here until it is driven
  // above too); the string index lets a name be listed before its route exists (newAuthz, when not offered).
  const everyRoute: Record<AcmeRouteName, true> & Record<string, true> = {
    directory: true,
    newNonce: true,
    newAccount: true,
    newOrder: true,
    newAuthz: true,
    revokeCert: true,
    keyChange: true,
    renewalInfo: true,
    account: true,
    accountOrders: true,
    order: true,
    finalize: true,
    authorization: true,
    challenge: true,
    certificate: true,
  };
  const driven = new Set(seen.map((s) => linker.route(s.path)?.name).filter((name) => name !== undefined));
  for (const name of Object.keys(everyRoute)) {
    if (name === 'newAuthz' && typeof directory.newAuthz !== 'string') continue;
    t.ok(driven.has(name as AcmeRouteName), `${name} was driven`);
  }
});

await t.test('every Link points under the ACME base URL, at a resource this listener serves', async (t) => {
  const prefix = `${BASE}/acme/`;
  let count = 0;
  for (const response of seen) {
    for (const { url, rel } of response.links) {
      count += 1;
      t.ok(url.startsWith(prefix), `${response.what} (${response.status}): rel="${rel}" <${url}> is under ${prefix}`);
      t.ok(linker.route(new URL(url).pathname), `${response.what}: rel="${rel}" <${url}> names an ACME resource`);
    }
  }
  t.ok(count >= seen.length - 1, `${count} links seen in ${seen.length} responses (all but the directory carry rel="index")`);
  t.notOk(seen.some((s) => s.links.some((l) => l.rel === 'up' && /\/acme\/cert\//.test(s.path))), 'no rel="up" on a certificate download');
});

await t.test('each linked resource answers the way a client fetches it', async (t) => {
  // The directory by GET (§7.1.1); every other link by POST-as-GET (§6.3) with the account's current key.
  const targets = new Map<string, string>();
  for (const response of seen) for (const { url, rel } of response.links) targets.set(url, rel);
  const others = [...targets].filter(([, rel]) => rel !== 'index');
  t.ok(others.length > 0, 'some responses link another resource (a challenge its authorization, §7.5.1)');
  for (const [url, rel] of targets) {
    const response =
      rel === 'index'
        ? await app.inject({ method: 'GET', url: new URL(url).pathname })
        : await client.post(url, account.key, { kid: account.kid, payload: '' });
    t.equal(response.statusCode, 200, `<${url}> (rel="${rel}") answers ${rel === 'index' ? 'GET' : 'POST-as-GET'}`, { body: response.body });
  }
});
