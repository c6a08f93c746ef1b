/**
 * npm run bench:revoke — incident response at scale, on what production runs: Chancery (the compiled build)
 * signing with SoftHSM keys, on PostgreSQL, with `bench:acme` issuing at 16 clients alongside.
 *
 * 1. Revocation: BENCH_REVOKE_COUNT (100,000) certificates of the one issuing CA are seeded (group
 *    `seeded`), then an incident over them is declared with `revoke: now` through the admin API. Timed from
 *    the declaration to the moment the run has revoked every one, re-signed every OCSP response (in the
 *    chunks' transactions) and published the CRL listing them all. Prints revocations/s and, from the
 *    bench:acme run measured over exactly that window (SIGUSR2 ends it), the concurrent ACME issuances/s and
 *    latency p99.
 * 2. Drill (BENCH_DRILL=0 skips it; BENCH_REVOKE=0 skips step 1, to time the drill alone): another
 *    BENCH_REVOKE_COUNT certificates (group `drilled`) and a drill incident over them. Timed from the
 *    declaration until every answer of a sample of BENCH_ARI_SAMPLE (2,000) certificates, polled over and
 *    over by 16 clients, carries the incident's explanationURL; then every certificate of the drill is asked
 *    once to confirm (not timed).
 *
 * Bounded: every wait has a limit (BENCH_TIMEOUT_SECONDS, 1800, for the whole run), and every process the
 * bench started is stopped by PID, the database dropped and the token removed, whatever happens. The
 * machine is shared: the load average is printed before and after.
 *
 * Settings: BENCH_REVOKE_COUNT 100000, BENCH_CLIENTS 16 (0: no ACME load, the revocation alone), BENCH_REVOKE 1,
 * BENCH_DRILL 1, BENCH_ARI_SAMPLE 2000, BENCH_TIMEOUT_SECONDS 1800; CHANCERY_TEST_PG_URL as for the tests.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { availableParallelism, cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Pool } from 'undici';
import { pidsServing, startCpuAccounting } from './cpu-accounting.js';
import { caCertificateFactory } from '../src/ca/ca-certificate-factory.js';
import { formatCertId, serialContentOctets } from '../src/core/cert-id.js';
import { fromPem } from '../src/core/pem.js';
import { openPgDatabase } from '../src/db/pg-database.js';
import type { Database } from '../src/db/database.js';
import { freePort, startChancery, type RunningChancery } from '../test/helpers/chancery-process.js';
import { createPgTestDatabase } from '../test/helpers/databases.js';
import { startDnsServer } from '../test/helpers/dns-server.js';
import { createSoftHsmToken } from '../test/helpers/softhsm.js';

const COUNT = Number(process.env.BENCH_REVOKE_COUNT ?? 100_000);
const CLIENTS = Number(process.env.BENCH_CLIENTS ?? 16);
const REVOKE = process.env.BENCH_REVOKE !== '0';
const DRILL = process.env.BENCH_DRILL !== '0';
const ARI_SAMPLE = Number(process.env.BENCH_ARI_SAMPLE ?? 2000);
const TIMEOUT_MS = Number(process.env.BENCH_TIMEOUT_SECONDS ?? 1800) * 1000;
const deadline = performance.now() + TIMEOUT_MS;

const cleanups: (() => Promise<void> | void)[] = [];
async function cleanup(): Promise<void> {
  for (const fn of cleanups.splice(0).reverse()) {
    try {
      await fn();
    } catch (error) {
      console.error(`cleanup: ${(error as Error).message}`);
    }
  }
}
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => void cleanup().finally(() => process.exit(130)));
}

function remaining(what: string): number {
  const left = deadline - performance.now();
  if (left <= 0) throw new Error(`BENCH_TIMEOUT_SECONDS reached while ${what}`);
  return left;
}

async function stopByPid(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  process.kill(child.pid, signal);
  const timer = setTimeout(() => child.pid !== undefined && child.exitCode === null && process.kill(child.pid, 'SIGKILL'), 15_000);
  await exited;
  clearTimeout(timer);
}

const load = (): string => loadavg().map((n) => n.toFixed(2)).join(' ');

/** One request to the admin API on the server's Unix socket, as the local operator. */
function admin<T>(socketPath: string, method: string, path: string, body?: unknown): Promise<T> {
  const text = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { socketPath, method, path: `/admin/v1${path}`, headers: { 'x-chancery-user': 'bench', ...(text ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) } : {}) } },
      (res) => {
        let data = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (data += chunk));
        res.on('end', () => (res.statusCode === 200 ? resolve(JSON.parse(data) as T) : reject(new Error(`${method} ${path}: ${res.statusCode} ${data.slice(0, 500)}`))));
      },
    );
    req.on('error', reject);
    req.end(text);
  });
}

