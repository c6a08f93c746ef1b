/**
 * npm run bench:inventory [-- --rows N] — the certificate inventory at N certificates (default 10,000,000)
 * on the PostgreSQL at CHANCERY_TEST_PG_URL (default postgresql://postgres@127.0.0.1:5432/postgres).
 *
 * 1. Free disk is checked before anything is written (an estimate of what the seed needs, x1.5).
 * 2. The estate is seeded ONCE into chancery_bench_inventory_<N>_v<SEED_VERSION> (bench/inventory-seed.ts:
 *    COPY from a generator) and reused by later runs, which apply migrations added since; seeding time and
 *    the database's size are printed.
 * 3. About twenty fixed queries, each through the real code path (the filter grammar, CertificateInventory,
 *    CertificateSearchRepository on the pg driver): WARMUP runs, then SAMPLES timed runs with random
 *    parameters drawn from the data (p50 / p99 / max), and the plan of one run (scan nodes and indexes:
 *    every query should be an index scan; a Sort says a walk was not in sort order), with the generic plan
 *    when it differs (what a connection keeps after five runs of a prepared statement). The label queries
 *    (migration 0018's certificate_labels) cover both sorts both ways, pages deep into the cursor (taken at a
 *    sampled row of the label's own walk), status and group filters, two labels and counts.
 * 4. Export: 1,000,000 valid certificates as CSV through the server's inventory in a fresh child process
 *    (so its peak RSS is the export's), without sort (one snapshot in storage order) and sorted by notAfter
 *    (keyset pages): rows/s, peak RSS and the CPU per row of the exporter and of its PostgreSQL backends.
 * The load average is printed before and after (the machine is shared).
 *
 *   BENCH_INVENTORY_SAMPLES (default 200)   BENCH_INVENTORY_EXPORT_ROWS (default 1000000)
 *   BENCH_INVENTORY_ONLY=<substring>[|<substring>...]   run only the queries whose name contains one
 *   BENCH_INVENTORY_PREWARM=0                     skip reading the heap and indexes into the page cache first
 */
