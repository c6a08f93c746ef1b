import { once } from 'node:events';
import { mkdtemp } from 'node:fs/promises';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import t from 'tap';
import { compose, type Chancery } from '../../../src/compose.js';
import { DAY, FakeClock, HOUR, MINUTE, SECOND } from '../../../src/core/clock.js';
import type { Config } from '../../../src/config/config.js';
import { NOTIFICATION_TYPES } from '../../../src/core/webhook.js';
import { RETRY_DELAYS_MS } from '../../../src/inventory/webhook-delivery.js';
import { verifyWebhook } from '../../../src/inventory/webhook-signature.js';
import { applyGroups, issue, newAccount } from '../../helpers/inventory-fixtures.js';
import { installLoopbackGuard } from '../../helpers/loopback-guard.js';
import { testConfig } from '../../helpers/runtime.js';

/**
 * Webhooks end to end on loopback: every notification condition delivered once per certificate, signed
 * (HMAC-SHA256 over the timestamp and the body) so the receiver can verify it; a failing receiver retried on
 * the schedule with the same event id and body; ten failures end a delivery; nothing lost when the process
 * closes between detection and delivery; targets judged by the validation network policy; the secret
 * shown once and nowhere else. Only 127.0.0.1 is ever contacted (the loopback guard fails anything else).
 */
const guard = installLoopbackGuard();
t.teardown(() => guard.uninstall());

interface Received {
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}

