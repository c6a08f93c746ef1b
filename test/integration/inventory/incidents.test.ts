import { createPublicKey } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { calculateJwkThumbprint, importPKCS8, type JWK } from 'jose';
import t from 'tap';
import { certIdOf } from '../../../src/ca/cert-id.js';
import { parseCertId } from '../../../src/core/cert-id.js';
import { DAY, FakeClock, HOUR } from '../../../src/core/clock.js';
import { isCaError } from '../../../src/core/errors.js';
import { fromPem, toPem } from '../../../src/core/pem.js';
import type { Validator } from '../../../src/va/validator.js';
import { eabJws, InjectClient, makeAccountKey, type TestKey } from '../../helpers/acme-jws.js';
import { openssl, requireOpenssl, writeTemp } from '../../helpers/openssl.js';
import { composeForTest } from '../../helpers/runtime.js';

/**
 * Incident response through real enrolments (the project's own ACME client, which reads ARI): an incident
 * declared on one group's key with `when-replaced` moves that certificate's renewalInfo window to one that
 * has begun (with the explanation URL); the client renews with `replaces`; the old certificate is revoked
 * once replaced — `openssl ocsp` says revoked, the CRL lists it — and status counts it; a renewal presenting
 * the blocked key is refused (badPublicKey naming the incident) and counted, and so is the key as an ACME
 * account key. A drill revokes nothing and reports the replacement curve; `at-deadline` revokes the rest
 * once the deadline passes. Bad input is refused precisely and changes nothing. Owners are notified through
 * the outbox. Every step is audited.
 */
requireOpenssl();
const clock = new FakeClock(new Date());
const validator: Validator = { validate: async () => ({ valid: true }) };
const { chancery, dir } = await composeForTest({ validator, clock, listen: false });
t.teardown(() => chancery.close());
const apps = await chancery.apps();
const client = new InjectClient(apps.acme, chancery.acmeUrl);
const { groups, eab, scheduler, incidents, jobs, inventory } = chancery.services;

await groups.apply(
  [
    { name: 'default', contacts: [], policy: {} },
    { name: 'payments', contacts: ['pki-payments@example.test'], policy: {} },
    { name: 'hr', contacts: ['people-it@example.test'], policy: {} },
  ],
  { actor: 'cli:test' },
);

type Json = Record<string, unknown>;
interface Who {
  key: TestKey;
  kid: string;
}

async function newAccount(group: string, key?: TestKey): Promise<{ status: number; body: Json; who?: Who }> {
  const credential = await eab.create({ group, actor: 'cli:test' });
  const accountKey = key ?? (await makeAccountKey('ES256'));
  const url = `${chancery.acmeUrl}/acme/new-account`;
  const externalAccountBinding = await eabJws({ kid: credential.credential.kid, hmacKey: Buffer.from(credential.hmacKey, 'base64url'), url, accountJwk: accountKey.publicJwk });
  const response = await client.post('/acme/new-account', accountKey, { payload: { termsOfServiceAgreed: true, externalAccountBinding } });
  const body = JSON.parse(response.body || '{}') as Json;
  return { status: response.statusCode, body, ...(response.statusCode === 201 ? { who: { key: accountKey, kid: String(response.headers.location) } } : {}) };
}

const post = async (who: Who, path: string, payload: unknown): Promise<{ status: number; body: Json; text: string }> => {
  const response = await client.post(path, who.key, { kid: who.kid, payload });
  let body: Json = {};
  try {
    body = JSON.parse(response.body || '{}') as Json;
  } catch {
    // a certificate chain
  }
  return { status: response.statusCode, body, text: response.body };
};

/** A private key (PEM) and a CSR for `name` made with it (the same key may be presented twice). */
async function keyAndCsr(name: string, keyFile?: string): Promise<{ keyFile: string; csr: Buffer }> {
  const work = await writeTemp('csr.der', '');
  const key = keyFile ?? join(work, '..', 'key.pem');
  const args = ['req', '-new', ...(keyFile ? ['-key', keyFile] : ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key]), '-subj', '/', '-addext', `subjectAltName=DNS:${name}`, '-outform', 'DER', '-out', work];
  const made = await openssl(args);
  if (made.code !== 0) throw new Error(made.stderr);
  return { keyFile: key, csr: await readFile(work) };
}

