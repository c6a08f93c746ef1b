import { renameSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { FakeClock, SECOND } from '../../../src/core/clock.js';
import type { Validator } from '../../../src/va/validator.js';
import { InjectClient, makeAccountKey } from '../../helpers/acme-jws.js';
import { makeCsr, requireOpenssl } from '../../helpers/openssl.js';
import { composeForTest } from '../../helpers/runtime.js';
import { createSoftHsmToken } from '../../helpers/softhsm.js';

/**
 * Losing the HSM under a running server, end to end on SoftHSM: the token directory is removed while the CA
 * (keys in the token, CHANCERY_KEYS=pkcs11) serves ACME, then put back. /readyz says so (503 with the
 * reason) while it is gone; finalize answers 503 with Retry-After and leaves the order ready, except the one
 * finalize that was signing when the token went (it is the one that notices: that order is invalid, and the
 * answer is still a 503, not a 500); once the token is back the same process issues again, for the order
 * that waited, without a restart.
 */
requireOpenssl();
const token = createSoftHsmToken('chancery-outage');
if (token === undefined) {
  t.plan(0, 'SoftHSM is not installed');
} else {
  t.teardown(() => token.cleanup());
  const tokens = join(token.dir, 'tokens');
  let removed = false;
  const remove = (): void => {
    renameSync(tokens, `${tokens}.away`);
    removed = true;
  };
  const restore = (): void => {
    renameSync(`${tokens}.away`, tokens);
    removed = false;
  };
  t.teardown(() => {
    if (removed) restore();
  });

  const clock = new FakeClock(new Date('2026-04-01T00:00:00Z'));
  const validator: Validator = { validate: async () => ({ valid: true }) };
  const { chancery } = await composeForTest({
    clock,
    validator,
    listen: false,
    env: {
      CHANCERY_KEYS: 'pkcs11',
      CHANCERY_PKCS11_LIBRARY: token.library,
      CHANCERY_PKCS11_TOKEN_LABEL: token.tokenLabel,
      CHANCERY_PKCS11_PIN: token.pin,
      CHANCERY_KEYS_HEALTH_CACHE_SECONDS: '5',
    },
  });
  t.teardown(() => chancery.close());
  const apps = await chancery.apps();
  const client = new InjectClient(apps.acme, chancery.acmeUrl);
  const key = await makeAccountKey('ES256');
  const kid = String((await client.post('/acme/new-account', key, { payload: { termsOfServiceAgreed: true } })).headers.location);

  const readyz = async (): Promise<{ status: number; body: string }> => {
    const response = await apps.public.inject({ method: 'GET', url: '/readyz' });
    return { status: response.statusCode, body: response.body };
  };
  const orderStatus = async (url: string): Promise<{ status: string; error?: { detail: string } }> =>
    JSON.parse((await client.post(url, key, { kid, payload: '' })).body) as { status: string; error?: { detail: string } };
  async function readyOrder(name: string): Promise<{ url: string; finalize: string }> {
    const order = await client.post('/acme/new-order', key, { kid, payload: { identifiers: [{ type: 'dns', value: name }] } });
    if (order.statusCode !== 201) throw new Error(`newOrder ${order.statusCode}: ${order.body}`);
    const body = JSON.parse(order.body) as { authorizations: string[]; finalize: string };
    for (const authz of body.authorizations) {
      const read = JSON.parse((await client.post(authz, key, { kid, payload: '' })).body) as { challenges: { type: string; url: string }[] };
      await client.post(read.challenges.find((c) => c.type === 'http-01')!.url, key, { kid, payload: {} });
    }
    await chancery.services.scheduler.runOnce();
    const url = String(order.headers.location);
    if ((await orderStatus(url)).status !== 'ready') throw new Error(`order for ${name} is not ready`);
    return { url, finalize: body.finalize };
  }
  const finalize = async (order: { finalize: string }, name: string) =>
    client.post(order.finalize, key, { kid, payload: { csr: (await makeCsr({ keyType: 'ec-p256', sans: [`DNS:${name}`] })).der.toString('base64url') } });

  // Two ready orders for the outage: one finalized as the token goes, one finalized during and after it.
  let waiting = { url: '', finalize: '' };
  let unlucky = { url: '', finalize: '' };

  await t.test('ok/healthy: ready, and issuance works', async (t) => {
    t.same(await readyz(), { status: 200, body: 'ready\n' });
    const order = await readyOrder('before.example.internal');
    const response = await finalize(order, 'before.example.internal');
    t.equal(response.statusCode, 200, response.body);
    t.equal((await orderStatus(order.url)).status, 'valid');
    waiting = await readyOrder('waiting.example.internal');
    unlucky = await readyOrder('unlucky.example.internal');
  });

  await t.test('ok/token removed: the finalize signing at that moment gets 503, not 500', async (t) => {
    remove();
    // Health was checked a moment ago and is cached: this finalize claims its order and its signature fails.
    const response = await finalize(unlucky, 'unlucky.example.internal');
    t.equal(response.statusCode, 503, response.body);
    t.ok(response.headers['retry-after'], 'with Retry-After');
    const order = await orderStatus(unlucky.url);
    t.equal(order.status, 'invalid', 'claimed, then failed: invalid (RFC 8555 §7.1.6 has no way back to ready)');
    t.match(order.error?.detail, /submit a new order/);
  });

  await t.test('ok/during the outage /readyz is 503 with the reason, finalize 503 + Retry-After, the order stays ready', async (t) => {
    // The failed signature makes the next check probe at once (no waiting out the cache).
    const probe = await readyz();
    t.equal(probe.status, 503);
    t.match(probe.body, /^not ready: signer: PKCS#11 token "chancery-outage" .*(CKR_|not present)/, probe.body.trim());
    for (let i = 0; i < 3; i += 1) {
      const response = await finalize(waiting, 'waiting.example.internal');
      t.equal(response.statusCode, 503, response.body);
      t.equal(response.headers['retry-after'], '5');
      t.match(JSON.parse(response.body), { type: 'urn:ietf:params:acme:error:serverInternal', status: 503, detail: /cannot sign right now.*still ready/ });
      t.equal((await orderStatus(waiting.url)).status, 'ready', 'still ready');
      clock.advance(6 * SECOND);
    }
  });

  await t.test('ok/token restored: ready again and the waiting order issues, without a restart', async (t) => {
    restore();
    clock.advance(6 * SECOND);
    t.same(await readyz(), { status: 200, body: 'ready\n' });
    const response = await finalize(waiting, 'waiting.example.internal');
    t.equal(response.statusCode, 200, response.body);
    t.equal((await orderStatus(waiting.url)).status, 'valid');
    const fresh = await readyOrder('after.example.internal');
    t.equal((await finalize(fresh, 'after.example.internal')).statusCode, 200, 'and a new order too');
  });
}
