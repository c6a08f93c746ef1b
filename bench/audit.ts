/**
 * npm run bench:audit — the audit log at scale (DESIGN.md rule 9: a query a page runs is indexed; measured at
 * 10M rows): every filter of the audit query (AuditLog.query: actor, action, subject, time range, group
 * scope; keyset pages by id) on BENCH_AUDIT_ENTRIES entries, timed, with the plan PostgreSQL chose; then the
 * sealer's throughput and a verification pass over what it sealed.
 *
 * Setup (not timed): a fresh migrated database on the PostgreSQL at CHANCERY_TEST_PG_URL (default
 * postgresql://postgres@127.0.0.1:5432/postgres), dropped at the end; entries bulk-inserted by SQL with the
 * shape of a real log (one entry every 3 s; 100,000 accounts; 90 % issuances, a single ca.create; 20
 * groups), then VACUUM ANALYZE as autovacuum would. Each query runs BENCH_AUDIT_RUNS times; the median is
 * printed.
 *
 *   BENCH_AUDIT_ENTRIES (default 10000000)   BENCH_AUDIT_RUNS (default 5)   BENCH_AUDIT_SEAL (default 100000)
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AuditFilter } from '../src/core/audit.js';
import { FakeClock } from '../src/core/clock.js';
import type { Database, QueryOptions, QueryResult } from '../src/db/database.js';
import { encodeCursor } from '../src/db/keyset.js';
import { openPgDatabase } from '../src/db/pg-database.js';
import { AuditRepository } from '../src/db/repositories/audit-repository.js';
import { KeyBlobRepository } from '../src/db/repositories/key-blob-repository.js';
import { CheckpointFile } from '../src/inventory/audit-checkpoint-file.js';
import { AuditLog } from '../src/inventory/audit-log.js';
import { SoftwareKeyStore } from '../src/keys/software/software-key-store.js';
import { createPgTestDatabase } from '../test/helpers/databases.js';

const ENTRIES = Number(process.env.BENCH_AUDIT_ENTRIES ?? 10_000_000);
const RUNS = Number(process.env.BENCH_AUDIT_RUNS ?? 5);
const SEAL = Number(process.env.BENCH_AUDIT_SEAL ?? 100_000);
const CHUNK = 1_000_000;
const START = '2026-01-01T00:00:00Z';
const at = (n: number): Date => new Date(Date.parse(START) + n * 3000);

/** Remembers the last statement, so that the query the repository built can be EXPLAINed as it ran. */
class Recording {
  last: { sql: string; params: readonly unknown[] } | undefined;
  constructor(private readonly db: Database) {}
  query<R>(sql: string, params: readonly unknown[] = [], options?: QueryOptions): Promise<QueryResult<R>> {
    this.last = { sql, params };
    return this.db.query<R>(sql, params, options);
  }
}

