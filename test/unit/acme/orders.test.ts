import t from 'tap';
import { CaError } from '../../../src/core/errors.js';
import { fromPem } from '../../../src/core/pem.js';
import { makeAccountKey } from '../../helpers/acme-jws.js';
import { BASE, body, harness } from './fake-ra.js';

/** Orders, authorizations, challenges, certificates, revocation and error mapping over the wire (RFC 8555 §7.4-§7.6). */

const NEW_ORDER = '/acme/new-order';

await t.test('ok/newOrder: 201 + Location, §7.1.3 body', async (t) => {
  const h = await harness();
  const { key, kid } = await h.register();
  const response = await h.client.post(NEW_ORDER, key, {
    kid,
    payload: {
      identifiers: [{ type: 'dns', value: 'www.example.internal' }, { type: 'dns', value: '*.example.internal' }],
      notAfter: '2026-03-10T00:00:00+01:00',
      replaces: 'aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE',
    },
  });
  t.equal(response.statusCode, 201, response.body);
  t.equal(response.headers.location, `${BASE}/acme/order/order2`);
  t.same(body(response), {
    status: 'pending',
    expires: '2026-03-08T12:00:00.000Z',
    identifiers: [{ type: 'dns', value: 'www.example.internal' }, { type: 'dns', value: '*.example.internal' }],
    authorizations: [`${BASE}/acme/authz/authz2x0`, `${BASE}/acme/authz/authz2x1`],
    finalize: `${BASE}/acme/order/order2/finalize`,
    notAfter: '2026-03-09T23:00:00.000Z',
    replaces: 'aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE',
    // draft-ietf-acme-profiles: the order says which profile it is issued under (the default here).
    profile: 'tls-server',
  });
  const [args] = h.ra.callsOf('newOrder');
  t.match(args![1], { replaces: 'aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE' });
  t.equal((args![1] as { notAfter: Date }).notAfter.toISOString(), '2026-03-09T23:00:00.000Z');
});

await t.test('fail/newOrder refused by policy: subproblems per identifier', async (t) => {
  const h = await harness();
  const { key, kid } = await h.register();
  const response = await h.client.post(NEW_ORDER, key, {
    kid,
    payload: { identifiers: [{ type: 'dns', value: 'ok.example.internal' }, { type: 'dns', value: 'a.forbidden.test' }, { type: 'dns', value: 'b.forbidden.test' }] },
  });
  t.equal(response.statusCode, 400);
  t.same(body(response), {
    type: 'urn:ietf:params:acme:error:rejectedIdentifier',
    detail: 'policy forbids issuing for some identifiers',
    status: 400,
    subproblems: [
      { type: 'urn:ietf:params:acme:error:rejectedIdentifier', detail: 'a.forbidden.test is outside the allowed domains', identifier: { type: 'dns', value: 'a.forbidden.test' } },
      { type: 'urn:ietf:params:acme:error:rejectedIdentifier', detail: 'b.forbidden.test is outside the allowed domains', identifier: { type: 'dns', value: 'b.forbidden.test' } },
    ],
  });
  t.ok(response.headers['replay-nonce']);
});

const badOrders: { name: string; payload: unknown; type: string; detail: RegExp }[] = [
  { name: 'fail/no identifiers', payload: {}, type: 'malformed', detail: /"identifiers" is required/ },
  { name: 'fail/empty identifiers', payload: { identifiers: [] }, type: 'malformed', detail: /at least one identifier/ },
  { name: 'fail/email identifier', payload: { identifiers: [{ type: 'email', value: 'a@b.c' }] }, type: 'unsupportedIdentifier', detail: /type "email"/ },
  { name: 'fail/identifier value not a string', payload: { identifiers: [{ type: 'dns', value: 5 }] }, type: 'malformed', detail: /identifiers\[0\]\.value/ },
  { name: 'fail/notBefore not RFC 3339', payload: { identifiers: [{ type: 'dns', value: 'a.test' }], notBefore: '2026-02-30T00:00:00Z' }, type: 'malformed', detail: /"notBefore" must be an RFC 3339/ },
  { name: 'fail/notAfter before notBefore', payload: { identifiers: [{ type: 'dns', value: 'a.test' }], notBefore: '2026-03-02T00:00:00Z', notAfter: '2026-03-01T00:00:00Z' }, type: 'malformed', detail: /later than/ },
  { name: 'fail/replaces not a certID', payload: { identifiers: [{ type: 'dns', value: 'a.test' }], replaces: 'serial:1234' }, type: 'malformed', detail: /"replaces" must be an RFC 9773 certID/ },
];

