import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { toPem } from '../../../src/core/pem.js';
import { freePort, runCli, startChancery } from '../../helpers/chancery-process.js';
import { applyGroups, issue } from '../../helpers/inventory-fixtures.js';
import { requireOpenssl } from '../../helpers/openssl.js';
import { composeForTest } from '../../helpers/runtime.js';

/**
 * `chancery incident ...` as an operator runs it, against a running server (through its admin socket):
 * preview by filter and by key file (the blast radius, with owners), bad input refused precisely — a
 * serials file's bad line by its number, an unknown group, an empty selection, a deadline in the past, a
 * name taken — changing nothing, a declaration with `--revoke now` that waits for its revocation, status
 * counting it, list, close.
 */
requireOpenssl();
const PASSPHRASE = 'test-passphrase-0123456789';
const { chancery, config, dir } = await composeForTest({ env: { CHANCERY_KEY_PASSPHRASE: PASSPHRASE }, listen: false });
await applyGroups(chancery, [
  { name: 'payments', contacts: ['pki-payments@example.test'] },
  { name: 'hr', contacts: [] },
]);
const pay = [];
for (const name of ['api', 'db', 'web']) pay.push(await issue(chancery, { group: 'payments', names: [`${name}.pay.internal`] }));
const people = await issue(chancery, { group: 'hr', names: ['people.hr.internal'] });
const keyFile = join(dir, 'api.pem');
await writeFile(keyFile, toPem(pay[0]!.der));
const badSerials = join(dir, 'bad-serials.txt');
await writeFile(badSerials, `# from the forensic report\n${people.serial}\n\n  zz:not:hex  \n`);
// The embedded database serves one process: this one lets go before the server starts.
await chancery.close();

const env = {
  CHANCERY_DATA_DIR: config.dataDir,
  CHANCERY_KEY_PASSPHRASE: PASSPHRASE,
  CHANCERY_LOG_LEVEL: 'warn',
  CHANCERY_ACME_LISTEN: `127.0.0.1:${await freePort()}`,
  CHANCERY_PUBLIC_LISTEN: `127.0.0.1:${await freePort()}`,
};
const server = await startChancery('serve', env, 120_000);
t.teardown(() => server.stop());
const incident = (args: string[]): ReturnType<typeof runCli> => runCli(['incident', ...args], env);

await t.test('ok/preview by filter and by key file: the blast radius with owners, nothing changes', async (t) => {
  const byGroup = await incident(['preview', '--select', 'group=payments']);
  t.equal(byGroup.code, 0, byGroup.stderr);
  t.match(byGroup.stdout, /affected: 3 valid certificates/);
  t.match(byGroup.stdout, /payments\s+3\s+pki-payments@example\.test/);
  t.match(byGroup.stdout, /no issuance quotas or rate limits/);
  const byKey = await incident(['preview', '--key-file', keyFile]);
  t.equal(byKey.code, 0, byKey.stderr);
  t.match(byKey.stdout, /affected: 1 valid certificates/);
  t.match(byKey.stdout, /api\.pay\.internal/);
  t.equal((await incident(['list'])).stdout, '', 'no incident');
});

await t.test('fail/bad input: a precise error each, exit 1, nothing declared', async (t) => {
  const common = ['--reason', 'keyCompromise', '--renew-by', '7d'];
  const cases: [string, string[], RegExp][] = [
    ['a serials file with a bad line', ['declare', 'bad-1', '--serials-file', badSerials, ...common], new RegExp(`${badSerials.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} line 4: "zz:not:hex" is not a serial number`)],
    ['an unknown group', ['declare', 'bad-2', '--select', 'group=finance', ...common], /select: parameter "group": no group "finance" \(groups: default, hr, payments\)/],
    ['an empty selection', ['declare', 'bad-3', '--select', 'suffix=.nowhere.internal', ...common], /the selection matches no valid certificate/],
    ['--renew-by in the past', ['declare', 'bad-4', '--select', 'group=payments', '--reason', 'superseded', '--renew-by', '2020-01-01'], /renewBy: 2020-01-01T00:00:00.000Z is not in the future/],
    ['a file that is not there', ['declare', 'bad-5', '--serials-file', join(dir, 'missing.txt'), ...common], /--serials-file .*missing\.txt: cannot read it \(ENOENT\)/],
    ['two selections', ['preview', '--select', 'group=hr', '--key-file', keyFile], /give one of --select, --serials-file and --key-file/],
  ];
  for (const [what, args, message] of cases) {
    const result = await incident(args);
    t.equal(result.code, 1, `${what}: exit 1`);
    t.match(result.stderr, message, what);
  }
  t.equal((await incident(['list'])).stdout, '', 'nothing was declared');
});

await t.test('ok/declare --revoke now waits for its revocation; status counts it; a second declaration of the name is refused', async (t) => {
  const declared = await incident(['declare', 'pay-2026', '--select', 'group=payments', '--reason', 'superseded', '--renew-by', '7d', '--revoke', 'now', '--explanation-url', 'https://pki.example.test/pay-2026']);
  t.equal(declared.code, 0, declared.stderr);
  t.match(declared.stdout, /declared incident pay-2026 \(superseded\): 3 certificates/);
  t.match(declared.stdout, /revocation rv_\S+ \(incident pay-2026 \(all affected, at once\)\): done, 3 of 3 revoked, CRLs published/);
  const status = await incident(['status', 'pay-2026']);
  t.equal(status.code, 0, status.stderr);
  t.match(status.stdout, /affected 3\s+replaced 0\s+revoked 3\s+blocked renewals 0\s+outstanding 0/);
  t.match(status.stdout, /payments\s+affected 3 .* owners pki-payments@example\.test/);
  t.match(status.stdout, /within 3600 s of the declaration/);
  const json = JSON.parse((await incident(['status', 'pay-2026', '--json'])).stdout) as { totals: { revoked: number }; series: { points: unknown[] } };
  t.equal(json.totals.revoked, 3);
  t.ok(json.series.points.length > 0);
  const again = await incident(['declare', 'pay-2026', '--select', 'group=hr', '--reason', 'superseded', '--renew-by', '7d']);
  t.equal(again.code, 1);
  t.match(again.stderr, /an incident named "pay-2026" already exists \(declared .* by cli:\S+\); nothing was declared/);
  const outstanding = await incident(['certificates', 'pay-2026', '--state', 'revoked']);
  t.equal(outstanding.stdout.trim().split('\n').length, 3);
});

await t.test('ok/list and close', async (t) => {
  t.match((await incident(['list'])).stdout, /^pay-2026  open  superseded  revoke now/);
  const closed = await incident(['close', 'pay-2026']);
  t.equal(closed.code, 0, closed.stderr);
  t.match(closed.stdout, /closed incident pay-2026/);
  t.match((await incident(['close', 'pay-2026'])).stderr, /already closed/);
  t.match((await incident(['status', 'nope'])).stderr, /no incident named "nope"/);
});
