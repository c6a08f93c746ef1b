import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import t, { type Test } from 'tap';
import { compose } from '../../../src/compose.js';
import { openPgDatabase } from '../../../src/db/pg-database.js';
import { freePort, runCli, startChancery, type RunningChancery } from '../../helpers/chancery-process.js';
import { freshPgDatabase } from '../../helpers/databases.js';
import { openssl, requireOpenssl } from '../../helpers/openssl.js';
import { testConfig } from '../../helpers/runtime.js';

/**
 * A bulk revocation survives SIGKILL: `chancery` processes on one PostgreSQL run an incident with
 * `--revoke now`, and the one revoking is killed in the middle. After a restart (one instance) or by the
 * other instance once the dead one's lease runs out (two instances), the run finishes: every certificate
 * revoked exactly once, none left out, each chunk done by one instance once (its audit entries name disjoint
 * sets of certificates and consecutive chunk numbers), every OCSP response revoked, and the CRL lists them.
 */
requireOpenssl();
const database = await freshPgDatabase(t);
if (database) {
  const PASSPHRASE = 'test-passphrase-0123456789';
  const COUNT = 600;
  const base = await mkdtemp(join(tmpdir(), 'chancery-bulk-crash-'));
  const publicPort = await freePort();
  const envOf = async (name: string): Promise<Record<string, string>> => ({
    CHANCERY_DATA_DIR: join(base, name),
    CHANCERY_DATABASE_URL: database.url,
    CHANCERY_KEY_PASSPHRASE: PASSPHRASE,
    CHANCERY_ACME_LISTEN: `127.0.0.1:${await freePort()}`,
    CHANCERY_PUBLIC_LISTEN: `127.0.0.1:${name === 'a' ? publicPort : await freePort()}`,
    CHANCERY_PUBLIC_URL: `http://127.0.0.1:${publicPort}`,
    CHANCERY_LOG_LEVEL: 'warn',
    // Small chunks and a short lease, so a kill lands mid-run and the takeover comes within seconds.
    CHANCERY_REVOCATION_BULK_CHUNK_SIZE: '5',
    CHANCERY_JOBS_LEASE_SECONDS: '5',
  });
  const envA = await envOf('a');
  const envB = await envOf('b');
  const running: RunningChancery[] = [];
  t.teardown(async () => {
    for (const server of running) await server.stop('SIGKILL');
  });
  const start = async (command: 'start' | 'serve', env: Record<string, string>): Promise<RunningChancery> => {
    const server = await startChancery(command, env, 120_000);
    running.push(server);
    return server;
  };
  const reader = await openPgDatabase(database.url, { poolSize: 1 });
  t.teardown(() => reader.close());

  let a = await start('start', envA);

  /** COUNT certificates named <i>.<suffix>, issued by the CA the servers share (software keys in the database). */
  async function seed(suffix: string): Promise<string[]> {
    const chancery = await compose(testConfig(base, { CHANCERY_DATABASE_URL: database!.url, CHANCERY_DATA_DIR: join(base, 'seed') }), { listen: false, logger: pino({ level: 'silent' }) });
    try {
      const serials: string[] = [];
      for (let i = 0; i < COUNT; i += 20) {
        const batch = await Promise.all(
          Array.from({ length: 20 }, (_, j) =>
            chancery.services.issuance.issueForKey(generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'der' }), [{ type: 'dns', value: `h${i + j}.${suffix}` }]),
          ),
        );
        serials.push(...batch.map((c) => c.serial));
      }
      return serials;
    } finally {
      await chancery.close();
    }
  }

  async function progress(name: string): Promise<{ revoked: number; total: number; state: string } | undefined> {
    const { rows } = await reader.query<{ revoked: number; total: number; state: string }>(
      `SELECT r.revoked, r.total, r.state FROM bulk_revocations r JOIN incidents i ON r.origin = 'incident:' || i.id || ':now' WHERE i.name = $1`,
      [name],
    );
    return rows[0];
  }

  /** Waits until `ok` holds for the run's progress, polling every 20 ms, at most `ms`. */
  async function until(name: string, ok: (p: { revoked: number; total: number; state: string }) => boolean, ms: number): Promise<{ revoked: number; total: number; state: string }> {
    const deadline = performance.now() + ms;
    for (;;) {
      const p = await progress(name);
      if (p !== undefined && ok(p)) return p;
      if (performance.now() > deadline) throw new Error(`${name}: ${JSON.stringify(p)} after ${ms} ms`);
      await sleep(20);
    }
  }

  async function declare(env: Record<string, string>, name: string, suffix: string): Promise<void> {
    const result = await runCli(['incident', 'declare', name, '--select', `suffix=.${suffix}`, '--reason', 'superseded', '--renew-by', '7d', '--revoke', 'now', '--no-wait'], env);
    if (result.code !== 0) throw new Error(`declare ${name}: ${result.stderr}`);
  }

  /** The invariants: each certificate revoked once (one chunk names it), none left out, OCSP and CRL agree. */
  async function verify(t: Test, name: string, serials: string[]): Promise<void> {
    const { rows: runs } = await reader.query<{ id: string; revoked: number; skipped: number; chunks: number; state: string }>(
      `SELECT r.id, r.revoked, r.skipped, r.chunks, r.state FROM bulk_revocations r JOIN incidents i ON r.origin = 'incident:' || i.id || ':now' WHERE i.name = $1`,
      [name],
    );
    const run = runs[0]!;
    t.match(run, { state: 'done', revoked: COUNT, skipped: 0 }, 'the run finished: every certificate revoked by it, none found revoked already');
    const { rows: batches } = await reader.query<{ details: string }>(`SELECT details FROM audit_entries WHERE action = 'certificate.revoke-batch' AND subject = $1 ORDER BY id`, [`revocation:${run.id}`]);
    const chunks = batches.map((b) => JSON.parse(b.details) as { chunk: number; revoked: string[] });
    t.same(chunks.map((c) => c.chunk), Array.from({ length: chunks.length }, (_, i) => i + 1), 'chunks 1..n, each committed once');
    t.equal(chunks.length, run.chunks);
    const named = chunks.flatMap((c) => c.revoked);
    t.equal(new Set(named).size, named.length, 'no certificate revoked twice');
    t.same([...named].sort(), [...serials].sort(), 'none left out');
    const { rows: states } = await reader.query<{ status: string; n: number }>(
      `SELECT c.status || '/' || coalesce(o.status, 'none') || '/' || (o.der IS NOT NULL)::text AS status, count(*)::int AS n
       FROM certificates c LEFT JOIN ocsp_responses o ON o.serial = c.serial WHERE c.serial = ANY($1::text[]) GROUP BY 1`,
      [serials],
    );
    t.same(states, [{ status: 'revoked/revoked/true', n: COUNT }], 'every certificate revoked, every OCSP response re-signed as revoked');
    const crl = await fetch(`${a.publicAddress}/crl/${await intermediateId()}/0.crl`);
    const text = (await openssl(['crl', '-inform', 'DER', '-noout', '-text'], Buffer.from(await crl.arrayBuffer()))).stdout;
    const listed = new Set([...text.matchAll(/Serial Number: ([0-9A-F]+)/g)].map((m) => m[1]!.toLowerCase().replace(/^0+/, '')));
    t.ok(serials.every((s) => listed.has(s.replace(/^0+/, ''))), 'the CRL lists every one');
  }

  async function intermediateId(): Promise<string> {
    const { rows } = await reader.query<{ id: string }>(`SELECT id FROM issuers WHERE role = 'intermediate'`);
    return rows[0]!.id;
  }

  await t.test('ok/one instance, SIGKILLed mid-run: after a restart the run finishes, nothing twice, nothing left out', async (t) => {
    const serials = await seed('one.crash.test');
    await declare(envA, 'crash-one', 'one.crash.test');
    const atKill = await until('crash-one', (p) => p.total === COUNT && p.revoked >= COUNT / 5, 60_000);
    await a.stop('SIGKILL');
    const after = (await progress('crash-one'))!;
    t.ok(after.revoked < COUNT, `killed half way (${atKill.revoked}-${after.revoked} of ${COUNT})`);
    t.equal(after.state, 'running');
    a = await start('serve', envA);
    await until('crash-one', (p) => p.state === 'done', 90_000);
    await verify(t, 'crash-one', serials);
  });

  await t.test('ok/two instances: the one revoking is SIGKILLed, the other takes over once its lease runs out; no chunk twice', async (t) => {
    const serials = await seed('two.crash.test');
    const b = await start('serve', envB);
    await declare(envA, 'crash-two', 'two.crash.test');
    await until('crash-two', (p) => p.total === COUNT && p.revoked >= COUNT / 5, 60_000);
    const { rows } = await reader.query<{ holder: string }>(`SELECT holder FROM job_leases WHERE name = 'revocation.bulk'`);
    const holder = rows[0]!.holder;
    const victim = [a, b].find((server) => holder.includes(`/${server.child.pid}/`))!;
    t.ok(victim, `the lease holder is one of ours (${holder})`);
    await victim.stop('SIGKILL');
    t.ok((await progress('crash-two'))!.revoked < COUNT, 'killed half way');
    await until('crash-two', (p) => p.state === 'done', 90_000);
    const { rows: after } = await reader.query<{ holder: string }>(`SELECT holder FROM job_leases WHERE name = 'revocation.bulk'`);
    t.not(after[0]!.holder, holder, 'the survivor finished it');
    if (victim === a) a = b;
    await verify(t, 'crash-two', serials);
  });
}
