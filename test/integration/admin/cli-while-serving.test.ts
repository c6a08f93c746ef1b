import { stat, mkdtemp, writeFile } from 'node:fs/promises';
import { request } from 'node:https';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { freePort, runCli, startChancery } from '../../helpers/chancery-process.js';
import { parseEabOutput } from '../../helpers/interop.js';

/**
 * The CLI works while `chancery start` serves on the embedded database (PGlite serves one process): every
 * command that reads or changes data goes through the admin socket in the data directory as the local
 * operator (cli:<user>), in another process, and the server sees the change at once.
 */
const dir = await mkdtemp(join(tmpdir(), 'chancery-cli-admin-'));
const dataDir = join(dir, 'data');
const env = {
  CHANCERY_DATA_DIR: dataDir,
  CHANCERY_KEY_PASSPHRASE: 'cli-admin-test-passphrase-0123456789',
  CHANCERY_PUBLIC_LISTEN: '127.0.0.1:0',
  CHANCERY_ACME_LISTEN: `127.0.0.1:${await freePort()}`,
  CHANCERY_ACME_TLS: 'false',
  CHANCERY_ADMIN_LISTEN: '127.0.0.1:0',
  CHANCERY_LOG_LEVEL: 'warn',
};
const server = await startChancery('start', env, 90_000);
t.teardown(() => server.stop());
const adminUrl = /admin API:\s+(https:\/\/\S+)\/admin\/v1/.exec(server.output())?.[1];
const cli = async (args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> => {
  const result = await runCli(args, env);
  if (result.code !== 0) t.comment(`chancery ${args.join(' ')}: ${result.stderr}`);
  return result;
};

await t.test('ok/the socket is the data directory’s, mode 0600', async (t) => {
  const info = await stat(join(dataDir, 'admin.sock'));
  t.ok(info.isSocket());
  t.equal(info.mode & 0o777, 0o600);
  t.ok(adminUrl, `the banner names the admin listener (${adminUrl})`);
});

await t.test('ok/eab create while the server runs', async (t) => {
  const created = await cli(['eab', 'create']);
  t.equal(created.code, 0);
  const { kid, hmacKey } = parseEabOutput(created.stdout);
  t.match(hmacKey, /^[A-Za-z0-9_-]{43}$/);
  const listed = await cli(['eab', 'list']);
  t.match(listed.stdout, new RegExp(`${kid}\\s+unused\\s+default`));
  t.notMatch(listed.stdout, hmacKey, 'the key is never listed');
});

await t.test('ok/policy apply while the server runs, then an EAB key for the new group', async (t) => {
  const file = join(dir, 'policy.yaml');
  await writeFile(file, ['version: 1', 'groups:', '  default: {}', '  payments:', '    contacts: [pki-payments@example.test]', '    wildcards: false', ''].join('\n'));
  const dry = await cli(['policy', 'apply', file, '--dry-run']);
  t.equal(dry.code, 0);
  t.match(dry.stdout, /\+ group payments \(created\)[\s\S]*Dry run: 1 group would change/);
  const applied = await cli(['policy', 'apply', file]);
  t.equal(applied.code, 0);
  t.match(applied.stdout, /Applied: 1 group changed/);
  const exported = await cli(['policy', 'export']);
  t.match(exported.stdout, /payments:\n\s+contacts:/);
  const eab = await cli(['eab', 'create', '--group', 'payments']);
  t.equal(eab.code, 0);
  t.match(eab.stdout, /group:\s+payments/);
  const bad = await runCli(['policy', 'apply', '/nonexistent/policy.yaml'], env);
  t.equal(bad.code, 1);
});

await t.test('ok/an admin token made by the CLI works on the HTTPS listener; its creator is cli:<user>', async (t) => {
  const made = await cli(['admin', 'token', 'create', '--role', 'auditor', '--expires', '30d']);
  t.equal(made.code, 0);
  const token = /^token:\s+(chy_\S+)/m.exec(made.stdout)?.[1];
  t.ok(token, 'the token is printed once');
  const root = readFileSync(join(dataDir, 'ca', 'root.pem'), 'utf8');
  const me = await new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = request(`${adminUrl}/admin/v1/me`, { ca: root, headers: { authorization: `Bearer ${token}` } }, (res) => {
      let body = '';
      res.on('data', (chunk: Buffer) => (body += chunk.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
  t.equal(me.status, 200, 'the admin listener’s certificate verifies against the root');
  t.match(JSON.parse(me.body), { role: 'auditor', via: 'token' });
  const listed = await cli(['admin', 'token', 'list']);
  t.match(listed.stdout, /active\s+auditor\s+-\s+expires \S+\s+last used \S+\s+by cli:/);
  t.notMatch(listed.stdout, token!, 'never the token itself');
});
