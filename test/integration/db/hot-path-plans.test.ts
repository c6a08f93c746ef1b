/**
 * The generic plans of the ACME hot path on PostgreSQL (commit d2be27b, src/db/repositories/keyed-joins.ts).
 *
 * pg-database.ts runs every parameterized statement as a named prepared statement, so each connection keeps
 * one generic plan per statement, made the first time it runs and kept as the tables grow. Made on tables
 * without statistics (autovacuum is off on the CI machine), plain joins became sequential scans of
 * authorizations and challenges, or index scans that filtered every row on the key (authorizations via
 * authorizations_expiring, certificates via certificates_issuer_not_after).
 *
 * This drives the hot-path repository methods, records every statement they send, and asks PostgreSQL for
 * the generic plan of each (PREPARE, then EXPLAIN EXECUTE under plan_cache_mode = force_generic_plan): no
 * statement may scan a hot table. Those sent with keyedPlan (the batched writes) run on the keyed pool, so
 * they are planned in a session with its settings (KEYED_PLAN_SETTINGS in pg-database.ts). It does so
 * twice, never running ANALYZE: on a fresh database (the state in which the bad plans were made, and in
 * which the naive statements of the sanity case plan badly) and after seeding a few hundred rows per table
 * (where they happen to plan well).
 *
 * The inventory's label search (migration 0018) is checked the same way: a label, a group with a label, two
 * labels, revoked ones and a count, each planned as a walk of one certificate_labels (or group) index in
 * sort order, labels probed by their whole index key, certificates looked up by serial.
 */
import { randomBytes } from 'node:crypto';

import t, { type Test } from 'tap';

import { DAY, HOUR, MINUTE } from '../../../src/core/clock.js';
import type { IssuedCertificate } from '../../../src/core/certificate.js';
import type { Identifier } from '../../../src/core/identifier.js';
import { newId } from '../../../src/core/ids.js';
import type { Database, Queryable } from '../../../src/db/database.js';
import { KEYED_PLAN_SETTINGS, openPgDatabase } from '../../../src/db/pg-database.js';
import { AccountRepository } from '../../../src/db/repositories/account-repository.js';
import { AuthorizationRepository } from '../../../src/db/repositories/authorization-repository.js';
import { CertificateRepository } from '../../../src/db/repositories/certificate-repository.js';
import { CertificateSearchRepository, type SearchCriteria, type SearchOrder } from '../../../src/db/repositories/certificate-search-repository.js';
import { AUTHORIZATION_AND_CHALLENGE_COLUMNS, ChallengeRepository } from '../../../src/db/repositories/challenge-repository.js';
import { NonceRepository } from '../../../src/db/repositories/nonce-repository.js';
import { OcspResponseRepository } from '../../../src/db/repositories/ocsp-repository.js';
import { OrderRepository } from '../../../src/db/repositories/order-repository.js';
import { builders, newSerial } from '../../helpers/builders.js';
import { freshPgDatabase, insertRootIssuer } from '../../helpers/databases.js';

const T0 = new Date('2026-01-01T00:00:00.000Z');
const at = (ms: number): Date => new Date(T0.getTime() + ms);
const NOW = at(HOUR);

// ---- the plan check ---------------------------------------------------------------------------------------

/**
 * Tables the hot path must only reach by key: the indexes a keyed lookup uses, and the key columns that must
 * never be a mere Filter of a scan through some other index.
 */
const HOT_TABLES: Record<string, { keyedIndexes: string[]; keys: string[] }> = {
  accounts: { keyedIndexes: ['accounts_pkey'], keys: ['id'] },
  // The reuse lookup is keyed by account and identifier (authorizations_reuse).
  authorizations: { keyedIndexes: ['authorizations_pkey', 'authorizations_reuse'], keys: ['id', 'account_id'] },
  challenges: { keyedIndexes: ['challenges_pkey', 'challenges_authorization_id_type_key'], keys: ['id', 'authorization_id'] },
  orders: { keyedIndexes: ['orders_pkey'], keys: ['id'] },
  order_authorizations: {
    keyedIndexes: ['order_authorizations_pkey', 'order_authorizations_authorization', 'order_authorizations_order_id_position_key'],
    keys: ['order_id', 'authorization_id'],
  },
  certificates: { keyedIndexes: ['certificates_pkey'], keys: ['serial'] },
  spent_nonces: { keyedIndexes: ['spent_nonces_pkey'], keys: ['id'] },
  ocsp_responses: { keyedIndexes: ['ocsp_responses_pkey'], keys: ['serial'] },
};

