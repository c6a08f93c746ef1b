import type { LightMyRequestResponse } from 'fastify';
import t from 'tap';
import type { Chancery } from '../../../src/compose.js';
import { openPgDatabase } from '../../../src/db/pg-database.js';
import type { Validator } from '../../../src/va/validator.js';
import { InjectClient, makeAccountKey, type TestKey } from '../../helpers/acme-jws.js';
import { countingKeyStore, type SignatureLog } from '../../helpers/crash.js';
import { freshPgDatabase, PG_ADMIN_URL } from '../../helpers/databases.js';
import { makeCsr, requireOpenssl } from '../../helpers/openssl.js';
import { composeForTest } from '../../helpers/runtime.js';

/**
 * A dropped database connection is not a 500. 16 ACME clients issue certificates against one instance on
 * PostgreSQL while every connection that instance has to the server is killed (pg_terminate_backend) 20
 * times in 10 s. Every answer must be a success, or a 503 with Retry-After (a lost connection whose statement
 * could not safely be sent again), or a badNonce a client retries (RFC 8555 §6.5); never a 500. And no serial
 * is signed twice: a claim whose answer was lost is read back, not repeated.
 *
 * Bounded: 20 kills 500 ms apart, clients stop when the kills are done; PostgreSQL on loopback only.
 */
const CLIENTS = 16;
const KILLS = 20;
const KILL_EVERY_MS = 500;

