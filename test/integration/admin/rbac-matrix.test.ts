import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import SwaggerParser from '@apidevtools/swagger-parser';
import { pino } from 'pino';
import t from 'tap';
import { compose } from '../../../src/compose.js';
import { DAY, FakeClock } from '../../../src/core/clock.js';
import type { Group } from '../../../src/core/group.js';
import { AccountRepository } from '../../../src/db/repositories/account-repository.js';
import { buildAccount } from '../../helpers/builders.js';
import { issueFor, responseChecker, type AdminAnswer, type OpenApiDocument } from '../../helpers/admin-api.js';
import { testConfig } from '../../helpers/runtime.js';

/**
 * The RBAC matrix, generated from the OpenAPI document the admin listener publishes: every operation ×
 * {admin, group-admin of A, group-admin of B, auditor, no token, bad token, expired token, revoked token},
 * each answer's status as the table below says (an operation missing from it fails the test), every answer
 * matching its schema in the document, and nothing stored changed by a refused request. The resources
 * acted on belong to group A (alpha).
 */
const clock = new FakeClock(new Date());
const dir = await mkdtemp(join(tmpdir(), 'chancery-rbac-'));
const config = testConfig(dir, { CHANCERY_ADMIN_LISTEN: '127.0.0.1:0', CHANCERY_ADMIN_AUTH_FAILURES_PER_MINUTE: '10000' });
const chancery = await compose(config, { ca: 'create-if-missing', clock, logger: pino({ level: 'silent' }) });
t.teardown(() => chancery.close());
const group = (name: string): Group => ({ name, contacts: [], policy: {} });
const applied = await chancery.services.groups.apply([group('default'), group('alpha'), group('beta')], { actor: 'cli:test' });
if (!applied.ok) throw new Error('groups not applied');
const app = (await chancery.apps()).admin;
const local = await chancery.localAdmin();

