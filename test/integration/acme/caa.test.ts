import t from 'tap';
import { FakeClock, HOUR } from '../../../src/core/clock.js';
import { dns01Digest } from '../../../src/va/dns01-validator.js';
import { InjectClient, makeAccountKey, type TestKey } from '../../helpers/acme-jws.js';
import { startDnsServer } from '../../helpers/dns-server.js';
import { makeCsr } from '../../helpers/openssl.js';
import { composeForTest } from '../../helpers/runtime.js';

/**
 * CAA (RFC 8659, RFC 8657) through the wire protocol with the real validation authority: dns-01 answered by
 * a DNS server on loopback that also serves the CAA records. A record naming another CA, a malformed one, a
 * wildcard's issuewild and an account binding each decide; an old validation is checked again at finalize
 * (fake clock); a lookup that fails is not read as permission.
 */
const dns = await startDnsServer();
t.teardown(() => dns.close());
const clock = new FakeClock(new Date(Math.floor(Date.now() / 1000) * 1000));
const { chancery } = await composeForTest({
  clock,
  env: {
    CHANCERY_VALIDATION_CAA: 'true',
    CHANCERY_ACME_CAA_IDENTITIES: 'ca.test',
    CHANCERY_DNS_RESOLVERS: dns.resolver,
    CHANCERY_VALIDATION_TIMEOUT_SECONDS: '3',
    CHANCERY_VALIDATION_MAX_ATTEMPTS: '1',
  },
});
t.teardown(() => chancery.close());
const app = (await chancery.apps()).acme;
const client = new InjectClient(app, chancery.acmeUrl);

async function account(): Promise<{ key: TestKey; kid: string }> {
  const key = await makeAccountKey('ES256');
  const kid = String((await client.post('/acme/new-account', key, { payload: { termsOfServiceAgreed: true } })).headers.location);
  return { key, kid };
}
const alice = await account();

/** An order for `name`, its dns-01 answered in the DNS server and validated; the order as it then is. */
async function validate(who: { key: TestKey; kid: string }, name: string): Promise<{ url: string; status: string; finalize: string; authz: { status: string; challenges: { type: string; error?: { type: string; detail: string } }[] } }> {
  const created = await client.post('/acme/new-order', who.key, { kid: who.kid, payload: { identifiers: [{ type: 'dns', value: name }] } });
  if (created.statusCode !== 201) throw new Error(`newOrder ${created.statusCode}: ${created.body}`);
  const url = String(created.headers.location);
  const { authorizations, finalize } = JSON.parse(created.body) as { authorizations: string[]; finalize: string };
  const authz = JSON.parse((await client.post(authorizations[0]!, who.key, { kid: who.kid, payload: '' })).body) as { challenges: { type: string; url: string; token: string }[] };
  const challenge = authz.challenges.find((c) => c.type === 'dns-01')!;
  dns.setTxt(`_acme-challenge.${name.replace(/^\*\./, '')}`, [dns01Digest(`${challenge.token}.${who.key.thumbprint}`)]);
  await client.post(challenge.url, who.key, { kid: who.kid, payload: {} });
  await chancery.services.scheduler.runOnce();
  const after = JSON.parse((await client.post(authorizations[0]!, who.key, { kid: who.kid, payload: '' })).body) as { status: string; challenges: { type: string; error?: { type: string; detail: string } }[] };
  const order = JSON.parse((await client.post(url, who.key, { kid: who.kid, payload: '' })).body) as { status: string };
  return { url, status: order.status, finalize, authz: after };
}

async function finalize(who: { key: TestKey; kid: string }, order: { finalize: string }, name: string) {
  const csr = await makeCsr({ keyType: 'ec-p256', sans: [`DNS:${name}`] });
  return client.post(order.finalize, who.key, { kid: who.kid, payload: { csr: csr.der.toString('base64url') } });
}

const caaError = (authz: { challenges: { error?: { type: string; detail: string } }[] }) => authz.challenges.find((c) => c.error)?.error;

await t.test('ok/a zone whose CAA names this CA is validated and issued', async (t) => {
  dns.setCaa('allowed.test', [{ tag: 'issue', value: 'ca.test' }]);
  const order = await validate(alice, 'www.allowed.test');
  t.equal(order.status, 'ready', JSON.stringify(order.authz));
  t.equal((await finalize(alice, order, 'www.allowed.test')).statusCode, 200);
  t.ok(dns.queries.includes('CAA www.allowed.test') && dns.queries.includes('CAA allowed.test'), 'climbed from the name to its parent');
});