/** `count` certificates of `issuer`, group `group`, stored as an issuance would (triggers on), 20,000 a statement. */
async function seed(db: Database, issuer: string, group: string, count: number, now: Date): Promise<void> {
  await db.query(`INSERT INTO groups (name, contacts, policy) VALUES ($1, '["pki-${group}@example.test"]', '{}') ON CONFLICT DO NOTHING`, [group]);
  const salt = randomBytes(4).toString('hex');
  for (let from = 0; from < count; from += 20_000) {
    const to = Math.min(count, from + 20_000) - 1;
    const serial = `'5' || lpad(to_hex(g), 9, '0') || substr(md5(g::text || $3), 1, 22)`;
    await db.query(`INSERT INTO serials (serial, issuer_id, created_at) SELECT ${serial}, $4, $5 FROM generate_series($1::int, $2::int) AS g`, [from, to, `${group}${salt}`, issuer, now]);
    await db.query(
      `INSERT INTO certificates (serial, issuer_id, crl_shard, der, identifiers, spki_sha256, not_before, not_after, status, created_at, profile, no_rev_avail, group_name)
       SELECT ${serial}, $4, 0, decode(repeat('ab', 600), 'hex'),
         jsonb_build_array(jsonb_build_object('type', 'dns', 'value', 'h' || g || '.' || $6::text || '.bench.internal')),
         encode(sha256(convert_to(g::text || $3, 'UTF8')), 'hex'), $5::timestamptz, $5::timestamptz + interval '30 days' + g * interval '1 second', 'valid',
         $5::timestamptz - g * interval '1 millisecond', 'tls-server', false, $6::text
       FROM generate_series($1::int, $2::int) AS g`,
      [from, to, `${group}${salt}`, issuer, now, group],
    );
  }
  await db.query('ANALYZE certificates');
}

interface RunRow {
  total: number;
  revoked: number;
  state: string;
  finished_at: Date | null;
  published_at: Date | null;
}