/** Orders `name` (replacing `replaces`, an RFC 9773 certID), answers its challenge, finalizes with `csr`. */
async function order(who: Who, name: string, replaces?: string): Promise<{ order: Json; location: string }> {
  const response = await client.post('/acme/new-order', who.key, { kid: who.kid, payload: { identifiers: [{ type: 'dns', value: name }], ...(replaces ? { replaces } : {}) } });
  if (response.statusCode !== 201) throw new Error(`newOrder ${response.statusCode} ${response.body}`);
  const placed = JSON.parse(response.body) as Json;
  for (const url of placed.authorizations as string[]) {
    const authz = (await post(who, url, '')).body as { status: string; challenges: { type: string; url: string }[] };
    if (authz.status === 'pending') await post(who, authz.challenges.find((c) => c.type === 'http-01')!.url, {});
  }
  await scheduler.runOnce();
  return { order: placed, location: String(response.headers.location) };
}

async function finalize(who: Who, placed: Json, csr: Buffer): Promise<{ status: number; body: Json; der?: Buffer }> {
  const done = await post(who, String(placed.finalize), { csr: csr.toString('base64url') });
  if (done.status !== 200) return done;
  const chain = await post(who, String(done.body.certificate), '');
  return { ...done, der: fromPem(chain.text)[0]! };
}

async function renewalInfo(der: Buffer): Promise<{ status: number; body: { suggestedWindow: { start: string; end: string }; explanationURL?: string }; retryAfter: string }> {
  const response = await apps.acme.inject({ method: 'GET', url: `/acme/renewal-info/${certIdOf(der)}` });
  return { status: response.statusCode, body: JSON.parse(response.body), retryAfter: String(response.headers['retry-after']) };
}

/** What openssl makes of the OCSP answer the public listener gives for `der` (RFC 6960). */
async function ocsp(der: Buffer): Promise<string> {
  const leaf = await writeTemp('leaf.pem', toPem(der));
  const chain = await writeTemp('chain.pem', toPem(chancery.hierarchy.intermediate.der));
  const root = await writeTemp('root.pem', toPem(chancery.hierarchy.root.der));
  const request = `${leaf}.req`;
  const made = await openssl(['ocsp', '-issuer', chain, '-cert', leaf, '-reqout', request, '-no_nonce']);
  if (made.code !== 0) throw new Error(made.stderr);
  const answer = await apps.public.inject({ method: 'POST', url: '/ocsp', headers: { 'content-type': 'application/ocsp-request' }, payload: await readFile(request) });
  const response = await writeTemp('response.der', answer.rawPayload);
  // The test's clock runs hours ahead of openssl's: allow for it in the validity check.
  const checked = await openssl(['ocsp', '-respin', response, '-issuer', chain, '-cert', leaf, '-CAfile', root, '-verify_other', chain, '-no_nonce', '-validity_period', '86400']);
  return checked.stdout + checked.stderr;
}

async function crlText(): Promise<string> {
  const answer = await apps.public.inject({ method: 'GET', url: `/crl/${chancery.hierarchy.intermediate.id}/0.crl` });
  return (await openssl(['crl', '-inform', 'DER', '-noout', '-text'], answer.rawPayload)).stdout;
}

const hexSerial = (der: Buffer): string => parseCertId(certIdOf(der)).serialHex;

/** Everything a refused declaration must leave as it was. */
async function snapshot(): Promise<string> {
  const parts: unknown[] = [];
  for (const table of ['incidents', 'incident_certificates', 'incident_blocked_keys', 'bulk_revocations']) {
    parts.push((await chancery.db.query(`SELECT count(*)::int AS n FROM ${table}`)).rows);
  }
  parts.push((await chancery.db.query(`SELECT serial, status FROM certificates ORDER BY serial`)).rows);
  return JSON.stringify(parts);
}

async function settle(): Promise<void> {
  await jobs.runNow('incidents.sweep');
  await jobs.runNow('revocation.bulk');
}

// ---- the estate: two payments certificates, one hr certificate, each through ACME ----
const payments = (await newAccount('payments')).who!;
const hr = (await newAccount('hr')).who!;
const apiKey = await keyAndCsr('api.pay.internal');
const api = await finalize(payments, (await order(payments, 'api.pay.internal')).order, apiKey.csr);
const dbCert = await finalize(payments, (await order(payments, 'db.pay.internal')).order, (await keyAndCsr('db.pay.internal')).csr);
const people = await finalize(hr, (await order(hr, 'people.hr.internal')).order, (await keyAndCsr('people.hr.internal')).csr);
const apiPem = toPem(api.der!);
// A webhook of the payments group that hears of incidents (never reached: its delivery job does not run here).
await inventory.webhooks.create({ actor: 'cli:test', role: 'admin', groups: [], via: 'local' }, 'all', { url: 'https://127.0.0.1:9/hook', group: 'payments', events: ['incident-declared'] });