import { execFile } from 'node:child_process';
import { readFile, statfs } from 'node:fs/promises';
import { cpus, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { FakeClock } from '../src/core/clock.js';
import type { Database, QueryOptions, Queryable } from '../src/db/database.js';
import { migrate } from '../src/db/migrate.js';
import { openPgDatabase } from '../src/db/pg-database.js';
import { CertificateSearchRepository } from '../src/db/repositories/certificate-search-repository.js';
import { parseFilter, parseSearch, encodeSearchCursor, type FilterParameters } from '../src/inventory/certificate-filter.js';
import { CertificateInventory } from '../src/inventory/certificate-inventory.js';
import { inventoryOf } from '../src/compose-inventory.js';
import { GROUPS, groupName, NOW, prng, seed, SEED_VERSION } from './inventory-seed.js';

const sh = promisify(execFile);
const ADMIN_URL = process.env.CHANCERY_TEST_PG_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres';
const SAMPLES = Number(process.env.BENCH_INVENTORY_SAMPLES ?? 200);
const WARMUP = 20;
const EXPORT_ROWS = Number(process.env.BENCH_INVENTORY_EXPORT_ROWS ?? 1_000_000);
/**
 * What one seeded certificate costs on disk (heap with DER-sized rows, indexes, side tables): 19.7 GB at 10M
 * before certificate_labels (migration 0018), plus what that table measured at 200,000 rows: 287 MB for
 * 970,000 label rows and their two indexes, ~1,500 bytes per certificate (five labels each).
 */
const BYTES_PER_ROW = 3500;

const mb = (bytes: number): string => `${(bytes / 1024 / 1024).toFixed(0)} MB`;
const load = (): string => loadavg().map((l) => l.toFixed(2)).join(' ');

function rowsArgument(): number {
  const at = process.argv.indexOf('--rows');
  const value = at >= 0 ? process.argv[at + 1] : process.env.BENCH_INVENTORY_ROWS;
  const rows = value === undefined ? 10_000_000 : Number(value.replace(/_/g, ''));
  if (!Number.isInteger(rows) || rows < 1000) throw new Error(`--rows must be a whole number >= 1000, not ${value}`);
  return rows;
}

function seedName(rows: number): string {
  return `chancery_bench_inventory_${rows}_v${SEED_VERSION}`;
}

function urlOf(name: string): string {
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  return url.toString();
}

/** Makes sure the seeded database exists; seeds it when it does not (after checking free disk). */
async function ensureSeeded(rows: number): Promise<string> {
  const name = seedName(rows);
  const admin = await openPgDatabase(ADMIN_URL, { poolSize: 1 });
  try {
    const exists = (await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [name])).rows.length > 0;
    if (exists) {
      const db = await openPgDatabase(urlOf(name), { poolSize: 1 });
      try {
        const done = await db.query<{ report: unknown }>(`SELECT report FROM bench_seed`).catch(() => ({ rows: [] }));
        if (done.rows.length > 0) {
          console.log(`Seeded database ${name} reused; its seeding: ${JSON.stringify(done.rows[0]!.report)}`);
          // Migrations are never edited once landed, so this only adds what came since; one that cannot
          // apply here (written against a schema this seed predates) is reported, not fatal to the queries.
          await migrate(db, new FakeClock(NOW)).catch((error: unknown) => console.log(`  (migrations since the seed not applied: ${error instanceof Error ? error.message : String(error)})`));
          return urlOf(name);
        }
      } finally {
        await db.close();
      }
      console.log(`${name} exists but its seeding never finished: dropping it`);
      await admin.query(`DROP DATABASE ${name} WITH (FORCE)`);
    }
    // Older seeds (another row count or another schema) are dropped only when disk is short.
    const { rows: dir } = await admin.query<{ setting: string }>(`SELECT setting FROM pg_settings WHERE name = 'data_directory'`);
    const fs = await statfs(dir[0]?.setting ?? '/').catch(() => statfs('/'));
    const free = fs.bavail * fs.bsize;
    const needed = rows * BYTES_PER_ROW * 1.5;
    console.log(`Free disk at ${dir[0]?.setting ?? '/'}: ${mb(free)}; this seed needs about ${mb(rows * BYTES_PER_ROW)} (x1.5 margin: ${mb(needed)})`);
    if (free < needed) throw new Error(`not enough free disk for ${rows} rows: ${mb(free)} free, ${mb(needed)} wanted; drop old chancery_bench_inventory_* databases or use --rows`);
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.close();
  }
  console.log(`Seeding ${rows} certificates into ${name} (load average ${load()})`);
  const started = performance.now();
  const report = await seed(urlOf(name), rows, (line) => console.log(line));
  console.log(
    `Seeded in ${((performance.now() - started) / 1000).toFixed(0)} s: ${report.rows} rows, ${((100 * report.expired) / report.rows).toFixed(1)} % expired, ` +
      `${((100 * report.revoked) / report.rows).toFixed(1)} % revoked (load average ${load()})`,
  );
  return urlOf(name);
}

/** Wraps a Database to remember the last statement (for EXPLAIN). */
class Recording implements Queryable {
  last: { sql: string; params: readonly unknown[] } | undefined;
  constructor(private readonly db: Database) {}
  query<R = Record<string, unknown>>(sql: string, params: readonly unknown[] = [], options?: QueryOptions): Promise<import('../src/db/database.js').QueryResult<R>> {
    this.last = { sql, params };
    return this.db.query<R>(sql, params, options);
  }
}

interface Sample {
  sql: string;
  params: readonly unknown[];
}

/** Scan nodes of a plan, and its sorts: "Index Scan certificates_group_not_after", ..., "Sort" (a walk that is not in order). */
function scans(plan: Record<string, unknown>, out: string[] = []): string[] {
  const type = String(plan['Node Type']);
  if (/Scan/.test(type)) out.push(`${type}${plan['Index Name'] ? ` ${String(plan['Index Name'])}` : ` ${String(plan['Relation Name'] ?? '')}`}`);
  if (type === 'Sort' || type === 'Incremental Sort') out.push(type);
  for (const child of (plan.Plans as Record<string, unknown>[] | undefined) ?? []) scans(child, out);
  return out;
}

/**
 * The scans of the generic plan of a sample's statement: the driver runs every parameterized statement as a
 * named prepared statement (pg-database.ts), and after five runs PostgreSQL may keep one plan made without
 * the parameters' values, which EXPLAIN with the values does not show.
 */
