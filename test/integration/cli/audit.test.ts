import { generateKeyPairSync } from 'node:crypto';
import { copyFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { localOperator } from '../../../src/core/audit.js';
import { openDatabase } from '../../../src/db/open-database.js';
import { runCli } from '../../helpers/chancery-process.js';
import { composeForTest } from '../../helpers/runtime.js';

/**
 * `chancery audit verify` and `chancery audit export` as an operator runs them, in their own process on the
 * installation's data directory (PGlite): an intact log passes (entries not yet sealed are counted, not
 * failed); a tampered one fails with exit 1 naming the first bad entry; --expect-head compares a checkpoint
 * an auditor kept; the export is JSON lines with each entry's chain position and hashes; `eab create` and
 * `revoke` are recorded as the operator running them (cli:<OS user>).
 */
const PASSPHRASE = 'test-passphrase-0123456789';
const { chancery, config } = await composeForTest({ env: { CHANCERY_KEY_PASSPHRASE: PASSPHRASE }, listen: false });
const spki = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'der' });
const leaf = await chancery.services.issuance.issueForKey(spki, [{ type: 'dns', value: 'leaf.example.internal' }]);
await chancery.services.audit.seal();
await chancery.services.audit.checkpoint();
// The CLI is another process on the same PGlite data directory: this one lets go of it first.
await chancery.close();

const env = { CHANCERY_DATA_DIR: config.dataDir, CHANCERY_KEY_PASSPHRASE: PASSPHRASE, CHANCERY_LOG_LEVEL: 'warn' };
const audit = (args: string[]): ReturnType<typeof runCli> => runCli(['audit', ...args], env);
const checkpointsFile = join(config.dataDir, 'audit', 'checkpoints.jsonl');

async function sql(statement: string, params: unknown[] = []): Promise<void> {
  const db = await openDatabase({ url: config.database.url, dataDir: config.dataDir });
  try {
    await db.query(statement, params);
  } finally {
    await db.close();
  }
}

await t.test('ok/eab create and revoke by the CLI are the operator\'s; verify passes, counting what waits to be sealed', async (t) => {
  const created = await runCli(['eab', 'create'], env);
  t.equal(created.code, 0, created.stderr);
  const revoked = await runCli(['revoke', '--serial', leaf.serial, '--reason', 'superseded'], env);
  t.equal(revoked.code, 0, revoked.stderr);
  const verify = await audit(['verify']);
  t.equal(verify.code, 0, verify.stderr);
  t.match(verify.stdout, /chain: 4 entries sealed \(head 4: [0-9a-f]{64}\), 2 waiting to be sealed/);
  t.match(verify.stdout, /kept outside the database: .*checkpoints\.jsonl \(position 4\)/);
  t.match(verify.stdout, /OK: the audit log is intact/);
});

await t.test('ok/export: JSON lines oldest first, with chain positions and hashes once sealed', async (t) => {
  const result = await audit(['export', '--since', '2000-01-01']);
  t.equal(result.code, 0, result.stderr);
  const lines = result.stdout.trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
  t.same(
    lines.map((l) => l.action),
    ['ca.create', 'ocsp-responder.issue', 'certificate.issue', 'audit-key.create', 'eab.create', 'certificate.revoke'],
    'oldest first',
  );
  const byAction = new Map(lines.map((l) => [l.action, l]));
  t.equal(byAction.get('ca.create')?.actor, localOperator(), 'the ceremony: whoever ran it');
  t.equal(byAction.get('eab.create')?.actor, localOperator(), 'chancery eab create: the operator');
  t.equal(byAction.get('certificate.revoke')?.actor, localOperator(), 'chancery revoke: the operator');
  t.same(byAction.get('certificate.revoke')?.details, { reason: 'superseded' });
  t.match(byAction.get('certificate.issue'), { subject: `certificate:${leaf.serial}`, seq: 3, prevHash: /^[0-9a-f]{64}$/, hash: /^[0-9a-f]{64}$/ });
  t.equal(byAction.get('eab.create')?.seq, undefined, 'not sealed yet: no position');
  const none = await audit(['export', '--since', '2999-01-01']);
  t.equal(none.code, 0);
  t.equal(none.stdout, '', 'nothing since then');
  const filtered = await audit(['export', '--since', '2000-01-01', '--action', 'certificate.issue']);
  t.equal(filtered.stdout.trim().split('\n').length, 1);
});

await t.test('fail/an edited entry: exit 1 naming the first bad entry', async (t) => {
  await sql(`UPDATE audit_entries SET actor = 'cli:mallory' WHERE action = 'certificate.issue'`);
  const result = await audit(['verify']);
  t.equal(result.code, 1);
  t.match(result.stderr, /audit log verification FAILED: first bad entry at position 3 \(entry \d+\): entry \d+ at position 3 was altered/);
  t.match(result.stdout, /FAILED: 1 problem/);
  await sql(`UPDATE audit_entries SET actor = 'system:chancery' WHERE action = 'certificate.issue'`);
  t.equal((await audit(['verify'])).code, 0, 'restored: passes again');
});

await t.test('fail/--expect-head: the latest checkpoint deleted from the database and from its file', async (t) => {
  const kept = join(config.dataDir, 'kept-checkpoints.jsonl');
  await copyFile(checkpointsFile, kept);
  await sql('DELETE FROM audit_checkpoints');
  await writeFile(checkpointsFile, '');
  const unchecked = await audit(['verify']);
  t.equal(unchecked.code, 0, 'without a copy nothing tells (hence copies elsewhere)');
  const result = await audit(['verify', '--expect-head', kept]);
  t.equal(result.code, 1);
  t.match(result.stderr, /first bad entry at position 1 \(entry \d+\): the checkpoint at position 4 kept in .*kept-checkpoints\.jsonl is not in the database/);
});

await t.test('fail/bad arguments are refused by name', async (t) => {
  const cases: [string[], RegExp][] = [
    [[], /usage: chancery audit verify/],
    [['rewrite'], /unknown subcommand "rewrite"/],
    [['export'], /--since is required/],
    [['export', '--since', 'yesterday'], /--since "yesterday" is not an ISO 8601 date/],
    [['verify', '--expect-head', join(config.dataDir, 'missing.jsonl')], /missing\.jsonl holds no checkpoint/],
  ];
  await writeFile(join(config.dataDir, 'bad.jsonl'), '{"seq": "x"}\n');
  cases.push([['verify', '--expect-head', join(config.dataDir, 'bad.jsonl')], /bad\.jsonl:1: not an audit checkpoint/]);
  for (const [args, message] of cases) {
    const result = await audit(args);
    t.equal(result.code, 1, args.join(' '));
    t.match(result.stderr, message);
  }
});