await t.test('ok/preview: the blast radius of a key, changing nothing', async (t) => {
  const before = await snapshot();
  const preview = await incidents.preview({ key: apiPem });
  t.match(preview, { affected: 1, byGroup: [{ group: 'payments', count: 1, owners: ['pki-payments@example.test'] }], byIssuer: [{ issuer: chancery.hierarchy.intermediate.id, count: 1 }], excluded: { revoked: 0, expired: 0 } });
  t.equal(preview.sample[0]?.serial, hexSerial(api.der!));
  t.match(preview.notes.join('\n'), /within ari.retryAfterSeconds \(3600 s\)/);
  t.match(preview.notes.join('\n'), /no issuance quotas or rate limits/);
  const byGroup = await incidents.preview({ select: 'group=payments' });
  t.equal(byGroup.affected, 2);
  t.equal(await snapshot(), before, 'nothing changed');
});

await t.test('fail/bad input: each a precise error, nothing changed', async (t) => {
  const before = await snapshot();
  const renewBy = new Date(clock.now().getTime() + 7 * DAY).toISOString();
  const base = { name: 'bad-input', reason: 'keyCompromise', renewBy };
  const cases: [string, Record<string, unknown>, string, RegExp][] = [
    ['an empty selection', { ...base, select: 'name=nothing.pay.internal' }, 'malformed', /matches no valid certificate.*nothing was declared/],
    ['an unknown group', { ...base, select: 'group=nosuch' }, 'malformed', /parameter "group": no group "nosuch" \(groups: default, hr, payments\)/],
    ['a serials file with a bad line', { ...base, serials: `# affected\n${hexSerial(api.der!)}\nnot-a-serial\n` }, 'malformed', /serials file line 3: "not-a-serial" is not a serial number/],
    ['a serial this CA never issued', { ...base, serials: `${hexSerial(api.der!)}\n\n0badc0ffee\n` }, 'malformed', /serials file line 3: no certificate with serial 0badc0ffee/],
    ['--renew-by in the past', { ...base, select: 'group=payments', renewBy: new Date(clock.now().getTime() - HOUR).toISOString() }, 'malformed', /renewBy: .* is not in the future/],
    ['no selection', { ...base }, 'malformed', /the selection is missing/],
    ['two selections', { ...base, select: 'group=payments', key: apiPem }, 'malformed', /give one selection, not select and key/],
    ['an unknown reason', { ...base, select: 'group=payments', reason: 'oops' }, 'malformed', /reason: must be one of/],
    ['an unknown filter', { ...base, select: 'colour=blue' }, 'malformed', /select: parameter "colour": unknown/],
    ['an unknown revoke mode', { ...base, select: 'group=payments', revoke: 'later' }, 'malformed', /revoke: must be one of when-replaced, at-deadline, now/],
  ];
  for (const [what, input, kind, detail] of cases) {
    const refused = await incidents.declare(input, 'cli:test').then(
      () => undefined,
      (error: unknown) => error,
    );
    t.ok(isCaError(refused, kind as 'malformed'), `${what}: ${kind}`);
    t.match((refused as Error).message, detail, what);
    t.equal(await snapshot(), before, `${what}: nothing changed`);
  }
});

