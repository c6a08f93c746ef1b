import { generateKeyPairSync } from 'node:crypto';
import { calculateJwkThumbprint } from 'jose';
import t from 'tap';
import { certIdOf } from '../../../src/ca/cert-id.js';
import type { Account } from '../../../src/core/account.js';
import type { Validator } from '../../../src/va/validator.js';
import { makeCsr, requireOpenssl } from '../../helpers/openssl.js';
import { composeForTest } from '../../helpers/runtime.js';

/**
 * Lineage through the ACME RA, as clients renew: with `replaces` (RFC 9773 §5, an ARI-aware client) and
 * without (the same account ordering the same names again, as certbot and lego do without ARI), mixed in
 * one chain; one call returns the chain (GET /admin/v1/certificates/{serial}/lineage), both directions.
 */
requireOpenssl();
const validator: Validator = { validate: async () => ({ valid: true }) };
const { chancery } = await composeForTest({ validator });
t.teardown(() => chancery.close());
const { ra, scheduler } = chancery.services;

async function newAccount(): Promise<Account> {
  const jwk = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'jwk' }) as Record<string, string>;
  const { account } = await ra.newAccount({
    publicJwk: jwk,
    jwkThumbprint: await calculateJwkThumbprint(jwk as never),
    contacts: [],
    termsOfServiceAgreed: true,
    onlyReturnExisting: false,
    newAccountUrl: `${chancery.acmeUrl}/acme/new-account`,
  });
  return account;
}

async function issue(account: Account, names: string[], replaces?: Uint8Array): Promise<{ serial: string; der: Uint8Array }> {
  const order = await ra.newOrder(account, { identifiers: names.map((value) => ({ type: 'dns', value })), ...(replaces ? { replaces: certIdOf(replaces) } : {}) });
  for (const id of order.authorizationIds) {
    const authz = await ra.getAuthorization(account, id);
    if (authz.status === 'pending') await ra.respondToChallenge(account, authz.challenges.find((c) => c.type === 'http-01')!.id);
  }
  await scheduler.runOnce();
  const csr = await makeCsr({ keyType: 'ec-p256', sans: names.map((n) => `DNS:${n}`) });
  const done = await ra.finalizeOrder(account, order.id, csr.der);
  return { serial: done.certificateSerial!, der: (await ra.getCertificateChain(account, done.certificateSerial!)).certificate };
}

const alice = await newAccount();
const mallory = await newAccount();
const first = await issue(alice, ['www.lineage.test', 'lineage.test']);
const viaReplaces = await issue(alice, ['www.lineage.test', 'lineage.test'], first.der);
const plain = await issue(alice, ['lineage.test', 'www.lineage.test']);
const others = await issue(mallory, ['www.lineage.test', 'lineage.test']);
const renamed = await issue(alice, ['api.lineage.test'], plain.der);

async function lineage(serial: string, query = ''): Promise<{ status: number; body: { items: { position: number; certificate: { serial: string; predecessor?: string; replaces?: string } }[]; moreBefore: boolean; moreAfter: boolean } }> {
  const admin = await chancery.localAdmin();
  const response = await admin.inject({ method: 'GET', url: `/admin/v1/certificates/${serial}/lineage${query}`, headers: { 'x-chancery-user': 'test' } });
  return { status: response.statusCode, body: JSON.parse(response.body) };
}

await t.test('ok/with replaces, without, and replaces with other names: one chain', async (t) => {
  const { status, body } = await lineage(plain.serial);
  t.equal(status, 200);
  t.same(body.items.map((i) => i.certificate.serial), [first.serial, viaReplaces.serial, plain.serial, renamed.serial], 'oldest first');
  t.same(body.items.map((i) => i.position), [-2, -1, 0, 1]);
  const [a, b, c, d] = body.items.map((i) => i.certificate);
  t.equal(a!.predecessor, undefined, 'the first has no predecessor');
  t.equal(b!.predecessor, first.serial, 'RFC 9773 replaces');
  t.equal(b!.replaces, first.serial);
  t.equal(c!.predecessor, viaReplaces.serial, 'no replaces: the previous certificate of the account for the same names, in any order');
  t.equal(c!.replaces, undefined);
  t.equal(d!.predecessor, plain.serial, 'replaces across a change of names');
  t.same([body.moreBefore, body.moreAfter], [false, false]);
});

await t.test('ok/the same names ordered by another account start another lineage', async (t) => {
  const { body } = await lineage(others.serial);
  t.same(body.items.map((i) => i.certificate.serial), [others.serial]);
});

await t.test('ok/from either end, and limited', async (t) => {
  t.same((await lineage(first.serial)).body.items.map((i) => i.position), [0, 1, 2, 3]);
  const cut = await lineage(first.serial, '?after=1');
  t.same(cut.body.items.map((i) => i.certificate.serial), [first.serial, viaReplaces.serial]);
  t.equal(cut.body.moreAfter, true, 'says there is more');
});

await t.test('fail/unknown certificates and bad parameters', async (t) => {
  t.equal((await lineage('00aabb')).status, 404);
  t.equal((await lineage('not-hex')).status, 400);
  t.equal((await lineage(first.serial, '?before=100000')).status, 400);
});