async function main(): Promise<void> {
  const database = await createPgTestDatabase({ migrated: true });
  const db = await openPgDatabase(database.url, { poolSize: 2 });
  const dir = await mkdtemp(join(tmpdir(), 'chancery-bench-audit-'));
  try {
    console.log(`bench:audit — ${ENTRIES.toLocaleString('en')} entries on PostgreSQL (${database.name})`);
    const loadStarted = performance.now();
    for (let from = 1; from <= ENTRIES; from += CHUNK) {
      const to = Math.min(ENTRIES, from + CHUNK - 1);
      await db.query(
        `INSERT INTO audit_entries (at, actor, action, subject, outcome, group_name, details)
         SELECT $3::timestamptz + g * interval '3 seconds',
           CASE WHEN g % 50 = 0 THEN 'cli:operator' ELSE 'account:' || (g % 100000) END,
           CASE WHEN g = 1 THEN 'ca.create' WHEN g % 100 < 90 THEN 'certificate.issue' WHEN g % 100 < 95 THEN 'certificate.revoke'
                WHEN g % 100 < 99 THEN 'account.create' ELSE 'eab.create' END,
           'certificate:' || to_hex(g), 'ok', 'group-' || (g % 20), '{"issuer":"int-1","identifiers":["dns:host.example.internal"]}'
         FROM generate_series($1::bigint, $2::bigint) AS g`,
        [from, to, START],
      );
      process.stdout.write(`  loaded ${to.toLocaleString('en')}\r`);
    }
    await db.query('VACUUM ANALYZE audit_entries');
    console.log(`  loaded ${ENTRIES.toLocaleString('en')} entries in ${((performance.now() - loadStarted) / 1000).toFixed(0)} s (with VACUUM ANALYZE)`);

    const recording = new Recording(db);
    const store = new AuditRepository(recording);
    const middle = Math.floor(ENTRIES / 2);
    const cases: [string, AuditFilter, { afterId?: number; newestFirst?: boolean }][] = [
      ['no filter, first page', {}, {}],
      ['no filter, a page in the middle', {}, { afterId: middle }],
      ['actor (an account: 100 entries)', { actor: 'account:4242' }, {}],
      ['actor (the operator: 2 % of entries), a later page', { actor: 'cli:operator' }, { afterId: middle }],
      ['action, common (certificate.revoke)', { action: 'certificate.revoke' }, { afterId: middle }],
      ['action, rare (ca.create: 1 entry)', { action: 'ca.create' }, {}],
      ['subject (one certificate)', { subject: `certificate:${middle.toString(16)}` }, {}],
      ['time range, one hour in the middle', { from: at(middle), to: at(middle + 1200) }, {}],
      ['time range, since the middle (first page)', { from: at(middle) }, {}],
      ['time range, the last day (first page)', { from: at(ENTRIES - 28_800) }, {}],
      ['group scope (1 of 20 groups), a later page', { groups: ['group-7'] }, { afterId: middle }],
      ['group scope + action + since the middle', { groups: ['group-12'], action: 'certificate.revoke', from: at(middle) }, {}],
      ['newest first, first page', {}, { newestFirst: true }],
      ['group scope (3 groups), newest first', { groups: ['group-1', 'group-2', 'group-3'] }, { newestFirst: true }],
      ['group scope (3 groups), a later page', { groups: ['group-1', 'group-2', 'group-3'] }, { afterId: middle }],
      ['actor + time range, one day', { actor: 'cli:operator', from: at(middle), to: at(middle + 28_800) }, {}],
    ];
    console.log(`\nqueries (page of 100, median of ${RUNS}):`);
    for (const [name, filter, { afterId, newestFirst }] of cases) {
      const times: number[] = [];
      let rows = 0;
      for (let run = 0; run < RUNS; run++) {
        const started = performance.now();
        const cursor = afterId === undefined ? undefined : encodeCursor([at(afterId).toISOString(), String(afterId), 'ASC']);
        rows = (await store.query(filter, cursor, 100, { newestFirst: newestFirst === true })).entries.length;
        times.push(performance.now() - started);
      }
      times.sort((a, b) => a - b);
      const { sql, params } = recording.last!;
      const explained = await db.query<{ 'QUERY PLAN': unknown }>(`EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) ${sql}`, params);
      const plan = (explained.rows[0]!['QUERY PLAN'] as [{ Plan: PlanNode }])[0].Plan;
      console.log(`  ${name.padEnd(55)} ${times[Math.floor(times.length / 2)]!.toFixed(1).padStart(8)} ms  ${String(rows).padStart(3)} rows  ${describe(plan)}`);
    }

    // The sealer: a backlog of SEAL entries (what ~4 minutes at 400 issuances/s leave if the job stopped).
    await db.query(`INSERT INTO audit_unsealed (entry_id) SELECT id FROM audit_entries WHERE id > $1 ORDER BY id LIMIT $2`, [ENTRIES - SEAL, SEAL]);
    const clock = new FakeClock();
    const audit = new AuditLog({
      store: new AuditRepository(db),
      storeOn: (tx) => new AuditRepository(tx),
      keys: new SoftwareKeyStore({ blobs: new KeyBlobRepository(db), passphrase: 'bench-passphrase-0123456789', clock }),
      mirror: new CheckpointFile(join(dir, 'checkpoints.jsonl')),
      clock,
      settings: { checkpointMs: 60_000, checkpointEntries: 10_000 },
    });
    const cpu = process.cpuUsage();
    const sealStarted = performance.now();
    const sealed = await audit.seal();
    const sealMs = performance.now() - sealStarted;
    const sealCpu = process.cpuUsage(cpu);
    console.log(
      `\nseal: ${sealed.sealed.toLocaleString('en')} entries in ${(sealMs / 1000).toFixed(2)} s = ${Math.round(sealed.sealed / (sealMs / 1000)).toLocaleString('en')}/s ` +
        `(Node CPU ${((sealCpu.user + sealCpu.system) / 1000 / sealed.sealed).toFixed(3)} ms/entry), checkpoint at ${sealed.checkpoint?.seq ?? '-'}`,
    );
    const verifyStarted = performance.now();
    const report = await audit.verify();
    // Every bulk-loaded entry outside the backlog was never sealed: verify reports them (first 50), as expected here.
    console.log(
      `verify: ${report.sealed.toLocaleString('en')} positions and ${report.checkpoints} checkpoint(s) checked in ${((performance.now() - verifyStarted) / 1000).toFixed(2)} s, ` +
        `including the scan of all ${ENTRIES.toLocaleString('en')} entries for ones outside the chain (the bulk-loaded ones are, by construction)`,
    );
  } finally {
    await db.close();
    await database.drop();
    await rm(dir, { recursive: true, force: true });
  }
}

interface PlanNode {
  'Node Type': string;
  'Index Name'?: string;
  'Actual Rows'?: number;
  'Shared Hit Blocks'?: number;
  'Shared Read Blocks'?: number;
  Plans?: PlanNode[];
}

/** The scans of a plan (node type and index), and the buffers it touched. */
function describe(plan: PlanNode): string {
  const scans: string[] = [];
  const walk = (node: PlanNode): void => {
    if (node['Node Type'].includes('Scan')) scans.push(`${node['Node Type']}${node['Index Name'] ? ` ${node['Index Name']}` : ''}`);
    for (const child of node.Plans ?? []) walk(child);
  };
  walk(plan);
  const blocks = (plan['Shared Hit Blocks'] ?? 0) + (plan['Shared Read Blocks'] ?? 0);
  return `${blocks} buffers; ${scans.join(', ')}`;
}

await main();