/** A node of EXPLAIN (FORMAT JSON), the fields read here. */
interface PlanNode {
  'Node Type': string;
  'Relation Name'?: string;
  Alias?: string;
  'Index Name'?: string;
  'Index Cond'?: string;
  'Recheck Cond'?: string;
  Filter?: string;
  'Join Filter'?: string;
  'Hash Cond'?: string;
  'Merge Cond'?: string;
  'Subplan Name'?: string;
  Plans?: PlanNode[];
}

const INDEX_SCANS = new Set(['Index Scan', 'Index Only Scan', 'Bitmap Heap Scan']);
const JOIN_CONDITIONS = ['Join Filter', 'Hash Cond', 'Merge Cond'] as const;

function describe(node: PlanNode): string {
  const parts = [node['Node Type']];
  if (node['Relation Name'] !== undefined) {
    parts.push(`on ${node['Relation Name']}${node.Alias !== undefined && node.Alias !== node['Relation Name'] ? ` ${node.Alias}` : ''}`);
  }
  if (node['Index Name'] !== undefined) parts.push(`using ${node['Index Name']}`);
  for (const key of ['Index Cond', 'Recheck Cond', 'Filter', ...JOIN_CONDITIONS] as const) {
    if (node[key] !== undefined) parts.push(`[${key}: ${node[key]}]`);
  }
  return parts.join(' ');
}

/** The plan as indented text, for failure diagnostics. */
function renderPlan(node: PlanNode, depth = 0): string {
  const line = `${'  '.repeat(depth)}${node['Subplan Name'] !== undefined ? `${node['Subplan Name']}: ` : ''}${describe(node)}`;
  return [line, ...(node.Plans ?? []).map((child) => renderPlan(child, depth + 1))].join('\n');
}

/** Whether `filter` compares the scanned table's own column `key` (its columns print unqualified or as alias.key). */
function filtersOn(filter: string, key: string, alias: string | undefined): boolean {
  const qualified = alias === undefined ? '' : `(?:${alias.replace(/\W/g, '\\$&')}\\.)?`;
  return new RegExp(`(?<![\\w.])${qualified}${key}(?!\\w)`).test(filter);
}

/**
 * Nodes of the plan that scan a hot table instead of looking it up by key: a Seq Scan; an index scan without
 * an Index Cond (the whole index); or an index scan through an index other than a keyed one while the
 * table's key is only a Filter of that scan or a condition of the join above it (each row of the range is
 * read and then compared, as authorizations_expiring was for respond).
 */
function scansOfHotTables(root: PlanNode): string[] {
  const offences: string[] = [];
  const visit = (node: PlanNode, joinConditions: string[]): void => {
    const table = node['Relation Name'] === undefined ? undefined : HOT_TABLES[node['Relation Name']];
    const type = node['Node Type'];
    if (table !== undefined && type === 'Seq Scan') offences.push(describe(node));
    if (table !== undefined && INDEX_SCANS.has(type)) {
      // A bitmap heap scan names its indexes on the Bitmap Index Scan nodes below it.
      const indexes =
        type === 'Bitmap Heap Scan'
          ? (node.Plans ?? []).flatMap(function names(child: PlanNode): string[] {
              return [...(child['Index Name'] === undefined ? [] : [child['Index Name']]), ...(child.Plans ?? []).flatMap(names)];
            })
          : [node['Index Name'] ?? ''];
      const keyed = indexes.every((index) => table.keyedIndexes.includes(index));
      const comparesKey = (condition: string | undefined): boolean =>
        condition !== undefined && table.keys.some((key) => filtersOn(condition, key, node.Alias));
      const joinCondition = joinConditions.find(comparesKey);
      if (type !== 'Bitmap Heap Scan' && node['Index Cond'] === undefined) {
        offences.push(`${describe(node)} (walks the whole index: no Index Cond)`);
      } else if (!keyed && comparesKey(node.Filter)) {
        offences.push(`${describe(node)} (filters on the key instead of looking it up)`);
      } else if (!keyed && joinCondition !== undefined) {
        offences.push(`${describe(node)} (joined on the key by ${joinCondition} instead of looking it up)`);
      }
    }
    // A join's conditions apply to the scans below it; the nearest join's replace those of joins further up.
    const own = JOIN_CONDITIONS.flatMap((key) => (node[key] === undefined ? [] : [node[key]]));
    for (const child of node.Plans ?? []) visit(child, own.length > 0 ? own : joinConditions);
  };
  visit(root, []);
  return offences;
}

interface GenericPlan {
  plan: PlanNode;
  /** From pg_prepared_statements: the plan EXPLAIN showed was the generic one, not a custom plan. */
  genericPlans: number;
  customPlans: number;
}

let statementCounter = 0;

