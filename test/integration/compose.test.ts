import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import t from 'tap';
import { compose, type Chancery } from '../../src/compose.js';
import { openDatabase } from '../../src/db/open-database.js';
import { LeaseRepository, type JobLeaseRecord } from '../../src/db/repositories/lease-repository.js';
import { testConfig } from '../helpers/runtime.js';

/**
 * compose() wires the periodic work onto the job primitive: each job runs on one instance at a time, and
 * when that instance stops another takes every job over (its leases are released at once). Two compositions
 * share one embedded database here, as two processes share one PostgreSQL.
 */
const JOBS = [
  'audit.seal',
  'certificates.counts.fold',
  'crl.regenerate',
  'incidents.sweep',
  'inventory.keys',
  'nonces.purge',
  'notifications.deliver',
  'notifications.detect',
  'ocsp.refresh',
  'orders.recover',
  'revocation.bulk',
  'validation.retries',
];
const dir = await mkdtemp(join(tmpdir(), 'chancery-compose-'));
const config = testConfig(dir, { CHANCERY_JOBS_LEASE_SECONDS: '5' });
const db = await openDatabase({ url: config.database.url, dataDir: config.dataDir });
t.teardown(() => db.close());
const leases = new LeaseRepository(db);
const open = (): Promise<Chancery> => compose(config, { database: db, logger: pino({ level: 'silent' }), ca: 'create-if-missing' });

async function heldLeases(): Promise<JobLeaseRecord[]> {
  const now = Date.now();
  return (await leases.list()).filter((l) => l.expiresAt !== undefined && l.expiresAt.getTime() > now);
}

async function waitFor(what: string, ok: () => Promise<boolean>, ms = 8_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

const a = await open();
const b = await open();
t.teardown(async () => {
  await b.close();
  await a.close();
});

await t.test('ok/the first instance to start holds every job', async (t) => {
  a.start();
  await waitFor('every job held', async () => (await heldLeases()).length === JOBS.length);
  const held = await heldLeases();
  t.same(held.map((l) => l.name), JOBS);
  t.equal(new Set(held.map((l) => l.holder)).size, 1, 'one holder');
});

await t.test('ok/a second instance runs none of them while the first holds them', async (t) => {
  const before = await heldLeases();
  b.start();
  await new Promise((resolve) => setTimeout(resolve, 2_000));
  const after = await heldLeases();
  t.same(after.map((l) => [l.name, l.holder, l.token]), before.map((l) => [l.name, l.holder, l.token]), 'same holder, same tokens');
});

await t.test('ok/when the holder stops, the other takes every job over', async (t) => {
  const first = (await heldLeases())[0]!.holder;
  const tokens = new Map((await heldLeases()).map((l) => [l.name, l.token]));
  await a.close();
  await waitFor('takeover', async () => {
    const held = await heldLeases();
    return held.length === JOBS.length && held.every((l) => l.holder !== first);
  });
  for (const lease of await heldLeases()) t.ok(lease.token > tokens.get(lease.name)!, `${lease.name}: a new fencing token`);
});
