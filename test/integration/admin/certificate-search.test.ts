/**
 * The certificate inventory on the admin API (/admin/v1/certificates, /count, /counts, .csv, .jsonl) over a
 * composed Chancery: the grammar's filters end to end, problems that name the parameter, keyset pages, and
 * RBAC scoping of search, counts and exports (a group-admin sees its own groups only, in every format).
 */
import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import t from 'tap';
import { compose } from '../../../src/compose.js';
import { FakeClock } from '../../../src/core/clock.js';
import type { Group, Labels } from '../../../src/core/group.js';
import { profileRegistryFromConfig } from '../../../src/policy/profiles.js';
import { testConfig } from '../../helpers/runtime.js';

const clock = new FakeClock(new Date());
const dir = await mkdtemp(join(tmpdir(), 'chancery-search-'));
const config = testConfig(dir, { CHANCERY_ADMIN_LISTEN: '127.0.0.1:0' });
const chancery = await compose(config, { ca: 'create-if-missing', clock, logger: pino({ level: 'silent' }) });
t.teardown(() => chancery.close());
const group = (name: string): Group => ({ name, contacts: [], policy: {} });
if (!(await chancery.services.groups.apply([group('default'), group('alpha'), group('beta')], { actor: 'cli:test' })).ok) throw new Error('groups not applied');
const app = (await chancery.apps()).admin;
const local = await chancery.localAdmin();

async function asLocal<T>(method: string, url: string, body?: unknown): Promise<T> {
  const response = await local.inject({ method: method as 'GET', url, headers: { 'x-chancery-user': 'fixture', ...(body === undefined ? {} : { 'content-type': 'application/json' }) }, ...(body === undefined ? {} : { payload: JSON.stringify(body) }) });
  if (response.statusCode !== 200) throw new Error(`${method} ${url}: ${response.statusCode} ${response.body}`);
  return JSON.parse(response.body) as T;
}
const token = async (body: Record<string, unknown>): Promise<string> => (await asLocal<{ secret: string }>('POST', '/admin/v1/tokens', body)).secret;
const admin = await token({ role: 'admin' });
const alphaAdmin = await token({ role: 'group-admin', groups: ['alpha'] });
const auditor = await token({ role: 'auditor' });

