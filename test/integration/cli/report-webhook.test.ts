import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import t from 'tap';
import { compose } from '../../../src/compose.js';
import { DAY, FakeClock, MINUTE } from '../../../src/core/clock.js';
import { loadConfig } from '../../../src/config/load-config.js';
import { runCli } from '../../helpers/chancery-process.js';
import { applyGroups, issue, newAccount } from '../../helpers/inventory-fixtures.js';

/**
 * `chancery report health` and `chancery webhook add|list|remove` through the real CLI, each a process on one
 * embedded database (as the README shows them): the report by group with its owners and the certificate
 * nobody renewed; a webhook's secret printed once and never listed.
 */
const dir = await mkdtemp(join(tmpdir(), 'chancery-report-cli-'));
t.teardown(() => rm(dir, { recursive: true, force: true }));
const env = {
  CHANCERY_DATA_DIR: join(dir, 'data'),
  CHANCERY_KEY_PASSPHRASE: 'report-cli-test-passphrase-0123',
  CHANCERY_LOG_LEVEL: 'silent',
  CHANCERY_ACME_TLS: 'false',
  CHANCERY_NOTIFICATIONS_ALLOW_HTTP: 'true',
};
const cli = (...args: string[]) => runCli(args, env);

// An estate whose one certificate was issued 25 days ago for 30 days and never renewed; the detector ran.
const issuedAt = Date.now() - 25 * DAY;
const clock = new FakeClock(new Date(issuedAt));
const setup = await compose(loadConfig({ env, cwd: dir }), { clock, ca: 'create-if-missing', logger: pino({ level: 'silent' }), listen: false });
await applyGroups(setup, [{ name: 'payments', contacts: ['mailto:pay-pki@example.test'] }]);
const account = await newAccount(setup, 'payments');
const overdue = await issue(setup, { account, names: ['api.pay.test'], lifetimeMs: 30 * DAY });
clock.set(new Date(Date.now() - MINUTE));
await setup.services.jobs.runNow('notifications.detect');
await setup.close();

await t.test('ok/report health: by group with its owners, the certificate nobody renewed', async (t) => {
  const result = await cli('report', 'health');
  t.equal(result.code, 0, result.stderr);
  t.match(result.stdout, /^Renewal health at .* \(expiring: within 14 days; expired: in the last 14 days\), detector as of /);
  t.match(result.stdout, /group payments {2}owners: mailto:pay-pki@example.test\n {2}renewal overdue 1 \(expiring within 14 days: 1\), expired unreplaced 0, accounts 1/);
  t.match(result.stdout, new RegExp(`OVERDUE {2}${overdue.serial} {2}notAfter .* {2}dns:api.pay.test {2}account ${account.id} last seen never`));
  t.match(result.stdout, new RegExp(`accounts whose certificates went overdue:\n {2}${account.id} {2}payments {2}last seen never {2}certificates 1`));
  const bad = await cli('report', 'health', '--days', 'soon');
  t.equal(bad.code, 1);
  t.match(bad.stderr, /--days "soon" must be a number of days/);
});

await t.test('ok/webhook add prints the secret once; list never shows it', async (t) => {
  const added = await cli('webhook', 'add', '--url', 'http://127.0.0.1:9/hook', '--group', 'payments', '--events', 'renewal-overdue,expired-unreplaced');
  t.equal(added.code, 0, added.stderr);
  const secret = /secret \(shown only now; verify Chancery-Signature with it\): (whsec_\S+)/.exec(added.stdout)?.[1];
  t.ok(secret, added.stdout);
  const id = /^webhook (wh_\S+) -> http:\/\/127\.0\.0\.1:9\/hook \(payments: renewal-overdue, expired-unreplaced\)/.exec(added.stdout)?.[1];
  t.ok(id);
  const listed = await cli('webhook', 'list');
  t.equal(listed.code, 0, listed.stderr);
  t.match(listed.stdout, new RegExp(`${id} {2}payments {2}http://127.0.0.1:9/hook`));
  t.notOk(listed.stdout.includes(secret!), 'not listed');
  const removed = await cli('webhook', 'remove', id!);
  t.equal(removed.code, 0, removed.stderr);
  const https = await runCli(['webhook', 'add', '--url', 'http://127.0.0.1:9/hook'], { ...env, CHANCERY_NOTIFICATIONS_ALLOW_HTTP: 'false' });
  t.equal(https.code, 1);
  t.match(https.stderr, /url: must be https/);
});
