import t from 'tap';
import { DAY, FakeClock, HOUR } from '../../../src/core/clock.js';
import type { IssuedCertificate } from '../../../src/core/certificate.js';
import { composeForTest } from '../../helpers/runtime.js';
import { applyGroups, issue, newAccount } from '../../helpers/inventory-fixtures.js';

/**
 * Renewal health with a fake clock: each condition (renewal-overdue, expiring within N days, expired
 * unreplaced), the accounts behind them with when each was last seen, by group with its owners; what renews
 * on time — a 30-day certificate renewed at its window, an RFC 9773 replacement, a one-day certificate renewed
 * every twelve hours — never appears; a late renewal leaves the report at once; group scope.
 */
const clock = new FakeClock('2026-03-01T00:00:00Z');
const { chancery } = await composeForTest({ clock });
t.teardown(() => chancery.close());
const { health, activity } = chancery.services.inventory;
const detect = async (): Promise<void> => void (await chancery.services.jobs.runNow('notifications.detect'));

await applyGroups(chancery, [
  { name: 'payments', contacts: ['mailto:pay-pki@example.test', 'mailto:oncall@example.test'] },
  { name: 'ops', contacts: ['mailto:ops@example.test'] },
]);
const alice = await newAccount(chancery, 'payments');
const bob = await newAccount(chancery, 'ops');
const carol = await newAccount(chancery, 'ops');

// Day 0.
const overdue = await issue(chancery, { account: alice, names: ['overdue.pay.test'], lifetimeMs: 30 * DAY });
let renewedOnTime = await issue(chancery, { account: alice, names: ['renewed.pay.test'], lifetimeMs: 30 * DAY });
const expires = await issue(chancery, { account: bob, names: ['expires.ops.test'], lifetimeMs: 10 * DAY });
const replaced = await issue(chancery, { account: bob, names: ['old-name.ops.test'], lifetimeMs: 30 * DAY });
let shortLived = await issue(chancery, { account: carol, names: ['short.ops.test'], lifetimeMs: DAY });
const everyShortLived: IssuedCertificate[] = [shortLived];
activity.seen(alice.id);
await activity.flush();
const aliceSeen = clock.now();

// Day 0 -> 21, in twelve-hour steps, the detector running at each: the one-day certificate renews at half
// its life every time; the 30-day one and the replaced one renew at day 12, inside their windows.
for (let step = 1; step <= 42; step += 1) {
  clock.advance(12 * HOUR);
  shortLived = await issue(chancery, { account: carol, names: ['short.ops.test'], lifetimeMs: DAY });
  everyShortLived.push(shortLived);
  if (step === 24) {
    renewedOnTime = await issue(chancery, { account: alice, names: ['renewed.pay.test'], lifetimeMs: 30 * DAY });
    await issue(chancery, { account: bob, names: ['new-name.ops.test'], lifetimeMs: 30 * DAY, replaces: replaced });
  }
  await detect();
}

const serials = (items: { certificate: { serial: string } }[]): string[] => items.map((i) => i.certificate.serial);

await t.test('ok/renewal-overdue: past the end of the ARI window without a successor', async (t) => {
  const page = await health.certificates('all', 'renewal-overdue', {}, { limit: 100 });
  t.same(serials(page.items), [overdue.serial], 'only the certificate nobody renewed');
  const entry = page.items[0]!;
  const third = (overdue.notAfter.getTime() - overdue.notBefore.getTime()) / 3;
  t.same(entry.renewalDueAt, new Date(overdue.notBefore.getTime() + 2 * third), 'due at the end of the ARI window (RFC 9773 §4.2, src/ra/renewal-info.ts)');
  t.same(entry.accountLastSeenAt, aliceSeen, 'with when its account was last seen');
});

await t.test('ok/expiring within N days: the overdue ones whose notAfter is that close', async (t) => {
  t.same(serials((await health.certificates('all', 'expiring', { days: 14 }, { limit: 100 })).items), [overdue.serial], '9 days left: within 14');
  t.same(serials((await health.certificates('all', 'expiring', { days: 7 }, { limit: 100 })).items), [], '9 days left: not within 7');
});

await t.test('ok/expired-unreplaced: expired in the last N days without a successor', async (t) => {
  t.same(serials((await health.certificates('all', 'expired-unreplaced', { days: 14 }, { limit: 100 })).items), [expires.serial]);
  t.same(serials((await health.certificates('all', 'expired-unreplaced', { days: 7 }, { limit: 100 })).items), [], 'expired 11 days ago: not in the last 7');
  t.same(serials((await health.certificates('all', 'renewal-overdue', {}, { limit: 100 })).items).includes(expires.serial), false, 'an expired certificate is no longer "overdue"');
});