for (const c of badOrders) {
  await t.test(c.name, async (t) => {
    const h = await harness();
    const { key, kid } = await h.register();
    const response = await h.client.post(NEW_ORDER, key, { kid, payload: c.payload });
    t.equal(response.statusCode, 400, response.body);
    t.match(body(response), { type: `urn:ietf:params:acme:error:${c.type}`, detail: c.detail });
    t.equal(h.ra.callsOf('newOrder').length, 0);
  });
}

await t.test('ok/order POST-as-GET; processing orders carry Retry-After', async (t) => {
  const h = await harness();
  const { key, kid, account } = await h.register();
  const order = h.ra.addOrder(account.id, [{ type: 'ip', value: '10.0.0.1' }], 'processing');
  const response = await h.client.post(`/acme/order/${order.id}`, key, { kid, payload: '' });
  t.equal(response.statusCode, 200);
  t.equal(body(response).status, 'processing');
  t.equal(response.headers['retry-after'], '3');
});

await t.test("fail/another account's order: unauthorized from the RA", async (t) => {
  const h = await harness();
  const owner = await h.register();
  const order = h.ra.addOrder(owner.account.id, [{ type: 'dns', value: 'a.test' }]);
  const intruder = await h.register(await makeAccountKey());
  const response = await h.client.post(`/acme/order/${order.id}`, intruder.key, { kid: intruder.kid, payload: '' });
  t.equal(response.statusCode, 403);
  t.match(body(response), { type: 'urn:ietf:params:acme:error:unauthorized' });
});

await t.test('fail/unknown order: 404 malformed', async (t) => {
  const h = await harness();
  const { key, kid } = await h.register();
  const response = await h.client.post('/acme/order/nope', key, { kid, payload: '' });
  t.equal(response.statusCode, 404);
  t.match(body(response), { type: 'urn:ietf:params:acme:error:malformed', detail: /no such order/ });
});

await t.test('fail/finalize a pending order: orderNotReady 403', async (t) => {
  const h = await harness();
  const { key, kid, account } = await h.register();
  const order = h.ra.addOrder(account.id, [{ type: 'dns', value: 'a.test' }]);
  const response = await h.client.post(`/acme/order/${order.id}/finalize`, key, { kid, payload: { csr: 'MIIBAA' } });
  t.equal(response.statusCode, 403);
  t.match(body(response), { type: 'urn:ietf:params:acme:error:orderNotReady' });
});

await t.test('ok/finalize a ready order: valid with a certificate URL; CSR bytes reach the RA', async (t) => {
  const h = await harness();
  const { key, kid, account } = await h.register();
  const order = h.ra.addOrder(account.id, [{ type: 'dns', value: 'a.test' }], 'ready');
  const response = await h.client.post(`/acme/order/${order.id}/finalize`, key, { kid, payload: { csr: Buffer.from('csr-der').toString('base64url') } });
  t.equal(response.statusCode, 200, response.body);
  t.equal(response.headers.location, `${BASE}/acme/order/${order.id}`);
  t.match(body(response), { status: 'valid', certificate: `${BASE}/acme/cert/0a1b2c` });
  t.equal(Buffer.from(h.ra.callsOf('finalizeOrder')[0]![2] as Uint8Array).toString(), 'csr-der');
});

await t.test('fail/finalize with a CSR that is not base64url', async (t) => {
  const h = await harness();
  const { key, kid, account } = await h.register();
  const order = h.ra.addOrder(account.id, [{ type: 'dns', value: 'a.test' }], 'ready');
  const response = await h.client.post(`/acme/order/${order.id}/finalize`, key, { kid, payload: { csr: 'MIIB+/==' } });
  t.equal(response.statusCode, 400);
  t.match(body(response), { type: 'urn:ietf:params:acme:error:malformed', detail: /"csr" is not base64url/ });
  t.equal(h.ra.callsOf('finalizeOrder').length, 0);
});

await t.test('ok/wildcard authorization: base name, wildcard true, its challenges (§7.1.4)', async (t) => {
  const h = await harness();
  const { key, kid, account } = await h.register();
  const order = h.ra.addOrder(account.id, [{ type: 'dns', value: '*.example.internal' }]);
  const response = await h.client.post(`/acme/authz/${order.authorizationIds[0]}`, key, { kid, payload: '' });
  t.equal(response.statusCode, 200);
  const authz = body(response);
  t.same(authz.identifier, { type: 'dns', value: 'example.internal' });
  t.equal(authz.wildcard, true);
  t.equal(authz.status, 'pending');
  t.same(authz.challenges, [{ type: 'dns-01', url: `${BASE}/acme/chall/chall2x0x0`, status: 'pending', token: 'token200'.padEnd(43, 'A') }]);
});

