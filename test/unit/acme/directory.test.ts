import t from 'tap';
import { BASE, body, harness } from './fake-ra.js';

/** Directory (RFC 8555 §7.1.1), newNonce (§7.2), routing/method/media-type refusals (§6.2, §6.3), ARI GET. */

const INDEX = `<${BASE}/acme/directory>;rel="index"`;

await t.test('ok/directory lists every resource and the meta', async (t) => {
  const h = await harness();
  const response = await h.app.inject({ method: 'GET', url: '/acme/directory' });
  t.equal(response.statusCode, 200);
  t.match(response.headers['content-type'], /^application\/json/);
  t.same(body(response), {
    newNonce: `${BASE}/acme/new-nonce`,
    newAccount: `${BASE}/acme/new-account`,
    newOrder: `${BASE}/acme/new-order`,
    newAuthz: `${BASE}/acme/new-authz`,
    revokeCert: `${BASE}/acme/revoke-cert`,
    keyChange: `${BASE}/acme/key-change`,
    renewalInfo: `${BASE}/acme/renewal-info`,
    meta: {
      termsOfService: `${BASE}/terms`,
      website: 'https://pki.example.internal',
      caaIdentities: ['pki.example.internal'],
      externalAccountRequired: false,
    },
  });
  t.notOk(response.headers['replay-nonce'], 'no nonce on a GET of the directory');
});

await t.test('ok/directory says when EAB is required', async (t) => {
  const h = await harness();
  h.ra.externalAccountRequired = true;
  const response = await h.app.inject({ method: 'GET', url: '/acme/directory' });
  t.equal((body(response).meta as Record<string, unknown>).externalAccountRequired, true);
});

await t.test('ok/HEAD new-nonce: 200, no-store, a fresh nonce, index link', async (t) => {
  const h = await harness();
  const a = await h.app.inject({ method: 'HEAD', url: '/acme/new-nonce' });
  const b = await h.app.inject({ method: 'HEAD', url: '/acme/new-nonce' });
  t.equal(a.statusCode, 200);
  t.equal(a.headers['cache-control'], 'no-store');
  t.match(a.headers['replay-nonce'], /^[A-Za-z0-9_-]{22}$/);
  t.not(a.headers['replay-nonce'], b.headers['replay-nonce'], 'nonces differ');
  t.match(String(a.headers.link), INDEX);
  t.equal(a.body, '');
});

await t.test('ok/GET new-nonce: 204 with the same headers', async (t) => {
  const h = await harness();
  const response = await h.app.inject({ method: 'GET', url: '/acme/new-nonce' });
  t.equal(response.statusCode, 204);
  t.equal(response.headers['cache-control'], 'no-store');
  t.ok(response.headers['replay-nonce']);
  t.match(String(response.headers.link), INDEX);
});

await t.test('fail/POST with a wrong Content-Type: 415 malformed naming the type, with a nonce', async (t) => {
  const h = await harness();
  for (const contentType of ['application/json', 'text/plain']) {
    const response = await h.client.postBody('/acme/new-account', { protected: '', payload: '', signature: '' }, contentType);
    t.equal(response.statusCode, 415, contentType);
    t.match(response.headers['content-type'], /^application\/problem\+json/);
    t.match(body(response), { type: 'urn:ietf:params:acme:error:malformed', status: 415, detail: /application\/jose\+json/ });
    t.ok(response.headers['replay-nonce'], 'fresh nonce on the error');
  }
  t.equal(h.ra.calls.length, 0, 'nothing reached the RA');
});

await t.test('fail/POST without a Content-Type: 415', async (t) => {
  const h = await harness();
  const response = await h.app.inject({ method: 'POST', url: '/acme/new-order', payload: '{}' });
  t.equal(response.statusCode, 415);
  t.match(body(response), { type: 'urn:ietf:params:acme:error:malformed' });
});

await t.test('ok/Content-Type with parameters is accepted as application/jose+json', async (t) => {
  const h = await harness();
  const response = await h.client.postBody('/acme/new-order', 'not json', 'application/jose+json; charset=utf-8');
  t.equal(response.statusCode, 400, 'got past the media-type check to the JWS parser');
  t.match(body(response), { detail: /not JSON/ });
});

await t.test('fail/body over the limit: 413 problem with a nonce', async (t) => {
  const h = await harness({ bodyLimit: 1024 });
  const response = await h.client.postBody('/acme/new-order', 'x'.repeat(4096));
  t.equal(response.statusCode, 413);
  t.match(response.headers['content-type'], /^application\/problem\+json/);
  t.match(body(response), { type: 'urn:ietf:params:acme:error:malformed', status: 413, detail: /1024-byte limit/ });
  t.ok(response.headers['replay-nonce']);
  t.match(String(response.headers.link), INDEX);
});

await t.test('fail/GET on a POST-only resource: 405 with Allow and a POST-as-GET hint', async (t) => {
  const h = await harness();
  const response = await h.app.inject({ method: 'GET', url: '/acme/order/abc' });
  t.equal(response.statusCode, 405);
  t.equal(response.headers.allow, 'POST');
  t.match(body(response), { type: 'urn:ietf:params:acme:error:malformed', status: 405, detail: /POST-as-GET/ });
});

await t.test('fail/POST to the directory: 405', async (t) => {
  const h = await harness();
  const response = await h.client.postBody('/acme/directory', '{}');
  t.equal(response.statusCode, 405);
  t.equal(response.headers.allow, 'GET');
  t.ok(response.headers['replay-nonce'], 'a POST response carries a nonce even when refused');
});

await t.test('fail/unknown paths: 404 problem documents', async (t) => {
  const h = await harness();
  for (const url of ['/acme/nothing', '/elsewhere', '/acme/order/has%20space']) {
    const response = await h.app.inject({ method: 'GET', url });
    t.equal(response.statusCode, 404, url);
    t.match(response.headers['content-type'], /^application\/problem\+json/);
    t.match(body(response), { type: 'urn:ietf:params:acme:error:malformed', status: 404, detail: /no ACME resource/ });
  }
});

await t.test('ok/renewal-info: suggested window and Retry-After (RFC 9773 §4.2)', async (t) => {
  const h = await harness();
  const response = await h.app.inject({ method: 'GET', url: '/acme/renewal-info/aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE' });
  t.equal(response.statusCode, 200);
  t.same(body(response), { suggestedWindow: { start: '2026-03-11T12:00:00.000Z', end: '2026-03-13T12:00:00.000Z' } });
  t.equal(response.headers['retry-after'], '21600');
  t.same(h.ra.callsOf('renewalInfo'), [['aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE']]);
});

await t.test('fail/renewal-info with a malformed certID: 400 malformed, RA not asked', async (t) => {
  const h = await harness();
  const response = await h.app.inject({ method: 'GET', url: '/acme/renewal-info/not-a-cert-id' });
  t.equal(response.statusCode, 400);
  t.match(body(response), { type: 'urn:ietf:params:acme:error:malformed', detail: /certID/ });
  t.equal(h.ra.callsOf('renewalInfo').length, 0);
});

await t.test('fail/renewal-info for an unknown certificate: 404', async (t) => {
  const h = await harness();
  const response = await h.app.inject({ method: 'GET', url: '/acme/renewal-info/unknownAAAA.AIdlQyE' });
  t.equal(response.statusCode, 404);
  t.match(body(response), { type: 'urn:ietf:params:acme:error:malformed', detail: /no certificate/ });
});