requireOpenssl();
const database = await freshPgDatabase(t, { migrated: true });
if (database !== undefined) {
  const log: SignatureLog = { perSerial: new Map() };
  const validator: Validator = { validate: async () => ({ valid: true }) };
  const { chancery } = await composeForTest({
    validator,
    env: { CHANCERY_DATABASE_URL: database.url },
    wrapKeyStore: (keys) => countingKeyStore(keys, log),
  });
  t.teardown(() => chancery.close());
  const app = (await chancery.apps()).acme;

  interface Tally {
    byStatus: Map<number, number>;
    missingRetryAfter: number;
    internal: string[];
    issued: number;
  }
  const tally: Tally = { byStatus: new Map(), missingRetryAfter: 0, internal: [], issued: 0 };
  const note = (response: LightMyRequestResponse, what: string): void => {
    tally.byStatus.set(response.statusCode, (tally.byStatus.get(response.statusCode) ?? 0) + 1);
    if (response.statusCode === 503 && response.headers['retry-after'] === undefined) tally.missingRetryAfter += 1;
    if (response.statusCode >= 500 && response.statusCode !== 503) tally.internal.push(`${what}: ${response.statusCode} ${response.body}`);
  };

  /** One ACME client: an account, then issuances for its own name until `stop()` says so. */
  async function client(index: number, stop: () => boolean): Promise<void> {
    const acme = new InjectClient(app, chancery.acmeUrl);
    const key: TestKey = await makeAccountKey('ES256');
    const name = `c${index}.example.internal`;
    const csr = (await makeCsr({ keyType: 'ec-p256', sans: [`DNS:${name}`] })).der.toString('base64url');
    let kid: string | undefined;

    /** POSTs until the answer is neither badNonce nor 503 (waiting as Retry-After says, at most 1 s). */
    const post = async (what: string, path: string, payload: unknown): Promise<LightMyRequestResponse> => {
      for (let attempt = 0; ; attempt += 1) {
        const response = await acme.post(path, key, kid === undefined ? { payload } : { kid, payload });
        note(response, what);
        const badNonce = response.statusCode === 400 && response.body.includes('badNonce');
        if ((!badNonce && response.statusCode !== 503) || attempt > 50) return response;
        if (response.statusCode === 503) await new Promise((resolve) => setTimeout(resolve, Math.min(1000, Number(response.headers['retry-after'] ?? 1) * 1000)));
      }
    };

    while (kid === undefined) {
      const account = await post('newAccount', '/acme/new-account', { termsOfServiceAgreed: true });
      if (account.statusCode === 201 || account.statusCode === 200) kid = String(account.headers.location);
    }
    while (!stop()) {
      const order = await post('newOrder', '/acme/new-order', { identifiers: [{ type: 'dns', value: name }] });
      if (order.statusCode !== 201) continue;
      const url = String(order.headers.location);
      let body = JSON.parse(order.body) as { status: string; authorizations: string[]; finalize: string; certificate?: string };
      if (body.status === 'pending') {
        const authz = await post('authz', body.authorizations[0]!, '');
        const challenge = (JSON.parse(authz.body) as { challenges?: { type: string; url: string }[] }).challenges?.find((c) => c.type === 'http-01');
        if (challenge !== undefined) await post('challenge', challenge.url, {});
        for (let i = 0; i < 20 && body.status === 'pending'; i += 1) {
          await chancery.services.scheduler.runOnce().catch(() => undefined);
          const polled = await post('order', url, '');
          if (polled.statusCode === 200) body = JSON.parse(polled.body) as typeof body;
        }
      }
      if (body.status !== 'ready') continue;
      const finalized = await post('finalize', body.finalize, { csr });
      if (finalized.statusCode !== 200) continue;
      body = JSON.parse(finalized.body) as typeof body;
      if (body.status === 'valid' && body.certificate !== undefined) {
        const download = await post('certificate', body.certificate, '');
        if (download.statusCode === 200) tally.issued += 1;
      }
    }
  }

  await t.test(`ok/${KILLS} kills of every connection in ${(KILLS * KILL_EVERY_MS) / 1000} s under ${CLIENTS} clients: no 500`, async (t) => {
    const admin = await openPgDatabase(PG_ADMIN_URL, { poolSize: 1, keyedPoolSize: 1 });
    t.teardown(() => admin.close());
    let done = false;
    const started = performance.now();
    const clients = Array.from({ length: CLIENTS }, (_, i) => client(i, () => done || performance.now() - started > 60_000));
    let killed = 0;
    for (let i = 0; i < KILLS; i += 1) {
      await new Promise((resolve) => setTimeout(resolve, KILL_EVERY_MS));
      const { rows } = await admin.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM (
           SELECT pg_terminate_backend(pid) FROM pg_stat_activity
           WHERE datname = $1 AND pid <> pg_backend_pid() AND backend_type = 'client backend') AS k`,
        [database.name],
      );
      killed += rows[0]!.n;
    }
    const issuedDuringKills = tally.issued;
    done = true;
    await Promise.all(clients);
    t.comment(`answers by status: ${JSON.stringify(Object.fromEntries(tally.byStatus))}; connections killed: ${killed}; issued: ${tally.issued} (${issuedDuringKills} during the kills)`);
    t.ok(killed >= KILLS, 'connections were killed');
    t.same(tally.internal, [], 'no 5xx other than 503');
    t.equal(tally.missingRetryAfter, 0, 'every 503 carries Retry-After');
    t.ok(issuedDuringKills > 0, 'certificates were issued during the kills');
    const twice = [...log.perSerial].filter(([, n]) => n > 1);
    t.same(twice, [], 'no serial signed twice');
  });

  await t.test('ok/afterwards every client issues without a single 503', async (t) => {
    const before = tally.byStatus.get(503) ?? 0;
    const issued = tally.issued;
    let rounds = 0;
    await Promise.all(Array.from({ length: 4 }, (_, i) => client(100 + i, () => rounds++ >= 4)));
    t.equal(tally.byStatus.get(503) ?? 0, before, 'no 503 without kills');
    t.ok(tally.issued > issued, 'issued');
    t.same(tally.internal, []);
  });

  await t.test('ok/nothing left half done that recovery would not end', async (t) => {
    // A claim whose connection went down with its answer leaves its order processing (how many depends on
    // where the kills land); the orders.recover job must end every one once it is older than the timeout.
    const processing = async (): Promise<number> =>
      (await chancery.db.query<{ n: number }>("SELECT count(*)::int AS n FROM orders WHERE status = 'processing'")).rows[0]!.n;
    const left = await processing();
    t.comment(`orders left processing by lost answers: ${left}`);
    const deadline = Date.now() + (chancery.config.acme.processingTimeoutSeconds + 10) * 1000;
    while ((await processing()) > 0 && Date.now() < deadline) {
      await chancery.services.jobs.runNow('orders.recover');
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
    t.equal(await processing(), 0, 'orders.recover ended every order left processing');
  });
  void (chancery satisfies Chancery);
}