await t.test('ok/authorization deactivation (§7.5.2)', async (t) => {
  const h = await harness();
  const { key, kid, account } = await h.register();
  const order = h.ra.addOrder(account.id, [{ type: 'dns', value: 'a.test' }]);
  const response = await h.client.post(`/acme/authz/${order.authorizationIds[0]}`, key, { kid, payload: { status: 'deactivated' } });
  t.equal(response.statusCode, 200);
  t.equal(body(response).status, 'deactivated');
  t.notOk('wildcard' in body(response));
});

await t.test('fail/authorization update other than deactivation', async (t) => {
  const h = await harness();
  const { key, kid, account } = await h.register();
  const order = h.ra.addOrder(account.id, [{ type: 'dns', value: 'a.test' }]);
  const response = await h.client.post(`/acme/authz/${order.authorizationIds[0]}`, key, { kid, payload: { status: 'valid' } });
  t.equal(response.statusCode, 400);
  t.match(body(response), { detail: /must be \{"status": "deactivated"\}/ });
  t.equal(h.ra.callsOf('deactivateAuthorization').length, 0);
});

await t.test('ok/challenge response {}: processing, Link rel="up" to the authz, Retry-After from the schedule', async (t) => {
  const h = await harness();
  const { key, kid, account } = await h.register();
  const order = h.ra.addOrder(account.id, [{ type: 'dns', value: 'a.test' }]);
  const authzId = order.authorizationIds[0]!;
  const challengeId = h.ra.authorizations.get(authzId)!.challenges[0]!.id;
  const response = await h.client.post(`/acme/chall/${challengeId}`, key, { kid, payload: {} });
  t.equal(response.statusCode, 200, response.body);
  t.match(body(response), { type: 'http-01', status: 'processing', url: `${BASE}/acme/chall/${challengeId}` });
  t.notOk('keyAuthorization' in body(response), 'key authorization is not rendered');
  const links = response.headers.link as string[];
  t.ok(links.includes(`<${BASE}/acme/authz/${authzId}>;rel="up"`), String(links));
  t.equal(response.headers['retry-after'], '5');
  t.equal(h.ra.callsOf('respondToChallenge').length, 1);
});

await t.test('ok/challenge POST-as-GET renders validated and error', async (t) => {
  const h = await harness();
  const { key, kid, account } = await h.register();
  const order = h.ra.addOrder(account.id, [{ type: 'dns', value: 'a.test' }]);
  const challenge = h.ra.authorizations.get(order.authorizationIds[0]!)!.challenges[1]!;
  challenge.status = 'invalid';
  challenge.error = { kind: 'dns', detail: 'no TXT record at _acme-challenge.a.test' };
  const response = await h.client.post(`/acme/chall/${challenge.id}`, key, { kid, payload: '' });
  t.equal(response.statusCode, 200);
  t.same(body(response).error, { type: 'urn:ietf:params:acme:error:dns', detail: 'no TXT record at _acme-challenge.a.test', status: 400 });
  t.equal(h.ra.callsOf('respondToChallenge').length, 0, 'a read does not trigger validation');
});

await t.test('ok/certificate download: PEM chain, leaf first, no Link up off the ACME listener', async (t) => {
  const h = await harness();
  const { key, kid } = await h.register();
  const response = await h.client.post('/acme/cert/0A1B2C', key, { kid, payload: '' });
  t.equal(response.statusCode, 200, response.body);
  t.equal(response.headers['content-type'], 'application/pem-certificate-chain');
  const blocks = fromPem(response.body);
  t.same(blocks.map((b) => b.toString()), ['leaf certificate DER', 'issuer certificate DER']);
  const links = response.headers.link as string[];
  // The issuer is in the body (§7.4.2); a Link the client would POST-as-GET must stay on this listener.
  t.same(links, [`<${BASE}/acme/directory>;rel="index"`]);
  t.equal(h.ra.callsOf('getCertificateChain')[0]![1], '0a1b2c', 'serial folded to lower case');
});

await t.test('ok/revokeCert signed by the account (kid)', async (t) => {
  const h = await harness();
  const { key, kid, account } = await h.register();
  const certificate = Buffer.from('certificate DER');
  const response = await h.client.post('/acme/revoke-cert', key, { kid, payload: { certificate: certificate.toString('base64url'), reason: 4 } });
  t.equal(response.statusCode, 200, response.body);
  t.equal(response.body, '');
  const [revocation] = h.ra.revocations;
  t.equal(Buffer.from(revocation!.certificateDer).toString(), 'certificate DER');
  t.equal(revocation!.reason, 4);
  t.same(revocation!.by, { account: h.ra.accounts.get(account.id) });
});

