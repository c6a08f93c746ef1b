import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import t, { type Test } from 'tap';
import { compose } from '../../../src/compose.js';
import { FakeClock, MINUTE } from '../../../src/core/clock.js';
import type { Group } from '../../../src/core/group.js';
import { issueFor } from '../../helpers/admin-api.js';
import { testConfig } from '../../helpers/runtime.js';

/**
 * The administrative changes leave their audit entries (DESIGN.md rule 8), and GET /admin/v1/audit reads
 * them back: tokens created and revoked, EAB credentials created and revoked, operators bound and unbound,
 * labels replaced, webhooks created and removed — each attributed to the token that acted — and failed
 * authentications, refused and aggregated per source address and minute. A group-admin reads its groups'
 * entries only; a refused change leaves nothing; a bad filter value is a problem naming it.
 */
const clock = new FakeClock(new Date());
const dir = await mkdtemp(join(tmpdir(), 'chancery-admin-audit-'));
const config = testConfig(dir, { CHANCERY_ADMIN_LISTEN: '127.0.0.1:0', CHANCERY_ADMIN_AUTH_FAILURES_PER_MINUTE: '1000' });
const chancery = await compose(config, { ca: 'create-if-missing', clock, logger: pino({ level: 'silent' }) });
t.teardown(() => chancery.close());
const group = (name: string): Group => ({ name, contacts: [], policy: {} });
if (!(await chancery.services.groups.apply([group('default'), group('alpha'), group('beta')], { actor: 'cli:test' })).ok) throw new Error('groups not applied');
const app = (await chancery.apps()).admin;
const local = await chancery.localAdmin();

