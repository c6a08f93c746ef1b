import { generateKeyPairSync } from 'node:crypto';
import t from 'tap';
import { runCli } from '../../helpers/chancery-process.js';
import { composeForTest } from '../../helpers/runtime.js';

/**
 * `chancery certs search|count|counts|export` as an operator runs them, in their own process on the
 * installation's data directory (PGlite, no server running): the grammar's names as flags, the same
 * problems naming the parameter, and an export to standard output with formula cells defused.
 */
const PASSPHRASE = 'test-passphrase-0123456789';
const { chancery, config } = await composeForTest({ env: { CHANCERY_KEY_PASSPHRASE: PASSPHRASE }, listen: false });
const issue = async (name: string, labels: Record<string, string>): Promise<string> => {
  const spki = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'der' });
  return (await chancery.services.issuance.issueForKey(spki, [{ type: 'dns', value: name }], { metadata: { group: 'default', labels } })).serial;
};
const pay = await issue('api.pay.internal', { env: 'prod', note: '+SUM(1,2)' });
const web = await issue('www.web.internal', { env: 'dev' });
// The CLI is another process on the same PGlite data directory: this one lets go of it first.
await chancery.close();

const env = { CHANCERY_DATA_DIR: config.dataDir, CHANCERY_KEY_PASSPHRASE: PASSPHRASE, CHANCERY_LOG_LEVEL: 'warn' };
const certs = (...args: string[]): ReturnType<typeof runCli> => runCli(['certs', ...args], env);

await t.test('ok/search with the grammar as flags', async (t) => {
  const found = await certs('search', '--suffix', '.pay.internal', '--label', 'env:prod', '--json');
  t.equal(found.code, 0, found.stderr);
  t.same(found.stdout.trim().split('\n').map((line) => (JSON.parse(line) as { serial: string }).serial), [pay]);
  const all = await certs('search', '--suffix', '.internal', '--sort', 'notAfter', '--limit', '1', '--all');
  t.equal(all.code, 0, all.stderr);
  t.same(all.stdout.trim().split('\n').map((line) => line.split(' ')[0]).sort(), [pay, web].sort(), 'every page');
  const count = await certs('count', '--label', 'env:dev');
  t.equal(count.stdout.trim(), '1');
  const counts = await certs('counts');
  t.match(counts.stdout, /^default\t2\t0\t0\t/m);
});

await t.test('fail/a bad flag or value is named', async (t) => {
  const unknown = await certs('search', '--colour', 'red');
  t.not(unknown.code, 0);
  t.match(unknown.stderr, /colour/);
  const bad = await certs('search', '--status', 'gone');
  t.not(bad.code, 0);
  t.match(bad.stderr, /parameter "status"/);
  const format = await certs('export', '--format', 'xlsx');
  t.match(format.stderr, /--format must be one of csv, jsonl/);
});

await t.test('ok/export streams CSV and JSON lines to standard output', async (t) => {
  const csv = await certs('export', '--format', 'csv', '--sort', 'notAfter');
  t.equal(csv.code, 0, csv.stderr);
  const lines = csv.stdout.split('\r\n');
  t.match(lines[0], /^serial,status,names,group,labels,/);
  t.same(lines.slice(1).filter((line) => line !== '').map((line) => line.split(',')[0]).filter((serial) => serial === pay || serial === web).sort(), [pay, web].sort());
  t.match(csv.stdout, new RegExp(`^${pay},valid,api\\.pay\\.internal,default,"env=prod;note=\\+SUM\\(1,2\\)",`, 'm'));
  const jsonl = await certs('export', '--format', 'jsonl', '--label', 'env:prod');
  t.same(jsonl.stdout.trim().split('\n').map((line) => (JSON.parse(line) as { serial: string }).serial), [pay]);
});
