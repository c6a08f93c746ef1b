import { mkdir, realpath, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import {
  certificateFileText,
  describeResult,
  freePort,
  requireTools,
  startChalltestsrv,
  startInteropChancery,
  verifyChain,
  type CommandResult,
} from '../helpers/interop.js';
import { runInGroup } from '../helpers/process-group.js';
import { startWebroot } from '../helpers/webroot.js';
import { ocspStatus } from '../helpers/ocsp-check.js';

/**
 * dehydrated (the bash ACME client, Debian's dehydrated) against a running Chancery over HTTPS: register,
 * `--cron` for one name (ECDSA P-256) and for two names (RSA), `--cron --force` to renew, `--revoke` signed by
 * the account key (RFC 8555 §7.6). dehydrated 0.7's `--revoke --privkey <certificate key>` cannot work with any
 * RFC 8555 CA: it first asks new-account with onlyReturnExisting under that key, which has no account
 * (§7.3.1: accountDoesNotExist), so revocation by the certificate key is left to lego and acme-client. dehydrated writes http-01 answers into
 * WELLKNOWN and expects a web server to serve them: the test serves that directory on CHANCERY_HTTP01_PORT.
 *
 * Trust: dehydrated talks to the CA through curl, and passes CURL_OPTS to every call; `--cacert root.pem`
 * with an empty `--capath` is curl's own way to trust exactly our root. Its environment is replaced (HOME in
 * the temp dir: no ~/.curlrc; no proxy variables). Names resolve through pebble-challtestsrv to 127.0.0.1;
 * revocations are judged by `openssl ocsp` against Chancery's own responder.
 */
const tools = requireTools(t, ['dehydrated', 'pebble-challtestsrv', 'openssl', 'curl']);
if (tools) {
  const dns = await startChalltestsrv(tools['pebble-challtestsrv'], t);
  const publicPort = await freePort();
  const chancery = await startInteropChancery(t, {
    dnsResolver: dns.resolver,
    // The AIA/CRL URLs in the certificates name this server's own public listener.
    env: { CHANCERY_PUBLIC_LISTEN: `127.0.0.1:${publicPort}`, CHANCERY_PUBLIC_URL: `http://127.0.0.1:${publicPort}` },
  });
  const base = join(chancery.workDir, 'dehydrated');
  const webrootDir = join(base, 'webroot');
  const wellknown = join(webrootDir, '.well-known', 'acme-challenge');
  const emptyCapath = join(base, 'no-other-cas');
  for (const dir of [base, wellknown, emptyCapath]) await mkdir(dir, { recursive: true });
  await startWebroot(chancery.http01Port, webrootDir, t);

  const config = join(base, 'config');
  await writeFile(
    config,
    [
      '# dehydrated configuration for this test: Chancery is the only CA it knows.',
      `CA="${chancery.directory}"`,
      `CURL_OPTS="--cacert ${chancery.rootPem} --capath ${emptyCapath}"`,
      `BASEDIR="${base}"`,
      `WELLKNOWN="${wellknown}"`,
      'CHALLENGETYPE="http-01"',
      'KEY_ALGO=prime256v1',
      '# RSA keys for --algo rsa: 2048 bits (the default 4096 takes seconds to generate, for nothing here).',
      'KEYSIZE=2048',
      "# Renew when fewer than 10 days are left (dehydrated's default, 30, is Chancery's whole default validity).",
      'RENEW_DAYS=10',
      'CONTACT_EMAIL=ops@example.internal',
      'IP_VERSION=4',
      'OCSP_FETCH=no',
      '',
    ].join('\n'),
  );
  const env: Record<string, string> = { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', HOME: base, LANG: 'C' };

  function dehydrated(args: string[]): Promise<CommandResult> {
    return runInGroup(tools!.dehydrated, ['--config', config, ...args], { env, replaceEnv: true, cwd: base, timeoutMs: 60_000 });
  }

  const report = (result: CommandResult): string => `${describeResult(result)}\n--- chancery output (tail) ---\n${chancery.output().slice(-3000)}`;

  async function expectSuccess(tt: Test, result: CommandResult, what: string): Promise<boolean> {
    const ok = result.code === 0 && !result.timedOut;
    tt.ok(ok, what, ok ? {} : { report: report(result) });
    return ok;
  }

  /** dehydrated's files for a certificate (symlinks to the newest version). */
  const files = (name: string) => {
    const dir = join(base, 'certs', name);
    return { cert: join(dir, 'cert.pem'), chain: join(dir, 'chain.pem'), fullchain: join(dir, 'fullchain.pem'), key: join(dir, 'privkey.pem') };
  };

  async function judge(tt: Test, name: string, names: string[]): Promise<string> {
    const f = files(name);
    const verdict = await verifyChain(chancery.rootPem, f.chain, f.cert);
    tt.ok(verdict.ok, 'openssl verifies cert.pem with chain.pem against our root', { output: verdict.output });
    const full = await verifyChain(chancery.rootPem, f.fullchain, f.fullchain);
    tt.ok(full.ok, 'and fullchain.pem on its own', { output: full.output });
    const text = await certificateFileText(f.cert);
    for (const n of names) tt.ok(text.includes(`DNS:${n}`), `the certificate names ${n}`);
    return /Serial Number:\s*\n?\s*([0-9a-f:]+)/i.exec(text)?.[1] ?? '';
  }

  const issued = new Map<string, string>();

  await t.test('--register --accept-terms', async (tt) => {
    await expectSuccess(tt, await dehydrated(['--register', '--accept-terms']), 'dehydrated registers an account');
  });

  await t.test('--cron: one name, ECDSA P-256, http-01', async (tt) => {
    const name = 'dehydrated.test';
    if (!(await expectSuccess(tt, await dehydrated(['--cron', '--domain', name]), 'dehydrated --cron exits 0'))) return;
    const serial = await judge(tt, name, [name]);
    tt.match(await certificateFileText(files(name).cert), /ASN1 OID: prime256v1/, 'an ECDSA P-256 key');
    issued.set(name, serial);
  });

  await t.test('--cron: two names, RSA', async (tt) => {
    const name = 'rsa.dehydrated.test';
    const result = await dehydrated(['--cron', '--domain', name, '--domain', 'www.rsa.dehydrated.test', '--algo', 'rsa']);
    if (!(await expectSuccess(tt, result, 'dehydrated --cron --algo rsa exits 0'))) return;
    const serial = await judge(tt, name, [name, 'www.rsa.dehydrated.test']);
    tt.match(await certificateFileText(files(name).cert), /rsaEncryption/, 'an RSA key');
    issued.set(name, serial);
  });

  await t.test('--cron --force renews', { skip: issued.has('dehydrated.test') ? false : 'nothing issued' }, async (tt) => {
    const name = 'dehydrated.test';
    const before = await realpath(files(name).cert);
    const result = await dehydrated(['--cron', '--force', '--domain', name]);
    if (!(await expectSuccess(tt, result, 'dehydrated --cron --force exits 0'))) return;
    const serial = await judge(tt, name, [name]);
    tt.not(serial, issued.get(name), `a new certificate (serial ${String(issued.get(name))} -> ${serial})`);
    tt.not(await realpath(files(name).cert), before, 'cert.pem points at the new version');
    issued.set(name, serial);
  });

  await t.test('--revoke (signed by the account key)', { skip: issued.has('dehydrated.test') ? false : 'nothing issued' }, async (tt) => {
    const f = files('dehydrated.test');
    // dehydrated renames the revoked file to <file>-revoked: judge it by its real name.
    const cert = await realpath(f.cert);
    const before = await ocspStatus(chancery.rootPem, f.chain, cert);
    tt.equal(before.status, 'good', 'OCSP says good before', { output: before.output });
    if (!(await expectSuccess(tt, await dehydrated(['--revoke', f.cert]), 'dehydrated --revoke exits 0'))) return;
    const revoked = `${cert}-revoked`;
    const after = await ocspStatus(chancery.rootPem, f.chain, revoked);
    tt.equal(after.status, 'revoked', 'OCSP says revoked as soon as dehydrated returns', { output: after.output });
  });
}