await t.test('ok/no CAA records at all: issuance is allowed (RFC 8659 §3)', async (t) => {
  t.equal((await validate(alice, 'open.nocaa.test')).status, 'ready');
});

await t.test('fail/CAA naming another CA fails the authorization with a caa problem', async (t) => {
  dns.setCaa('other.test', [{ tag: 'issue', value: 'letsencrypt.org' }]);
  const order = await validate(alice, 'www.other.test');
  t.equal(order.authz.status, 'invalid');
  t.equal(order.status, 'invalid');
  t.match(caaError(order.authz), { type: 'urn:ietf:params:acme:error:caa', detail: /do not authorize this CA.*issue names letsencrypt\.org/ });
});

await t.test('fail/a malformed CAA record authorizes no one', async (t) => {
  dns.setCaa('broken.test', [{ tag: 'issue', value: 'ca.test; accounturi' }]);
  const order = await validate(alice, 'www.broken.test');
  t.equal(order.authz.status, 'invalid');
  t.match(caaError(order.authz), { type: 'urn:ietf:params:acme:error:caa', detail: /malformed issue/ });
});

await t.test('fail/a wildcard follows issuewild; its base name follows issue', async (t) => {
  dns.setCaa('wild.test', [
    { tag: 'issue', value: 'ca.test' },
    { tag: 'issuewild', value: ';' },
  ]);
  const wildcard = await validate(alice, '*.wild.test');
  t.equal(wildcard.authz.status, 'invalid');
  t.match(caaError(wildcard.authz), { type: 'urn:ietf:params:acme:error:caa', detail: /issuewild ";" forbids every CA/ });
  t.equal((await validate(alice, 'wild.test')).status, 'ready');
});

await t.test('ok/fail: accounturi binds the zone to one account (RFC 8657)', async (t) => {
  dns.setCaa('bound.test', [{ tag: 'issue', value: `ca.test; accounturi=${alice.kid}` }]);
  t.equal((await validate(alice, 'a.bound.test')).status, 'ready', 'the bound account');
  const bob = await account();
  const refused = await validate(bob, 'b.bound.test');
  t.equal(refused.authz.status, 'invalid');
  t.match(caaError(refused.authz), { detail: /another account/ });
});

await t.test('fail/a CAA lookup that fails is not permission', async (t) => {
  dns.setServfail('failing.test');
  const order = await validate(alice, 'www.failing.test');
  t.not(order.authz.status, 'valid');
  t.match(caaError(order.authz), { type: 'urn:ietf:params:acme:error:dns', detail: /CAA lookup for .*failing\.test failed/ });
  dns.setServfail('failing.test', false);
});

await t.test('ok/fail: finalize re-checks CAA once the validation is older than recheckHours', async (t) => {
  dns.setCaa('changing.test', [{ tag: 'issue', value: 'ca.test' }]);
  const fresh = await validate(alice, 'fresh.changing.test');
  const old = await validate(alice, 'old.changing.test');
  t.equal(fresh.status, 'ready');
  t.equal(old.status, 'ready');
  dns.setCaa('changing.test', [{ tag: 'issue', value: 'letsencrypt.org' }]);
  clock.advance(HOUR);
  client.forgetNonce();
  t.equal((await finalize(alice, fresh, 'fresh.changing.test')).statusCode, 200, 'validated an hour ago: not checked again');
  clock.advance(8 * HOUR);
  client.forgetNonce();
  const refused = await finalize(alice, old, 'old.changing.test');
  t.equal(refused.statusCode, 403, refused.body);
  t.match(JSON.parse(refused.body), { type: 'urn:ietf:params:acme:error:caa', detail: /old\.changing\.test: .*issue names letsencrypt\.org/ });
  const still = JSON.parse((await client.post(old.url, alice.key, { kid: alice.kid, payload: '' })).body) as { status: string };
  t.equal(still.status, 'ready', 'refused before the claim: the order can be finalized once CAA allows it');
  dns.setCaa('changing.test', [{ tag: 'issue', value: 'ca.test' }]);
  t.equal((await finalize(alice, old, 'old.changing.test')).statusCode, 200);
});

await t.test('fail/CAA on without caaIdentities stops start-up naming the settings', async (t) => {
  await t.rejects(composeForTest({ env: { CHANCERY_VALIDATION_CAA: 'true' } }), { kind: 'badConfig', message: /CHANCERY_ACME_CAA_IDENTITIES/ });
});