async function genericScans(db: Database, sample: Sample): Promise<string> {
  if (sample.params.length === 0) return '';
  return db.transaction(async (tx) => {
    await tx.query('SET LOCAL plan_cache_mode = force_generic_plan');
    await tx.query(`PREPARE bench_generic AS ${sample.sql}`);
    const args = sample.params.map(() => 'NULL').join(', ');
    const explained = await tx.query<{ 'QUERY PLAN': [{ Plan: Record<string, unknown> }] }>(`EXPLAIN (FORMAT JSON) EXECUTE bench_generic(${args})`);
    await tx.query('DEALLOCATE bench_generic');
    return [...new Set(scans(explained.rows[0]!['QUERY PLAN'][0].Plan))].join(', ');
  });
}

/** A local backend's CPU time (utime + stime, 10 ms ticks) from /proc: this bench runs beside its PostgreSQL. */
async function backendCpuMs(pid: number): Promise<number> {
  try {
    const fields = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1]!.split(' ');
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return Number.NaN;
  }
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

interface Position {
  notAfter: Date;
  createdAt: Date;
  serial: string;
}

/** A sampled certificate with labels (the bench's grouped machines): its labels, group and cursor position. */
interface LabelledRow extends Position {
  labels: Record<string, string>;
  group: string;
  revoked: boolean;
}

interface Draws {
  names: string[];
  suffixes: string[];
  accounts: string[];
  spkis: string[];
  apps: string[];
  serials: string[];
  positions: Position[];
  labelled: LabelledRow[];
}

async function draws(db: Database): Promise<Draws> {
  const { rows } = await db.query<{
    serial: string;
    spki_sha256: string;
    account_id: string | null;
    identifiers: { value: string }[];
    not_after: Date;
    created_at: Date;
    labels: Record<string, string> | null;
    group_name: string | null;
    status: string;
  }>(`SELECT serial, spki_sha256, account_id, identifiers, not_after, created_at, labels, group_name, status FROM certificates TABLESAMPLE SYSTEM (1) LIMIT 2000`);
  return {
    names: rows.map((r) => r.identifiers[0]!.value),
    // A whole name as the suffix: the certificates of one host (its renewal chain).
    suffixes: rows.map((r) => r.identifiers[0]!.value),
    accounts: rows.flatMap((r) => (r.account_id ? [r.account_id] : [])),
    spkis: rows.map((r) => r.spki_sha256),
    apps: rows.flatMap((r) => (r.labels?.app ? [r.labels.app] : [])),
    serials: rows.map((r) => r.serial),
    positions: rows.map((r) => ({ notAfter: new Date(r.not_after), createdAt: new Date(r.created_at), serial: r.serial })),
    labelled: rows.flatMap((r) =>
      r.labels && r.group_name
        ? [{ labels: r.labels, group: r.group_name, revoked: r.status === 'revoked', notAfter: new Date(r.not_after), createdAt: new Date(r.created_at), serial: r.serial }]
        : [],
    ),
  };
}

interface Query {
  name: string;
  /** Parameters of one sample (what a client would send). */
  params(random: () => number, d: Draws): FilterParameters;
  /** Counts rather than a page: 'count' (capped), 'counts' (the aggregate). */
  kind?: 'count' | 'counts';
  /** A page deep into the walk: a cursor at a random row's position (one the walk can reach: `deepFrom`). */
  deep?: boolean;
  deepFrom?: (position: { notAfter: Date; createdAt: Date }) => boolean;
  /**
   * A page deep into a walk that only some rows are on (a label's): the parameters and the cursor taken from
   * one sampled labelled row, so the cursor is a position on that walk (anywhere along it).
   */
  deepRow?: (row: LabelledRow) => FilterParameters;
}