interface Answer {
  status: number;
  body: Record<string, unknown>;
}
async function send(method: string, url: string, options: { token?: string; body?: unknown; from?: string } = {}): Promise<Answer> {
  const response = await app.inject({
    method: method as 'GET',
    url,
    ...(options.from === undefined ? {} : { remoteAddress: options.from }),
    headers: {
      ...(options.token === undefined ? {} : { authorization: `Bearer ${options.token}` }),
      ...(options.body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    ...(options.body === undefined ? {} : { payload: JSON.stringify(options.body) }),
  });
  return { status: response.statusCode, body: response.body ? (JSON.parse(response.body) as Record<string, unknown>) : {} };
}
async function ok<T = Record<string, unknown>>(method: string, url: string, token: string, body?: unknown): Promise<T> {
  const answer = await send(method, url, { token, ...(body === undefined ? {} : { body }) });
  if (answer.status !== 200) throw new Error(`${method} ${url}: ${answer.status} ${JSON.stringify(answer.body)}`);
  return answer.body as T;
}
async function asLocal<T>(method: string, url: string, body?: unknown): Promise<T> {
  const response = await local.inject({ method: method as 'GET', url, headers: { 'x-chancery-user': 'fixture', ...(body === undefined ? {} : { 'content-type': 'application/json' }) }, ...(body === undefined ? {} : { payload: JSON.stringify(body) }) });
  if (response.statusCode !== 200) throw new Error(`${method} ${url}: ${response.statusCode} ${response.body}`);
  return JSON.parse(response.body) as T;
}
type Made = { token: { id: string }; secret: string };
const admin = await asLocal<Made>('POST', '/admin/v1/tokens', { role: 'admin', description: 'audit test admin' });
const groupAdminA = await asLocal<Made>('POST', '/admin/v1/tokens', { role: 'group-admin', groups: ['alpha'] });
const groupAdminB = await asLocal<Made>('POST', '/admin/v1/tokens', { role: 'group-admin', groups: ['beta'] });
const auditor = await asLocal<Made>('POST', '/admin/v1/tokens', { role: 'auditor' });

interface Entry {
  id: number;
  at: string;
  actor: string;
  action: string;
  subject: string;
  outcome: string;
  group?: string;
  details?: Record<string, unknown>;
}
const audit = async (query: string, token = auditor.secret): Promise<Entry[]> => (await ok<{ items: Entry[] }>('GET', `/admin/v1/audit?limit=500&${query}`, token)).items;
const one = async (t: Test, query: string): Promise<Entry> => {
  const found = await audit(query);
  t.equal(found.length, 1, `one entry for ${query}`);
  return found[0]!;
};
const actorOf = (made: Made): string => `token:${made.token.id}`;

await t.test('ok/tokens: created and revoked, by whom, never the secret', async (t) => {
  const made = await ok<Made>('POST', '/admin/v1/tokens', admin.secret, { role: 'group-admin', groups: ['alpha'], expiresInDays: 30 });
  const created = await one(t, `action=admin-token.create&subject=token:${made.token.id}`);
  t.equal(created.actor, actorOf(admin));
  t.equal(created.outcome, 'ok');
  t.equal(created.group, 'alpha');
  t.match(created.details, { role: 'group-admin', groups: ['alpha'] });
  t.notOk(JSON.stringify(created).includes(made.secret.slice(-20)), 'the secret is not in the entry');
  await ok('POST', `/admin/v1/tokens/${made.token.id}/revoke`, groupAdminA.secret);
  t.equal((await one(t, `action=admin-token.revoke&subject=token:${made.token.id}`)).actor, actorOf(groupAdminA));
});

await t.test('ok/EAB credentials created and revoked; a refused revocation leaves nothing', async (t) => {
  const { credential } = await ok<{ credential: { kid: string } }>('POST', '/admin/v1/eab', groupAdminA.secret, { group: 'alpha' });
  const created = await one(t, `action=eab.create&subject=eab:${credential.kid}`);
  t.equal(created.actor, actorOf(groupAdminA));
  t.equal(created.group, 'alpha');
  const before = (await audit('')).length;
  t.equal((await send('POST', `/admin/v1/eab/${credential.kid}/revoke`, { token: groupAdminB.secret })).status, 404, "another group's credential does not exist for B");
  t.equal((await audit('')).length, before, 'the refusal left no entry');
  await ok('POST', `/admin/v1/eab/${credential.kid}/revoke`, admin.secret);
  t.equal((await one(t, `action=eab.revoke&subject=eab:${credential.kid}`)).actor, actorOf(admin));
});

await t.test('ok/operators bound and unbound', async (t) => {
  const { certificate } = await issueFor(chancery, { name: 'ops-one.example.test', group: 'alpha', profile: 'operator' });
  const bound = await ok<{ spkiSha256: string; name: string }>('POST', '/admin/v1/operators', admin.secret, { serial: certificate.serial, role: 'auditor' });
  const entry = await one(t, `action=operator.bind&subject=operator:${bound.name}`);
  t.equal(entry.actor, actorOf(admin));
  t.match(entry.details, { role: 'auditor', serial: certificate.serial, spkiSha256: bound.spkiSha256 });
  await ok('DELETE', `/admin/v1/operators/${bound.spkiSha256}`, admin.secret);
  t.equal((await one(t, `action=operator.unbind&subject=operator:${bound.name}`)).actor, actorOf(admin));
});

await t.test('ok/labels replaced and webhooks created and removed, in their group', async (t) => {
  const { certificate } = await issueFor(chancery, { name: 'labelled.alpha.test', group: 'alpha' });
  await ok('PUT', `/admin/v1/certificates/${certificate.serial}/labels`, groupAdminA.secret, { labels: { owner: 'alpha-team' } });
  const labelled = await one(t, `action=certificate.label&subject=certificate:${certificate.serial}`);
  t.equal(labelled.actor, actorOf(groupAdminA));
  t.equal(labelled.group, 'alpha');
  t.match(labelled.details, { after: { owner: 'alpha-team' } });
  const { webhook } = await ok<{ webhook: { id: string } }>('POST', '/admin/v1/webhooks', groupAdminA.secret, { url: 'https://hooks.alpha.test/chancery', group: 'alpha' });
  t.equal((await one(t, `action=webhook.create&subject=webhook:${webhook.id}`)).group, 'alpha');
  await ok('DELETE', `/admin/v1/webhooks/${webhook.id}`, groupAdminA.secret);
  t.equal((await one(t, `action=webhook.remove&subject=webhook:${webhook.id}`)).actor, actorOf(groupAdminA));
});

await t.test('ok/failed authentications: refused, at most one entry per source address a minute', async (t) => {
  const source = '127.0.0.9';
  const subject = `subject=source:${source}`;
  for (let i = 0; i < 5; i += 1) t.equal((await send('GET', '/admin/v1/me', { token: `chy_${'0'.repeat(16)}_${'B'.repeat(43)}`, from: source })).status, 401);
  const first = await one(t, `action=admin.authenticate&${subject}`);
  t.match(first, { actor: `source:${source}`, outcome: 'refused', details: { failures: 1 } });
  clock.advance(MINUTE + 1000);
  t.equal((await send('GET', '/admin/v1/me', { from: source, token: 'not-a-token' })).status, 401);
  const all = await audit(`action=admin.authenticate&${subject}`);
  t.same(
    all.map((entry) => entry.details?.failures),
    [1, 4, 1],
    'six failures over two minutes: the first at once, the rest of its minute together, then the next minute\'s first',
  );
  t.ok(all.every((entry) => entry.outcome === 'refused'));
});

await t.test('ok/who reads what: auditors and admins everything, a group-admin its groups only', async (t) => {
  const everything = await audit('order=newest');
  t.ok(everything.some((entry) => entry.group === undefined), 'entries of no group (failed authentications, the CA ceremony)');
  t.same(await audit('order=newest', admin.secret), everything, 'an admin reads what the auditor reads');
  const ofA = await audit('order=newest', groupAdminA.secret);
  t.ok(ofA.length > 0);
  t.ok(ofA.every((entry) => entry.group === 'alpha'), "A's group-admin reads alpha's entries only");
  t.same(await audit('action=eab.create', groupAdminB.secret), [], "B's group-admin reads none of alpha's");
  t.equal((await send('GET', '/admin/v1/audit', {})).status, 401);
});

await t.test('ok/filters and pages: time range, order, cursor', async (t) => {
  const oldest = await audit('order=oldest');
  const newest = await audit('order=newest');
  t.same(newest.map((e) => e.id), oldest.map((e) => e.id).reverse());
  const paged: number[] = [];
  let next: string | undefined;
  do {
    const page = await ok<{ items: Entry[]; next?: string }>('GET', `/admin/v1/audit?limit=3${next === undefined ? '' : `&cursor=${encodeURIComponent(next)}`}`, auditor.secret);
    paged.push(...page.items.map((e) => e.id));
    next = page.next;
  } while (next !== undefined);
  t.same(paged, oldest.map((e) => e.id), 'pages of three give every entry once, in order');
  const cut = oldest[Math.floor(oldest.length / 2)]!.at;
  t.ok((await audit(`from=${encodeURIComponent(cut)}`)).every((e) => e.at >= cut));
  t.ok((await audit(`to=${encodeURIComponent(cut)}`)).every((e) => e.at < cut));
});

await t.test('fail/bad filter values: a problem naming the parameter', async (t) => {
  for (const [query, name] of [
    ['from=yesterday', 'from'],
    ['limit=0', 'limit'],
    ['order=sideways', 'order'],
    ['cursor=not-a-cursor', 'cursor'],
  ] as const) {
    const answer = await send('GET', `/admin/v1/audit?${query}`, { token: auditor.secret });
    t.equal(answer.status, 400, query);
    t.match(String(answer.body.detail), name, `${query}: names ${name}`);
  }
});