/**
 * The generic plan PostgreSQL caches for `sql` on `planner` (a one-connection pool, plan_cache_mode =
 * force_generic_plan). PREPARE without types infers the parameter types as the driver's unnamed-type Parse
 * does. The EXECUTE arguments are all NULL: a generic plan does not depend on them, and EXPLAIN without
 * ANALYZE runs nothing. (EXPLAIN <sql> with bound parameters would show a custom plan for those values.)
 */
async function genericPlan(planner: Database, sql: string): Promise<GenericPlan> {
  const name = `hot_path_${++statementCounter}`;
  await planner.query(`PREPARE ${name} AS ${sql}`);
  try {
    const types = await planner.query<{ n: number }>('SELECT cardinality(parameter_types) AS n FROM pg_prepared_statements WHERE name = $1', [name]);
    const args = Array.from({ length: types.rows[0]?.n ?? 0 }, () => 'NULL').join(', ');
    const explained = await planner.query<{ 'QUERY PLAN': { Plan: PlanNode }[] }>(`EXPLAIN (FORMAT JSON) EXECUTE ${name}${args === '' ? '' : `(${args})`}`);
    const plan = explained.rows[0]?.['QUERY PLAN'][0]?.Plan;
    if (plan === undefined) throw new Error(`no plan for ${name}`);
    const counts = await planner.query<{ generic_plans: number; custom_plans: number }>(
      'SELECT generic_plans::int AS generic_plans, custom_plans::int AS custom_plans FROM pg_prepared_statements WHERE name = $1',
      [name],
    );
    return { plan, genericPlans: counts.rows[0]?.generic_plans ?? 0, customPlans: counts.rows[0]?.custom_plans ?? 0 };
  } finally {
    await planner.query(`DEALLOCATE ${name}`);
  }
}

const label = (sql: string): string => {
  const flat = sql.replace(/\s+/g, ' ').trim();
  return flat.length > 60 ? `${flat.slice(0, 60)}…` : flat;
};

// ---- the data -----------------------------------------------------------------------------------------------

/** Per table, how many rows the seed adds: a few pages each, so lookups by key are cheaper than scans. */
const SEED = { accounts: 300, authorizations: 1500, orders: 750, certificates: 300, spentNonces: 500 };

/**
 * Rows the hot path did not create, in plain SQL (one round trip) and never ANALYZEd. None of them is due
 * for validation or ready for anything the flow below does, so the flow's results stay its own.
 */
async function seed(db: Database): Promise<void> {
  const t0 = `'${T0.toISOString()}'::timestamptz`;
  await db.query(`
    INSERT INTO accounts (id, status, contacts, public_jwk, jwk_thumbprint, tos_agreed, created_at)
      SELECT 'seed-acct-' || n, 'valid', '["mailto:ops@example.internal"]',
             jsonb_build_object('kty', 'EC', 'crv', 'P-256', 'x', md5(n::text), 'y', md5((-n)::text)), 'seed-tp-' || md5(n::text), true, ${t0}
      FROM generate_series(1, ${SEED.accounts}) AS n;
    INSERT INTO authorizations (id, account_id, identifier_type, identifier_value, wildcard, status, expires, created_at)
      SELECT 'seed-authz-' || n, 'seed-acct-' || (n % ${SEED.accounts} + 1), 'dns', 'host' || n || '.example.internal', false,
             (ARRAY['pending', 'valid', 'valid', 'expired', 'invalid'])[n % 5 + 1], ${t0} + interval '7 days', ${t0}
      FROM generate_series(1, ${SEED.authorizations}) AS n;
    INSERT INTO challenges (id, authorization_id, type, token, status, attempts, next_attempt_at)
      SELECT 'seed-chall-' || n || '-' || type, 'seed-authz-' || n, type, md5(n || type),
             CASE WHEN n % 10 = 0 THEN 'processing' ELSE 'pending' END, 0,
             CASE WHEN n % 10 = 0 THEN ${t0} + interval '1 day' END
      FROM generate_series(1, ${SEED.authorizations}) AS n, unnest(ARRAY['dns-01', 'http-01', 'tls-alpn-01']) AS type;
    INSERT INTO orders (id, account_id, status, identifiers, expires, created_at)
      SELECT 'seed-order-' || n, 'seed-acct-' || ((2 * n - 1) % ${SEED.accounts} + 1), (ARRAY['pending', 'ready', 'invalid'])[n % 3 + 1],
             jsonb_build_array(jsonb_build_object('type', 'dns', 'value', 'host' || n || '.example.internal')), ${t0} + interval '7 days', ${t0}
      FROM generate_series(1, ${SEED.orders}) AS n;
    INSERT INTO order_authorizations (order_id, authorization_id, position)
      SELECT 'seed-order-' || n, 'seed-authz-' || (2 * n - p), 1 - p
      FROM generate_series(1, ${SEED.orders}) AS n, generate_series(0, 1) AS p;
    INSERT INTO serials (serial, issuer_id, created_at)
      SELECT 'abc' || to_hex(n), 'root', ${t0} FROM generate_series(1, ${SEED.certificates}) AS n;
    INSERT INTO certificates (serial, issuer_id, crl_shard, der, identifiers, spki_sha256, not_before, not_after, status, created_at, group_name, labels)
      SELECT 'abc' || to_hex(n), 'root', 0, decode(repeat(md5(n::text), 10), 'hex'), '[{"type": "dns", "value": "seed.example.internal"}]',
             md5(n::text) || md5((-n)::text), ${t0}, ${t0} + interval '90 days', 'valid', ${t0},
             'seed-' || (n % 3), jsonb_build_object('env', (ARRAY['prod', 'dev'])[n % 2 + 1], 'owner', 'team-' || (n % 7))
      FROM generate_series(1, ${SEED.certificates}) AS n;
    INSERT INTO ocsp_responses (serial, issuer_id, status, der, this_update, next_update, refresh_after, updated_at)
      SELECT 'abc' || to_hex(n), 'root', 'good', decode(repeat(md5(n::text), 8), 'hex'), ${t0}, ${t0} + interval '4 days',
             ${t0} + interval '2 days', ${t0}
      FROM generate_series(1, ${SEED.certificates}) AS n;
    INSERT INTO spent_nonces (id) SELECT decode(lpad(to_hex(n), 44, '0'), 'hex') FROM generate_series(1, ${SEED.spentNonces}) AS n;
  `);
}