const pick = <T>(random: () => number, list: readonly T[]): T => list[Math.floor(random() * list.length)]!;
const anyGroup = (random: () => number): string => groupName(Math.floor(random() * GROUPS));
const QUERIES: Query[] = [
  { name: 'all, newest first (-issuedAt), first page', params: () => ({}) },
  { name: 'all, soonest expiry (notAfter), deep page', params: () => ({ sort: 'notAfter' }), deep: true },
  { name: 'name (exact)', params: (r, d) => ({ name: pick(r, d.names) }) },
  { name: 'suffix (h123.a3.g0042.internal, one host: 1-3 rows)', params: (r, d) => ({ suffix: pick(r, d.suffixes), sort: 'notAfter' }) },
  { name: 'suffix (.g0042.internal, ~5,000 rows)', params: (r) => ({ suffix: `.${anyGroup(r)}.internal`, sort: 'notAfter' }) },
  { name: 'suffix (.internal, every name: walked in sort order)', params: () => ({ suffix: '.internal', sort: 'notAfter' }) },
  { name: 'group, notAfter', params: (r) => ({ group: anyGroup(r), sort: 'notAfter' }) },
  { name: 'group, -issuedAt, deep page', params: (r) => ({ group: anyGroup(r) }), deep: true },
  { name: 'label, broad (env:prod 40 %, criticality:high 10 %, region 20 %)', params: (r) => ({ label: pick(r, ['env:prod', 'criticality:high', 'region:eu-1']) }) },
  { name: 'label, 0.5 % (owner:team-N, 50,000 rows)', params: (r) => ({ label: `owner:team-${Math.floor(r() * 200)}` }) },
  { name: 'label, rare (app:app-G-N, ~5,000 rows)', params: (r, d) => ({ label: `app:${pick(r, d.apps)}` }) },
  // Every sort order, first pages and pages deep into the cursor (certificate_labels, migration 0018).
  { name: 'label, 0.5 %, notAfter', params: (r) => ({ label: `owner:team-${Math.floor(r() * 200)}`, sort: 'notAfter' }) },
  { name: 'label, 0.5 %, -notAfter', params: (r) => ({ label: `owner:team-${Math.floor(r() * 200)}`, sort: '-notAfter' }) },
  { name: 'label, rare, issuedAt', params: (r, d) => ({ label: `app:${pick(r, d.apps)}`, sort: 'issuedAt' }) },
  { name: 'label, 0.5 %, notAfter, deep page', params: () => ({}), deepRow: (row) => ({ label: `owner:${row.labels.owner}`, sort: 'notAfter' }) },
  { name: 'label, 0.5 %, -issuedAt, deep page', params: () => ({}), deepRow: (row) => ({ label: `owner:${row.labels.owner}` }) },
  { name: 'label, rare, -notAfter, deep page', params: () => ({}), deepRow: (row) => ({ label: `app:${row.labels.app}`, sort: '-notAfter' }) },
  { name: 'label, broad (env), issuedAt, deep page', params: () => ({}), deepRow: (row) => ({ label: `env:${row.labels.env}`, sort: 'issuedAt' }) },
  { name: 'label, 0.5 % + status=valid, notAfter', params: (r) => ({ label: `owner:team-${Math.floor(r() * 200)}`, status: 'valid', sort: 'notAfter' }) },
  { name: 'label, 0.5 % + status=expired, -notAfter', params: (r) => ({ label: `owner:team-${Math.floor(r() * 200)}`, status: 'expired', sort: '-notAfter' }) },
  { name: 'label, 0.5 % + status=revoked, -issuedAt', params: (r) => ({ label: `owner:team-${Math.floor(r() * 200)}`, status: 'revoked' }) },
  { name: 'label, rare + status=revoked', params: (r, d) => ({ label: `app:${pick(r, d.apps)}`, status: 'revoked' }) },
  { name: 'two labels (env:prod + owner:team-N)', params: (r) => ({ label: ['env:prod', `owner:team-${Math.floor(r() * 200)}`], sort: 'notAfter' }) },
  { name: 'two labels (criticality:high + app:…)', params: (r, d) => ({ label: ['criticality:high', `app:${pick(r, d.apps)}`] }) },
  { name: 'status=revoked, -issuedAt', params: () => ({ status: 'revoked' }) },
  { name: 'status=expired, -notAfter', params: () => ({ status: 'expired', sort: '-notAfter' }) },
  { name: 'status=valid, notAfter, deep page', params: () => ({ status: 'valid', sort: 'notAfter' }), deep: true, deepFrom: (at) => at.notAfter > NOW },
  { name: 'issuer, -issuedAt', params: (r) => ({ issuer: r() < 0.5 ? 'int-a' : 'int-b' }) },
  { name: 'profile (tls-client), notAfter', params: () => ({ profile: 'tls-client', sort: 'notAfter' }) },
  { name: 'account', params: (r, d) => ({ account: pick(r, d.accounts) }) },
  { name: 'spki', params: (r, d) => ({ spki: pick(r, d.spkis) }) },
  { name: 'serial', params: (r, d) => ({ serial: pick(r, d.serials) }) },
  { name: 'expiringWithinDays=30, notAfter', params: () => ({ expiringWithinDays: '30', sort: 'notAfter' }) },
  { name: 'issuedAfter+issuedBefore (one day), -issuedAt', params: (r) => windowOfOneDay(r) },
  { name: 'group+status=valid', params: (r) => ({ group: anyGroup(r), status: 'valid', sort: 'notAfter' }) },
  { name: 'group+status=revoked', params: (r) => ({ group: anyGroup(r), status: 'revoked' }) },
  { name: 'suffix+expiringWithinDays=30', params: (r) => ({ suffix: `.${anyGroup(r)}.internal`, expiringWithinDays: '30', sort: 'notAfter' }) },
  { name: 'label+group', params: (r) => ({ label: 'env:prod', group: anyGroup(r) }) },
  // A group-admin's label search: the owner of one group in ten (team-N is the owner of groups N, N+200, ...).
  { name: 'label 0.5 % + its group, notAfter', params: (r) => ({ ...ownerAndGroup(r, true), sort: 'notAfter' }) },
  { name: 'label 0.5 % + another group (nothing matches)', params: (r) => ownerAndGroup(r, false) },
  { name: 'label rare + its group + status=valid, deep page', params: () => ({}), deepRow: (row) => ({ label: `app:${row.labels.app}`, group: row.group, status: 'valid' }) },
  { name: 'label broad + group + status=revoked', params: (r) => ({ label: 'env:prod', group: anyGroup(r), status: 'revoked' }) },
  { name: 'count (capped at 10,000): group+status=valid', params: (r) => ({ group: anyGroup(r), status: 'valid' }), kind: 'count' },
  { name: 'count (capped at 10,000): status=valid (more than 10,000)', params: () => ({ status: 'valid' }), kind: 'count' },
  { name: 'count (capped at 10,000): label 0.5 %', params: (r) => ({ label: `owner:team-${Math.floor(r() * 200)}` }), kind: 'count' },
  { name: 'count (capped at 10,000): label rare + status=valid', params: (r, d) => ({ label: `app:${pick(r, d.apps)}`, status: 'valid' }), kind: 'count' },
  { name: 'counts: every group x status x bucket', params: () => ({}), kind: 'counts' },
  { name: 'counts: one group', params: (r) => ({ group: anyGroup(r) }), kind: 'counts' },
];

