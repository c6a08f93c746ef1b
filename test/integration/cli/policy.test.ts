import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { parse } from 'yaml';
import { runCli } from '../../helpers/chancery-process.js';

/**
 * Policy as code through the real CLI (each command a process on one embedded database):
 * `chancery policy export`, `chancery policy apply FILE [--dry-run]` — a good file prints its diff and is
 * applied; a bad one is reported with the line and the rule and changes nothing; a dry run prints the diff
 * and writes nothing — and `chancery eab create --group NAME --label key=value` for an existing group only.
 */
const dir = await mkdtemp(join(tmpdir(), 'chancery-policy-cli-'));
t.teardown(() => rm(dir, { recursive: true, force: true }));
const env = { CHANCERY_DATA_DIR: join(dir, 'data'), CHANCERY_KEY_PASSPHRASE: 'policy-cli-test-passphrase-0123', CHANCERY_LOG_LEVEL: 'silent' };
const cli = (...args: string[]) => runCli(args, env);
const file = async (name: string, text: string): Promise<string> => {
  const path = join(dir, name);
  await writeFile(path, text);
  return path;
};
const exported = async (): Promise<string> => {
  const result = await cli('policy', 'export');
  if (result.code !== 0) throw new Error(`policy export: ${result.code} ${result.stderr}`);
  return result.stdout;
};

const GOOD = `version: 1
groups:
  default: {}
  payments:
    contacts: [pki-payments@example.com]
    identifiers:
      - suffix: pay.internal
      - cidr: 10.20.0.0/16
        shared: true
    keyTypes: [ecdsa]
    maxValidity: 7d
    profiles: [tls-server, mtls]
    labels: { owner: payments, environment: production }
  hr:
    identifiers:
      - suffix: hr.internal
`;

await t.test('ok/export of a new installation: the default group alone', async (t) => {
  const text = await exported();
  t.match(text, /^# Chancery policy/, 'a commented header');
  t.same(parse(text), { version: 1, groups: { default: {} } });
});

let applied = '';
await t.test('ok/a good file: the diff printed, applied, exported back', async (t) => {
  const result = await cli('policy', 'apply', await file('good.yaml', GOOD));
  t.equal(result.code, 0, result.stderr);
  t.match(result.stdout, /\+ group hr \(created\)\n {4}identifiers: \[\{"suffix":"hr.internal"\}\]/);
  t.match(result.stdout, /\+ group payments \(created\)[\s\S]*maxValidity: "7d"/);
  t.match(result.stdout, /Applied: 2 groups changed\./);
  applied = await exported();
  t.same(parse(applied), parse(GOOD), 'export gives back what was applied');
});

await t.test('fail/a bad file names the line and the rule of each problem, and changes nothing', async (t) => {
  const cases: [string, string, RegExp[]][] = [
    [
      'form: a typo and a network with host bits',
      GOOD.replace('    maxValidity: 7d', '    maxValidty: 7d').replace('10.20.0.0/16', '10.20.0.1/16'),
      [/bad-1.yaml:8: groups\.payments\.identifiers\[1\]\.cidr: cidr "10.20.0.1\/16": .*host bits set.* \(rule identifiers\)/, /bad-1.yaml:11: groups\.payments\.maxValidty: unknown key "maxValidty" .* \(rule unknown-key\)/],
    ],
    [
      'set: overlapping scopes and a limit wider than the configuration',
      GOOD.replace('      - suffix: hr.internal', '      - suffix: db.pay.internal').replace('maxValidity: 7d', 'maxValidity: 400d'),
      [
        /bad-2.yaml:11: groups\.payments\.maxValidity: maxValidity 400d is longer than the longest profile validity, \d+d: a group may only narrow the global limits in configuration \(rule narrowing-only\)/,
        /bad-2.yaml:16: groups\.hr\.identifiers\[0\]: suffix db.pay.internal of group "hr" overlaps suffix pay.internal of group "payments".* \(rule scope-overlap\)/,
      ],
    ],
    ['YAML: a key given twice', GOOD.replace('    keyTypes: [ecdsa]', '    keyTypes: [ecdsa]\n    keyTypes: [rsa]'), [/bad-3.yaml:11: Map keys must be unique \(rule yaml\)/]],
  ];
  for (const [i, [name, text, expected]] of cases.entries()) {
    const result = await cli('policy', 'apply', await file(`bad-${i + 1}.yaml`, text));
    t.equal(result.code, 1, `${name}: exit 1`);
    const lines = result.stderr.trim().split('\n');
    for (const [j, pattern] of expected.entries()) t.match(lines[j], pattern, name);
    t.match(lines.at(-1), new RegExp(`chancery: .*bad-${i + 1}.yaml: ${expected.length} problems?; nothing was changed`), name);
    t.equal(result.stdout, '', `${name}: no diff`);
  }
});

await t.test('ok/--dry-run prints the diff and writes nothing', async (t) => {
  const changed = await file('narrower.yaml', GOOD.replace('maxValidity: 7d', 'maxValidity: 1d').replace('  hr:\n    identifiers:\n      - suffix: hr.internal\n', ''));
  const result = await cli('policy', 'apply', changed, '--dry-run');
  t.equal(result.code, 0, result.stderr);
  t.match(result.stdout, /- group hr \(removed\)/);
  t.match(result.stdout, /~ group payments\n {4}maxValidity: "7d" -> "1d"/);
  t.match(result.stdout, /Dry run: 2 groups would change; nothing was written\./);
  t.equal(await exported(), applied, 'neither the bad files nor the dry run changed anything');
});

await t.test('eab create --group --label: an existing group only; bad input refused and nothing stored', async (t) => {
  const made = await cli('eab', 'create', '--group', 'payments', '--label', 'application=ledger', '--label', 'environment=staging');
  t.equal(made.code, 0, made.stderr);
  t.match(made.stdout, /^kid: +kid-\S+$/m);
  t.match(made.stdout, /^group: +payments$/m);
  t.match(made.stdout, /^label: +application=ledger$/m);
  t.match(made.stdout, /^label: +environment=staging$/m);
  const refusals: [string, string[], RegExp][] = [
    ['fail/a group that does not exist', ['--group', 'marketing'], /chancery: (no group "marketing"|group "marketing" does not exist)/],
    ['fail/a bad label key', ['--group', 'payments', '--label', 'Owner=x'], /--label "Owner=x": label key "Owner" must start with a lower-case letter/],
    ['fail/a label given twice', ['--group', 'payments', '--label', 'a=1', '--label', 'a=2'], /--label a is given twice/],
  ];
  for (const [name, args, expected] of refusals) {
    const result = await cli('eab', 'create', ...args);
    t.equal(result.code, 1, name);
    t.match(result.stderr, expected, name);
    t.equal(result.stdout, '', `${name}: no credential printed`);
  }
  const inUse = await cli('policy', 'apply', await file('without-payments.yaml', 'groups:\n  default: {}\n  hr:\n    identifiers:\n      - suffix: hr.internal\n'));
  t.equal(inUse.code, 1);
  // One credential: the refused ones stored nothing.
  t.match(inUse.stderr, /without-payments.yaml:1: groups: group "payments" is left out but 0 account\(s\) and 1 EAB credential\(s\) belong to it: keep it in the file \(rule group-in-use\)/);
});
