import { spawn } from 'node:child_process';
import { connect as tlsConnect } from 'node:tls';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { loadConfig } from '../../../src/config/load-config.js';
import { isCaError } from '../../../src/core/errors.js';
import { renewTls } from '../../../src/http/tls-policy.js';
import { openssl, requireOpenssl, writeTemp } from '../../helpers/openssl.js';
import { composeForTest } from '../../helpers/runtime.js';

/**
 * The ACME listener's TLS policy, judged by `openssl s_client` over loopback: TLS 1.3, and TLS 1.2 only with
 * ECDHE and an AEAD cipher. A client offering only CBC-SHA1, CCM or ARIA suites (which Node's defaults
 * accept) is refused, a good suite is accepted, and the policy survives a certificate renewal.
 */
requireOpenssl();

const { chancery, config } = await composeForTest({ env: { CHANCERY_ACME_TLS: 'true' } });
t.teardown(() => chancery.close());
const acme = (await chancery.apps()).acme;
await acme.listen({ host: '127.0.0.1', port: 0 });
const { port } = acme.server.address() as { port: number };

/** One handshake: s_client exits 0 when it completed, 1 when the server refused; stdin ends at once. */
function handshake(args: string[]): Promise<{ ok: boolean; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-servername', 'localhost', '-brief', ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`s_client ${args.join(' ')} did not finish in 10 s:\n${output}`));
    }, 10_000);
    child.on('error', reject);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ ok: code === 0, output });
    });
    child.stdin.end();
  });
}

// The client is told to offer only the suite under test (@SECLEVEL=0 so it really offers the weak ones):
// whether the handshake completes is the server's decision.
const refused = [
  { name: 'fail/TLS 1.2 ECDHE with CBC and SHA-1 (ECDHE-ECDSA-AES128-SHA)', args: ['-tls1_2', '-cipher', 'ECDHE-ECDSA-AES128-SHA@SECLEVEL=0'] },
  { name: 'fail/TLS 1.2 ECDHE with CBC and SHA-384 (ECDHE-ECDSA-AES256-SHA384)', args: ['-tls1_2', '-cipher', 'ECDHE-ECDSA-AES256-SHA384@SECLEVEL=0'] },
  { name: 'fail/TLS 1.2 CCM (ECDHE-ECDSA-AES128-CCM)', args: ['-tls1_2', '-cipher', 'ECDHE-ECDSA-AES128-CCM@SECLEVEL=0'] },
  { name: 'fail/TLS 1.2 ARIA (ECDHE-ECDSA-ARIA128-GCM-SHA256)', args: ['-tls1_2', '-cipher', 'ECDHE-ECDSA-ARIA128-GCM-SHA256@SECLEVEL=0'] },
  { name: 'fail/TLS 1.1', args: ['-tls1_1', '-cipher', 'DEFAULT@SECLEVEL=0'] },
];
const accepted = [
  { name: 'ok/TLS 1.2 ECDHE-ECDSA-AES128-GCM-SHA256', args: ['-tls1_2', '-cipher', 'ECDHE-ECDSA-AES128-GCM-SHA256'], suite: /Ciphersuite: ECDHE-ECDSA-AES128-GCM-SHA256/ },
  { name: 'ok/TLS 1.2 ECDHE-ECDSA-CHACHA20-POLY1305', args: ['-tls1_2', '-cipher', 'ECDHE-ECDSA-CHACHA20-POLY1305'], suite: /Ciphersuite: ECDHE-ECDSA-CHACHA20-POLY1305/ },
  { name: 'ok/TLS 1.3 TLS_AES_128_GCM_SHA256', args: ['-tls1_3', '-ciphersuites', 'TLS_AES_128_GCM_SHA256'], suite: /Protocol version: TLSv1\.3[\s\S]*Ciphersuite: TLS_AES_128_GCM_SHA256/ },
];

async function checkPolicy(t: Test, what: string): Promise<void> {
  for (const c of refused) {
    const result = await handshake(c.args);
    t.notOk(result.ok, `${c.name} ${what}: refused`, { output: result.output });
  }
  for (const c of accepted) {
    const result = await handshake(c.args);
    t.ok(result.ok, `${c.name} ${what}: accepted`, { output: result.output });
    t.match(result.output, c.suite, `${c.name} ${what}: negotiated`);
  }
}