// Authorizations and orders of the flow are made at NOW; seeded rows and the account at T0.
const { buildAccount, buildAuthorization, buildChallenge, buildOrderFor, buildCertificate } = builders(T0, {
  authorization: { createdAt: NOW },
  order: { createdAt: NOW },
});

interface Recorded {
  step: string;
  sql: string;
  params: readonly unknown[] | undefined;
  /** Sent with keyedPlan: its generic plan is made on the keyed pool's connections (KEYED_PLAN_SETTINGS). */
  keyed: boolean;
}

/**
 * The hot-path repository methods, in the order an ACME issuance calls them, on `db` seen through a recorder:
 * every (step, statement) sent. Asserts on the way that each step did what the flow needs, so the statements
 * recorded are the paths that do the work (not early exits).
 */
async function driveHotPath(t: Test, db: Database): Promise<Recorded[]> {
  const recorded: Recorded[] = [];
  let step = '';
  const recorder: Queryable = {
    query: (sql, params, options) => {
      recorded.push({ step, sql, params, keyed: options?.keyedPlan === true });
      return db.query(sql, params, options);
    },
  };
  const authorizations = new AuthorizationRepository(recorder);
  const orders = new OrderRepository(recorder);
  const challenges = new ChallengeRepository(recorder);
  const certificates = new CertificateRepository(recorder);
  const ocsp = new OcspResponseRepository(recorder);
  const nonces = new NonceRepository(recorder);

  const alice = buildAccount();
  await new AccountRepository(db).insert(alice);

  const web: Identifier = { type: 'dns', value: 'web01.example.internal' };
  const ip: Identifier = { type: 'ip', value: '10.0.0.7' };
  // All three challenge types, as the count checked after findByIds expects (by default an address gets no dns-01).
  const earlierId = newId();
  const earlier = buildAuthorization({
    id: earlierId,
    accountId: alice.id,
    identifier: ip,
    status: 'valid',
    createdAt: T0,
    challenges: (['dns-01', 'http-01', 'tls-alpn-01'] as const).map((type) => buildChallenge({ authorizationId: earlierId, type })),
  });

  step = 'insertWithAuthorizations';
  await orders.insertWithAuthorizations(buildOrderFor([earlier]), [earlier]);

  step = 'findReusableMany';
  const reusable = await authorizations.findReusableMany(alice.id, [{ identifier: web, wildcard: false }, { identifier: ip, wildcard: false }], at(DAY));
  t.same(reusable.map((a) => a.id), [earlier.id], 'the valid authorization is found for reuse');

  step = 'insertWithAuthorizations';
  const fresh = buildAuthorization({ accountId: alice.id, identifier: web });
  const current = buildOrderFor([fresh, earlier]);
  await orders.insertWithAuthorizations(current, [fresh]);

  step = 'findByIds';
  const found = await authorizations.findByIds([fresh.id, earlier.id]);
  t.same(found.map((a) => [a.id, a.challenges.length]), [[fresh.id, 3], [earlier.id, 3]], 'both authorizations, with their challenges');

  step = 'respond';
  const http01 = fresh.challenges.find((c) => c.type === 'http-01');
  if (http01 === undefined) throw new Error('no http-01 challenge');
  t.equal((await challenges.respond(http01.id, alice.id, NOW))?.started, true, 'the response starts the validation');

  step = 'claimDueForValidation';
  const claimed = await challenges.claimDueForValidation(at(HOUR + MINUTE), at(HOUR + 2 * MINUTE), 10);
  t.same(claimed.map((c) => [c.challenge.id, c.accountThumbprint]), [[http01.id, alice.jwkThumbprint]], 'the due challenge is claimed');

  step = 'markValidWithAuthorization';
  await challenges.markValidWithAuthorization(http01.id, at(HOUR + MINUTE));

  step = 'findWithProgress';
  const progress = await orders.findWithProgress(current.id, at(HOUR + MINUTE));
  t.equal(progress?.order.status, 'ready', 'the last authorization turning valid readied the order');
  t.same(progress?.progress, { total: 2, usable: 2 });

  step = 'claimForIssuance';
  const serial = newSerial();
  t.equal(await orders.claimForIssuance(current.id, ['ready'], at(HOUR + 2 * MINUTE), serial, 'root'), true, 'the order is claimed');

  step = 'insertForOrder';
  const certificate = buildCertificate({
    serial,
    identifiers: [web, ip],
    notBefore: NOW,
    notAfter: at(90 * DAY),
    createdAt: at(HOUR + 2 * MINUTE),
    accountId: alice.id,
    orderId: current.id,
  });
  t.equal(await certificates.insertForOrder(certificate, current.id), true, 'the order turns valid with its certificate');

  step = 'ocsp.put';
  const stored = await ocsp.put({
    serial,
    issuerId: 'root',
    status: 'good',
    der: randomBytes(200),
    thisUpdate: NOW,
    nextUpdate: at(4 * DAY),
    refreshAfter: at(2 * DAY),
    updatedAt: NOW,
  });
  t.equal(stored, true, 'the OCSP response is stored');

  step = 'spendAndFindAccount';
  const nonce = Buffer.alloc(22);
  nonce.writeUIntBE(NOW.getTime(), 0, 6);
  randomBytes(16).copy(nonce, 6);
  const spent = await nonces.spendAndFindAccount(nonce, alice.id);
  t.same([spent.spent, spent.account?.id], [true, alice.id], 'the nonce is spent and the account read');

  return recorded;
}

