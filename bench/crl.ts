/**
 * npm run bench:crl — one CRL with a million revoked certificates, generated from PostgreSQL: entries read
 * in keyset pages, DER-encoded straight into one buffer, signed through the intermediate's Signer, verified,
 * and stored in the crls tables (CrlPublisher.generate: exactly what a revocation or the schedule runs).
 *
 * Setup (not timed) runs here: a fresh database on the PostgreSQL at CHANCERY_TEST_PG_URL (default
 * postgresql://postgres@127.0.0.1:5432/postgres), dropped at the end; a CA from the real ceremony (software
 * keys); the revoked rows bulk-inserted by SQL, then VACUUM ANALYZE as autovacuum would. The generation then
 * runs in a fresh child process, as `chancery crl generate` or a serving instance would, so its peak RSS is
 * that of the generation and not of the setup. Finally openssl parses and verifies the CRL and counts its
 * entries.
 *
 * Then it revokes BENCH_CRL_REVOCATIONS fresh certificates of that shard one by one and times each
 * Revoker.revoke(), which returns once the CRL listing the revocation is published.
 *
 *   BENCH_CRL_ENTRIES (default 1000000)   BENCH_CRL_RUNS (default 2)   BENCH_CRL_REVOCATIONS (default 3)
 *   BENCH_OPENSSL_BASELINE=1              also time `openssl ca -gencrl` on the same number of entries
 */
import { execFile } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { pino } from 'pino';
import { compose } from '../src/compose.js';
import { loadConfig } from '../src/config/load-config.js';
import type { Config } from '../src/config/config.js';
import { DAY, systemClock } from '../src/core/clock.js';
import { toPem } from '../src/core/pem.js';
import { CrlRepository } from '../src/db/repositories/crl-repository.js';

const ENTRIES = Number(process.env.BENCH_CRL_ENTRIES ?? 1_000_000);
const RUNS = Number(process.env.BENCH_CRL_RUNS ?? 2);
const BATCH = 100_000;
const PASSPHRASE = 'bench-passphrase-0123456789';
const sh = promisify(execFile);
const mb = (bytes: number): string => `${(bytes / 1024 / 1024).toFixed(0)} MB`;
/** process.resourceUsage().maxRSS is in kilobytes. */
const peakRss = (): number => process.resourceUsage().maxRSS * 1024;

function benchConfig(dir: string, databaseUrl: string): Config {
  return loadConfig({
    env: { CHANCERY_DATA_DIR: join(dir, 'data'), CHANCERY_DATABASE_URL: databaseUrl, CHANCERY_KEY_PASSPHRASE: PASSPHRASE, CHANCERY_LOG_LEVEL: 'silent' },
    cwd: dir,
  });
}

interface ChildReport {
  rssBeforeBytes: number;
  runs: { seconds: number; number: number; entries: number; bytes: number; peakRssBytes: number }[];
  /** Revoker.revoke() of a fresh certificate in the same shard: returns once the CRL listing it is published. */
  revocations: { seconds: number; crlNumber: number; listed: number }[];
}

/** How many single revocations the child times after the generations (BENCH_CRL_REVOCATIONS). */
const REVOCATIONS = Number(process.env.BENCH_CRL_REVOCATIONS ?? 3);

/** The measured part, in a process of its own: open the runtime, generate the intermediate's CRL RUNS times. */
async function child(dir: string, databaseUrl: string, out: string): Promise<void> {
  const runtime = await compose(benchConfig(dir, databaseUrl), { logger: pino({ level: 'silent' }), listen: false });
  try {
    const { hierarchy } = runtime;
    const publisher = runtime.services.crl;
    const report: ChildReport = { rssBeforeBytes: peakRss(), runs: [], revocations: [] };
    for (let run = 1; run <= RUNS; run += 1) {
      const started = performance.now();
      const info = await publisher.generate(hierarchy.intermediate.id, 0);
      const seconds = (performance.now() - started) / 1000;
      const bytes = (await publisher.latest(hierarchy.intermediate.id, 0))?.der.length ?? 0;
      report.runs.push({ seconds, number: info.number, entries: info.entries, bytes, peakRssBytes: peakRss() });
    }
    // What an ACME revokeCert or `chancery revoke` costs with this shard: the revocation's transaction
    // (OCSP re-signed), then the regeneration of the whole shard, published before revoke() returns.
    for (let i = 0; i < REVOCATIONS; i += 1) {
      const key = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'der' });
      const leaf = await runtime.services.issuance.issueForKey(key, [{ type: 'dns', value: `revoked-${i}.bench.internal` }]);
      const started = performance.now();
      await runtime.services.revoker.revoke(leaf.serial, 1);
      const seconds = (performance.now() - started) / 1000;
      const latest = (await publisher.latest(hierarchy.intermediate.id, 0))!;
      report.revocations.push({ seconds, crlNumber: latest.number, listed: latest.entries });
    }
    await writeFile(out, JSON.stringify(report));
  } finally {
    await runtime.close();
  }
}

