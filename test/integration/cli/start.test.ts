import { existsSync, statSync } from 'node:fs';
import https from 'node:https';
import { createServer } from 'node:net';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { fromPem } from '../../../src/core/pem.js';
import { freePort, runCli, startChancery } from '../../helpers/chancery-process.js';
import { openssl, requireOpenssl } from '../../helpers/openssl.js';

/**
 * `npm start` on a fresh data dir: PGlite + software keys, a CA created and served; a second start reuses
 * it; `chancery init` refuses to overwrite it; a bad setting stops start-up before anything is written.
 */
requireOpenssl();

/** GET over HTTPS trusting only `ca` (node's fetch cannot take a private CA without a dispatcher). */
function httpsGetJson(url: string, ca: string): Promise<{ status: number; body: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    https
      .get(url, { ca }, (response) => {
        let text = '';
        response.on('data', (chunk: Buffer) => (text += chunk.toString()));
        response.on('end', () => resolve({ status: response.statusCode ?? 0, body: JSON.parse(text) as Record<string, unknown> }));
      })
      .on('error', reject);
  });
}
const dataDir = join(await mkdtemp(join(tmpdir(), 'chancery-start-')), 'data');
const env = {
  CHANCERY_DATA_DIR: dataDir,
  CHANCERY_PUBLIC_LISTEN: '127.0.0.1:0',
  CHANCERY_ACME_LISTEN: `127.0.0.1:${await freePort()}`,
  CHANCERY_LOG_LEVEL: 'warn',
};

let firstRoot = '';

await t.test('ok/first start creates the CA in the data dir and serves it', async (t) => {
  const server = await startChancery('start', env);
  t.teardown(() => server.stop());
  const rootPem = join(dataDir, 'ca', 'root.pem');
  const chainPem = join(dataDir, 'ca', 'chain.pem');
  t.match(server.output(), new RegExp(`root certificate \\(trust this\\): ${rootPem}`));
  firstRoot = await readFile(rootPem, 'utf8');
  t.equal(fromPem(firstRoot).length, 1, 'root.pem holds the root only');
  t.equal(fromPem(await readFile(chainPem, 'utf8')).length, 1, 'chain.pem holds the intermediate only');
  const chain = await openssl(['verify', '-CAfile', rootPem, chainPem]);
  t.equal(chain.code, 0, chain.stderr);
  t.ok(existsSync(join(dataDir, 'db')), 'PGlite data in data/db');
  t.equal(statSync(join(dataDir, 'keys', 'passphrase')).mode & 0o777, 0o600, 'generated passphrase file is 0600');
  t.match(server.output(), /passphrase kept in the data directory/, 'loud warning about the generated passphrase');

  const live = await fetch(`${server.publicAddress}/livez`);
  t.equal(live.status, 200);
  const ready = await fetch(`${server.publicAddress}/readyz`);
  t.equal(ready.status, 200);
  const served = await fetch(`${server.publicAddress}/ca/root.pem`);
  t.equal(await served.text(), firstRoot, 'public listener serves the same root');
  t.match(server.acmeDirectory, /^https:\/\/127\.0\.0\.1:\d+\/acme\/directory$/, 'banner prints the directory URL');
  const directory = await httpsGetJson(server.acmeDirectory, firstRoot);
  t.equal(directory.status, 200, 'ACME directory over HTTPS with a certificate chaining to root.pem');
  t.match(directory.body, { newNonce: /\/acme\/new-nonce$/, newAccount: /\/acme\/new-account$/, renewalInfo: /\/acme\/renewal-info$/ });
  t.equal(await server.stop(), 0, 'SIGTERM shuts down cleanly');
});

await t.test('ok/second start reuses the CA', async (t) => {
  const server = await startChancery('start', env);
  t.teardown(() => server.stop());
  t.equal(await readFile(join(dataDir, 'ca', 'root.pem'), 'utf8'), firstRoot, 'same root as before');
  t.notMatch(server.output(), /created a new CA/);
  const intermediateId = /issuer: (i[0-9a-f]+)/.exec(server.output())?.[1];
  t.ok(intermediateId, 'banner names the issuing intermediate');
  const der = await fetch(`${server.publicAddress}/ca/${intermediateId}.der`);
  t.equal(der.status, 200);
  t.equal(der.headers.get('content-type'), 'application/pkix-cert');
  t.equal((await fetch(`${server.publicAddress}/ca/nope.der`)).status, 404);
});

await t.test('fail/a port in use stops start-up cleanly instead of hanging', async (t) => {
  const blocker = createServer();
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => blocker.close(() => resolve())));
  const { port } = blocker.address() as { port: number };
  const result = await runCli(['serve'], { ...env, CHANCERY_ACME_LISTEN: `127.0.0.1:${port}` });
  t.equal(result.code, 1, 'exits (timers, LISTEN connection and database closed)');
  t.match(result.stderr, /EADDRINUSE/);
});

await t.test('fail/init refuses to overwrite an existing CA', async (t) => {
  const result = await runCli(['init'], env);
  t.equal(result.code, 1);
  t.match(result.stderr, /a CA already exists \(root r[0-9a-f]+, .*\); refusing to overwrite it/);
  t.equal(await readFile(join(dataDir, 'ca', 'root.pem'), 'utf8'), firstRoot, 'root untouched');
});

await t.test('fail/serve without a CA tells the operator to run init', async (t) => {
  const emptyDir = join(await mkdtemp(join(tmpdir(), 'chancery-empty-')), 'data');
  const result = await runCli(['serve'], { ...env, CHANCERY_DATA_DIR: emptyDir });
  t.equal(result.code, 1);
  t.match(result.stderr, /no CA in this database: run `chancery init` first/);
});

await t.test('fail/a bad setting stops start-up before anything is written', async (t) => {
  const freshDir = join(await mkdtemp(join(tmpdir(), 'chancery-bad-')), 'data');
  const result = await runCli(['start'], { ...env, CHANCERY_DATA_DIR: freshDir, CHANCERY_CA_ROOT_ALGORITHM: 'dsa-1024' });
  t.equal(result.code, 2);
  t.match(result.stderr, /ca\.rootAlgorithm \(CHANCERY_CA_ROOT_ALGORITHM\): must be one of .*; got "dsa-1024"/);
  t.notOk(existsSync(freshDir), 'data dir not created');
});

await t.test('fail/wrong passphrase for existing keys is a clear error', async (t) => {
  const result = await runCli(['serve'], { ...env, CHANCERY_KEY_PASSPHRASE: 'a-wrong-passphrase-of-enough-length' });
  t.equal(result.code, 1);
  t.match(result.stderr, /cannot decrypt key "intermediate-[0-9a-f]+": wrong CHANCERY_KEY_PASSPHRASE\?/);
  t.notMatch(result.stderr, /a-wrong-passphrase/);
});