// ---- the inventory's label search -------------------------------------------------------------------------

/** certificate_labels' indexes (migration 0018), the only ways a plan may read it. */
const LABEL_INDEXES = ['certificate_labels_not_after', 'certificate_labels_created', 'certificate_labels_revoked_not_after', 'certificate_labels_revoked_created'];
/** How the label search may reach certificates: by serial, or a group's walk (index only). */
const LABEL_SEARCH_CERTIFICATE_INDEXES = ['certificates_pkey', 'certificates_group_not_after', 'certificates_group_created'];

/**
 * Label searches of every kind the search repository builds (a label walk, a group walk with labels probed,
 * two labels, revoked ones, first pages and pages after a cursor, both sort orders, a count), on `db`
 * through a recorder: the statements sent, each checked by the caller. Three labelled certificates of one
 * group first, so that a search with an empty group walks the group (it is narrower than the label).
 */
async function driveLabelSearch(t: Test, db: Database, run: string): Promise<string[]> {
  const sent: string[] = [];
  const recorder: Queryable = {
    query: (sql, params, options) => {
      sent.push(sql);
      return db.query(sql, params, options);
    },
  };
  const repository = new CertificateRepository(db);
  const stored: IssuedCertificate[] = [];
  for (let i = 0; i < 3; i++) {
    const certificate = buildCertificate({ group: `plans-a-${run}`, labels: { env: `prod-${run}`, owner: `plans-${run}` }, notBefore: NOW, notAfter: at((10 + i) * DAY), createdAt: at(HOUR + i) });
    await repository.reserveSerial(certificate.serial, certificate.issuerId, certificate.createdAt);
    await repository.insert(certificate);
    stored.push(certificate);
  }
  await repository.revoke(stored[0]!.serial, at(2 * HOUR), 1);
  const search = new CertificateSearchRepository(recorder);
  const prod = { key: 'env', value: `prod-${run}` };
  const owner = { key: 'owner', value: `plans-${run}` };
  const cases: [SearchCriteria, number][] = [
    [{ labels: [prod] }, 3],
    [{ labels: [prod], status: 'valid' }, 2],
    [{ labels: [prod], status: 'revoked' }, 1],
    [{ labels: [prod, owner] }, 3],
    [{ labels: [prod], groups: [`plans-a-${run}`] }, 3],
    [{ labels: [prod], groups: [`plans-b-${run}`] }, 0],
    [{ labels: [prod, owner], groups: [`plans-b-${run}`], status: 'valid' }, 0],
    [{ labels: [prod], groups: [`plans-b-${run}`], status: 'revoked' }, 0],
    [{ labels: [prod], groups: [`plans-b-${run}`, `plans-c-${run}`] }, 0],
  ];
  const orders: SearchOrder[] = [
    { by: 'notAfter', descending: false },
    { by: 'issuedAt', descending: true },
  ];
  for (const [criteria, expected] of cases) {
    for (const order of orders) {
      const first = await search.search({ criteria, now: NOW, order, limit: 1 });
      const all = await search.search({ criteria, now: NOW, order, limit: 10 });
      t.equal(all.items.length, expected, `${JSON.stringify(criteria)}: ${expected} certificates`);
      const last = first.items[0];
      if (last !== undefined) await search.search({ criteria, now: NOW, order, limit: 1, after: { at: order.by === 'notAfter' ? last.notAfter : last.createdAt, serial: last.serial } });
    }
    t.same(await search.count(criteria, NOW, 10), { count: expected, capped: false });
  }
  return sent;
}

