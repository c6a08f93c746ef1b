import { generateKeyPairSync } from 'node:crypto';
import t from 'tap';
import { DAY, FakeClock, HOUR, MINUTE } from '../../../src/core/clock.js';
import { KeyInventory } from '../../../src/inventory/key-inventory.js';
import { parseCertificate } from '../../../src/ca/certificate-parser.js';
import { SubjectKeyRepository } from '../../../src/db/repositories/subject-key-repository.js';
import { CSR_KEY_POLICY } from '../../../src/policy/key-policy.js';
import { InjectClient, makeAccountKey } from '../../helpers/acme-jws.js';
import { applyGroups, issue, newAccount } from '../../helpers/inventory-fixtures.js';
import { composeForTest } from '../../helpers/runtime.js';

/**
 * The key inventory: subject keys by SPKI SHA-256, kept by the inventory.keys job; one key certified for
 * several accounts or groups; keys weaker than today's key policy; accounts not seen for N days, their
 * sightings noted by the ACME layer on every authenticated request and written at most once an hour.
 */
const clock = new FakeClock('2026-04-01T00:00:00Z');
const { chancery } = await composeForTest({ clock });
t.teardown(() => chancery.close());
const { keys, activity } = chancery.services.inventory;
const sync = async (): Promise<void> => {
  // The walk leaves the last two minutes for the next pass (a late commit is never skipped).
  clock.advance(3 * MINUTE);
  await chancery.services.jobs.runNow('inventory.keys');
};

await applyGroups(chancery, [{ name: 'payments' }, { name: 'ops' }]);
const alice = await newAccount(chancery, 'payments');
const bob = await newAccount(chancery, 'ops');
const carol = await newAccount(chancery, 'ops');
const spki = (key: ReturnType<typeof generateKeyPairSync>['publicKey']): Uint8Array => key.export({ type: 'spki', format: 'der' });
const copied = spki(generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey);
const reused = spki(generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey);
const teamKey = spki(generateKeyPairSync('ec', { namedCurve: 'P-384' }).publicKey);
const rsa = spki(generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey);

const copiedAtAlice = await issue(chancery, { account: alice, names: ['a.pay.test'], spki: copied, lifetimeMs: 30 * DAY });
const copiedAtBob = await issue(chancery, { account: bob, names: ['b.ops.test'], spki: copied, lifetimeMs: 30 * DAY });
await issue(chancery, { account: alice, names: ['reuse.pay.test'], spki: reused, lifetimeMs: 30 * DAY });
await issue(chancery, { account: alice, names: ['reuse.pay.test'], spki: reused, lifetimeMs: 30 * DAY });
const teamAtBob = await issue(chancery, { account: bob, names: ['team1.ops.test'], spki: teamKey, lifetimeMs: 30 * DAY });
await issue(chancery, { account: carol, names: ['team2.ops.test'], spki: teamKey, lifetimeMs: 30 * DAY });
const rsaCertificate = await issue(chancery, { account: carol, names: ['rsa.ops.test'], spki: rsa, lifetimeMs: 10 * DAY });
await sync();

await t.test('ok/a key certified for two accounts in two groups is shared; one account renewing with its key is not', async (t) => {
  const shared = await keys.shared('all', {}, { limit: 100 });
  t.equal(copiedAtAlice.spkiSha256, copiedAtBob.spkiSha256);
  t.same(shared.items.map((e) => e.key.spkiSha256).sort(), [copiedAtAlice.spkiSha256, teamAtBob.spkiSha256].sort(), 'the copied key and the team key, not the reused one');
  const copiedEntry = shared.items.find((e) => e.key.spkiSha256 === copiedAtAlice.spkiSha256)!;
  t.same([copiedEntry.key.sharedAccounts, copiedEntry.key.sharedGroups, copiedEntry.accounts, copiedEntry.groups, copiedEntry.certificateCount], [true, true, 2, 2, 2]);
  t.same(copiedEntry.certificates.map((c) => c.serial).sort(), [copiedAtAlice.serial, copiedAtBob.serial].sort());
  t.equal(copiedEntry.key.kind, 'ec/P-256');
});

await t.test('ok/a group-admin sees sharing among its own groups only', async (t) => {
  const ops = await keys.shared(['ops'], {}, { limit: 100 });
  t.same(ops.items.map((e) => e.key.spkiSha256), [teamAtBob.spkiSha256], "two ops accounts sharing a key; the key also at payments is not ops' to see");
  t.ok(ops.items[0]!.certificates.every((c) => c.group === 'ops'));
  t.same((await keys.shared(['payments'], {}, { limit: 100 })).items, []);
});

