import t from 'tap';
import type { Group } from '../../../src/core/group.js';
import type { DomainEvent } from '../../../src/core/events.js';
import type { Validator } from '../../../src/va/validator.js';
import { eabJws, InjectClient, makeAccountKey, type TestKey } from '../../helpers/acme-jws.js';
import { makeCsr, openssl, requireOpenssl, writeTemp } from '../../helpers/openssl.js';
import { composeForTest } from '../../helpers/runtime.js';

/**
 * Groups through the ACME wire protocol: an account made with an EAB credential of group `payments` gets
 * certificates within the group's policy and is refused outside it, each refusal naming the policy field —
 * identifiers (rejectedIdentifier, one subproblem per identifier), key type (badPublicKey), maximum
 * validity, profiles (invalidProfile); its certificates' inventory records carry the group and labels (and
 * the X.509 certificate does not); a pre-approved name is issued without a challenge only when the group
 * lists it; a policy change takes effect on the next request.
 */
requireOpenssl();
const validated: string[] = [];
const validator: Validator = {
  validate: async (request) => {
    validated.push(request.identifier.value);
    return { valid: true };
  },
};
const { chancery } = await composeForTest({ validator });
t.teardown(() => chancery.close());
const app = (await chancery.apps()).acme;
const client = new InjectClient(app, chancery.acmeUrl);
const { groups, eab, scheduler, certificates } = chancery.services;
const raised: DomainEvent[] = [];
for (const type of ['group.changed', 'eab.created', 'authorization.preapproved'] as const) {
  chancery.events.onCommitting(type, async (event) => void raised.push(event));
}

const scope = (value: string) => ({ type: 'suffix' as const, value, shared: false });
const policy: Group[] = [
  { name: 'default', contacts: [], policy: {} },
  {
    name: 'payments',
    contacts: ['pki-payments@example.com'],
    policy: {
      identifiers: [scope('pay.internal')],
      keyTypes: ['ecdsa'],
      maxValidityMs: 7 * 86_400_000,
      profiles: ['tls-server', 'mtls'],
      labels: { owner: 'payments', environment: 'production' },
      preapproved: ['legacy-hsm.pay.internal'],
    },
  },
  { name: 'hr', contacts: [], policy: { identifiers: [scope('hr.internal')] } },
];

const applied = await groups.apply(policy, { actor: 'cli:test' });
const credential = await eab.create({ group: 'payments', labels: { application: 'ledger', environment: 'staging' }, actor: 'cli:test' });

async function newAccount(binding?: { kid: string; hmacKey: string }): Promise<{ key: TestKey; kid: string }> {
  const key = await makeAccountKey('ES256');
  const url = `${chancery.acmeUrl}/acme/new-account`;
  const externalAccountBinding = binding && (await eabJws({ kid: binding.kid, hmacKey: Buffer.from(binding.hmacKey, 'base64url'), url, accountJwk: key.publicJwk }));
  const response = await client.post('/acme/new-account', key, { payload: { termsOfServiceAgreed: true, ...(externalAccountBinding ? { externalAccountBinding } : {}) } });
  if (response.statusCode !== 201) throw new Error(`newAccount: ${response.statusCode} ${response.body}`);
  return { key, kid: String(response.headers.location) };
}
const payments = await newAccount({ kid: credential.credential.kid, hmacKey: credential.hmacKey });
const other = await newAccount();

await t.test('ok/the policy is applied, one group.changed event per group in the transaction; eab.created', async (t) => {
  t.match(applied, { ok: true, applied: true });
  t.same(
    raised.filter((e) => e.type === 'group.changed').map((e) => e.type === 'group.changed' && [e.group, e.change]),
    [
      ['hr', 'created'],
      ['payments', 'created'],
    ],
  );
  t.match(raised.find((e) => e.type === 'eab.created'), { kid: credential.credential.kid, group: 'payments', actor: 'cli:test' });
});

type Json = Record<string, unknown>;
const post = async (who: { key: TestKey; kid: string }, path: string, payload: unknown): Promise<{ status: number; body: Json; location: string }> => {
  const response = await client.post(path, who.key, { kid: who.kid, payload });
  return { status: response.statusCode, body: JSON.parse(response.body || '{}') as Json, location: String(response.headers.location ?? '') };
};
const newOrder = (who: { key: TestKey; kid: string }, names: string[], extra: Json = {}) =>
  post(who, '/acme/new-order', { identifiers: names.map((value) => ({ type: 'dns', value })), ...extra });
const orderCount = async (): Promise<number> => (await chancery.db.query<{ n: number }>('SELECT count(*)::int AS n FROM orders')).rows[0]!.n;

/** Answers every pending authorization's http-01 challenge; the validator says yes. */
async function validate(who: { key: TestKey; kid: string }, order: Json): Promise<void> {
  for (const url of order.authorizations as string[]) {
    const authz = (await post(who, url, '')).body as { status: string; challenges: { type: string; url: string }[] };
    if (authz.status === 'pending') await post(who, authz.challenges.find((c) => c.type === 'http-01')!.url, {});
  }
  await scheduler.runOnce();
}

