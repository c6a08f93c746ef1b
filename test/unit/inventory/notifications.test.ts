import t from 'tap';
import { FakeClock, SECOND } from '../../../src/core/clock.js';
import { isCaError } from '../../../src/core/errors.js';
import { createNetworkPolicy } from '../../../src/va/network-policy.js';
import { factsOfKind, keyKind, weakness } from '../../../src/inventory/key-inventory.js';
import { RETRY_DELAYS_MS, WebhookDeliverer, type DeliveryStore, type DueDelivery } from '../../../src/inventory/webhook-delivery.js';
import { newWebhookSecret, signWebhook, verifyWebhook } from '../../../src/inventory/webhook-signature.js';
import { checkWebhookUrl, secretContext } from '../../../src/inventory/webhooks.js';
import { CSR_KEY_POLICY } from '../../../src/policy/key-policy.js';

const policy = createNetworkPolicy({ allowLoopback: true, denyNetworks: ['10.9.0.0/16'] });

t.test('webhook URLs', async (t) => {
  const ok: [string, boolean, string][] = [
    ['ok/https with a name', false, 'https://hooks.example.test/chancery'],
    ['ok/https with a port and a query', false, 'https://hooks.example.test:8443/x?team=pay'],
    ['ok/http when allowed', true, 'http://127.0.0.1:9000/hook'],
    ['ok/an IPv6 literal', false, 'https://[2001:db8::1]/hook'],
  ];
  for (const [name, allowHttp, url] of ok) t.equal(checkWebhookUrl(url, allowHttp, policy), new URL(url).href, name);
  const fail: [string, boolean, string, RegExp][] = [
    ['fail/http when not allowed', false, 'http://hooks.example.test/x', /must be https \(http only with notifications.allowHttp/],
    ['fail/another scheme', true, 'ftp://hooks.example.test/x', /must be https or http/],
    ['fail/not a URL', false, 'hooks.example.test/x', /not an absolute URL/],
    ['fail/credentials', false, 'https://u:p@hooks.example.test/x', /user name or password/],
    ['fail/a fragment', false, 'https://hooks.example.test/x#y', /fragment/],
    ['fail/cloud metadata', false, 'https://169.254.169.254/', /always denied/],
    ['fail/denyNetworks', false, 'https://10.9.1.1/', /validation.denyNetworks/],
    ['fail/an embedded IPv4', false, 'https://[::ffff:169.254.169.254]/', /always denied/],
    ['fail/too long', false, `https://hooks.example.test/${'a'.repeat(2100)}`, /at most 2048/],
  ];
  for (const [name, allowHttp, url, detail] of fail) {
    try {
      checkWebhookUrl(url, allowHttp, policy);
      t.fail(`${name}: accepted`);
    } catch (error) {
      t.ok(isCaError(error, 'malformed'), name);
      if (isCaError(error)) t.match(error.detail, detail, name);
    }
  }
});

t.test('signatures', async (t) => {
  const secret = newWebhookSecret();
  t.match(secret, /^whsec_[A-Za-z0-9_-]{43}$/);
  const body = '{"id":"evt_1","type":"renewal-overdue"}';
  const signature = signWebhook(secret, 1_760_000_000, body);
  t.match(signature, /^v1=[0-9a-f]{64}$/);
  t.ok(verifyWebhook(secret, { signature, timestamp: '1760000000' }, body, 1_760_000_100), 'ok/verifies within the tolerance');
  t.notOk(verifyWebhook(secret, { signature, timestamp: '1760000000' }, `${body} `, 1_760_000_100), 'fail/a changed body');
  t.notOk(verifyWebhook(secret, { signature, timestamp: '1760000001' }, body, 1_760_000_100), 'fail/another timestamp');
  t.notOk(verifyWebhook(secret, { signature, timestamp: '1760000000' }, body, 1_760_001_000), 'fail/too old (replayed)');
  t.notOk(verifyWebhook(newWebhookSecret(), { signature, timestamp: '1760000000' }, body, 1_760_000_100), 'fail/another secret');
  t.notOk(verifyWebhook(secret, { timestamp: '1760000000' }, body, 1_760_000_100), 'fail/no signature');
});

t.test('key kinds and weakness', async (t) => {
  const cases = [
    { family: 'rsa' as const, bits: 2048, publicExponent: 65537n },
    { family: 'ec' as const, curve: 'P-384' },
    { family: 'ed25519' as const },
    { family: 'other' as const, type: 'dsa' },
  ];
  for (const facts of cases) t.same(factsOfKind(keyKind(facts)), facts, `ok/${keyKind(facts)} round-trips`);
  t.equal(weakness('rsa/2048/65537', CSR_KEY_POLICY), undefined, 'ok/RSA 2048 passes the default policy');
  t.equal(weakness('ec/P-256', CSR_KEY_POLICY), undefined);
  t.match(weakness('rsa/1024/65537', CSR_KEY_POLICY)!, /too small/, 'fail/RSA 1024');
  t.match(weakness('rsa/2048/65538', CSR_KEY_POLICY)!, /exponent/, 'fail/an even exponent');
  t.match(weakness('ec/P-521', CSR_KEY_POLICY)!, /P-521/, 'fail/P-521');
  t.match(weakness('ed25519', CSR_KEY_POLICY)!, /ed25519/, 'fail/Ed25519 certificate keys');
  t.match(weakness('other/unreadable', CSR_KEY_POLICY)!, /unreadable keys are not accepted/, 'fail/a key that cannot be read');
});

t.test('delivery outcomes and the retry schedule', async (t) => {
  const clock = new FakeClock('2026-05-01T00:00:00Z');
  const recorded: { attempts: number; outcome: unknown }[] = [];
  let due: DueDelivery[] = [];
  const store: DeliveryStore = {
    due: async () => {
      const out = due;
      due = [];
      return out;
    },
    recordAttempt: async (delivery, _at, outcome) => {
      recorded.push({ attempts: delivery.attempts, outcome });
      return true;
    },
  };
  const box = { seal: (p: Uint8Array) => p, open: (s: Uint8Array, context: string) => (context === secretContext('wh_1') ? s : Buffer.from('wrong')) };
  const sent: { headers: Record<string, string>; body: string }[] = [];
  let status = 500;
  const deliverer = new WebhookDeliverer({
    store,
    post: async (_url, headers, body) => {
      sent.push({ headers, body });
      return status;
    },
    box,
    clock,
    timeoutMs: 1000,
    allowHttp: false,
  });
  const delivery = (attempts: number, url = 'https://hooks.example.test/x'): DueDelivery => ({
    eventId: 'evt_1',
    webhookId: 'wh_1',
    type: 'renewal-overdue',
    attempts,
    body: '{"id":"evt_1"}',
    url,
    secretSealed: Buffer.from('whsec_test'),
  });
  for (let attempts = 0; attempts < 10; attempts += 1) {
    due = [delivery(attempts)];
    await deliverer.run();
  }
  const delays = recorded.map((r) => {
    const outcome = r.outcome as { retryAt?: Date };
    return outcome.retryAt === undefined ? undefined : (outcome.retryAt.getTime() - clock.now().getTime()) / SECOND;
  });
  t.same(delays, [...RETRY_DELAYS_MS.map((ms) => ms / SECOND), undefined], 'ok/10 s, 1 min, 5 min, 30 min, 2 h, then 6 h; the tenth failure is final');
  t.ok(recorded.every((r) => (r.outcome as { error: string }).error === 'HTTP 500'));
  const headers = sent[0]!.headers;
  t.equal(headers['chancery-event-id'], 'evt_1');
  t.equal(headers['chancery-timestamp'], String(clock.now().getTime() / 1000));
  t.ok(verifyWebhook('whsec_test', { signature: headers['chancery-signature']!, timestamp: headers['chancery-timestamp']! }, sent[0]!.body, clock.now().getTime() / 1000), 'ok/signed with the opened secret');
  recorded.length = 0;
  status = 204;
  due = [delivery(3)];
  await deliverer.run();
  t.same(recorded, [{ attempts: 3, outcome: { delivered: true } }], 'ok/any 2xx delivers');
  recorded.length = 0;
  const before = sent.length;
  due = [delivery(0, 'http://hooks.example.test/x')];
  await deliverer.run();
  t.equal(sent.length, before, 'fail/http is not sent while notifications.allowHttp is off');
  t.match((recorded[0]!.outcome as { error: string }).error, /allowHttp/);
});
