/**
 * node --import tsx bench/inventory-triggers.ts — what the inventory's insert triggers (migration 0013: a
 * certificate's names and its count delta; 0018: its labels' rows, written by the statement that stores it)
 * cost the issuance path's store: PostgreSQL backend CPU per certificate stored by CertificateRepository.insertForOrder in
 * batches of BATCH (as concurrent ACME finalizations share one statement), with the triggers enabled and
 * disabled, alternating rounds on one fresh database (PostgreSQL at CHANCERY_TEST_PG_URL, dropped after).
 * The backend's CPU is read from /proc (PostgreSQL on this machine), so other processes' load does not
 * count; the serial reservations run in both arms alike and are counted too.
 *
 *   BENCH_TRIGGERS_CERTS (default 5000 per round)   BENCH_TRIGGERS_ROUNDS (default 3 per arm)
 */
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { FakeClock } from '../src/core/clock.js';
import type { IssuedCertificate } from '../src/core/certificate.js';
import { migrate } from '../src/db/migrate.js';
import { openPgDatabase } from '../src/db/pg-database.js';
import { CertificateRepository } from '../src/db/repositories/certificate-repository.js';
import { IssuerRepository } from '../src/db/repositories/issuer-repository.js';

const ADMIN_URL = process.env.CHANCERY_TEST_PG_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres';
const CERTS = Number(process.env.BENCH_TRIGGERS_CERTS ?? 5000);
const ROUNDS = Number(process.env.BENCH_TRIGGERS_ROUNDS ?? 3);
const BATCH = 8;
const NAME = `chancery_bench_triggers_${process.pid}`;
const now = new Date('2026-12-01T00:00:00Z');

async function backendCpuMs(pid: number): Promise<number> {
  const fields = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1]!.split(' ');
  // utime and stime (fields 14 and 15 of stat; 12 and 13 after the command) in clock ticks of 10 ms.
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

function certificate(i: number): IssuedCertificate {
  return {
    serial: `5${randomBytes(15).toString('hex')}`,
    issuerId: 'root',
    crlShard: 0,
    der: randomBytes(600),
    identifiers: [{ type: 'dns', value: `h${i}.app.payments.internal` }, { type: 'dns', value: `h${i}-alt.app.payments.internal` }],
    spkiSha256: randomBytes(32).toString('hex'),
    notBefore: now,
    notAfter: new Date(now.getTime() + 90 * 86_400_000),
    status: 'valid',
    createdAt: now,
    profile: 'tls-server',
    group: 'default',
    labels: { env: 'prod', owner: 'team-7', app: 'app-7-1', criticality: 'low', region: 'eu-1' },
  };
}

const admin = await openPgDatabase(ADMIN_URL, { poolSize: 1 });
await admin.query(`CREATE DATABASE ${NAME}`);
const url = new URL(ADMIN_URL);
url.pathname = `/${NAME}`;
const db = await openPgDatabase(url.toString(), { poolSize: 1 });
try {
  await migrate(db, new FakeClock(now));
  await new IssuerRepository(db).insert({ id: 'root', role: 'root', keyName: 'k', der: randomBytes(100), subject: 'CN=R', notBefore: now, notAfter: new Date(now.getTime() + 1e12), createdAt: now });
  const { rows } = await db.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
  const pid = rows[0]!.pid;
  const repository = new CertificateRepository(db, { batch: true });
  const results: Record<'on' | 'off', number[]> = { on: [], off: [] };
  let n = 0;
  console.log(`bench inventory-triggers: ${CERTS} certificates per round in batches of ${BATCH}, ${ROUNDS} rounds per arm; load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  for (let round = 0; round < 2 * ROUNDS; round++) {
    const arm = round % 2 === 0 ? 'on' : 'off';
    for (const trigger of ['certificates_inventory_inserted', 'certificates_labels_inserted']) {
      await db.query(`ALTER TABLE certificates ${arm === 'on' ? 'ENABLE' : 'DISABLE'} TRIGGER ${trigger}`);
    }
    const before = await backendCpuMs(pid);
    const started = performance.now();
    for (let i = 0; i < CERTS; i += BATCH) {
      const batch = Array.from({ length: BATCH }, () => certificate(n++));
      for (const c of batch) await repository.reserveSerial(c.serial, c.issuerId, now);
      await Promise.all(batch.map((c) => repository.insertForOrder(c, 'no-order')));
    }
    const cpu = (await backendCpuMs(pid)) - before;
    results[arm].push(cpu / CERTS);
    console.log(`round ${round + 1} triggers ${arm}: backend CPU ${(cpu / CERTS).toFixed(3)} ms per certificate, wall ${((performance.now() - started) / CERTS).toFixed(3)} ms`);
  }
  const mean = (list: number[]): number => list.reduce((a, b) => a + b, 0) / list.length;
  console.log(`mean backend CPU per certificate (reserve + store): triggers on ${mean(results.on).toFixed(3)} ms, off ${mean(results.off).toFixed(3)} ms (${((100 * (mean(results.on) - mean(results.off))) / mean(results.off)).toFixed(1)} %)`);
  console.log(`load average at the end ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
} finally {
  await db.close();
  await admin.query(`DROP DATABASE ${NAME} WITH (FORCE)`);
  await admin.close();
}