async function finalize(who: { key: TestKey; kid: string }, order: Json, name: string, keyType: 'ec-p256' | 'rsa-2048' = 'ec-p256'): Promise<{ status: number; body: Json }> {
  const csr = await makeCsr({ keyType, sans: [`DNS:${name}`] });
  return post(who, String(order.finalize), { csr: csr.der.toString('base64url') });
}

await t.test('ok/api.pay.internal: issued, its record carries the group and the labels, the X.509 does not', async (t) => {
  const { status, body: order } = await newOrder(payments, ['api.pay.internal']);
  t.equal(status, 201);
  t.equal(order.profile, 'tls-server');
  await validate(payments, order);
  const done = await finalize(payments, order, 'api.pay.internal');
  t.equal(done.status, 200, JSON.stringify(done.body));
  const serial = String(done.body.certificate).split('/').pop()!;
  const record = await certificates.findBySerial(serial);
  t.equal(record?.group, 'payments');
  t.same(record?.labels, { owner: 'payments', environment: 'staging', application: 'ledger' }, "the group's labels with the credential's over them");
  const pem = (await client.post(String(done.body.certificate), payments.key, { kid: payments.kid, payload: '' })).body.split(/(?<=-----END CERTIFICATE-----\n)/)[0]!;
  const file = await writeTemp('leaf.pem', pem);
  const text = (await openssl(['x509', '-in', file, '-noout', '-text'])).stdout;
  t.notMatch(text, /payments|ledger|staging/, 'neither group nor labels inside the certificate');
  const dates = (await openssl(['x509', '-in', file, '-noout', '-startdate', '-enddate'])).stdout;
  const span = (Date.parse(/notAfter=(.*)/.exec(dates)![1]!) - Date.parse(/notBefore=(.*)/.exec(dates)![1]!)) / 1000;
  t.equal(span, 7 * 86400 - 1, "cut to the group's maxValidity of 7 days (the profile says 30)");
});

await t.test('fail/db.hr.internal: rejectedIdentifier naming the rule, one subproblem per refused identifier, nothing stored', async (t) => {
  const before = await orderCount();
  const single = await newOrder(payments, ['db.hr.internal']);
  t.equal(single.status, 400);
  t.match(single.body, {
    type: 'urn:ietf:params:acme:error:rejectedIdentifier',
    detail: /db.hr.internal is outside the identifier scopes of group "payments" \(policy identifiers: suffix pay.internal\)/,
    subproblems: [{ type: 'urn:ietf:params:acme:error:rejectedIdentifier', identifier: { type: 'dns', value: 'db.hr.internal' }, detail: /policy identifiers/ }],
  });
  const mixed = await newOrder(payments, ['api.pay.internal', 'db.hr.internal', 'www.example.internal']);
  t.equal(mixed.status, 400);
  t.same(
    (mixed.body.subproblems as { identifier: { value: string } }[]).map((s) => s.identifier.value),
    ['db.hr.internal', 'www.example.internal'],
    'the refused ones only',
  );
  t.equal(await orderCount(), before, 'no order stored');
  const fromDefault = await newOrder(other, ['api.pay.internal']);
  t.match(fromDefault.body, { type: 'urn:ietf:params:acme:error:rejectedIdentifier', detail: /in the scope suffix pay.internal of group "payments"; group "default" declares no identifier scopes/ }, 'an account without EAB cannot reach into a department');
  t.equal((await newOrder(other, ['web.example.internal'])).status, 201, 'and gets what no group declares');
});

await t.test('fail/an RSA key where the group allows ECDSA only: badPublicKey naming the limit, the order stays ready', async (t) => {
  const { body: order, location } = await newOrder(payments, ['rsa.pay.internal']);
  await validate(payments, order);
  const refused = await finalize(payments, order, 'rsa.pay.internal', 'rsa-2048');
  t.equal(refused.status, 400);
  t.match(refused.body, { type: 'urn:ietf:params:acme:error:badPublicKey', detail: /group "payments" allows only ECDSA certificate keys \(policy keyTypes\)/ });
  t.equal((await post(payments, location, '')).body.status, 'ready', 'still ready');
  const again = await finalize(payments, order, 'rsa.pay.internal', 'ec-p256');
  t.equal(again.status, 200, 'the same order, finalized with an allowed key');
});

await t.test('fail/a notAfter beyond the maximum validity is refused at newOrder, naming it', async (t) => {
  const notAfter = new Date(chancery.clock.now().getTime() + 8 * 86_400_000).toISOString();
  const refused = await newOrder(payments, ['long.pay.internal'], { notAfter });
  t.equal(refused.status, 400);
  t.match(refused.body, { type: 'urn:ietf:params:acme:error:malformed', detail: /beyond the maximum validity of group "payments": 7d \(policy maxValidity\)/ });
});

