import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import t, { type Test } from 'tap';
import { compose, type Chancery } from '../../../src/compose.js';
import { FakeClock, SECOND } from '../../../src/core/clock.js';
import { openPgliteDatabase } from '../../../src/db/pglite-database.js';
import type { Validator } from '../../../src/va/validator.js';
import { InjectClient, makeAccountKey, type TestKey } from '../../helpers/acme-jws.js';
import { countingKeyStore, CrashableDatabase, type SignatureLog } from '../../helpers/crash.js';
import { makeCsr, requireOpenssl } from '../../helpers/openssl.js';
import { testConfig } from '../../helpers/runtime.js';

/**
 * A finalize that dies half way (RFC 8555 §7.4: claim the order and reserve its serial, sign, store the
 * certificate with the order turning valid) never leaves the order processing for good: after a restart the
 * orders.recover job ends it as invalid once acme.processingTimeoutSeconds have passed, with a problem that
 * tells the client to order again, and the reserved serial is never signed under again (DESIGN.md rule 2).
 *
 * The crash is injected between the steps: from the chosen point on, nothing of the first instance reaches
 * the database or the key store again (CrashableDatabase, countingKeyStore); a second composition on the
 * same database is the restarted process. Every certificate signature of both is counted per serial.
 */
requireOpenssl();
const dir = await mkdtemp(join(tmpdir(), 'chancery-crash-'));
const config = testConfig(dir, { CHANCERY_ORDER_PROCESSING_TIMEOUT_SECONDS: '30' });
const clock = new FakeClock('2026-03-01T00:00:00Z');
const db = await openPgliteDatabase(undefined);
t.teardown(() => db.close());
const log: SignatureLog = { perSerial: new Map() };
const validator: Validator = { validate: async () => ({ valid: true }) };
const logger = pino({ level: 'silent' });

const open = (database: CrashableDatabase | undefined, ca: 'create-if-missing' | 'existing'): Promise<Chancery> =>
  compose(config, {
    clock,
    logger,
    validator,
    listen: false,
    ca,
    database: database ?? db,
    wrapKeyStore: (keys) => countingKeyStore(keys, log, () => database && (database.dead = true)),
  });

// The instance that survives: it creates the CA, and is "the process after the restart" in every case.
const restarted = await open(undefined, 'create-if-missing');
t.teardown(() => restarted.close());
const BASE = restarted.acmeUrl;
const key: TestKey = await makeAccountKey('ES256');
const survivor = new InjectClient((await restarted.apps()).acme, BASE);
const created = await survivor.post('/acme/new-account', key, { payload: { termsOfServiceAgreed: true } });
const kid = String(created.headers.location);

/** A new order for `name`, made ready through `client`'s instance; its URL and finalize URL. */
async function readyOrder(client: InjectClient, chancery: Chancery, name: string): Promise<{ url: string; finalize: string }> {
  const order = await client.post('/acme/new-order', key, { kid, payload: { identifiers: [{ type: 'dns', value: name }] } });
  if (order.statusCode !== 201) throw new Error(`newOrder ${order.statusCode}: ${order.body}`);
  const body = JSON.parse(order.body) as { authorizations: string[]; finalize: string };
  for (const authz of body.authorizations) {
    const read = JSON.parse((await client.post(authz, key, { kid, payload: '' })).body) as { challenges: { type: string; url: string }[] };
    await client.post(read.challenges.find((c) => c.type === 'http-01')!.url, key, { kid, payload: {} });
  }
  await chancery.services.scheduler.runOnce();
  const status = (JSON.parse((await client.post(String(order.headers.location), key, { kid, payload: '' })).body) as { status: string }).status;
  if (status !== 'ready') throw new Error(`order for ${name} is ${status}`);
  return { url: String(order.headers.location), finalize: body.finalize };
}

async function orderRow(url: string): Promise<{ status: string; serial: string | null; error: unknown }> {
  const id = url.split('/').pop()!;
  const { rows } = await db.query<{ status: string; certificate_serial: string | null; error: unknown }>(
    'SELECT status, certificate_serial, error FROM orders WHERE id = $1',
    [id],
  );
  return { status: rows[0]!.status, serial: rows[0]!.certificate_serial, error: rows[0]!.error };
}

async function isStored(serial: string): Promise<{ reserved: boolean; certificate: boolean }> {
  const reserved = (await db.query('SELECT serial FROM serials WHERE serial = $1', [serial])).rowCount === 1;
  const certificate = (await db.query('SELECT serial FROM certificates WHERE serial = $1', [serial])).rowCount === 1;
  return { reserved, certificate };
}

async function until(what: string, ok: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !ok(); i += 1) await new Promise((resolve) => setTimeout(resolve, 25));
  if (!ok()) throw new Error(`timed out waiting for ${what}`);
}

const isClaim = (sql: string): boolean => sql.includes('UPDATE orders') && sql.includes('INSERT INTO serials');
const isStore = (sql: string): boolean => sql.includes('INSERT INTO certificates') && sql.includes('for_order');

/**
 * Runs a finalize on a fresh instance that dies at `crash`; returns the order URL and the serial its claim
 * reserved. The finalize never answers (its process is gone).
 */