let declaredAt: Date;
await t.test('ok/declared on the payments key (keyCompromise, when-replaced): renewalInfo moves, with the explanation', async (t) => {
  const ownBefore = await renewalInfo(api.der!);
  t.equal(ownBefore.retryAfter, '3600', 'Retry-After is ari.retryAfterSeconds');
  t.ok(new Date(ownBefore.body.suggestedWindow.start) > clock.now(), 'before: the middle third, ahead');
  clock.advance(HOUR);
  client.forgetNonce();
  declaredAt = clock.now();
  const { incident, radius } = await incidents.declare(
    { name: 'pay-key-2026', key: apiPem, reason: 'keyCompromise', renewBy: '7d', revoke: 'when-replaced', explanationUrl: 'https://pki.example.test/incidents/pay-key-2026' },
    'cli:test',
  );
  t.match(incident, { affected: 1, blockedKeys: 1, revoke: 'when-replaced', drill: false, selection: { kind: 'key' } });
  t.equal(incident.renewBy.getTime(), declaredAt.getTime() + 7 * DAY);
  t.equal(radius.affected, 1);
  const moved = await renewalInfo(api.der!);
  t.ok(new Date(moved.body.suggestedWindow.start) <= clock.now(), 'the window has begun');
  t.ok(new Date(moved.body.suggestedWindow.end) <= new Date(declaredAt.getTime() + 3.5 * DAY + 1000), 'and ends half way to the deadline');
  t.equal(moved.body.explanationURL, 'https://pki.example.test/incidents/pay-key-2026');
  const untouched = await renewalInfo(dbCert.der!);
  t.ok(new Date(untouched.body.suggestedWindow.start) > clock.now(), 'a certificate the incident does not cover keeps its window');
  t.equal(untouched.body.explanationURL, undefined);
  const again = await incidents.declare({ name: 'pay-key-2026', select: 'group=hr', reason: 'superseded', renewBy: '1d' }, 'cli:test').catch((e: unknown) => e);
  t.ok(isCaError(again, 'conflict'), 'a second declaration with the same name');
  t.match((again as Error).message, /an incident named "pay-key-2026" already exists \(declared .* by cli:test\); nothing was declared/);
});

await t.test('fail/a renewal presenting the blocked key: badPublicKey naming the incident, counted; the order stays ready', async (t) => {
  const { order: placed, location } = await order(payments, 'api.pay.internal', certIdOf(api.der!));
  const blocked = await finalize(payments, placed, (await keyAndCsr('api.pay.internal', apiKey.keyFile)).csr);
  t.equal(blocked.status, 400);
  t.match(blocked.body, { type: 'urn:ietf:params:acme:error:badPublicKey', detail: /blocked by incident "pay-key-2026"/ });
  t.equal((await post(payments, location, '')).body.status, 'ready');
  const status = await incidents.status('pay-key-2026');
  t.equal(status.totals.blocked, 1, 'counted as a blocked renewal');
  // The renewal, now with a new key: issued with `replaces`, and the old certificate revoked once replaced.
  const renewed = await finalize(payments, placed, (await keyAndCsr('api.pay.internal')).csr);
  t.equal(renewed.status, 200, JSON.stringify(renewed.body));
  const record = await chancery.services.certificates.findBySerial(hexSerial(renewed.der!));
  t.equal(record?.replacesSerial, hexSerial(api.der!));
  await settle();
});

await t.test('ok/replaced, then revoked: openssl ocsp says revoked, the CRL lists it, status counts it', async (t) => {
  t.match(await ocsp(api.der!), /leaf\.pem: revoked[\s\S]*Reason: keyCompromise[\s\S]*Response verify OK/);
  t.match(await crlText(), new RegExp(`Serial Number: 0*${hexSerial(api.der!).replace(/^0+/, '').toUpperCase()}`));
  const status = await incidents.status('pay-key-2026');
  t.match(status.totals, { affected: 1, replaced: 1, revoked: 1, blocked: 1, outstanding: 0 });
  t.match(status.byGroup, [{ group: 'payments', owners: ['pki-payments@example.test'], replaced: 1, revoked: 1, blocked: 1 }]);
  t.match(status.revocation, { planned: 1, revoked: 1, running: false });
  t.ok(status.series.points.length >= 1);
  t.match(status.series.points.at(-1), { replaced: 1, revoked: 1, blocked: 1 }, 'the time series ends where the totals are');
  t.ok(status.replacedWithin.all !== undefined);
  t.match(await ocsp(dbCert.der!), /leaf\.pem: good/, 'the other payments certificate is untouched');
});

await t.test('fail/the blocked key as an ACME account key: refused naming the incident, and counted', async (t) => {
  const pem = await readFile(apiKey.keyFile, 'utf8');
  const jwk = createPublicKey(pem).export({ format: 'jwk' }) as Record<string, string>;
  const publicJwk = { kty: jwk.kty!, crv: jwk.crv!, x: jwk.x!, y: jwk.y! };
  const key: TestKey = { alg: 'ES256', privateKey: await importPKCS8(pem, 'ES256'), publicJwk, thumbprint: await calculateJwkThumbprint(publicJwk as JWK, 'sha256') };
  const refused = await newAccount('payments', key);
  t.equal(refused.status, 400);
  t.match(refused.body, { type: 'urn:ietf:params:acme:error:badPublicKey', detail: /JWS account key is blocked by incident "pay-key-2026"/ });
  const { rows } = await chancery.db.query<{ kind: string }>(`SELECT kind FROM incident_blocks ORDER BY at`);
  t.same(rows.map((r) => r.kind), ['csr', 'account-key']);
});

