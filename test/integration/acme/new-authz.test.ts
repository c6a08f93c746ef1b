import t from 'tap';
import type { Validator } from '../../../src/va/validator.js';
import { InjectClient, makeAccountKey } from '../../helpers/acme-jws.js';
import { composeForTest } from '../../helpers/runtime.js';

/**
 * Pre-authorization (RFC 8555 §7.4.1) through the wire protocol: advertised in the directory, the same
 * identifier and network policy as newOrder, wildcards refused, and a later order reuses the authorization.
 * Bad requests change nothing stored.
 */
const validator: Validator = { validate: async () => ({ valid: true }) };
const { chancery } = await composeForTest({ validator });
t.teardown(() => chancery.close());
const app = (await chancery.apps()).acme;
const client = new InjectClient(app, chancery.acmeUrl);
const key = await makeAccountKey('ES256');
const kid = String((await client.post('/acme/new-account', key, { payload: { termsOfServiceAgreed: true } })).headers.location);
const newAuthz = (identifier: unknown) => client.post('/acme/new-authz', key, { kid, payload: { identifier } });
const authorizations = async (): Promise<number> => (await chancery.db.query<{ n: number }>('SELECT count(*)::int AS n FROM authorizations')).rows[0]!.n;

await t.test('ok/the directory advertises newAuthz', async (t) => {
  const directory = JSON.parse((await app.inject({ method: 'GET', url: '/acme/directory' })).body) as Record<string, unknown>;
  t.equal(directory.newAuthz, `${chancery.acmeUrl}/acme/new-authz`);
});

await t.test('ok/a pending authorization, validated, then reused by an order (ready at once) and by newAuthz (200)', async (t) => {
  const created = await newAuthz({ type: 'dns', value: 'Pre.Example.Internal' });
  t.equal(created.statusCode, 201, created.body);
  const location = String(created.headers.location);
  t.match(location, /\/acme\/authz\//);
  const authz = JSON.parse(created.body) as { status: string; identifier: { value: string }; challenges: { type: string; url: string }[] };
  t.equal(authz.status, 'pending');
  t.equal(authz.identifier.value, 'pre.example.internal', 'normalised like an order identifier');
  t.same(authz.challenges.map((c) => c.type).sort(), ['dns-01', 'http-01', 'tls-alpn-01']);
  await client.post(authz.challenges.find((c) => c.type === 'http-01')!.url, key, { kid, payload: {} });
  await chancery.services.scheduler.runOnce();
  t.equal((JSON.parse((await client.post(location, key, { kid, payload: '' })).body) as { status: string }).status, 'valid');

  const order = await client.post('/acme/new-order', key, { kid, payload: { identifiers: [{ type: 'dns', value: 'pre.example.internal' }] } });
  const body = JSON.parse(order.body) as { status: string; authorizations: string[] };
  t.equal(body.status, 'ready', 'the order reuses the pre-authorization');
  t.same(body.authorizations, [location]);

  const again = await newAuthz({ type: 'dns', value: 'pre.example.internal' });
  t.equal(again.statusCode, 200, 'the valid one the account holds');
  t.equal(again.headers.location, location);
});

await t.test('ok/an ip identifier gets no dns-01 (RFC 8738 §7)', async (t) => {
  const created = await newAuthz({ type: 'ip', value: '127.0.0.2' });
  t.equal(created.statusCode, 201, created.body);
  t.same((JSON.parse(created.body) as { challenges: { type: string }[] }).challenges.map((c) => c.type).sort(), ['http-01', 'tls-alpn-01']);
});

await t.test('fail/bad requests are refused precisely and store nothing', async (t) => {
  const before = await authorizations();
  const cases: [string, unknown, number, string, RegExp][] = [
    ['a wildcard', { type: 'dns', value: '*.example.internal' }, 400, 'rejectedIdentifier', /wildcard/],
    ['an unknown identifier type', { type: 'email', value: 'ops@example.internal' }, 400, 'unsupportedIdentifier', /only "dns" and "ip"/],
    ['a bad DNS name', { type: 'dns', value: 'bad..name' }, 400, 'rejectedIdentifier', /invalid label/],
    ['a metadata address (validation network policy)', { type: 'ip', value: '169.254.169.254' }, 400, 'rejectedIdentifier', /network policy/],
    ['no identifier', undefined, 400, 'malformed', /"identifier" is required/],
  ];
  for (const [name, identifier, status, type, detail] of cases) {
    const response = await client.post('/acme/new-authz', key, { kid, payload: identifier === undefined ? {} : { identifier } });
    t.equal(response.statusCode, status, `${name}: ${response.body}`);
    t.match(JSON.parse(response.body), { type: `urn:ietf:params:acme:error:${type}`, detail }, name);
  }
  t.equal(await authorizations(), before, 'nothing stored');
});
