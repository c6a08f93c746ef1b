import t from 'tap';
import { eabJws, keyChangeInner, makeAccountKey, signJws } from '../../helpers/acme-jws.js';
import { BASE, body, harness } from './fake-ra.js';

/** Accounts over the wire: newAccount (RFC 8555 §7.3, §7.3.1, §7.3.4), update/deactivate (§7.3.2, §7.3.6), keyChange (§7.3.5). */

const NEW_ACCOUNT = '/acme/new-account';

await t.test('ok/newAccount: 201 + Location, RFC 8555 §7.1.2 body, contacts normalised', async (t) => {
  const h = await harness();
  const key = await makeAccountKey();
  const response = await h.client.post(NEW_ACCOUNT, key, {
    payload: { contact: ['MAILTO:ops@example.internal'], termsOfServiceAgreed: true, unknownField: 1 },
  });
  t.equal(response.statusCode, 201);
  t.equal(response.headers.location, `${BASE}/acme/acct/acct1`);
  t.match(response.headers['content-type'], /^application\/json/);
  t.same(body(response), {
    status: 'valid',
    contact: ['mailto:ops@example.internal'],
    termsOfServiceAgreed: true,
    orders: `${BASE}/acme/acct/acct1/orders`,
  });
  t.ok(response.headers['replay-nonce']);
  const [args] = h.ra.callsOf('newAccount');
  t.match(args![0], { newAccountUrl: `${BASE}/acme/new-account`, onlyReturnExisting: false, termsOfServiceAgreed: true });
});

await t.test('ok/newAccount with a registered key: 200 + Location of the existing account (§7.3.1)', async (t) => {
  const h = await harness();
  const { key, kid } = await h.register();
  const response = await h.client.post(NEW_ACCOUNT, key, { payload: { onlyReturnExisting: true } });
  t.equal(response.statusCode, 200);
  t.equal(response.headers.location, kid);
});

await t.test('fail/onlyReturnExisting with an unknown key: accountDoesNotExist', async (t) => {
  const h = await harness();
  const response = await h.client.post(NEW_ACCOUNT, await makeAccountKey(), { payload: { onlyReturnExisting: true } });
  t.equal(response.statusCode, 400);
  t.match(body(response), { type: 'urn:ietf:params:acme:error:accountDoesNotExist' });
});

await t.test('ok/EAB JWS is passed to the RA as the flattened object (§7.3.4)', async (t) => {
  const h = await harness();
  h.ra.externalAccountRequired = true;
  const key = await makeAccountKey();
  const eab = await eabJws({ kid: 'eab-key-1', hmacKey: new Uint8Array(32).fill(9), url: `${BASE}${NEW_ACCOUNT}`, accountJwk: key.publicJwk });
  const response = await h.client.post(NEW_ACCOUNT, key, { payload: { termsOfServiceAgreed: true, externalAccountBinding: eab } });
  t.equal(response.statusCode, 201, response.body);
  const [args] = h.ra.callsOf('newAccount');
  t.same((args![0] as { externalAccountBinding: unknown }).externalAccountBinding, eab);
});

await t.test('fail/EAB required but missing: externalAccountRequired', async (t) => {
  const h = await harness();
  h.ra.externalAccountRequired = true;
  const response = await h.client.post(NEW_ACCOUNT, await makeAccountKey(), { payload: { termsOfServiceAgreed: true } });
  t.equal(response.statusCode, 400);
  t.match(body(response), { type: 'urn:ietf:params:acme:error:externalAccountRequired' });
});

const badNewAccounts: { name: string; payload: unknown; type: string; detail: RegExp }[] = [
  { name: 'fail/contact is not an array', payload: { contact: 'mailto:a@example.internal' }, type: 'malformed', detail: /"contact" must be an array/ },
  { name: 'fail/contact entry is not a string', payload: { contact: [42] }, type: 'malformed', detail: /contact\[0\] must be a string/ },
  { name: 'fail/tel: contact', payload: { contact: ['tel:+15555550100'] }, type: 'unsupportedContact', detail: /"tel" scheme; only mailto:/ },
  { name: 'fail/mailto with hfields', payload: { contact: ['mailto:a@example.internal?subject=hi'] }, type: 'invalidContact', detail: /hfields/ },
  { name: 'fail/mailto with two addresses', payload: { contact: ['mailto:a@example.internal,b@example.internal'] }, type: 'invalidContact', detail: /more than one address/ },
  { name: 'fail/implausible address', payload: { contact: ['mailto:not-an-address'] }, type: 'invalidContact', detail: /not a plausible email address/ },
  { name: 'fail/termsOfServiceAgreed not a boolean', payload: { termsOfServiceAgreed: 'yes' }, type: 'malformed', detail: /"termsOfServiceAgreed" must be a boolean/ },
  { name: 'fail/EAB not a JWS object', payload: { externalAccountBinding: 'abc' }, type: 'malformed', detail: /"externalAccountBinding" must be a flattened JWS/ },
  { name: 'fail/payload is an array', payload: [], type: 'malformed', detail: /newAccount payload must be a JSON object, got an array/ },
];