await t.test('ok/a drill revokes nothing and reports the replacement curve', async (t) => {
  const { incident } = await incidents.declare({ name: 'hr-drill', select: { group: 'hr' }, reason: 'superseded', renewBy: '2d', revoke: 'now', drill: true }, 'cli:test');
  t.match(incident, { drill: true, affected: 1, blockedKeys: 0 });
  await settle();
  t.ok(new Date((await renewalInfo(people.der!)).body.suggestedWindow.start) <= clock.now(), 'renewalInfo moves in a drill too');
  clock.advance(10 * 60_000);
  client.forgetNonce();
  const renewed = await finalize(hr, (await order(hr, 'people.hr.internal', certIdOf(people.der!))).order, (await keyAndCsr('people.hr.internal')).csr);
  t.equal(renewed.status, 200);
  await settle();
  const status = await incidents.status('hr-drill');
  t.match(status.totals, { affected: 1, replaced: 1, revoked: 0, outstanding: 0 });
  t.same(status.revocation.runs, [], 'nothing planned, nothing revoked');
  t.equal(status.replacedWithin.all, Math.round((status.series.points.find((p) => p.replaced === 1)!.at.getTime() - incident.declaredAt.getTime()) / 1000));
  t.ok(status.replacedWithin.all! >= 600 && status.replacedWithin.all! <= 660, `replaced about ten minutes in (${status.replacedWithin.all} s)`);
  t.match(await ocsp(people.der!), /leaf\.pem: good/, 'the drill revoked nothing');
});

await t.test('ok/at-deadline: nothing before the deadline, the rest revoked once it passes', async (t) => {
  await incidents.declare({ name: 'db-deadline', serials: `${hexSerial(dbCert.der!)}\n`, reason: 'superseded', renewBy: '1h', revoke: 'at-deadline' }, 'cli:test');
  await settle();
  t.match(await ocsp(dbCert.der!), /leaf\.pem: good/, 'not before the deadline');
  clock.advance(HOUR + 1000);
  client.forgetNonce();
  await settle();
  t.match(await ocsp(dbCert.der!), /leaf\.pem: revoked[\s\S]*Reason: superseded[\s\S]*Response verify OK/, 'revoked at the deadline');
  const status = await incidents.status('db-deadline');
  t.match(status.totals, { affected: 1, revoked: 1, outstanding: 0 });
  t.equal(status.deadlinePassed, true);
});

await t.test('ok/owners are notified through the outbox, every step is audited, closing ends the incident', async (t) => {
  const events = await chancery.db.query<{ serial: string; body: string; deliveries: number }>(
    `SELECT e.serial, e.body, (SELECT count(*)::int FROM notification_deliveries d WHERE d.event_id = e.id) AS deliveries
     FROM notification_events e WHERE e.type = 'incident-declared' ORDER BY e.serial`,
  );
  const forApi = events.rows.find((row) => row.serial === hexSerial(api.der!));
  t.match(JSON.parse(forApi!.body), { type: 'incident-declared', incident: { name: 'pay-key-2026', reason: 'keyCompromise' }, group: { name: 'payments', owners: ['pki-payments@example.test'] } });
  t.equal(forApi!.deliveries, 1, "one delivery, to the payments group's webhook");
  const closed = await incidents.close('pay-key-2026', 'cli:test');
  t.ok(closed.closedAt);
  const again = await incidents.close('pay-key-2026', 'cli:test').catch((e: unknown) => e);
  t.ok(isCaError(again, 'conflict'));
  const unknown = await incidents.close('no-such-incident', 'cli:test').catch((e: unknown) => e);
  t.ok(isCaError(unknown, 'notFound'));
  await incidents.close('hr-drill', 'cli:test');
  const { rows } = await chancery.db.query<{ action: string; n: number }>(
    `SELECT action, count(*)::int AS n FROM audit_entries WHERE action LIKE 'incident.%' OR action LIKE 'revocation.%' OR action = 'certificate.revoke-batch' GROUP BY action ORDER BY action`,
  );
  t.same(Object.fromEntries(rows.map((r) => [r.action, r.n])), {
    'certificate.revoke-batch': 2,
    'incident.close': 2,
    'incident.declare': 3,
    'incident.refuse-account-key': 1,
    'incident.refuse-certificate-key': 1,
    'revocation.bulk-finish': 2,
    'revocation.bulk-plan': 2,
  });
  t.ok(dir);
});