async function main(): Promise<void> {
  console.log(`bench:crl — ${cpus()[0]?.model ?? 'cpu'} x${availableParallelism()}, node ${process.version}, ${ENTRIES} revoked certificates`);
  const dir = await mkdtemp(join(tmpdir(), 'chancery-bench-crl-'));
  // Imported here, not at the top: it loads PGlite too, which the measured child process must not carry.
  const { createPgTestDatabase } = await import('../test/helpers/databases.js');
  const database = await createPgTestDatabase();
  try {
    const runtime = await compose(benchConfig(dir, database.url), { logger: pino({ level: 'silent' }), listen: false, ca: 'create' });
    let root: Uint8Array;
    let intermediate: Uint8Array;
    try {
      const { hierarchy } = runtime;
      root = hierarchy.root.der;
      intermediate = hierarchy.intermediate.der;
      const crls = new CrlRepository(runtime.db);
      const now = systemClock.now();
      const loadStarted = performance.now();
      for (let from = 0; from < ENTRIES; from += BATCH) {
        await crls.insertRevokedForBench({
          issuerId: hierarchy.intermediate.id,
          seed: 'bench',
          from,
          count: Math.min(BATCH, ENTRIES - from),
          shards: 1,
          notBefore: new Date(now.getTime() - 10 * DAY),
          notAfter: new Date(now.getTime() + 20 * DAY),
          revokedAt: new Date(now.getTime() - 5 * DAY),
        });
      }
      await crls.vacuumCertificates();
      console.log(`setup: ${ENTRIES} revoked rows inserted + VACUUM ANALYZE in ${((performance.now() - loadStarted) / 1000).toFixed(1)} s (not timed)`);
    } finally {
      await runtime.close();
    }

    const reportFile = join(dir, 'report.json');
    await sh(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), '--child', dir, database.url, reportFile], {
      env: process.env,
      maxBuffer: 16 * 1024 * 1024,
    });
    const report = JSON.parse(await readFile(reportFile, 'utf8')) as ChildReport;
    console.log(`generating process (node ${process.execArgv.join(' ') || ''}): RSS ${mb(report.rssBeforeBytes)} after opening the runtime`);
    for (const [i, revocation] of report.revocations.entries()) {
      console.log(
        `revoke ${i + 1}: Revoker.revoke() returned in ${revocation.seconds.toFixed(2)} s with CRL #${revocation.crlNumber} ` +
          `(${revocation.listed} entries) published — what an ACME revokeCert waits for on this shard`,
      );
    }
    for (const [i, run] of report.runs.entries()) {
      console.log(
        `run ${i + 1}: CRL #${run.number}, ${run.entries} entries, ${mb(run.bytes)} DER — read + encoded + signed + verified + stored ` +
          `in ${run.seconds.toFixed(2)} s; peak RSS ${mb(run.peakRssBytes)}`,
      );
    }

    // The CRL as served, judged by openssl.
    const verifier = await compose(benchConfig(dir, database.url), { logger: pino({ level: 'silent' }), listen: false });
    let der: Uint8Array | undefined;
    try {
      der = (await new CrlRepository(verifier.db).latest(verifier.hierarchy.intermediate.id, 0))?.der;
    } finally {
      await verifier.close();
    }
    if (!der) throw new Error('no CRL stored');
    const crlFile = join(dir, 'crl.der');
    const caFile = join(dir, 'ca.pem');
    await writeFile(crlFile, der);
    await writeFile(caFile, toPem(root) + toPem(intermediate));
    const verify = await sh('openssl', ['crl', '-inform', 'DER', '-in', crlFile, '-noout', '-CAfile', caFile, '-verify']);
    console.log(`openssl crl -inform DER -CAfile root+intermediate -verify: ${(verify.stderr + verify.stdout).trim()}`);
    const counted = await sh('sh', ['-c', `openssl crl -inform DER -in '${crlFile}' -noout -text | grep -c 'Serial Number'`]);
    console.log(`openssl crl -inform DER -noout -text | grep -c 'Serial Number': ${counted.stdout.trim()}`);

    if (process.env.BENCH_OPENSSL_BASELINE === '1') await opensslBaseline(dir, ENTRIES);
  } finally {
    await database.drop();
    await rm(dir, { recursive: true, force: true });
  }
}

/** `openssl ca -gencrl` over an index.txt of the same size, with a throwaway P-256 CA (for comparison). */
async function opensslBaseline(dir: string, entries: number): Promise<void> {
  const base = join(dir, 'openssl-ca');
  await sh('mkdir', ['-p', base]);
  await sh('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(base, 'key.pem'), '-out', join(base, 'cert.pem'), '-subj', '/CN=baseline', '-days', '30']);
  const reasons = ['unspecified', 'keyCompromise', 'affiliationChanged', 'superseded', 'cessationOfOperation'];
  const lines: string[] = [];
  for (let i = 0; i < entries; i += 1) {
    const serial = `4${i.toString(16).padStart(31, '0')}`.toUpperCase();
    lines.push(`R\t300101000000Z\t260101000000Z,${reasons[i % 5]}\t${serial}\tunknown\t/CN=host-${i}`);
  }
  await writeFile(join(base, 'index.txt'), `${lines.join('\n')}\n`);
  await writeFile(join(base, 'crlnumber'), '01\n');
  await writeFile(
    join(base, 'openssl.cnf'),
    `[ca]\ndefault_ca = b\n[b]\ndatabase = ${base}/index.txt\ncrlnumber = ${base}/crlnumber\ncertificate = ${base}/cert.pem\nprivate_key = ${base}/key.pem\ndefault_md = sha256\ndefault_crl_days = 1\n`,
  );
  const started = performance.now();
  const { stderr } = await sh('/usr/bin/time', ['-f', 'maxrss_kb=%M', 'openssl', 'ca', '-config', join(base, 'openssl.cnf'), '-gencrl', '-out', join(base, 'crl.pem')], {
    maxBuffer: 16 * 1024 * 1024,
  });
  const seconds = (performance.now() - started) / 1000;
  const kb = Number(/maxrss_kb=(\d+)/.exec(stderr)?.[1] ?? 0);
  console.log(`baseline openssl ca -gencrl: ${entries} entries in ${seconds.toFixed(2)} s, peak RSS ${mb(kb * 1024)}`);
}

const args = process.argv.slice(2);
if (args[0] === '--child') await child(args[1]!, args[2]!, args[3]!);
else await main();