await t.test("ok/weak keys: judged by today's policy", async (t) => {
  t.same((await keys.weak('all', {}, { limit: 100 })).items, [], 'nothing issued is weaker than the policy it was issued under');
  const stricter = new KeyInventory({
    store: new SubjectKeyRepository(chancery.db),
    clock,
    spkiOf: (der) => parseCertificate(der).spki,
    policy: { ...CSR_KEY_POLICY, minRsaBits: 3072, allowedCurves: ['P-384'] },
  });
  const weak = await stricter.weak('all', {}, { limit: 100 });
  const byKind = new Map<string, string[]>();
  for (const e of weak.items) byKind.set(e.key.kind, [...(byKind.get(e.key.kind) ?? []), e.weakness]);
  t.same([...byKind.keys()].sort(), ['ec/P-256', 'rsa/2048/65537']);
  t.match(byKind.get('rsa/2048/65537')![0], /2048 bits is too small: at least 3072/);
  t.match(byKind.get('ec/P-256')![0], /curve P-256; certificate keys must use P-384/);
  t.equal(weak.items.filter((e) => e.key.kind === 'ec/P-256').length, 2, 'the copied and the reused P-256 keys');
  const paged = await stricter.weak('all', {}, { limit: 1 });
  t.equal(paged.items.length, 1);
  const rest = await stricter.weak('all', {}, { limit: 100, cursor: paged.nextCursor! });
  t.equal(rest.items.length, 2, 'keyset pages');
  clock.advance(11 * DAY);
  t.notOk((await stricter.weak('all', {}, { limit: 100 })).items.some((e) => e.key.spkiSha256 === rsaCertificate.spkiSha256), 'a key whose certificates all expired is no longer in use');
  clock.advance(-11 * DAY);
});

await t.test('ok/the walk is idempotent and never skips a late commit', async (t) => {
  const before = (await chancery.db.query('SELECT spki_sha256, kind, shared_accounts, shared_groups, last_not_after FROM subject_keys ORDER BY 1')).rows;
  await chancery.db.query(`DELETE FROM inventory_cursors`);
  await sync();
  t.same((await chancery.db.query('SELECT spki_sha256, kind, shared_accounts, shared_groups, last_not_after FROM subject_keys ORDER BY 1')).rows, before, 'read again from the start: nothing changes');
  const fresh = await issue(chancery, { account: carol, names: ['late.ops.test'], lifetimeMs: 30 * DAY });
  await chancery.services.jobs.runNow('inventory.keys');
  const cursor = (await chancery.db.query<{ serial: string }>('SELECT serial FROM inventory_cursors')).rows[0]!;
  t.not(cursor.serial, fresh.serial, 'a certificate younger than two minutes is read, but the cursor stays behind it');
  t.equal((await chancery.db.query('SELECT 1 FROM subject_keys WHERE spki_sha256 = $1', [fresh.spkiSha256])).rowCount, 1, 'and its key is known at once');
});

await t.test('ok/last seen: noted by the ACME layer, written at most once an hour', async (t) => {
  const app = (await chancery.apps()).acme;
  const client = new InjectClient(app, chancery.acmeUrl);
  const key = await makeAccountKey('ES256');
  const created = await client.post('/acme/new-account', key, { payload: { termsOfServiceAgreed: true } });
  const kid = String(created.headers.location);
  const id = kid.split('/').pop()!;
  const lastSeen = async (): Promise<Date | null> => (await chancery.db.query<{ at: Date | null }>('SELECT last_seen_at AS at FROM accounts WHERE id = $1', [id])).rows[0]!.at;
  const seenAt = clock.now();
  for (let i = 0; i < 5; i += 1) t.equal((await client.post(kid, key, { kid, payload: '' })).statusCode, 200);
  t.equal(await lastSeen(), null, 'nothing written per request');
  await activity.flush();
  t.same(await lastSeen(), seenAt, 'written by the flush: the first sighting');
  clock.advance(30 * MINUTE);
  client.forgetNonce();
  await client.post(kid, key, { kid, payload: '' });
  await activity.flush();
  t.same(await lastSeen(), seenAt, 'seen again within the hour: not written');
  clock.advance(31 * MINUTE);
  client.forgetNonce();
  await client.post(kid, key, { kid, payload: '' });
  await activity.flush();
  t.same(await lastSeen(), new Date(seenAt.getTime() + 61 * MINUTE), 'an hour later: written again');
});

await t.test('ok/accounts not seen for N days', async (t) => {
  activity.seen(alice.id);
  await activity.flush();
  clock.advance(31 * DAY);
  activity.seen(bob.id);
  await activity.flush();
  const idle = await activity.notSeen('all', { days: 30 }, { limit: 100 });
  const ids = idle.items.map((i) => i.account.id);
  t.ok(ids.includes(alice.id), 'seen 31 days ago');
  t.ok(ids.includes(carol.id), 'never seen: counted from its creation');
  t.notOk(ids.includes(bob.id), 'seen just now');
  t.same(idle.items.find((i) => i.account.id === alice.id)?.lastSeenAt, new Date(clock.now().getTime() - 31 * DAY));
  t.same((await activity.notSeen(['ops'], { days: 30 }, { limit: 100 })).items.map((i) => i.account.id), [carol.id], 'a group-admin sees its groups only');
  clock.advance(-31 * DAY + HOUR);
});

await t.test('ok/the reports over the admin API', async (t) => {
  const admin = await chancery.localAdmin();
  for (const url of ['/admin/v1/reports/keys/shared', '/admin/v1/reports/keys/weak', '/admin/v1/reports/accounts/inactive?days=1']) {
    const response = await admin.inject({ method: 'GET', url, headers: { 'x-chancery-user': 'test' } });
    t.equal(response.statusCode, 200, `${url}: ${response.body.slice(0, 200)}`);
  }
  const bad = await admin.inject({ method: 'GET', url: '/admin/v1/reports/accounts/inactive?days=-1', headers: { 'x-chancery-user': 'test' } });
  t.equal(bad.statusCode, 400);
});