await t.test('fail/a profile the group does not allow: invalidProfile naming the allowed ones; ok/an allowed one', async (t) => {
  const refused = await newOrder(payments, ['short.pay.internal'], { profile: 'short-lived' });
  t.equal(refused.status, 400);
  t.match(refused.body, { type: 'urn:ietf:params:acme:error:invalidProfile', detail: /choose one of tls-server, mtls \(policy profiles\)/ });
  const allowed = await newOrder(payments, ['mtls.pay.internal'], { profile: 'mtls' });
  t.equal(allowed.status, 201);
  t.equal(allowed.body.profile, 'mtls');
});

await t.test('ok/a pre-approved name is issued without a challenge, and raises authorization.preapproved', async (t) => {
  validated.length = 0;
  const { status, body: order } = await newOrder(payments, ['legacy-hsm.pay.internal']);
  t.equal(status, 201);
  t.equal(order.status, 'ready', 'ready at once');
  const authz = (await post(payments, (order.authorizations as string[])[0]!, '')).body;
  t.match(authz, { status: 'valid', identifier: { value: 'legacy-hsm.pay.internal' } });
  t.same(authz.challenges, [], 'no challenge to answer');
  const done = await finalize(payments, order, 'legacy-hsm.pay.internal');
  t.equal(done.status, 200, JSON.stringify(done.body));
  t.same(validated, [], 'nothing was validated');
  const event = raised.find((e) => e.type === 'authorization.preapproved');
  t.match(event, { type: 'authorization.preapproved', group: 'payments', identifier: { type: 'dns', value: 'legacy-hsm.pay.internal' } });
});

await t.test('fail/only when the group lists it: another name of the group, and the same name in another group, get challenges', async (t) => {
  const { body: listedNot } = await newOrder(payments, ['other-hsm.pay.internal']);
  t.equal(listedNot.status, 'pending');
  const authz = (await post(payments, (listedNot.authorizations as string[])[0]!, '')).body as { status: string; challenges: unknown[] };
  t.equal(authz.status, 'pending');
  t.ok(authz.challenges.length > 0, 'challenges to answer');
  await groups.apply(
    policy.map((g) => (g.name === 'hr' ? { ...g, policy: { ...g.policy, identifiers: [scope('hr.internal'), scope('hsm.other.internal')] } } : g)),
    { actor: 'cli:test' },
  );
  const hrCredential = await eab.create({ group: 'hr', actor: 'cli:test' });
  const hr = await newAccount({ kid: hrCredential.credential.kid, hmacKey: hrCredential.hmacKey });
  const { body: hrOrder } = await newOrder(hr, ['hsm.other.internal']);
  t.equal(hrOrder.status, 'pending', 'hr lists no pre-approved names: the default is off');
});

await t.test('ok/a policy change takes effect on the next request: a pre-approved name removed, a scope taken away before finalize', async (t) => {
  const { body: ready, location } = await newOrder(payments, ['late.pay.internal']);
  await validate(payments, ready);
  await groups.apply(
    policy.map((g) => (g.name === 'payments' ? { ...g, policy: { ...g.policy, preapproved: [], identifiers: [scope('api.pay.internal'), scope('legacy-hsm.pay.internal')] } } : g)),
    { actor: 'cli:test' },
  );
  const { body: order } = await newOrder(payments, ['legacy-hsm.pay.internal']);
  t.equal(order.status, 'pending', 'no longer pre-approved: the earlier valid authorization is not reused');
  const refused = await finalize(payments, ready, 'late.pay.internal');
  t.equal(refused.status, 400);
  t.match(refused.body, { type: 'urn:ietf:params:acme:error:rejectedIdentifier', detail: /late.pay.internal is outside the identifier scopes/ });
  t.equal((await post(payments, location, '')).body.status, 'ready', 'the order stays ready');
});

await t.test('ok/the audit log records each group change, each pre-approved authorization, and the group of each issuance', async (t) => {
  const entries = async (action: string) => (await chancery.services.audit.query({ action }, { limit: 100 })).entries;
  const created = await entries('group.create');
  t.same(created.map((e) => [e.subject, e.actor, e.group]).sort(), [
    ['group:hr', 'cli:test', 'hr'],
    ['group:payments', 'cli:test', 'payments'],
  ]);
  const updated = await entries('group.update');
  t.ok(updated.length >= 2, 'every later apply that changed a group');
  t.match(JSON.parse(updated.at(-1)!.details!), { before: { policy: { preapproved: ['legacy-hsm.pay.internal'] } }, after: { policy: { preapproved: [] } } }, 'as it was and as it is');
  const preapproved = await entries('authorization.preapprove');
  t.equal(preapproved.length, 1);
  t.match(preapproved[0], { group: 'payments', actor: /^account:/ });
  t.match(JSON.parse(preapproved[0]!.details!), { identifier: 'dns:legacy-hsm.pay.internal' });
  const issued = (await entries('certificate.issue')).filter((e) => e.group === 'payments');
  t.ok(issued.length >= 3, 'the group names the issuance: its admins read it');
  t.match(JSON.parse(issued[0]!.details!), { labels: { owner: 'payments', application: 'ledger' } });
});