/** owner:team-N with a group it owns (groups g, g+200, ...: inventory-seed.ts) or one it does not. */
function ownerAndGroup(random: () => number, owned: boolean): FilterParameters {
  const gid = Math.floor(random() * GROUPS);
  const owner = owned ? gid % 200 : (gid + 1 + Math.floor(random() * 199)) % 200;
  return { label: `owner:team-${owner}`, group: groupName(gid) };
}

function windowOfOneDay(random: () => number): FilterParameters {
  const start = new Date(NOW.getTime() - Math.floor(random() * 300) * 86_400_000);
  const day = start.toISOString().slice(0, 10);
  const next = new Date(start.getTime() + 86_400_000).toISOString().slice(0, 10);
  return { issuedAfter: day, issuedBefore: next };
}

/**
 * A warm cache, as the issue asks: the heap and the indexes the queries walk read once into the OS page
 * cache (pg_prewarm 'read' when the extension is there, else a sequential read of the heap), so the timed
 * runs measure the plans and not this machine's disk.
 */
async function prewarm(db: Database): Promise<void> {
  const started = performance.now();
  // The indexes the queries walk, then the heap they read rows from — last, so that it stays in the page
  // cache: at 10M these are ~26 GB on a 24 GiB machine, and the heap read first was partly evicted by the
  // indexes after it (a rare label's revoked rows, p99 4 -> 55 ms). The heaps of certificate_names and
  // certificate_labels are left out: their scans are index-only.
  const relations = [
    'certificate_names_key',
    'certificate_labels_not_after',
    'certificate_labels_created',
    'certificate_labels_revoked_not_after',
    'certificate_labels_revoked_created',
    'certificates_pkey',
    'certificates_created',
    'certificates_not_after_serial',
    'certificates_group_not_after',
    'certificates_group_created',
    'certificates_group_revoked_not_after',
    'certificates_group_revoked_created',
    'certificates_account_created',
    'certificates_spki_sha256',
    'certificates_revoked_created',
    'certificates_revoked_not_after',
    'certificates',
  ];
  const extension = await db.query('CREATE EXTENSION IF NOT EXISTS pg_prewarm').then(
    () => true,
    () => false,
  );
  if (!extension) {
    await db.query('SELECT count(*) FROM certificates WHERE length(der) > 0');
    console.log(`Prewarmed the heap (sequential read; no pg_prewarm) in ${((performance.now() - started) / 1000).toFixed(0)} s`);
    return;
  }
  // A relation missing here (an index renamed by a migration) is an error, not a reason to warm less.
  for (const relation of relations) await db.query(`SELECT pg_prewarm($1::regclass, 'read')`, [relation]);
  console.log(`Prewarmed (pg_prewarm 'read') ${relations.length} relations in ${((performance.now() - started) / 1000).toFixed(0)} s`);
}