for (const c of badNewAccounts) {
  await t.test(c.name, async (t) => {
    const h = await harness();
    const response = await h.client.post(NEW_ACCOUNT, await makeAccountKey(), { payload: c.payload });
    t.equal(response.statusCode, 400);
    t.match(body(response), { type: `urn:ietf:params:acme:error:${c.type}`, detail: c.detail });
    t.equal(h.ra.callsOf('newAccount').length, 0, 'the RA was not asked');
  });
}

await t.test('ok/account POST-as-GET and the empty update {} both read it (§7.3.3)', async (t) => {
  const h = await harness();
  const { key, kid } = await h.register();
  for (const payload of ['', {}]) {
    const response = await h.client.post(kid.slice(BASE.length), key, { kid, payload });
    t.equal(response.statusCode, 200);
    t.equal(body(response).status, 'valid');
  }
  t.equal(h.ra.callsOf('updateAccount').length, 0, 'nothing to update');
});

await t.test('ok/account update replaces contacts (§7.3.2)', async (t) => {
  const h = await harness();
  const { key, kid } = await h.register();
  const response = await h.client.post(kid.slice(BASE.length), key, { kid, payload: { contact: ['mailto:new@example.internal'], orders: 'ignored' } });
  t.equal(response.statusCode, 200);
  t.same(body(response).contact, ['mailto:new@example.internal']);
  t.same(h.ra.callsOf('updateAccount')[0]![1], { contacts: ['mailto:new@example.internal'] });
});

await t.test('ok/deactivation (§7.3.6), then the account is refused', async (t) => {
  const h = await harness();
  const { key, kid } = await h.register();
  const response = await h.client.post(kid.slice(BASE.length), key, { kid, payload: { status: 'deactivated' } });
  t.equal(response.statusCode, 200);
  t.equal(body(response).status, 'deactivated');
  const after = await h.client.post(kid.slice(BASE.length), key, { kid, payload: '' });
  t.equal(after.statusCode, 403);
  t.match(body(after), { type: 'urn:ietf:params:acme:error:unauthorized' });
});

await t.test('fail/account update to a status other than deactivated', async (t) => {
  const h = await harness();
  const { key, kid } = await h.register();
  const response = await h.client.post(kid.slice(BASE.length), key, { kid, payload: { status: 'valid' } });
  t.equal(response.statusCode, 400);
  t.match(body(response), { type: 'urn:ietf:params:acme:error:malformed', detail: /may only be "deactivated"/ });
});

await t.test('ok/orders list with Link rel="next" (§7.1.2.1)', async (t) => {
  const h = await harness();
  const { key, kid, account } = await h.register();
  const response = await h.client.post(`/acme/acct/${account.id}/orders`, key, { kid, payload: '' });
  t.equal(response.statusCode, 200);
  t.same(body(response), { orders: [`${BASE}/acme/order/order-new`] });
  const links = response.headers.link as string[];
  t.ok(links.includes(`<${BASE}/acme/acct/${account.id}/orders?cursor=p2>;rel="next"`), String(links));
  t.ok(links.includes(`<${BASE}/acme/directory>;rel="index"`));
});

await t.test('fail/orders list with a cursor we never issue', async (t) => {
  const h = await harness();
  const { key, kid, account } = await h.register();
  const response = await h.client.post(`/acme/acct/${account.id}/orders?cursor=%3Cscript%3E`, key, { kid, payload: '' });
  t.equal(response.statusCode, 400);
  t.match(body(response), { detail: /cursor/ });
});

// ----- keyChange (§7.3.5) -----

const KEY_CHANGE = '/acme/key-change';

await t.test('ok/keyChange rolls the key; the old key stops working', async (t) => {
  const h = await harness();
  const { key, kid, account } = await h.register();
  const newKey = await makeAccountKey('ES384');
  const inner = await keyChangeInner(newKey, { url: `${BASE}${KEY_CHANGE}`, accountUrl: kid, oldKey: key.publicJwk });
  const response = await h.client.post(KEY_CHANGE, key, { kid, payload: inner });
  t.equal(response.statusCode, 200, response.body);
  const [args] = h.ra.callsOf('changeAccountKey');
  t.same(args![1], newKey.publicJwk);
  t.equal(args![2], newKey.thumbprint);
  t.equal(h.ra.accounts.get(account.id)!.jwkThumbprint, newKey.thumbprint);
  t.equal((await h.client.post(kid.slice(BASE.length), newKey, { kid, payload: '' })).statusCode, 200, 'new key works');
  t.equal((await h.client.post(kid.slice(BASE.length), key, { kid, payload: '' })).statusCode, 400, 'old key no longer verifies');
});