async function main(): Promise<void> {
  console.log(`bench:revoke — node ${process.version}, ${availableParallelism()} CPUs (${cpus()[0]?.model ?? '?'}), load average ${load()} (1/5/15 min)`);
  console.log(`  ${COUNT.toLocaleString('en')} certificates per incident, bench:acme at ${CLIENTS} clients alongside, SoftHSM, PostgreSQL`);
  const token = createSoftHsmToken('chancery-bench-revoke');
  if (token === undefined) throw new Error('SoftHSM is required (apt-get install softhsm2)');
  cleanups.push(() => token.cleanup());
  const database = await createPgTestDatabase();
  cleanups.push(() => database.drop());
  const base = await mkdtemp(join(tmpdir(), 'chancery-bench-revoke-'));
  cleanups.push(() => rm(base, { recursive: true, force: true }));
  const dns = await startDnsServer({ suffixA: { suffix: '.bench.test', address: '127.0.0.1' } });
  cleanups.push(() => dns.close());
  const http01Port = await freePort();
  const acmePort = await freePort();
  const dataDir = join(base, 'data');
  const env = {
    CHANCERY_DATABASE_URL: database.url,
    CHANCERY_DATA_DIR: dataDir,
    CHANCERY_KEY_PASSPHRASE: randomBytes(24).toString('base64url'),
    CHANCERY_KEYS: 'pkcs11',
    CHANCERY_PKCS11_LIBRARY: token.library,
    CHANCERY_PKCS11_TOKEN_LABEL: token.tokenLabel,
    CHANCERY_PKCS11_PIN: token.pin,
    SOFTHSM2_CONF: token.conf,
    UV_THREADPOOL_SIZE: '8',
    CHANCERY_ACME_LISTEN: `127.0.0.1:${acmePort}`,
    CHANCERY_ACME_TLS: 'true',
    CHANCERY_PUBLIC_LISTEN: `127.0.0.1:${await freePort()}`,
    CHANCERY_HTTP01_PORT: String(http01Port),
    CHANCERY_DNS_RESOLVERS: dns.resolver,
    CHANCERY_LOG_LEVEL: process.env.CHANCERY_LOG_LEVEL ?? 'warn',
  };
  const server: RunningChancery = await startChancery('start', env, remaining('starting Chancery'), 'build');
  cleanups.push(() => stopByPid(server.child));
  const socket = join(dataDir, 'admin.sock');
  const db = await openPgDatabase(database.url, { poolSize: 2 });
  cleanups.push(() => db.close());
  const { rows: issuers } = await db.query<{ id: string; der: Uint8Array }>(`SELECT id, der FROM issuers WHERE role = 'intermediate'`);
  const issuer = issuers[0]!;
  console.log(`  chancery pid ${String(server.child.pid)}, ${server.acmeDirectory}, issuer ${issuer.id}`);

  let started = performance.now();
  if (REVOKE) {
    await seed(db, issuer.id, 'seeded', COUNT, new Date());
    console.log(`  seeded ${COUNT.toLocaleString('en')} certificates (group seeded) in ${((performance.now() - started) / 1000).toFixed(0)} s`);

    // ---- 1. revocation under ACME load (BENCH_CLIENTS=0: alone, what the revocation itself costs) ----
    const acme = CLIENTS === 0 ? undefined : spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'acme.ts')], {
      env: {
        ...process.env,
        BENCH_START: '',
        BENCH_DIRECTORY: server.acmeDirectory,
        BENCH_CA_BUNDLE: join(dataDir, 'ca', 'root.pem'),
        BENCH_SERVER_PROCESSES: '1',
        BENCH_CLIENTS: String(CLIENTS),
        BENCH_WARMUP_SECONDS: '5',
        BENCH_SECONDS: String(Math.ceil(TIMEOUT_MS / 1000)),
        BENCH_HTTP01_PORT: String(http01Port),
        BENCH_STALL_SECONDS: '60',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let acmeOutput = '';
    if (acme !== undefined) {
      cleanups.push(() => stopByPid(acme, 'SIGINT'));
      acme.stdout.on('data', (chunk: Buffer) => (acmeOutput += chunk.toString()));
      acme.stderr.on('data', (chunk: Buffer) => (acmeOutput += chunk.toString()));
      while (!/accounts created/.test(acmeOutput)) {
        if (acme.exitCode !== null) throw new Error(`bench:acme exited:\n${acmeOutput}`);
        remaining('waiting for bench:acme');
        await sleep(200);
      }
      await sleep(6_000); // its warm-up: the measured window starts now
    }
    const databaseName = new URL(database.url).pathname.slice(1);
    const crlNumber = async (): Promise<number> =>
      Number((await db.query<{ number: string }>(`SELECT number FROM crls WHERE issuer_id = $1 AND shard = 0`, [issuer.id])).rows[0]?.number ?? 0);
    const crlBefore = await crlNumber();
    const cpu = startCpuAccounting({ processes: { chancery: () => [server.child.pid!], database: () => pidsServing(databaseName) } });
    const loadBefore = load();
    started = performance.now();
    const declared = await admin<{ incident: { id: string; affected: number } }>(socket, 'POST', '/incidents', {
      name: 'bench-revoke',
      select: { group: 'seeded' },
      reason: 'superseded',
      renewBy: '7d',
      revoke: 'now',
    });
    const declareSeconds = (performance.now() - started) / 1000;
    let run: RunRow | undefined;
    for (;;) {
      remaining('revoking');
      run = (await db.query<RunRow>(`SELECT total, revoked, state, finished_at, published_at FROM bulk_revocations WHERE origin = $1`, [`incident:${declared.incident.id}:now`])).rows[0];
      if (run?.published_at) break;
      await sleep(100);
    }
    const revokeSeconds = (performance.now() - started) / 1000;
    const loadDuring = load();
    const used = cpu();
    if (acme !== undefined) {
      process.kill(acme.pid!, 'SIGUSR2');
      await once(acme, 'exit');
    }
    const issuances = /issuances:\s+(\d+) in ([\d.]+) s = ([\d.]+) issuances\/s/.exec(acmeOutput);
    const latency = /p50 (\d+) ms, p99 (\d+) ms/.exec(acmeOutput);
    const failures = /failures:\s+(\d+)/.exec(acmeOutput)?.[1];
    const { rows: check } = await db.query<{ revoked: number; ocsp: number }>(
      `SELECT (SELECT count(*)::int FROM certificates WHERE group_name = 'seeded' AND status = 'revoked') AS revoked,
              (SELECT count(*)::int FROM ocsp_responses o JOIN certificates c ON c.serial = o.serial WHERE c.group_name = 'seeded' AND o.status = 'revoked' AND o.der IS NOT NULL) AS ocsp`,
    );
    const { rows: crl } = await db.query<{ entries: number }>(`SELECT entries FROM crls WHERE issuer_id = $1 AND shard = 0 ORDER BY number DESC LIMIT 1`, [issuer.id]).catch(() => ({ rows: [] as { entries: number }[] }));
    console.log('');
    console.log(`revocation: incident over ${declared.incident.affected.toLocaleString('en')} certificates of issuer ${issuer.id}, revoke now`);
    console.log(`  declared in ${declareSeconds.toFixed(1)} s; every certificate revoked, OCSP re-signed and the CRL published ${revokeSeconds.toFixed(1)} s after the declaration`);
    console.log(`  = ${(COUNT / revokeSeconds).toFixed(0)} revocations/s (goal: ${COUNT.toLocaleString('en')} within ${COUNT >= 1_000_000 ? '600' : '60'} s)`);
    console.log(`  checked: ${check[0]!.revoked} revoked, ${check[0]!.ocsp} revoked OCSP responses signed, latest CRL ${crl[0]?.entries ?? '?'} entries (${(await crlNumber()) - crlBefore} CRLs published during the run); run ${run!.revoked}/${run!.total}`);
    if (used !== undefined) {
      const perRevocation = (ms: number): string => `${((1000 * ms) / COUNT).toFixed(0)} µs`;
      console.log(
        `  CPU over that window${acme === undefined ? '' : ' (the issuances alongside included)'}: Chancery ${(used.ms.chancery! / 1000).toFixed(1)} s = ${perRevocation(used.ms.chancery!)} per revocation, ` +
          `PostgreSQL ${(used.ms.database! / 1000).toFixed(1)} s = ${perRevocation(used.ms.database!)}; machine ${((used.machineBusy ?? 0) * 100).toFixed(0)} % busy`,
      );
    }
    if (acme !== undefined) console.log(`  bench:acme alongside: ${issuances?.[3] ?? '?'} issuances/s (${issuances?.[1] ?? '?'} in ${issuances?.[2] ?? '?'} s), p50 ${latency?.[1] ?? '?'} ms, p99 ${latency?.[2] ?? '?'} ms (goal < 1000), failures ${failures ?? '?'}`);
    console.log(`  load average before ${loadBefore}, at the end ${loadDuring}`);
  }

  if (!DRILL) return;
  // ---- 2. drill: how soon renewalInfo says so ----
  started = performance.now();
  await seed(db, issuer.id, 'drilled', COUNT, new Date());
  console.log(`\n  seeded ${COUNT.toLocaleString('en')} certificates (group drilled) in ${((performance.now() - started) / 1000).toFixed(0)} s`);
  const keyId = caCertificateFactory.parse(issuer.der).keyId;
  const { rows: serials } = await db.query<{ serial: string }>(`SELECT serial FROM certificates WHERE group_name = 'drilled' ORDER BY serial`);
  const certIds = serials.map((row) => formatCertId(keyId, serialContentOctets(row.serial)));
  const sample = Array.from({ length: Math.min(ARI_SAMPLE, certIds.length) }, (_, i) => certIds[Math.floor((i * certIds.length) / Math.min(ARI_SAMPLE, certIds.length))]!);
  const ca = fromPem(await readFile(join(dataDir, 'ca', 'root.pem'), 'utf8')).map((der) => `-----BEGIN CERTIFICATE-----\n${der.toString('base64')}\n-----END CERTIFICATE-----\n`).join('');
  const origin = new URL(server.acmeDirectory).origin;
  const pool = new Pool(origin, { connections: CLIENTS, connect: { ca } });
  cleanups.push(() => pool.close());
  const explanation = 'https://pki.example.test/incidents/bench-drill';
  const reflects = async (certId: string): Promise<boolean> => {
    const response = await pool.request({ method: 'GET', path: `/acme/renewal-info/${certId}` });
    const body = (await response.body.json()) as { explanationURL?: string };
    return response.statusCode === 200 && body.explanationURL === explanation;
  };
  /** Asks every certId once, CLIENTS at a time; how many reflect the incident. */
  const sweep = async (ids: string[]): Promise<number> => {
    let next = 0;
    let yes = 0;
    await Promise.all(
      Array.from({ length: CLIENTS }, async () => {
        while (next < ids.length) {
          const id = ids[next++]!;
          if (await reflects(id)) yes += 1;
        }
      }),
    );
    return yes;
  };
  if ((await sweep(sample.slice(0, 100))) !== 0) throw new Error('renewalInfo reflects the drill before it is declared');
  started = performance.now();
  const declaring = admin<{ incident: { affected: number } }>(socket, 'POST', '/incidents', {
    name: 'bench-drill',
    select: { group: 'drilled' },
    reason: 'keyCompromise',
    renewBy: '7d',
    revoke: 'when-replaced',
    explanationUrl: explanation,
    drill: true,
  });
  let declaredDrill: { incident: { affected: number } } | undefined;
  void declaring.then((d) => (declaredDrill = d));
  let reflectedAfter: number | undefined;
  let passes = 0;
  for (;;) {
    remaining('polling renewalInfo');
    passes += 1;
    if ((await sweep(sample)) === sample.length) {
      reflectedAfter = (performance.now() - started) / 1000;
      break;
    }
  }
  await declaring;
  const declaredAfter = (performance.now() - started) / 1000;
  started = performance.now();
  const all = await sweep(certIds);
  const confirmSeconds = (performance.now() - started) / 1000;
  console.log('');
  console.log(`drill: ${declaredDrill?.incident.affected.toLocaleString('en') ?? '?'} certificates, when-replaced, keyCompromise (keys blocked), explanationURL set`);
  console.log(`  every renewalInfo answer of a ${sample.length}-certificate sample (polled ${passes} times by ${CLIENTS} clients) carried the incident ${reflectedAfter.toFixed(1)} s after the declaration was sent (goal <= 10 s); the declaration returned after ${declaredAfter.toFixed(1)} s`);
  console.log(`  confirmed: ${all} of ${certIds.length} certificates answer with the incident (${confirmSeconds.toFixed(0)} s to ask them all, ${(certIds.length / confirmSeconds).toFixed(0)} renewalInfo/s)`);
  console.log(`  load average at the end ${load()}`);
}

main()
  .catch((error: unknown) => {
    console.error(`bench:revoke failed: ${error instanceof Error ? error.stack ?? error.message : String(error)}`);
    process.exitCode = 1;
  })
  .finally(() => cleanup());