await t.test('ok/what renews on time never appears, however short its life', async (t) => {
  const listed = new Set<string>();
  for (const condition of ['renewal-overdue', 'expiring', 'expired-unreplaced'] as const) {
    for (const item of (await health.certificates('all', condition, { days: 3650 }, { limit: 500 })).items) listed.add(item.certificate.serial);
  }
  t.equal(everyShortLived.length, 43);
  t.same(everyShortLived.filter((c) => listed.has(c.serial)), [], 'no one-day certificate of the chain, not even expired ones');
  t.notOk(listed.has(renewedOnTime.serial) || listed.has(replaced.serial), 'renewed in the window, by lineage or by replaces');
  const events = await chancery.db.query<{ serial: string; type: string }>('SELECT serial, type FROM notification_events ORDER BY serial, type');
  t.same(
    events.rows.map((r) => `${r.serial === overdue.serial ? 'overdue' : r.serial === expires.serial ? 'expires' : r.serial}:${r.type}`).sort(),
    ['expires:expired-unreplaced', 'expires:expiring-soon', 'expires:renewal-overdue', 'overdue:expiring-soon', 'overdue:renewal-overdue'],
    'one event per certificate per condition, and none for what renewed on time',
  );
});

await t.test('ok/by group with owners, and the accounts behind the problems', async (t) => {
  const summary = await health.summary('all', { days: 14 });
  t.same(summary.groups, [
    { group: 'ops', owners: ['mailto:ops@example.test'], renewalOverdue: 0, expiring: 0, expiredUnreplaced: 1, accounts: 1 },
    { group: 'payments', owners: ['mailto:pay-pki@example.test', 'mailto:oncall@example.test'], renewalOverdue: 1, expiring: 1, expiredUnreplaced: 0, accounts: 1 },
  ]);
  t.ok(summary.asOf !== undefined && summary.asOf.getTime() <= clock.now().getTime(), 'says how far the detector has looked');
  const accounts = await health.accounts('all', { days: 14 }, { limit: 100 });
  const byId = new Map(accounts.items.map((a) => [a.accountId, a]));
  t.same(byId.get(alice.id)?.lastSeenAt, aliceSeen, "alice's last sighting");
  t.equal(byId.get(bob.id)?.lastSeenAt, undefined, 'bob was never seen');
  t.equal(byId.get(bob.id)?.group, 'ops');
  t.equal(byId.has(carol.id), false, 'carol renews on time');
});

await t.test('ok/a group-admin reads its own groups only', async (t) => {
  const summary = await health.summary(['ops'], { days: 14 });
  t.same(summary.groups.map((g) => g.group), ['ops']);
  t.same((await health.certificates(['ops'], 'renewal-overdue', {}, { limit: 100 })).items, []);
  t.same((await health.certificates(['ops'], 'renewal-overdue', { group: 'payments' }, { limit: 100 })).items, [], "another group's answers empty");
  t.same((await health.accounts(['ops'], { days: 14 }, { limit: 100 })).items.map((a) => a.accountId), [bob.id]);
});

await t.test('ok/the admin API and pages', async (t) => {
  const admin = await chancery.localAdmin();
  const get = async (url: string): Promise<{ status: number; body: Record<string, unknown> }> => {
    const response = await admin.inject({ method: 'GET', url, headers: { 'x-chancery-user': 'test' } });
    return { status: response.statusCode, body: JSON.parse(response.body) as Record<string, unknown> };
  };
  const summary = await get('/admin/v1/reports/health?days=14');
  t.equal(summary.status, 200, JSON.stringify(summary.body));
  t.same((summary.body.groups as { group: string; renewalOverdue: number }[]).map((g) => [g.group, g.renewalOverdue]), [['ops', 0], ['payments', 1]]);
  const first = await get('/admin/v1/reports/health/certificates?condition=renewal-overdue&limit=1');
  t.equal(first.status, 200);
  t.equal((first.body.items as unknown[]).length, 1);
  t.equal(first.body.next, undefined, 'one certificate: one page');
  const bad = await get('/admin/v1/reports/health/certificates?condition=late');
  t.equal(bad.status, 400, 'an unknown condition is refused');
  t.match(String(bad.body.detail), /condition/);
  const badDays = await get('/admin/v1/reports/health?days=0');
  t.equal(badDays.status, 400);
});

await t.test('ok/a late renewal leaves the report at once', async (t) => {
  clock.advance(DAY);
  await issue(chancery, { account: alice, names: ['overdue.pay.test'], lifetimeMs: 30 * DAY });
  t.same((await health.certificates('all', 'renewal-overdue', {}, { limit: 100 })).items, [], 'renewed: no longer overdue');
  t.same((await health.summary('all', { days: 14 })).groups.map((g) => g.group), ['ops']);
});