async function crashDuringFinalize(name: string, crash: 'after-claim' | 'after-sign' | 'store-sent'): Promise<{ url: string; serial: string }> {
  const crashable = new CrashableDatabase(db);
  const doomed = await open(crashable, 'existing');
  t.teardown(async () => {
    // Bring it back only to let close() run; its finalize stays hung forever, as a dead process's would.
    crashable.dead = false;
    crashable.crashAfter = undefined;
    log.afterSign = undefined;
    await doomed.close();
  });
  const client = new InjectClient((await doomed.apps()).acme, BASE);
  const order = await readyOrder(client, doomed, name);
  if (crash === 'after-claim') crashable.crashAfter = (sql) => isClaim(sql);
  if (crash === 'store-sent') crashable.crashAfter = (sql) => isStore(sql);
  if (crash === 'after-sign') log.afterSign = () => 'crash';
  const csr = await makeCsr({ keyType: 'ec-p256', sans: [`DNS:${name}`] });
  void client.post(order.finalize, key, { kid, payload: { csr: csr.der.toString('base64url') } });
  await until('the crash', () => crashable.dead);
  log.afterSign = undefined;
  const claim = crashable.seen.find((s) => isClaim(s.sql));
  // claimMany's fourth parameter: the serials of the claims in its batch (one here).
  const serial = (claim?.params?.[3] as string[] | undefined)?.[0];
  if (serial === undefined) throw new Error('no claim was sent');
  return { ...order, serial };
}

/** Every certificate serial was signed at most once, across both instances. */
function signedAtMostOnce(t: Test): void {
  const twice = [...log.perSerial].filter(([, n]) => n > 1);
  t.same(twice, [], 'no serial signed twice');
}

async function recover(): Promise<void> {
  if (!(await restarted.services.jobs.runNow('orders.recover'))) throw new Error('orders.recover did not run');
}

for (const crash of ['after-claim', 'after-sign'] as const) {
  await t.test(`ok/crash ${crash}: the order is invalid after the timeout, its serial burnt, a new order issues`, async (t) => {
    const { url, serial } = await crashDuringFinalize(`${crash}.example.internal`, crash);
    t.equal(log.perSerial.get(serial) ?? 0, crash === 'after-claim' ? 0 : 1, 'signatures under the reserved serial');

    // Still within the timeout: it might be a slow finalize on a live instance, so it is left alone.
    clock.advance(10 * SECOND);
    await recover();
    t.equal((await orderRow(url)).status, 'processing', 'left alone within the timeout');

    clock.advance(21 * SECOND);
    await recover();
    const row = await orderRow(url);
    t.equal(row.status, 'invalid');
    t.same(await isStored(serial), { reserved: true, certificate: false }, 'the serial stays reserved, with no certificate: burnt');

    // What the client reads when it polls (RFC 8555 §7.1.3 error): a problem that says to order again.
    const polled = JSON.parse((await survivor.post(url, key, { kid, payload: '' })).body) as { status: string; error: { type: string; detail: string } };
    t.equal(polled.status, 'invalid');
    t.equal(polled.error.type, 'urn:ietf:params:acme:error:serverInternal');
    t.match(polled.error.detail, /submit a new order/);
    const again = await survivor.post(`${url}/finalize`, key, { kid, payload: { csr: (await makeCsr({ keyType: 'ec-p256', sans: [`DNS:${crash}.example.internal`] })).der.toString('base64url') } });
    t.equal(again.statusCode, 403, 'the order cannot be finalized again');

    const fresh = await readyOrder(survivor, restarted, `${crash}.example.internal`);
    const csr = await makeCsr({ keyType: 'ec-p256', sans: [`DNS:${crash}.example.internal`] });
    const finalized = await survivor.post(fresh.finalize, key, { kid, payload: { csr: csr.der.toString('base64url') } });
    t.equal(finalized.statusCode, 200, finalized.body);
    const issued = await orderRow(fresh.url);
    t.equal(issued.status, 'valid');
    t.not(issued.serial, serial, 'a fresh serial');
    t.equal(log.perSerial.get(serial) ?? 0, crash === 'after-claim' ? 0 : 1, 'nothing signed under the burnt serial since');
    signedAtMostOnce(t);
  });
}

await t.test('ok/crash after the store was sent: the order is valid, recovery leaves it so', async (t) => {
  const { url, serial } = await crashDuringFinalize('store-sent.example.internal', 'store-sent');
  clock.advance(31 * SECOND);
  await recover();
  const row = await orderRow(url);
  t.equal(row.status, 'valid');
  t.equal(row.serial, serial);
  t.same(await isStored(serial), { reserved: true, certificate: true });
  t.equal(log.perSerial.get(serial), 1);
  signedAtMostOnce(t);
});

await t.test('ok/an order turned invalid under a finalize that then stores: certificate on record, no 500', async (t) => {
  const crashable = new CrashableDatabase(db);
  const slow = await open(crashable, 'existing');
  t.teardown(() => slow.close());
  const client = new InjectClient((await slow.apps()).acme, BASE);
  const order = await readyOrder(client, slow, 'slow.example.internal');
  // The finalize stalls after signing while the timeout passes and the job ends the order under it.
  let resume: (() => void) | undefined;
  const stalled = new Promise<void>((resolve) => (resume = resolve));
  let reached = false;
  log.afterSign = () => {
    reached = true;
    return undefined;
  };
  crashable.crashAfter = undefined;
  const originalRun = crashable.query.bind(crashable);
  crashable.query = (async (sql: string, params?: readonly unknown[], options?: object) => {
    if (isStore(sql)) await stalled;
    return originalRun(sql, params, options);
  }) as typeof crashable.query;
  const csr = await makeCsr({ keyType: 'ec-p256', sans: ['DNS:slow.example.internal'] });
  const answer = client.post(order.finalize, key, { kid, payload: { csr: csr.der.toString('base64url') } });
  await until('the signature', () => reached);
  log.afterSign = undefined;
  clock.advance(31 * SECOND);
  await recover();
  resume!();
  const response = await answer;
  t.equal(response.statusCode, 403, response.body);
  t.match(JSON.parse(response.body).detail, /submit a new order/);
  t.equal((await orderRow(order.url)).status, 'invalid');
  signedAtMostOnce(t);
});