async function runQueries(url: string): Promise<void> {
  const db = await openPgDatabase(url, { poolSize: 2 });
  if (process.env.BENCH_INVENTORY_PREWARM !== '0') await prewarm(db);
  const recording = new Recording(db);
  const inventory = new CertificateInventory({ store: new CertificateSearchRepository(recording), clock: new FakeClock(NOW) });
  const d = await draws(db);
  const only = process.env.BENCH_INVENTORY_ONLY;
  console.log(`\nQueries: ${WARMUP} warm-up + ${SAMPLES} timed runs each, random parameters, page size 100 (load average ${load()})`);
  console.log('query | p50 ms | p99 ms | max ms | rows (last) | plan (scans)');
  console.log('--- | --- | --- | --- | --- | ---');
  for (const query of QUERIES) {
    if (only && !only.split('|').some((part) => query.name.includes(part))) continue;
    const random = prng(query.name.length * 7919 + 17);
    const timings: number[] = [];
    let rows = 0;
    let sample: Sample | undefined;
    for (let i = 0; i < WARMUP + SAMPLES; i++) {
      const params = query.params(random, d);
      const started = performance.now();
      if (query.kind === 'counts') {
        const result = await inventory.counts('all', typeof params.group === 'string' ? params.group : undefined);
        rows = result.groups.length;
      } else if (query.kind === 'count') {
        const result = await inventory.count('all', parseFilter(params).filter);
        rows = result.count;
      } else if (query.deepRow) {
        // A cursor on the walk of the sampled row's label, at that row.
        const row = pick(random, d.labelled);
        const search = parseSearch(query.deepRow(row));
        search.after = { at: search.sort.endsWith('notAfter') ? row.notAfter : row.createdAt, serial: row.serial };
        const page = await inventory.search('all', search);
        rows = page.items.length;
      } else {
        const search = parseSearch(params);
        if (query.deep) {
          // A cursor as the walk would have reached it: at a random existing row's position.
          const at = pick(random, query.deepFrom ? d.positions.filter(query.deepFrom) : d.positions);
          search.after = { at: search.sort.endsWith('notAfter') ? at.notAfter : at.createdAt, serial: at.serial };
          void encodeSearchCursor(search.filter, search.sort, search.after);
        }
        const page = await inventory.search('all', search);
        rows = page.items.length;
      }
      const elapsed = performance.now() - started;
      if (i >= WARMUP) timings.push(elapsed);
      sample = recording.last;
    }
    timings.sort((x, y) => x - y);
    let plan = '';
    if (sample) {
      const explained = await db.query<{ 'QUERY PLAN': [{ Plan: Record<string, unknown> }] }>(`EXPLAIN (FORMAT JSON) ${sample.sql}`, sample.params);
      plan = [...new Set(scans(explained.rows[0]!['QUERY PLAN'][0].Plan))].join(', ');
      const generic = await genericScans(db, sample);
      if (generic !== plan) plan += ` (generic plan: ${generic})`;
    }
    console.log(`${query.name} | ${percentile(timings, 50).toFixed(1)} | ${percentile(timings, 99).toFixed(1)} | ${timings.at(-1)!.toFixed(1)} | ${rows} | ${plan}`);
  }
  await db.close();
}

/**
 * The export child: CSV of EXPORT_ROWS valid certificates through the server's inventory (inventoryOf), with
 * `sort` (soonest expiry first, page by page) or without (no particular order, one snapshot); prints a JSON
 * report.
 */