await t.test('fail/keyChange to a key another account holds: 409 with its Location', async (t) => {
  const h = await harness();
  const { key, kid } = await h.register();
  const other = await h.register();
  const inner = await keyChangeInner(other.key, { url: `${BASE}${KEY_CHANGE}`, accountUrl: kid, oldKey: key.publicJwk });
  const response = await h.client.post(KEY_CHANGE, key, { kid, payload: inner });
  t.equal(response.statusCode, 409);
  t.equal(response.headers.location, other.kid);
  t.match(body(response), { type: 'urn:ietf:params:acme:error:malformed', status: 409, detail: /already the key of an account/ });
  t.equal(h.ra.callsOf('changeAccountKey').length, 0);
});

const badKeyChanges: {
  name: string;
  inner: (ctx: { newKey: Awaited<ReturnType<typeof makeAccountKey>>; key: Awaited<ReturnType<typeof makeAccountKey>>; kid: string }) => Promise<unknown>;
  type: string;
  detail: RegExp;
}[] = [
  {
    name: 'fail/keyChange inner url differs from the outer',
    inner: ({ newKey, key, kid }) => keyChangeInner(newKey, { url: `${BASE}/acme/new-order`, accountUrl: kid, oldKey: key.publicJwk }),
    type: 'malformed',
    detail: /differs from the outer "url"/,
  },
  {
    name: 'fail/keyChange inner carries a nonce',
    inner: ({ newKey, key, kid }) => keyChangeInner(newKey, { url: `${BASE}${KEY_CHANGE}`, accountUrl: kid, oldKey: key.publicJwk, header: { nonce: 'AAAAAAAAAAAAAAAAAAAAAA' } }),
    type: 'malformed',
    detail: /must omit "nonce"/,
  },
  {
    name: 'fail/keyChange inner uses kid',
    inner: ({ newKey, key, kid }) =>
      signJws(newKey, { url: `${BASE}${KEY_CHANGE}`, nonce: null, kid, payload: { account: kid, oldKey: key.publicJwk } }),
    type: 'malformed',
    detail: /with "jwk", not "kid"/,
  },
  {
    name: 'fail/keyChange inner signed by a key other than its jwk',
    inner: async ({ newKey, key, kid }) =>
      signJws(key, { url: `${BASE}${KEY_CHANGE}`, nonce: null, jwk: newKey.publicJwk, payload: { account: kid, oldKey: key.publicJwk } }),
    type: 'malformed',
    detail: /keyChange inner JWS signature is invalid/,
  },
  {
    name: 'fail/keyChange oldKey is not the account key',
    inner: async ({ newKey, kid }) => keyChangeInner(newKey, { url: `${BASE}${KEY_CHANGE}`, accountUrl: kid, oldKey: (await makeAccountKey()).publicJwk }),
    type: 'unauthorized',
    detail: /"oldKey" is not the current key/,
  },
  {
    name: 'fail/keyChange account is another URL',
    inner: ({ newKey, key }) => keyChangeInner(newKey, { url: `${BASE}${KEY_CHANGE}`, accountUrl: `${BASE}/acme/acct/someone-else`, oldKey: key.publicJwk }),
    type: 'unauthorized',
    detail: /is not the account that signed/,
  },
  {
    name: 'fail/keyChange payload is not a JWS',
    inner: async () => ({ account: 'x', oldKey: {} }),
    type: 'malformed',
    detail: /keyChange inner JWS has an unexpected member/,
  },
  {
    name: 'fail/keyChange inner alg none',
    inner: async ({ newKey, key, kid }) => {
      const b64 = (v: unknown): string => Buffer.from(JSON.stringify(v)).toString('base64url');
      return { protected: b64({ alg: 'none', jwk: newKey.publicJwk, url: `${BASE}${KEY_CHANGE}` }), payload: b64({ account: kid, oldKey: key.publicJwk }), signature: '' };
    },
    type: 'badSignatureAlgorithm',
    detail: /"none" is not supported/,
  },
];

for (const c of badKeyChanges) {
  await t.test(c.name, async (t) => {
    const h = await harness();
    const { key, kid, account } = await h.register();
    const newKey = await makeAccountKey();
    const response = await h.client.post(KEY_CHANGE, key, { kid, payload: await c.inner({ newKey, key, kid }) });
    t.equal(response.statusCode, c.type === 'unauthorized' ? 403 : 400, response.body);
    t.match(body(response), { type: `urn:ietf:params:acme:error:${c.type}`, detail: c.detail });
    t.equal(h.ra.callsOf('changeAccountKey').length, 0, 'key unchanged');
    t.equal(h.ra.accounts.get(account.id)!.jwkThumbprint, key.thumbprint);
  });
}