await t.test('ok/the listener offers TLS 1.3 and TLS 1.2 ECDHE + AEAD only', async (t) => {
  await checkPolicy(t, 'at start');
});

await t.test('ok/a renewed certificate keeps the policy (setSecureContext replaces the whole context)', async (t) => {
  const dir = await writeTemp('placeholder', '');
  const keyFile = join(dir, '..', 'renewed.key');
  const certFile = join(dir, '..', 'renewed.pem');
  const made = await openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', '/CN=renewed.test', '-days', '1', '-keyout', keyFile, '-out', certFile]);
  t.equal(made.code, 0, 'a new key and certificate', { stderr: made.stderr });
  renewTls(acme, config.tls, { key: await readFile(keyFile, 'utf8'), cert: await readFile(certFile, 'utf8') });
  const renewed = await handshake(['-tls1_3']);
  t.match(renewed.output, /CN\s*=\s*renewed\.test/, 'the renewed certificate is served');
  await checkPolicy(t, 'after renewal');
});

await t.test('fail/a request Node cannot read is answered with a problem document over TLS too', async (t) => {
  const response = await new Promise<string>((resolve, reject) => {
    // The listener's certificate is not what is under test here.
    const socket = tlsConnect({ host: '127.0.0.1', port, servername: 'localhost', rejectUnauthorized: false }, () => {
      socket.write(`GET /acme/directory HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`);
    });
    let text = '';
    const timer = setTimeout(() => reject(new Error(`no answer in 5 s: ${text}`)), 5000);
    socket.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')));
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(text);
    });
    socket.on('error', () => undefined);
  });
  t.match(response, /^HTTP\/1\.1 431 /, 'HTTP 431');
  t.match(response, /\r\ncontent-type: application\/problem\+json\r\n/i, 'a problem document');
  t.match(response, /"type":"urn:ietf:params:acme:error:malformed"/);
});

await t.test('config: tls.ciphers may narrow the policy, never widen it', async (t) => {
  const load = (env: Record<string, string>) => loadConfig({ env: { CHANCERY_DATA_DIR: '/tmp/unused', ...env } });
  t.equal(load({ CHANCERY_TLS_CIPHERS: 'TLS_AES_256_GCM_SHA384:ECDHE-ECDSA-AES256-GCM-SHA384' }).tls.ciphers, 'TLS_AES_256_GCM_SHA384:ECDHE-ECDSA-AES256-GCM-SHA384', 'ok/narrowed');
  t.equal(load({ CHANCERY_TLS_MIN_VERSION: 'TLSv1.3', CHANCERY_TLS_CIPHERS: 'TLS_AES_128_GCM_SHA256' }).tls.minVersion, 'TLSv1.3', 'ok/TLS 1.3 only');
  const bad: [string, Record<string, string>, RegExp][] = [
    ['fail/a CBC cipher', { CHANCERY_TLS_CIPHERS: 'TLS_AES_128_GCM_SHA256:ECDHE-ECDSA-AES128-SHA' }, /"ECDHE-ECDSA-AES128-SHA" is not TLS 1\.3 or TLS 1\.2 ECDHE with AEAD/],
    ['fail/an OpenSSL keyword', { CHANCERY_TLS_CIPHERS: 'HIGH:!aNULL' }, /"HIGH", "!aNULL" are not/],
    ['fail/no TLS 1.3 suite', { CHANCERY_TLS_CIPHERS: 'ECDHE-ECDSA-AES128-GCM-SHA256' }, /at least one TLS 1\.3 suite/],
    ['fail/TLS 1.2 allowed without a TLS 1.2 cipher', { CHANCERY_TLS_CIPHERS: 'TLS_AES_128_GCM_SHA256' }, /at least one TLS 1\.2 cipher/],
    ['fail/TLS 1.0', { CHANCERY_TLS_MIN_VERSION: 'TLSv1' }, /tls\.minVersion \(CHANCERY_TLS_MIN_VERSION\): must be one of TLSv1\.2, TLSv1\.3/],
  ];
  for (const [name, env, detail] of bad) {
    try {
      load(env);
      t.fail(`${name}: accepted`);
    } catch (error) {
      t.ok(isCaError(error, 'badConfig'), `${name}: badConfig`);
      t.match((error as Error).message, detail, name);
    }
  }
});