async function exportChild(url: string, rows: number, sorted: boolean): Promise<void> {
  // One connection: the backend measured below is the one every statement of the export runs on.
  const db = await openPgDatabase(url, { poolSize: 1 });
  const inventory = inventoryOf(db, new FakeClock(NOW));
  const parameters = sorted ? { status: 'valid', sort: 'notAfter' } : { status: 'valid' };
  const rssBefore = process.memoryUsage().rss;
  const backend = (await db.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
  const backendBefore = await backendCpuMs(backend);
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  let lines = -1;
  let bytes = 0;
  for await (const chunk of inventory.exportParameters('all', parameters, 'csv')) {
    bytes += Buffer.byteLength(chunk);
    for (let i = chunk.indexOf('\n'); i >= 0; i = chunk.indexOf('\n', i + 1)) lines++;
    if (lines >= rows) break;
  }
  const seconds = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpuBefore);
  const backendMs = (await backendCpuMs(backend)) - backendBefore;
  await db.close();
  process.stdout.write(JSON.stringify({ rows: lines, bytes, seconds, rssBefore, peakRss: process.resourceUsage().maxRSS * 1024, clientCpuMs: (cpu.user + cpu.system) / 1000, backendCpuMs: backendMs }));
}

async function main(): Promise<void> {
  if (process.argv[2] === '--export-child') return exportChild(process.argv[3]!, Number(process.argv[4]), process.argv[5] === 'sorted');
  const rows = rowsArgument();
  console.log(`bench:inventory — ${rows} certificates; ${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}; load average ${load()}`);
  const url = await ensureSeeded(rows);
  const db = await openPgDatabase(url, { poolSize: 1 });
  const size = await db.query<{ db: string; certificates: string; names: string; labels: string; counts: string }>(
    `SELECT pg_database_size(current_database())::text AS db, pg_total_relation_size('certificates')::text AS certificates,
       pg_total_relation_size('certificate_names')::text AS names, pg_total_relation_size('certificate_labels')::text AS labels,
       (pg_total_relation_size('certificate_counts') + pg_total_relation_size('certificate_count_deltas'))::text AS counts`,
  );
  const s = size.rows[0]!;
  console.log(`Database size ${mb(Number(s.db))}: certificates with indexes ${mb(Number(s.certificates))}, certificate_names ${mb(Number(s.names))}, certificate_labels ${mb(Number(s.labels))}, counts ${mb(Number(s.counts))}`);
  const indexes = await db.query<{ name: string; size: string }>(
    `SELECT indexrelname AS name, pg_relation_size(indexrelid)::text AS size FROM pg_stat_user_indexes WHERE relname IN ('certificates', 'certificate_names', 'certificate_labels') ORDER BY indexrelname`,
  );
  console.log(`Indexes: ${indexes.rows.map((i) => `${i.name} ${mb(Number(i.size))}`).join(', ')}`);
  await db.close();

  await runQueries(url);

  for (const sorted of EXPORT_ROWS > 0 ? [false, true] : []) {
    console.log(`\nExport: ${EXPORT_ROWS} valid certificates as CSV, ${sorted ? 'sort=notAfter (page by page)' : 'no sort (one snapshot, storage order)'}, in a fresh process (load average ${load()})`);
    const { stdout } = await sh(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), '--export-child', url, String(EXPORT_ROWS), sorted ? 'sorted' : 'unordered'], { maxBuffer: 1 << 20 });
    const report = JSON.parse(stdout) as { rows: number; bytes: number; seconds: number; rssBefore: number; peakRss: number; clientCpuMs: number; backendCpuMs: number };
    console.log(
      `  ${report.rows} rows, ${mb(report.bytes)} in ${report.seconds.toFixed(1)} s: ${Math.round(report.rows / report.seconds)} rows/s; ` +
        `RSS before ${mb(report.rssBefore)}, peak ${mb(report.peakRss)}; CPU per row: exporter ${((1000 * report.clientCpuMs) / report.rows).toFixed(1)} µs, ` +
        `PostgreSQL backend ${((1000 * report.backendCpuMs) / report.rows).toFixed(1)} µs`,
    );
  }
  console.log(`\nLoad average at the end: ${load()}`);
}

await main();