async function send(method: string, url: string, options: { token?: string; body?: unknown } = {}): Promise<AdminAnswer> {
  const response = await app.inject({
    method: method as 'GET',
    url,
    headers: {
      ...(options.token === undefined ? {} : { authorization: `Bearer ${options.token}` }),
      ...(options.body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    ...(options.body === undefined ? {} : { payload: JSON.stringify(options.body) }),
  });
  const contentType = String(response.headers['content-type'] ?? '');
  // Exports (text/csv, application/jsonl) are checked as the text they are.
  const json = /^application\/(problem\+)?json(;|$)/.test(contentType);
  // An export with no matching row is an empty text (JSON lines have no header), still a string.
  return { status: response.statusCode, contentType, body: json ? (response.body ? JSON.parse(response.body) : undefined) : response.body };
}

/** As the local operator (the socket's principal): how fixtures are made. */
async function asLocal<T>(method: string, url: string, body?: unknown): Promise<T> {
  const response = await local.inject({ method: method as 'GET', url, headers: { 'x-chancery-user': 'fixture', ...(body === undefined ? {} : { 'content-type': 'application/json' }) }, ...(body === undefined ? {} : { payload: JSON.stringify(body) }) });
  if (response.statusCode !== 200) throw new Error(`${method} ${url}: ${response.statusCode} ${response.body}`);
  return JSON.parse(response.body) as T;
}
const newToken = async (body: Record<string, unknown>): Promise<{ token: { id: string }; secret: string }> => asLocal('POST', '/admin/v1/tokens', body);

const principals = {
  admin: (await newToken({ role: 'admin' })).secret,
  groupAdminA: (await newToken({ role: 'group-admin', groups: ['alpha'] })).secret,
  groupAdminB: (await newToken({ role: 'group-admin', groups: ['beta'] })).secret,
  auditor: (await newToken({ role: 'auditor' })).secret,
  none: undefined,
  badToken: `chy_${'0'.repeat(16)}_${'A'.repeat(43)}`,
  expired: (await newToken({ role: 'admin', expiresInDays: 1 })).secret,
  revoked: await (async () => {
    const made = await newToken({ role: 'admin' });
    await asLocal('POST', `/admin/v1/tokens/${made.token.id}/revoke`);
    return made.secret;
  })(),
};
clock.advance(2 * DAY); // the one-day token is now expired; the others have 90 days
type Who = keyof typeof principals;
const WHO = Object.keys(principals) as Who[];

const accounts = new AccountRepository(chancery.db);
async function account(groupName: string): Promise<string> {
  const made = buildAccount({ group: groupName, createdAt: clock.now() });
  await accounts.insert(made);
  return made.id;
}
let names = 0;
const certificate = async (groupName: string, profile?: string): Promise<string> =>
  (await issueFor(chancery, { name: `host${(names += 1)}.${groupName}.test`, group: groupName, ...(profile ? { profile } : {}) })).certificate.serial;

let incidents = 0;
const incidentBody = async (): Promise<Record<string, unknown>> => ({
  name: `matrix-${(incidents += 1)}`,
  select: { serial: await certificate('alpha') },
  reason: 'superseded',
  renewBy: new Date(clock.now().getTime() + 7 * DAY).toISOString(),
  drill: true,
});
const incident = async (): Promise<string> => (await asLocal<{ incident: { name: string } }>('POST', '/admin/v1/incidents', await incidentBody())).incident.name;

/** A webhook of group A's (created as the local operator; never contacted: no job runs here). */
const webhook = async (): Promise<string> =>
  (await asLocal<{ webhook: { id: string } }>('POST', '/admin/v1/webhooks', { url: 'https://hooks.alpha.test/chancery', group: 'alpha' })).webhook.id;

/** A request's parameters; made fresh for each call (a revocation needs something to revoke). */
type Fixture = () => Promise<{ params?: Record<string, string>; query?: string; body?: unknown }>;
type Expect = Partial<Record<Who, number>>;
interface Entry {
  fixture: Fixture;
  expect: Expect;
}
const UNAUTHENTICATED: Expect = { none: 401, badToken: 401, expired: 401, revoked: 401 };
/** A read of group A's: every role reads it but B's group-admin, to whom it does not exist. */
const readA = (fixture: Fixture): Entry => ({ fixture, expect: { admin: 200, groupAdminA: 200, groupAdminB: 404, auditor: 200, ...UNAUTHENTICATED } });
/** A list: every role lists (B's group-admin sees none of A's: checked below). */
const list = (query = ''): Entry => ({ fixture: async () => ({ query }), expect: { admin: 200, groupAdminA: 200, groupAdminB: 200, auditor: 200, ...UNAUTHENTICATED } });
/** A change to group A's: admin and A's group-admin; B's sees nothing there; the auditor changes nothing. */
const changeA = (fixture: Fixture): Entry => ({ fixture, expect: { admin: 200, groupAdminA: 200, groupAdminB: 404, auditor: 403, ...UNAUTHENTICATED } });
/** An admin's alone. */
const adminOnly = (fixture: Fixture, auditor = 403): Entry => ({ fixture, expect: { admin: 200, groupAdminA: 403, groupAdminB: 403, auditor, ...UNAUTHENTICATED } });

const MATRIX: Record<string, Entry> = {
  getMe: list(),
  listTokens: list(),
  createToken: changeA(async () => ({ body: { role: 'group-admin', groups: ['alpha'], expiresInDays: 30 } })),
  getToken: readA(async () => ({ params: { id: (await newToken({ role: 'group-admin', groups: ['alpha'] })).token.id } })),
  revokeToken: changeA(async () => ({ params: { id: (await newToken({ role: 'group-admin', groups: ['alpha'] })).token.id } })),
  listOperators: adminOnly(async () => ({}), 200),
  bindOperator: adminOnly(async () => ({ body: { serial: await certificate('alpha', 'operator'), role: 'auditor' } })),
  unbindOperator: adminOnly(async () => {
    const bound = await asLocal<{ spkiSha256: string }>('POST', '/admin/v1/operators', { serial: await certificate('alpha', 'operator'), role: 'auditor' });
    return { params: { spkiSha256: bound.spkiSha256 } };
  }),
  listGroups: list(),
  getGroup: readA(async () => ({ params: { name: 'alpha' } })),
  applyGroupPolicy: changeA(async () => ({ params: { name: 'alpha' }, body: { contacts: ['pki-alpha@example.test'] } })),
  exportPolicy: list(),
  applyPolicy: adminOnly(async () => ({ body: await asLocal('GET', '/admin/v1/policy') })),
  listEab: list(),
  createEab: changeA(async () => ({ body: { group: 'alpha' } })),
  revokeEab: changeA(async () => ({ params: { kid: (await asLocal<{ credential: { kid: string } }>('POST', '/admin/v1/eab', { group: 'alpha' })).credential.kid } })),
  listCertificates: list('?expiringWithinDays=365'),
  countCertificates: list('?status=valid'),
  certificateCounts: list(),
  exportCertificatesCsv: list('?sort=notAfter'),
  exportCertificatesJsonl: list('?status=valid'),
  getCertificate: readA(async () => ({ params: { serial: await certificate('alpha') } })),
  revokeCertificate: changeA(async () => ({ params: { serial: await certificate('alpha') }, body: { reason: 'superseded' } })),
  listAccounts: list('?status=valid'),
  getAccount: readA(async () => ({ params: { id: await account('alpha') } })),
  deactivateAccount: changeA(async () => ({ params: { id: await account('alpha') } })),
  // Incidents: an admin's to declare and close, an auditor's to follow (drills: nothing is revoked).
  previewIncident: adminOnly(async () => ({ body: { select: { group: 'alpha' } } }), 200),
  declareIncident: adminOnly(async () => ({ body: await incidentBody() })),
  listIncidents: adminOnly(async () => ({}), 200),
  getIncident: adminOnly(async () => ({ params: { name: await incident() } }), 200),
  listIncidentCertificates: adminOnly(async () => ({ params: { name: await incident() }, query: '?state=outstanding' }), 200),
  closeIncident: adminOnly(async () => ({ params: { name: await incident() } })),
  // Lineage, labels, renewal health and key reports, webhooks (admin/routes-inventory.ts).
  getCertificateLineage: readA(async () => ({ params: { serial: await certificate('alpha') } })),
  replaceCertificateLabels: changeA(async () => ({ params: { serial: await certificate('alpha') }, body: { labels: { owner: 'alpha-team' } } })),
  getHealthReport: list(),
  listHealthCertificates: list('?condition=expiring&days=30'),
  listHealthAccounts: list(),
  listSharedKeys: list(),
  listWeakKeys: list(),
  listInactiveAccounts: list('?days=30'),
  listWebhooks: list(),
  createWebhook: changeA(async () => ({ body: { url: 'https://hooks.alpha.test/chancery', group: 'alpha' } })),
  getWebhook: readA(async () => ({ params: { id: await webhook() } })),
  removeWebhook: changeA(async () => ({ params: { id: await webhook() } })),
  listWebhookDeliveries: readA(async () => ({ params: { id: await webhook() } })),
  // The audit log: every role reads it (a group-admin its groups' entries only: test/integration/admin/audit.test.ts).
  listAuditEntries: list('?order=newest&limit=50'),
};

const published = await send('GET', '/admin/v1/openapi.json');
const document = published.body as OpenApiDocument;
const check = responseChecker(document);

await t.test('ok/the OpenAPI document validates (OpenAPI 3.1)', async (t) => {
  t.equal(published.status, 200);
  t.equal((document as unknown as { openapi: string }).openapi, '3.1.0');
  await SwaggerParser.validate(structuredClone(document) as never);
  t.pass('swagger-parser accepts it');
});

/** Everything a refusal must leave as it was. */
async function snapshot(): Promise<string> {
  const tables: [string, string][] = [
    ['admin_tokens', 'id, revoked_at, last_used_at IS NOT NULL AS used'],
    ['admin_operators', 'spki_sha256, role'],
    ['eab_credentials', 'kid, revoked_at, bound_account_id'],
    ['certificates', 'serial, status'],
    ['accounts', 'id, status'],
    ['groups', 'name, contacts, policy'],
    ['webhooks', 'id, removed_at'],
  ];
  const parts = [];
  for (const [table, columns] of tables) parts.push(JSON.stringify((await chancery.db.query(`SELECT ${columns} FROM ${table} ORDER BY 1`)).rows));
  return parts.join('\n');
}

const operations = Object.entries(document.paths).flatMap(([path, methods]) =>
  Object.entries(methods).map(([method, operation]) => ({ path, method: method.toUpperCase(), operationId: (operation as { operationId?: string }).operationId ?? `${method} ${path}` })),
);

await t.test('ok/every documented operation has an entry in the matrix, and the matrix nothing else', async (t) => {
  t.same(operations.map((o) => o.operationId).filter((id) => !(id in MATRIX)), [], 'operations without an entry');
  t.same(Object.keys(MATRIX).filter((id) => !operations.some((o) => o.operationId === id)), [], 'entries without an operation');
  t.ok(operations.length >= 20, `${operations.length} operations`);
});

for (const { path, method, operationId } of operations) {
  const entry = MATRIX[operationId];
  if (entry === undefined) continue;
  await t.test(`matrix/${operationId}`, async (t) => {
    for (const who of WHO) {
      const expected = entry.expect[who];
      t.not(expected, undefined, `${operationId}: ${who} has an expected status`);
      const { params = {}, query = '', body } = await entry.fixture();
      const url = path.replace(/\{(\w+)\}/g, (_m, name: string) => encodeURIComponent(params[name] ?? 'missing')) + query;
      const before = expected === 200 ? undefined : await snapshot();
      const answer = await send(method, url, { ...(principals[who] === undefined ? {} : { token: principals[who] }), ...(body === undefined ? {} : { body }) });
      t.equal(answer.status, expected, `${operationId} as ${who}: ${answer.status} ${answer.status === 200 ? '' : JSON.stringify(answer.body)}`);
      t.equal(check(path, method, answer), undefined, `${operationId} as ${who}: the answer matches its schema`);
      if (answer.status !== 200) {
        t.match(answer.contentType, /^application\/problem\+json/, 'a refusal is a problem document');
        t.equal(await snapshot(), before, `${operationId} as ${who}: nothing changed`);
      }
    }
  });
}

await t.test('ok/a group-admin lists only its own groups', async (t) => {
  await certificate('alpha');
  await certificate('beta');
  await asLocal('POST', '/admin/v1/eab', { group: 'alpha' });
  await account('alpha');
  for (const path of ['/admin/v1/certificates', '/admin/v1/eab', '/admin/v1/accounts', '/admin/v1/tokens', '/admin/v1/groups', '/admin/v1/webhooks']) {
    const b = await send('GET', path, { token: principals.groupAdminB });
    t.equal(b.status, 200);
    const items = (b.body as { items: { group?: string; groups?: string[]; name?: string }[] }).items;
    t.ok(items.every((item) => (item.group ?? item.name ?? item.groups?.[0]) === 'beta'), `${path}: only beta's (${items.length})`);
    const admin = (await send('GET', path, { token: principals.admin })).body as { items: { group?: string; groups?: string[]; name?: string }[] };
    t.ok(admin.items.some((item) => (item.group ?? item.name ?? item.groups?.[0]) === 'alpha'), `${path}: an admin sees alpha's`);
  }
});

await t.test('fail/escalation attempts are refused and change nothing', async (t) => {
  const a = principals.groupAdminA;
  const cases: [string, string, string, unknown, number][] = [
    ['mint an admin token', 'POST', '/admin/v1/tokens', { role: 'admin' }, 403],
    ['mint an auditor token', 'POST', '/admin/v1/tokens', { role: 'auditor' }, 403],
    ["mint a token for group B", 'POST', '/admin/v1/tokens', { role: 'group-admin', groups: ['alpha', 'beta'] }, 404],
    ['a token outliving its own', 'POST', '/admin/v1/tokens', { role: 'group-admin', groups: ['alpha'], expiresInDays: 365 }, 403],
    ['widen its scope (identifiers are an admin’s)', 'PUT', '/admin/v1/groups/alpha/policy', { identifiers: [{ suffix: 'example.test' }] }, 403],
    ['read group B', 'GET', '/admin/v1/groups/beta', undefined, 404],
    ["change group B's policy", 'PUT', '/admin/v1/groups/beta/policy', { wildcards: false }, 404],
    ['replace the whole policy', 'PUT', '/admin/v1/policy', { version: 1, groups: { default: {}, alpha: {}, beta: {} } }, 403],
    ['an EAB key for group B', 'POST', '/admin/v1/eab', { group: 'beta' }, 404],
    ['bind itself an admin certificate', 'POST', '/admin/v1/operators', { serial: '01', role: 'admin' }, 403],
  ];
  const betaCertificate = await certificate('beta');
  cases.push(["revoke group B's certificate", 'POST', `/admin/v1/certificates/${betaCertificate}/revoke`, { reason: 'keyCompromise' }, 404]);
  for (const [name, method, url, body, status] of cases) {
    const before = await snapshot();
    const answer = await send(method, url, { token: a, ...(body === undefined ? {} : { body }) });
    t.equal(answer.status, status, `${name}: ${JSON.stringify(answer.body)}`);
    t.equal(await snapshot(), before, `${name}: nothing changed`);
  }
});