/**
 * Offences of a label search's plan: anything but the index walks and keyed lookups it is built for. A group
 * walk (`groupWalk`) may be planned without statistics as the group's rows sorted (a bitmap of its index):
 * bounded by design, as the walk is taken only for a group narrower than every label it is searched with,
 * counted up to 20,000 (CertificateSearchRepository's PROBE_CAP); with statistics it is an ordered walk.
 */
function labelSearchOffences(root: PlanNode, groupWalk = false): string[] {
  const offences = scansOfHotTables(root);
  const visit = (node: PlanNode): void => {
    if (node['Node Type'] === 'Sort' && !groupWalk) offences.push(`${describe(node)} (a walk not in sort order)`);
    if (node['Relation Name'] === 'certificate_labels') {
      const cond = node['Index Cond'] ?? '';
      if (!LABEL_INDEXES.includes(node['Index Name'] ?? '')) offences.push(`${describe(node)} (not through a certificate_labels index)`);
      else if (!/\bkey = /.test(cond) || !/\bvalue = /.test(cond)) offences.push(`${describe(node)} (not a label's range)`);
      // A probe (a certificate's label) is one entry: its sort key and serial in the index condition.
      else if (/serial = \w+\.serial/.test(cond) && !/(not_after|created_at) = \w+\.(not_after|created_at)/.test(cond)) offences.push(`${describe(node)} (a probe that walks the label's range)`);
    }
    const bitmaps = (node.Plans ?? []).filter((child) => child['Node Type'] === 'Bitmap Index Scan');
    const groupBitmap = groupWalk && node['Node Type'] === 'Bitmap Heap Scan' && bitmaps.length > 0 && bitmaps.every((child) => /^certificates_group_/.test(child['Index Name'] ?? ''));
    if (node['Relation Name'] === 'certificates' && !groupBitmap && !LABEL_SEARCH_CERTIFICATE_INDEXES.includes(node['Index Name'] ?? '')) {
      offences.push(`${describe(node)} (certificates read other than by serial or a group's walk)`);
    }
    for (const child of node.Plans ?? []) visit(child);
  };
  visit(root);
  return offences;
}