async function get(url: string, secret: string): Promise<{ status: number; type: string; text: string; json: any; headers: Record<string, unknown> }> {
  const response = await app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${secret}` } });
  const type = String(response.headers['content-type'] ?? '');
  return { status: response.statusCode, type, text: response.body, json: /json$|json;/.test(type) && !/jsonl/.test(type) ? JSON.parse(response.body) : undefined, headers: response.headers };
}

async function issue(name: string, groupName: string, labels: Labels): Promise<string> {
  const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const profile = profileRegistryFromConfig(chancery.config).get('tls-server');
  const certificate = await chancery.services.issuance.issueForKey(publicKey.export({ type: 'spki', format: 'der' }), [{ type: 'dns', value: name }], {
    ...(profile ? { profile } : {}),
    metadata: { group: groupName, labels },
  });
  return certificate.serial;
}

const a1 = await issue('api.pay.alpha.test', 'alpha', { env: 'prod', note: '=HYPERLINK("http://evil.test","x")' });
const a2 = await issue('db.pay.alpha.test', 'alpha', { env: 'staging' });
const a3 = await issue('www.alpha.test', 'alpha', { env: 'prod' });
const b1 = await issue('api.pay.beta.test', 'beta', { env: 'prod', owner: '@beta' });
const serials = (body: { items: { serial: string }[] }): string[] => body.items.map((item) => item.serial).sort();

await t.test('ok/the filters through the API', async (t) => {
  t.same(serials((await get('/admin/v1/certificates?suffix=.pay.alpha.test', admin)).json), [a1, a2].sort());
  t.same(serials((await get('/admin/v1/certificates?name=WWW.alpha.test', admin)).json), [a3]);
  t.same(serials((await get('/admin/v1/certificates?label=env:prod&label=note:=HYPERLINK("http://evil.test","x")', admin)).json), [a1]);
  t.same(serials((await get('/admin/v1/certificates?label=env:prod', admin)).json), [a1, a3, b1].sort());
  t.same(serials((await get(`/admin/v1/certificates?serial=${b1}`, admin)).json), [b1]);
  t.same(serials((await get('/admin/v1/certificates?status=valid&expiringWithinDays=3650&group=beta', admin)).json), [b1]);
  t.same(serials((await get('/admin/v1/certificates?status=expired', admin)).json), []);
  t.same((await get('/admin/v1/certificates/count?suffix=.test', admin)).json, { count: 4, capped: false, cap: 10000 });
});

await t.test('ok/keyset pages: every certificate once', async (t) => {
  const seen: string[] = [];
  let url = '/admin/v1/certificates?limit=1&sort=notAfter&suffix=.test';
  for (let pages = 0; pages < 10; pages++) {
    const body = (await get(url, admin)).json as { items: { serial: string }[]; next?: string };
    seen.push(...body.items.map((item) => item.serial));
    if (body.next === undefined) break;
    url = `/admin/v1/certificates?limit=1&sort=notAfter&suffix=.test&cursor=${body.next}`;
  }
  t.same(seen.sort(), [a1, a2, a3, b1].sort());
});

await t.test('fail/a problem names the parameter', async (t) => {
  const cases: [string, RegExp][] = [
    ['/admin/v1/certificates?colour=red', /parameter "colour": unknown/],
    ['/admin/v1/certificates?status=gone', /parameter "status"/],
    ['/admin/v1/certificates?expiringWithinDays=soon', /parameter "expiringWithinDays"/],
    ['/admin/v1/certificates?label=nocolon', /parameter "label"/],
    ['/admin/v1/certificates?cursor=bogus!', /parameter "cursor"/],
    ['/admin/v1/certificates?limit=9999', /parameter "limit"/],
    ['/admin/v1/certificates/count?sort=notAfter', /parameter "sort": unknown/],
    ['/admin/v1/certificates/counts?status=valid', /parameter "status": unknown/],
    ['/admin/v1/certificates.csv?cursor=abc', /parameter "cursor": unknown/],
    ['/admin/v1/certificates.jsonl?issuedAfter=tomorrow', /parameter "issuedAfter"/],
  ];
  for (const [url, detail] of cases) {
    const answer = await get(url, admin);
    t.equal(answer.status, 400, url);
    t.match(answer.type, /^application\/problem\+json/);
    t.match(answer.json.detail, detail, url);
  }
  const first = (await get('/admin/v1/certificates?limit=1&group=alpha', admin)).json as { next: string };
  const foreign = await get(`/admin/v1/certificates?limit=1&group=beta&cursor=${first.next}`, admin);
  t.match(foreign.json.detail, /parameter "cursor": it belongs to a search with other filters/, 'a cursor from another search');
});

await t.test('ok/a group-admin searches, counts and exports its own groups only', async (t) => {
  t.same(serials((await get('/admin/v1/certificates', alphaAdmin)).json), [a1, a2, a3].sort());
  t.same(serials((await get('/admin/v1/certificates?suffix=.pay.beta.test', alphaAdmin)).json), [], "another group's names: nothing");
  t.same(serials((await get('/admin/v1/certificates?group=beta', alphaAdmin)).json), [], "another group by name: nothing, not 403");
  t.same(serials((await get(`/admin/v1/certificates?serial=${b1}`, alphaAdmin)).json), []);
  t.same((await get('/admin/v1/certificates/count?label=env:prod', alphaAdmin)).json, { count: 2, capped: false, cap: 10000 });
  const counts = (await get('/admin/v1/certificates/counts', alphaAdmin)).json as { groups: { group: string; valid: number }[]; total: { valid: number } };
  t.same(counts.groups.map((g) => g.group), ['alpha']);
  t.equal(counts.total.valid, 3);
  const all = (await get('/admin/v1/certificates/counts', auditor)).json as { groups: { group: string; valid: number; expiringWithin90Days: number }[]; total: { valid: number } };
  // '': the admin listener's own TLS certificate, recorded with no group: an admin's or auditor's alone.
  t.same(all.groups.map((g) => [g.group, g.valid]), [['', 1], ['alpha', 3], ['beta', 1]], 'an auditor counts every group');
  const csv = await get('/admin/v1/certificates.csv', alphaAdmin);
  t.equal(csv.status, 200);
  t.match(csv.type, /^text\/csv/);
  t.match(String(csv.headers['content-disposition']), /attachment; filename="certificates.csv"/);
  const rows = csv.text.trim().split('\r\n');
  t.equal(rows[0], 'serial,status,names,group,labels,notBefore,notAfter,issuedAt,issuer,profile,account,spkiSha256,replaces,revokedAt,revocationReason');
  t.same(rows.slice(1).map((row) => row.split(',')[0]).sort(), [a1, a2, a3].sort(), "alpha's rows only");
  const jsonl = await get('/admin/v1/certificates.jsonl', alphaAdmin);
  t.match(jsonl.type, /^application\/jsonl/);
  const records = jsonl.text.trim().split('\n').map((line) => JSON.parse(line) as { serial: string; group: string });
  t.same(records.map((r) => r.serial).sort(), [a1, a2, a3].sort());
  t.ok(records.every((r) => r.group === 'alpha'));
});

await t.test('ok/the CSV export defuses formula cells', async (t) => {
  const csv = await get('/admin/v1/certificates.csv?group=beta&sort=notAfter', admin);
  t.match(csv.text, /,beta,env=prod;owner=@beta,/, 'a label cell starts with its key');
  const groupOnly = await get(`/admin/v1/certificates.csv?serial=${a1}`, admin);
  t.match(groupOnly.text, /"env=prod;note==HYPERLINK\(""http:\/\/evil\.test"",""x""\)"/, 'quoted; its first character is a letter');
});

await t.test('ok/the OpenAPI document describes the search, counts and exports', async (t) => {
  const document = (await get('/admin/v1/openapi.json', admin)).json as { paths: Record<string, Record<string, { operationId: string; responses: Record<string, { content: Record<string, unknown> }> }>> };
  t.equal(document.paths['/admin/v1/certificates']?.get?.operationId, 'listCertificates');
  t.equal(document.paths['/admin/v1/certificates/count']?.get?.operationId, 'countCertificates');
  t.equal(document.paths['/admin/v1/certificates/counts']?.get?.operationId, 'certificateCounts');
  t.ok(document.paths['/admin/v1/certificates.csv']?.get?.responses['200']?.content['text/csv'], 'the CSV export is text/csv');
  t.ok(document.paths['/admin/v1/certificates.jsonl']?.get?.responses['200']?.content['application/jsonl']);
});