/** A receiver on 127.0.0.1 that answers each request with the next status of `statuses` (then 200). */
async function receiver(): Promise<{ url: string; received: Received[]; statuses: number[]; server: Server }> {
  const received: Received[] = [];
  const statuses: number[] = [];
  const server = createServer((request, response) => {
    let body = '';
    request.setEncoding('utf8');
    request.on('data', (chunk: string) => (body += chunk));
    request.on('end', () => {
      received.push({ url: request.url ?? '', headers: request.headers, body });
      response.statusCode = statuses.shift() ?? 200;
      response.end('thanks');
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, received, statuses, server };
}

let logs = '';
const logStream = new Writable({ write: (chunk: Buffer, _encoding, done) => void ((logs += chunk.toString()), done()) });
const clock = new FakeClock('2026-03-01T00:00:00Z');
const dir = await mkdtemp(join(tmpdir(), 'chancery-notify-'));
const config = testConfig(dir, { CHANCERY_NOTIFICATIONS_ALLOW_HTTP: 'true', CHANCERY_LOG_LEVEL: 'debug' });
const open = (c: Config = config): Promise<Chancery> => compose(c, { clock, ca: 'create-if-missing', logger: pino({ level: 'debug' }, logStream) });
let chancery = await open();
t.teardown(() => chancery.close());
const detect = async (): Promise<void> => void (await chancery.services.jobs.runNow('notifications.detect'));
const deliver = async (): Promise<void> => void (await chancery.services.jobs.runNow('notifications.deliver'));

await applyGroups(chancery, [{ name: 'payments', contacts: ['mailto:pay-pki@example.test'] }, { name: 'ops' }]);
const alice = await newAccount(chancery, 'payments');
const hooks = await receiver();
async function api(method: 'GET' | 'POST' | 'DELETE', url: string, body?: unknown): Promise<{ status: number; body: Record<string, unknown>; text: string }> {
  const admin = await chancery.localAdmin();
  const response = await admin.inject({
    method,
    url: `/admin/v1${url}`,
    headers: { 'x-chancery-user': 'test', ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { payload: JSON.stringify(body) }),
  });
  return { status: response.statusCode, body: JSON.parse(response.body) as Record<string, unknown>, text: response.body };
}

const groupHook = await api('POST', '/webhooks', { url: `${hooks.url}?to=payments`, group: 'payments', description: 'payments on-call' });
const globalHook = await api('POST', '/webhooks', { url: `${hooks.url}?to=all`, events: ['expired-unreplaced'] });
const secrets = new Map([
  [`${hooks.url}?to=payments`, String(groupHook.body.secret)],
  [`${hooks.url}?to=all`, String(globalHook.body.secret)],
]);

/** The receiver's check: the signature over timestamp and body, with the webhook's secret; the body's id. */
function verified(r: Received, secret: string): { id: string; type: string; certificate: { serial: string }; group?: { name: string; owners: string[] } } {
  const ok = verifyWebhook(secret, { signature: r.headers['chancery-signature'] as string, timestamp: r.headers['chancery-timestamp'] as string }, r.body, Math.floor(clock.now().getTime() / 1000));
  if (!ok) throw new Error('signature does not verify');
  const body = JSON.parse(r.body) as { id: string; type: string; certificate: { serial: string } };
  if (body.id !== r.headers['chancery-event-id'] || body.type !== r.headers['chancery-event-type']) throw new Error('headers and body disagree');
  return body;
}

await t.test('ok/webhooks are created with a secret shown once', async (t) => {
  t.equal(groupHook.status, 200, groupHook.text);
  t.match(String(groupHook.body.secret), /^whsec_[A-Za-z0-9_-]{43}$/);
  t.same((groupHook.body.webhook as { events: string[] }).events, [...NOTIFICATION_TYPES], 'every event type by default');
  const listed = await api('GET', '/webhooks');
  t.equal((listed.body.items as unknown[]).length, 2);
  const one = await api('GET', `/webhooks/${(groupHook.body.webhook as { id: string }).id}`);
  for (const secret of secrets.values()) {
    t.notOk(listed.text.includes(secret) || one.text.includes(secret), 'not in a list or a read');
    t.notOk(logs.includes(secret), 'not in the logs');
  }
});

await t.test('fail/bad webhooks are refused and nothing is stored', async (t) => {
  const before = await chancery.db.query('SELECT id FROM webhooks');
  const cases: [unknown, RegExp][] = [
    [{ url: 'ftp://127.0.0.1/hook' }, /url: must be https/],
    [{ url: 'https://user:pw@127.0.0.1/hook' }, /user name or password/],
    [{ url: 'https://169.254.169.254/latest' }, /validation network policy refuses it: .*always denied/],
    [{ url: 'https://hooks.example.test/x', events: ['renewal-late'] }, /must be equal to one of the allowed values|events/],
    [{ url: 'https://hooks.example.test/x', group: 'nope' }, /no group "nope"/],
    [{ url: 'https://hooks.example.test/x#frag' }, /fragment/],
  ];
  for (const [body, detail] of cases) {
    const answer = await api('POST', '/webhooks', body);
    t.ok(answer.status === 400 || answer.status === 404, `${JSON.stringify(body)}: ${answer.status}`);
    t.match(String(answer.body.detail), detail);
  }
  t.same((await chancery.db.query('SELECT id FROM webhooks')).rows, before.rows);
});

await t.test('ok/renewal-overdue and expiring-soon, delivered to the group webhook, signed', async (t) => {
  const overdue = await issue(chancery, { account: alice, names: ['api.pay.test'], lifetimeMs: 9 * DAY });
  clock.advance(6 * DAY + HOUR); // past two thirds of nine days
  await detect();
  await deliver();
  t.equal(hooks.received.length, 2, 'two conditions, one webhook (the global one takes expired-unreplaced only)');
  const bodies = hooks.received.map((r) => verified(r, secrets.get(`${hooks.url}?to=payments`)!));
  t.same(bodies.map((b) => b.type).sort(), ['expiring-soon', 'renewal-overdue']);
  t.ok(bodies.every((b) => b.certificate.serial === overdue.serial));
  t.same(bodies[0]!.group, { name: 'payments', owners: ['mailto:pay-pki@example.test'] }, 'with the group and its owners');
  t.notOk(verifyWebhook('whsec_wrong', { signature: hooks.received[0]!.headers['chancery-signature'] as string, timestamp: hooks.received[0]!.headers['chancery-timestamp'] as string }, hooks.received[0]!.body, Math.floor(clock.now().getTime() / 1000)), 'another secret does not verify it');
  await detect();
  await deliver();
  t.equal(hooks.received.length, 2, 'detected again: nothing new (one event per certificate per condition)');
});

await t.test('ok/expired-unreplaced, delivered to both webhooks', async (t) => {
  hooks.received.length = 0;
  clock.advance(3 * DAY);
  await detect();
  await deliver();
  t.equal(hooks.received.length, 2);
  const byTarget = new Map(hooks.received.map((r) => [r.headers['chancery-signature'], r]));
  t.equal(byTarget.size, 2);
  const types = hooks.received.map((r) => {
    // Each request verifies with exactly one of the two secrets: the webhook it was for.
    const matching = [...secrets.values()].filter((secret) => {
      try {
        verified(r, secret);
        return true;
      } catch {
        return false;
      }
    });
    t.equal(matching.length, 1);
    return verified(r, matching[0]!).type;
  });
  t.same(types, ['expired-unreplaced', 'expired-unreplaced']);
});

await t.test('ok/a failing receiver: retried after 10 s with the same event id and body', async (t) => {
  hooks.received.length = 0;
  const overdue = await issue(chancery, { account: alice, names: ['retry.pay.test'], lifetimeMs: 3 * DAY });
  clock.advance(2 * DAY + MINUTE);
  await detect();
  hooks.statuses.push(500, 503);
  await deliver();
  t.equal(hooks.received.length, 2, 'both events tried once, both refused');
  await deliver();
  t.equal(hooks.received.length, 2, 'not due again before 10 s');
  clock.advance(10 * SECOND);
  await deliver();
  t.equal(hooks.received.length, 4, 'tried again');
  const secret = secrets.get(`${hooks.url}?to=payments`)!;
  const first = hooks.received.slice(0, 2).map((r) => verified(r, secret).id).sort();
  const again = hooks.received.slice(2).map((r) => verified(r, secret).id).sort();
  t.same(again, first, 'the same event ids');
  t.same(hooks.received.slice(2).map((r) => r.body).sort(), hooks.received.slice(0, 2).map((r) => r.body).sort(), 'the same bodies');
  const deliveries = await api('GET', `/webhooks/${(groupHook.body.webhook as { id: string }).id}/deliveries?status=delivered&limit=2`);
  t.same((deliveries.body.items as { attempts: number; serial: string }[]).map((d) => [d.serial, d.attempts]), [[overdue.serial, 2], [overdue.serial, 2]]);
});

await t.test('ok/ten failures end a delivery, on the schedule', async (t) => {
  hooks.received.length = 0;
  const hook = await api('POST', '/webhooks', { url: `${hooks.url}?to=down`, group: 'ops', events: ['renewal-overdue'] });
  const bob = await newAccount(chancery, 'ops');
  await issue(chancery, { account: bob, names: ['down.ops.test'], lifetimeMs: 30 * DAY });
  clock.advance(21 * DAY);
  await detect();
  hooks.received.length = 0;
  const id = (hook.body.webhook as { id: string }).id;
  const attempts: number[] = [];
  const state = async (): Promise<{ status: string; attempts: number; nextAttemptAt?: string }> => {
    const items = (await api('GET', `/webhooks/${id}/deliveries`)).body.items as { status: string; attempts: number; nextAttemptAt?: string }[];
    return items[0]!;
  };
  for (let i = 0; i <= RETRY_DELAYS_MS.length; i += 1) {
    hooks.statuses.length = 0;
    hooks.statuses.push(...Array<number>(20).fill(503));
    const down = (): number => hooks.received.filter((r) => r.url.endsWith('?to=down')).length;
    const sentBefore = down();
    await deliver();
    attempts.push(down() - sentBefore);
    const now = clock.now().getTime();
    const s = await state();
    if (i < RETRY_DELAYS_MS.length) {
      t.equal(s.status, 'pending');
      t.equal(new Date(s.nextAttemptAt!).getTime() - now, RETRY_DELAYS_MS[i], `attempt ${i + 1} failed: the next in ${RETRY_DELAYS_MS[i]! / 1000} s`);
      clock.advance(RETRY_DELAYS_MS[i]!);
    } else {
      t.equal(s.status, 'failed', 'the tenth failure is final');
      t.equal(s.attempts, 10);
    }
  }
  t.same(attempts, Array<number>(10).fill(1), 'ten attempts, one at a time');
  hooks.statuses.length = 0;
  clock.advance(DAY);
  const sent = hooks.received.filter((r) => r.url.endsWith('?to=down')).length;
  await deliver();
  t.equal(hooks.received.filter((r) => r.url.endsWith('?to=down')).length, sent, 'nothing after that');
  t.same(RETRY_DELAYS_MS.map((ms) => ms / 1000), [10, 60, 300, 1800, 7200, 21600, 21600, 21600, 21600]);
});

await t.test('ok/nothing is lost over a restart: detected, closed, delivered by the next process with the same id', async (t) => {
  hooks.received.length = 0;
  hooks.statuses.length = 0;
  const cert = await issue(chancery, { account: alice, names: ['restart.pay.test'], lifetimeMs: 3 * DAY });
  clock.advance(2 * DAY + MINUTE);
  await detect();
  const stored = await chancery.db.query<{ id: string; type: string }>('SELECT id, type FROM notification_events WHERE serial = $1 ORDER BY type', [cert.serial]);
  t.equal(stored.rows.length, 2);
  await chancery.close();
  t.equal(hooks.received.length, 0, 'nothing sent before the close');
  chancery = await open();
  await chancery.services.jobs.runNow('notifications.deliver');
  const ids = hooks.received.map((r) => verified(r, secrets.get(`${hooks.url}?to=payments`)!).id).sort();
  t.same(ids, stored.rows.map((r) => r.id).sort(), 'delivered after the restart, with the ids stored before it');
});

await t.test('ok/a removed webhook gets nothing more', async (t) => {
  hooks.received.length = 0;
  const hook = await api('POST', '/webhooks', { url: `${hooks.url}?to=gone`, group: 'ops', events: ['expired-unreplaced'] });
  const id = (hook.body.webhook as { id: string }).id;
  const bob = await newAccount(chancery, 'ops');
  await issue(chancery, { account: bob, names: ['gone.ops.test'], lifetimeMs: DAY });
  clock.advance(DAY + MINUTE);
  await chancery.services.jobs.runNow('notifications.detect');
  const admin2 = await chancery.localAdmin();
  const removed = await admin2.inject({ method: 'DELETE', url: `/admin/v1/webhooks/${id}`, headers: { 'x-chancery-user': 'test' } });
  t.equal(removed.statusCode, 200, removed.body);
  await chancery.services.jobs.runNow('notifications.deliver');
  t.notOk(hooks.received.some((r) => r.url.endsWith('?to=gone')), 'nothing sent to it');
  const rows = await chancery.db.query<{ status: string; last_error: string }>('SELECT status, last_error FROM notification_deliveries WHERE webhook_id = $1', [id]);
  t.same(rows.rows, [{ status: 'failed', last_error: 'the webhook was removed' }]);
  const again = await admin2.inject({ method: 'DELETE', url: `/admin/v1/webhooks/${id}`, headers: { 'x-chancery-user': 'test' } });
  t.equal(again.statusCode, 409, 'removed twice: a conflict');
});

await t.test('ok/targets are judged by the validation network policy when delivering', async (t) => {
  // Another installation whose policy denies loopback: a webhook naming a host (judged when resolved, at
  // delivery) that resolves to 127.0.0.1 is never connected to.
  const denied = await mkdtemp(join(tmpdir(), 'chancery-notify-deny-'));
  const strict = await compose(testConfig(denied, { CHANCERY_NOTIFICATIONS_ALLOW_HTTP: 'true', CHANCERY_VALIDATION_ALLOW_LOOPBACK: 'false' }), {
    clock,
    ca: 'create-if-missing',
    logger: pino({ level: 'silent' }),
  });
  t.teardown(() => strict.close());
  await applyGroups(strict, [{ name: 'ops' }]);
  const local = await strict.localAdmin();
  const port = (hooks.server.address() as AddressInfo).port;
  const literal = await local.inject({ method: 'POST', url: '/admin/v1/webhooks', headers: { 'x-chancery-user': 'test', 'content-type': 'application/json' }, payload: JSON.stringify({ url: `http://127.0.0.1:${port}/x`, group: 'ops' }) });
  t.equal(literal.statusCode, 400, 'an address literal is judged when the webhook is made');
  t.match(literal.body, /loopback/);
  const named = await local.inject({ method: 'POST', url: '/admin/v1/webhooks', headers: { 'x-chancery-user': 'test', 'content-type': 'application/json' }, payload: JSON.stringify({ url: `http://localhost:${port}/x`, group: 'ops' }) });
  t.equal(named.statusCode, 200, named.body);
  const account = await newAccount(strict, 'ops');
  await issue(strict, { account, names: ['policy.ops.test'], lifetimeMs: 3 * DAY });
  clock.advance(2 * DAY + MINUTE);
  hooks.received.length = 0;
  await strict.services.jobs.runNow('notifications.detect');
  await strict.services.jobs.runNow('notifications.deliver');
  t.equal(hooks.received.length, 0, 'nothing reached the receiver');
  const rows = await strict.db.query<{ status: string; last_error: string }>('SELECT status, last_error FROM notification_deliveries');
  t.ok(rows.rows.length > 0 && rows.rows.every((r) => r.status === 'pending' && /validation network policy refuses/.test(r.last_error)), JSON.stringify(rows.rows));
});

await t.test('ok/the secrets never reached a log', async (t) => {
  t.ok(logs.length > 0, 'there are logs (debug)');
  t.match(logs, /webhook delivery failed/, 'failures are logged');
  for (const secret of secrets.values()) t.notOk(logs.includes(secret));
  t.same(guard.refused, [], 'nothing outside loopback was contacted');
});