async function checkLabelSearch(t: Test, db: Database, planner: Database, run: string): Promise<void> {
  let sent: string[] = [];
  await t.test('the label searches run', async (t) => {
    sent = await driveLabelSearch(t, db, run);
  });
  const statements = [...new Set(sent)];
  await t.test('every kind of label walk was sent', async (t) => {
    t.ok(statements.some((sql) => /FROM certificate_labels w/.test(sql)), 'a label walk');
    t.ok(statements.some((sql) => /FROM certificates w/.test(sql)), 'a group walk');
    t.ok(statements.some((sql) => /UNION ALL/.test(sql)), "a scope's group walks merged");
    t.ok(statements.some((sql) => /FROM certificate_labels w .*EXISTS \(SELECT 1 FROM certificate_labels o/s.test(sql)), 'a label walk probing another label');
    t.ok(statements.some((sql) => /w\.revoked/.test(sql)), 'a walk of revoked ones');
  });
  for (const sql of statements) {
    await t.test(`generic plan of the label search: ${label(sql)}`, async (t) => {
      const { plan, genericPlans } = await genericPlan(planner, sql);
      t.equal(genericPlans, 1, 'EXPLAIN showed the generic plan');
      const offences = labelSearchOffences(plan, /FROM certificates w/.test(sql));
      for (const offence of offences) t.fail(`"${label(sql)}": ${offence}`, { plan: renderPlan(plan) });
      if (offences.length === 0) t.pass('index walks (in sort order but a group walk) and keyed lookups only');
    });
  }
  await t.test('sanity: the check reports a label walked through the wrong index, and a sort', async (t) => {
    const naive = await genericPlan(
      planner,
      `SELECT c.serial FROM certificate_labels l JOIN certificates c ON c.serial = l.serial
       WHERE l.key = $1 AND l.value = $2 AND NOT l.revoked AND l.created_at > '-infinity' ORDER BY l.not_after, l.serial LIMIT $3`,
    );
    t.ok(labelSearchOffences(naive.plan).some((o) => /Sort/.test(o)), 'sorted', { plan: renderPlan(naive.plan) });
  });
}

// ---- the test -----------------------------------------------------------------------------------------------

/** The steps driveHotPath records, each of which must send statements. */
const STEPS = [
  'claimDueForValidation',
  'claimForIssuance',
  'findByIds',
  'findReusableMany',
  'findWithProgress',
  'insertForOrder',
  'insertWithAuthorizations',
  'markValidWithAuthorization',
  'ocsp.put',
  'respond',
  'spendAndFindAccount',
];

/**
 * Walks that are bounded by design, not by history: the only ones allowed. challenges_due is a partial index
 * of processing challenges (validations in flight), so the claim may walk it, but never the table.
 */
const BOUNDED_WALKS: { step: string; offence: RegExp; why: string }[] = [
  {
    step: 'claimDueForValidation',
    offence: /^Bitmap Heap Scan on challenges .*\[Recheck Cond: \(status = 'processing'::text\)\]/,
    why: 'walks challenges_due: only processing challenges, however many have ever been issued',
  },
];

/**
 * Drives the hot path, then checks the generic plan of every distinct statement it sent; returns their texts.
 * A statement sent with keyedPlan is planned on `keyedPlanner`, a session with the keyed pool's settings, as
 * the pool that runs it would plan it.
 */
async function checkHotPath(t: Test, db: Database, planners: { plain: Database; keyed: Database }): Promise<Map<string, { step: string; keyed: boolean }>> {
  let recorded: Recorded[] = [];
  await t.test('the hot path runs', async (t) => {
    recorded = await driveHotPath(t, db);
    t.same([...new Set(recorded.map((r) => r.step))].sort(), STEPS, 'every step sent statements');
  });
  // The same text is one prepared statement on a connection, so one plan per text (named by its first step).
  const statements = new Map<string, { step: string; keyed: boolean }>();
  for (const { step, sql, keyed } of recorded) if (!statements.has(sql)) statements.set(sql, { step, keyed });
  for (const [sql, { step, keyed }] of statements) {
    await t.test(`generic plan of ${step}${keyed ? ' (keyed pool)' : ''}: ${label(sql)}`, async (t) => {
      const { plan, genericPlans, customPlans } = await genericPlan(keyed ? planners.keyed : planners.plain, sql);
      t.same({ genericPlans, customPlans }, { genericPlans: 1, customPlans: 0 }, 'EXPLAIN showed the generic plan');
      const offences = scansOfHotTables(plan);
      const unbounded = offences.filter((offence) => !BOUNDED_WALKS.some((b) => b.step === step && b.offence.test(offence)));
      for (const offence of unbounded) t.fail(`${step}: "${label(sql)}" scans a hot table: ${offence}`, { plan: renderPlan(plan) });
      if (unbounded.length === 0) t.pass(offences.length === 0 ? 'only keyed lookups on hot tables' : `bounded walk only: ${offences.join('; ')}`);
    });
  }
  return statements;
}

/** Hot-path statements as they were before d2be27b and 391b4c4: the check must report each of them. */
const NAIVE: { name: string; sql: string }[] = [
  {
    name: 'findByIds as a plain LEFT JOIN',
    sql: `SELECT ${AUTHORIZATION_AND_CHALLENGE_COLUMNS} FROM authorizations a LEFT JOIN challenges c ON c.authorization_id = a.id
          WHERE a.id = ANY($1::text[]) ORDER BY a.id, c.type, c.id`,
  },
  {
    name: 'respond as UPDATE ... FROM authorizations',
    sql: `WITH started AS (
            UPDATE challenges c SET status = 'processing', next_attempt_at = $3
            FROM authorizations a
            WHERE c.id = $1 AND c.status = 'pending' AND a.id = c.authorization_id
              AND a.account_id = $2 AND a.status = 'pending' AND a.expires > $3
            RETURNING c.id)
          SELECT (SELECT count(*) FROM started)::int AS started, ${AUTHORIZATION_AND_CHALLENGE_COLUMNS}
          FROM challenges t
          JOIN authorizations a ON a.id = t.authorization_id
          JOIN challenges c ON c.authorization_id = a.id
          WHERE t.id = $1
          ORDER BY c.type, c.id`,
  },
  {
    name: 'findReusableMany before 391b4c4 (status and expiry tested beside the account)',
    sql: `SELECT r.* FROM jsonb_to_recordset($2::text::jsonb) AS w (type text, value text, wildcard boolean)
          CROSS JOIN LATERAL (
            SELECT x.* FROM authorizations x
            WHERE x.account_id = $1 AND x.identifier_type = w.type AND x.identifier_value = w.value AND x.wildcard = w.wildcard
              AND x.status IN ('valid', 'pending') AND x.expires > $3
            ORDER BY x.status = 'valid' DESC, x.created_at DESC, x.id DESC
            LIMIT 1) AS r`,
  },
  {
    name: 'ocsp.put certificate check with serial and issuer_id in one WHERE',
    sql: `SELECT 1 FROM certificates c
          WHERE c.serial = $1::text AND c.issuer_id = $2::text
            AND c.status = (CASE WHEN $3::text = 'good' THEN 'valid' ELSE 'revoked' END)`,
  },
];

// Migrated (a copy of the template): as fresh as migrating here, never analyzed either.
const database = await freshPgDatabase(t, { migrated: true });
if (database !== undefined) {
  const started = Date.now();
  const db = await openPgDatabase(database.url, { poolSize: 2 });
  t.teardown(() => db.close());
  await insertRootIssuer(db, T0);

  // One connection (a pool of one), so SET, PREPARE and EXPLAIN EXECUTE share a session.
  const planner = await openPgDatabase(database.url, { poolSize: 1 });
  t.teardown(() => planner.close());
  await planner.query('SET plan_cache_mode = force_generic_plan');
  // A session planning as the keyed pool's connections do.
  const keyedPlanner = await openPgDatabase(database.url, { poolSize: 1 });
  t.teardown(() => keyedPlanner.close());
  for (const [name, value] of Object.entries(KEYED_PLAN_SETTINGS)) await keyedPlanner.query(`SET ${name} = ${value}`);
  const planners = { plain: planner, keyed: keyedPlanner };

  const neverAnalyzed = async (t: Test): Promise<void> => {
    const stats = await planner.query<{ relname: string; relpages: number; reltuples: number }>(
      `SELECT relname, relpages, reltuples::float8 AS reltuples FROM pg_class
       WHERE relkind = 'r' AND relname = ANY($1::text[]) ORDER BY relname`,
      [Object.keys(HOT_TABLES)],
    );
    t.equal(stats.rows.length, Object.keys(HOT_TABLES).length, 'every hot table exists');
    for (const row of stats.rows) t.same([row.relpages, row.reltuples], [0, -1], `${row.relname} was never vacuumed or analyzed`);
  };

  // A fresh installation: the tables hold nothing but what the flow inserts. A connection plans its
  // statements when it first runs them and keeps those plans however much the tables grow (only ANALYZE or
  // DDL makes it plan again): this is the state the plans of d2be27b's bench were made in.
  let fresh = new Map<string, { step: string; keyed: boolean }>();
  await t.test('fresh database', async (t) => {
    await t.test('the tables have no statistics', neverAnalyzed);
    fresh = await checkHotPath(t, db, planners);
    await t.test('the inventory label search', (t) => checkLabelSearch(t, db, planner, 'fresh'));
    await t.test('sanity: the check reports the naive joins d2be27b replaced', async (t) => {
      for (const { name, sql } of NAIVE) {
        const { plan } = await genericPlan(planner, sql);
        const offences = scansOfHotTables(plan);
        t.ok(offences.length > 0, `${name} is reported: ${offences.join('; ')}`, { plan: renderPlan(plan) });
      }
    });
    // Why the keyed pool exists: the same statements, planned as any other connection plans them.
    await t.test('sanity: the keyed-plan statements scan when planned without the keyed settings', async (t) => {
      const keyed = [...fresh].filter(([, { keyed }]) => keyed);
      t.ok(keyed.length >= 4, 'the batched writes are sent with keyedPlan');
      for (const [sql, { step }] of keyed) {
        const { plan } = await genericPlan(planner, sql);
        const offences = scansOfHotTables(plan);
        t.ok(offences.length > 0, `${step} is reported: ${offences.join('; ')}`, { plan: renderPlan(plan) });
      }
    });
  });

  // A grown database whose statistics were never gathered (autovacuum off): a connection opened now plans
  // from the tables' sizes on disk.
  await t.test(`seeded database (${SEED.authorizations} authorizations, never analyzed)`, async (t) => {
    await seed(db);
    await t.test('the tables have no statistics', neverAnalyzed);
    const seeded = await checkHotPath(t, db, planners);
    t.same([...seeded.keys()], [...fresh.keys()], 'the same statements as on the fresh database');
    await t.test('the inventory label search', (t) => checkLabelSearch(t, db, planner, 'seeded'));
  });

  t.comment(`planned in ${Date.now() - started} ms`);
}
