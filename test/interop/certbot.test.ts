import { mkdir, readFile, realpath } from 'node:fs/promises';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import {
  certificateFileText,
  describeResult,
  requireTools,
  runCommand,
  startChalltestsrv,
  startInteropChancery,
  verifyChain,
  type CommandResult,
} from '../helpers/interop.js';

/**
 * certbot 2.x against a running Chancery: certonly --standalone answering http-01 on a non-80 port, renew
 * --force-renewal, revoke --reason keycompromise. The validator resolves web.test through
 * pebble-challtestsrv (every name -> 127.0.0.1) and connects to CHANCERY_HTTP01_PORT, where certbot's
 * standalone server listens. Each issued chain is judged by openssl against our root.
 */
const tools = requireTools(t, ['certbot', 'pebble-challtestsrv', 'openssl']);
if (tools) {
  const dns = await startChalltestsrv(tools['pebble-challtestsrv'], t);
  const chancery = await startInteropChancery(t, { dnsResolver: dns.resolver });
  const base = join(chancery.workDir, 'certbot');
  const dirs = { config: join(base, 'config'), work: join(base, 'work'), logs: join(base, 'logs') };
  for (const dir of Object.values(dirs)) await mkdir(dir, { recursive: true });
  const name = 'web.test';
  const live = join(dirs.config, 'live', name);

  const common = [
    '--non-interactive',
    '--config-dir', dirs.config,
    '--work-dir', dirs.work,
    '--logs-dir', dirs.logs,
    '--server', chancery.directory,
    '-v',
  ];
  // requests (certbot's HTTP library) trusts exactly this bundle: our root, which the ACME listener chains to.
  const env = { REQUESTS_CA_BUNDLE: chancery.rootPem };

  async function certbot(args: string[]): Promise<CommandResult> {
    return runCommand(tools!.certbot, [...args, ...common], { env, timeoutMs: 120_000 });
  }

  /** certbot's own log holds every ACME request and response: the useful part of a failure report. */
  async function failureReport(result: CommandResult): Promise<string> {
    const log = await readFile(join(dirs.logs, 'letsencrypt.log'), 'utf8').catch(() => '(no letsencrypt.log)');
    return `${describeResult(result)}\n--- letsencrypt.log (tail) ---\n${log.split('\n').slice(-250).join('\n')}\n--- chancery output (tail) ---\n${chancery.output().slice(-4000)}`;
  }

  async function expectSuccess(tt: Test, result: CommandResult, what: string): Promise<boolean> {
    if (result.code === 0 && !result.timedOut) {
      tt.pass(what);
      return true;
    }
    tt.fail(what, { diagnostic: true, report: await failureReport(result) });
    return false;
  }

  async function expectChainVerifies(tt: Test): Promise<string | undefined> {
    const cert = await realpath(join(live, 'cert.pem'));
    const verdict = await verifyChain(chancery.rootPem, join(live, 'chain.pem'), cert);
    tt.ok(verdict.ok, 'openssl verifies cert.pem with chain.pem against our root', { output: verdict.output });
    const text = await certificateFileText(cert);
    tt.match(text, /DNS:web\.test/, 'the certificate names web.test');
    // certbot 2.1 sends no profile (draft-ietf-acme-profiles): it gets the default, tls-server.
    tt.match(text, /X509v3 Extended Key Usage:\s*\n\s*TLS Web Server Authentication\s*\n/, 'the tls-server profile: serverAuth only');
    return /Serial Number:\s*\n?\s*([0-9a-f:]+)/i.exec(text)?.[1];
  }

  let firstSerial: string | undefined;
  let issued = false;

  await t.test('certonly --standalone (http-01 on a non-80 port)', async (tt) => {
    const result = await certbot([
      'certonly',
      '--standalone',
      '--preferred-challenges', 'http',
      '--http-01-port', String(chancery.http01Port),
      '--http-01-address', '127.0.0.1',
      '--agree-tos',
      '--email', 'x@example.internal',
      '-d', name,
    ]);
    issued = await expectSuccess(tt, result, 'certbot certonly exits 0');
    if (issued) firstSerial = await expectChainVerifies(tt);
  });

  await t.test('renew --force-renewal', { skip: issued ? false : 'no certificate was issued' }, async (tt) => {
    const result = await certbot(['renew', '--force-renewal', '--no-random-sleep-on-renew', '--cert-name', name]);
    if (!(await expectSuccess(tt, result, 'certbot renew --force-renewal exits 0'))) return;
    const serial = await expectChainVerifies(tt);
    tt.ok(serial && firstSerial && serial !== firstSerial, `the renewed certificate is a new one (serial ${String(firstSerial)} -> ${String(serial)})`);
    tt.ok((await realpath(join(live, 'cert.pem'))).endsWith('cert2.pem'), 'live/cert.pem now points at the second version');
  });

  await t.test('revoke --reason keycompromise', { skip: issued ? false : 'no certificate was issued' }, async (tt) => {
    const result = await certbot([
      'revoke',
      '--cert-path', join(live, 'cert.pem'),
      '--reason', 'keycompromise',
      '--no-delete-after-revoke',
    ]);
    await expectSuccess(tt, result, 'certbot revoke exits 0');
    // Revoking the same certificate again must be refused: the server recorded the first revocation.
    const again = await certbot(['revoke', '--cert-path', join(live, 'cert.pem'), '--reason', 'keycompromise', '--no-delete-after-revoke']);
    tt.not(again.code, 0, 'a second revoke of the same certificate is refused');
    // certbot 2.1 on Python 3.11 prints "AttributeError: can't set attribute" here (josepy's immutable
    // acme.messages.Error meets contextlib setting __traceback__); the server's answer is in its log.
    const log = await readFile(join(dirs.logs, 'letsencrypt.log'), 'utf8');
    const lastAnswer = log.slice(log.lastIndexOf('POST /acme/revoke-cert'));
    tt.match(lastAnswer, /urn:ietf:params:acme:error:alreadyRevoked/, 'the server answered alreadyRevoked', { output: describeResult(again) });
  });
}