await t.test('ok/revokeCert signed by the certificate key (jwk)', async (t) => {
  const h = await harness();
  const certKey = await makeAccountKey('ES384');
  const response = await h.client.post('/acme/revoke-cert', certKey, { payload: { certificate: Buffer.from('c').toString('base64url') } });
  t.equal(response.statusCode, 200, response.body);
  t.same(h.ra.revocations[0]!.by, { jwk: certKey.publicJwk, jwkThumbprint: certKey.thumbprint });
  t.notOk('reason' in h.ra.revocations[0]!);
});

await t.test('fail/revokeCert reason is not an integer', async (t) => {
  const h = await harness();
  const { key, kid } = await h.register();
  const response = await h.client.post('/acme/revoke-cert', key, { kid, payload: { certificate: 'AAAA', reason: '4' } });
  t.equal(response.statusCode, 400);
  t.match(body(response), { detail: /"reason" must be an integer/ });
  t.equal(h.ra.revocations.length, 0);
});

// ----- error mapping (DESIGN.md rule 3) -----

await t.test('fail/an error without a kind: serverInternal, generic detail, cause logged not sent', async (t) => {
  const h = await harness();
  const { key, kid } = await h.register();
  h.ra.failNext.set('newOrder', new Error('connection to postgres://admin:hunter2@db failed'));
  const response = await h.client.post(NEW_ORDER, key, { kid, payload: { identifiers: [{ type: 'dns', value: 'a.test' }] } });
  t.equal(response.statusCode, 500);
  t.same(body(response), { type: 'urn:ietf:params:acme:error:serverInternal', detail: 'The server experienced an internal error', status: 500 });
  t.notMatch(response.body, /hunter2|postgres/);
  t.ok(response.headers['replay-nonce'], 'even a 500 carries a nonce');
  const logged = h.logs.find((l) => l.msg === 'ACME request failed with an internal error');
  t.match(JSON.stringify(logged), /hunter2/, 'the cause is in the log');
});

await t.test('fail/internal kinds (caState, keyStore, badConfig) are not shown either', async (t) => {
  const h = await harness();
  const { key, kid } = await h.register();
  for (const kind of ['caState', 'keyStore', 'badConfig', 'serverInternal'] as const) {
    h.ra.failNext.set('newOrder', new CaError(kind, `HSM slot 3 label int-2026 failed (${kind})`));
    const response = await h.client.post(NEW_ORDER, key, { kid, payload: { identifiers: [{ type: 'dns', value: 'a.test' }] } });
    t.equal(response.statusCode, 500, kind);
    t.match(body(response), { type: 'urn:ietf:params:acme:error:serverInternal', detail: 'The server experienced an internal error' });
    t.notMatch(response.body, /HSM/);
  }
});

await t.test('fail/an unknown kind (a cast) is treated as internal', async (t) => {
  const h = await harness();
  const { key, kid } = await h.register();
  h.ra.failNext.set('newOrder', new CaError('mystery' as 'malformed', 'internal detail'));
  const response = await h.client.post(NEW_ORDER, key, { kid, payload: { identifiers: [{ type: 'dns', value: 'a.test' }] } });
  t.equal(response.statusCode, 500);
  t.notMatch(response.body, /internal detail/);
});

await t.test('fail/rateLimited is 429, alreadyReplaced 409, conflict 409 malformed', async (t) => {
  const h = await harness();
  const { key, kid } = await h.register();
  const expected = [
    { kind: 'rateLimited', status: 429, type: 'rateLimited' },
    { kind: 'alreadyReplaced', status: 409, type: 'alreadyReplaced' },
    { kind: 'conflict', status: 409, type: 'malformed' },
  ] as const;
  for (const e of expected) {
    h.ra.failNext.set('newOrder', new CaError(e.kind, `because ${e.kind}`));
    const response = await h.client.post(NEW_ORDER, key, { kid, payload: { identifiers: [{ type: 'dns', value: 'a.test' }] } });
    t.equal(response.statusCode, e.status, e.kind);
    t.match(body(response), { type: `urn:ietf:params:acme:error:${e.type}`, detail: `because ${e.kind}`, status: e.status });
  }
});

await t.test('fail/nonce store down: new-nonce answers 500 (logged)', async (t) => {
  const h = await harness();
  h.nonces.issue = async () => {
    throw new Error('database unreachable');
  };
  const response = await h.app.inject({ method: 'HEAD', url: '/acme/new-nonce' });
  t.equal(response.statusCode, 500);
  t.notOk(response.headers['replay-nonce']);
});
