import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import {
  certificateFileText,
  describeResult,
  freePort,
  requireTools,
  runCommand,
  startChalltestsrv,
  startInteropChancery,
  verifyChain,
  waitFor,
} from '../helpers/interop.js';
import { startDaemon, type Daemon } from '../helpers/process-group.js';
import { openssl } from '../helpers/openssl.js';

/**
 * Caddy 2.6 (Debian's caddy) with Chancery as its only ACME CA, the way a user configures it: a Caddyfile
 * with `acme_ca` and `acme_ca_root`, Caddy's HTTP and HTTPS ports on the ports Chancery's validator connects
 * to (CHANCERY_HTTP01_PORT, CHANCERY_TLSALPN01_PORT), so Caddy answers http-01 or tls-alpn-01 by itself.
 * Caddy obtains a certificate and serves the site (curl trusting only root.pem gets it), then renews it.
 *
 * Only loopback: the site name resolves through pebble-challtestsrv (every name -> 127.0.0.1), Caddy binds
 * 127.0.0.1 only (default_bind), has no other issuer (no Let's Encrypt / ZeroSSL fallback: `acme_ca` makes
 * Chancery the one issuer), fetches no OCSP staple (ocsp_stapling off), installs no trust (skip_install_trust),
 * and its admin API is off; HOME and the XDG directories are a temp dir.
 *
 * Renewal: Caddy sends no profile and Chancery's shortest validity is one day (CHANCERY_ISSUANCE_VALIDITY_DAYS),
 * so Caddy is told to treat nearly the whole lifetime as its renewal window (renewal_window_ratio 0.99, JSON
 * only in 2.6: the Caddyfile is adapted, then that one key is added) and to look every few seconds
 * (renew_interval). With one day of validity and Chancery's one-hour backdate (RFC 5280 §4.1.2.5 leaves
 * the clock-skew allowance to the CA), the window of 0.99 × 25 h opened 45 minutes before the certificate was
 * issued, so the first maintenance pass renews it.
 */
const RENEWAL_WINDOW_RATIO = 0.99;
const NAME = 'caddy.test';
const BODY = 'served by Caddy with a certificate from Chancery';
/** The issue's own cap for this file: obtain, serve and renew within 3 minutes. */
const FILE_BUDGET_MS = 180_000;

const tools = requireTools(t, ['caddy', 'pebble-challtestsrv', 'openssl', 'curl']);
if (tools) {
  const started = performance.now();
  const dns = await startChalltestsrv(tools['pebble-challtestsrv'], t);
  const publicPort = await freePort();
  const chancery = await startInteropChancery(t, {
    dnsResolver: dns.resolver,
    env: {
      CHANCERY_ISSUANCE_VALIDITY_DAYS: '1',
      // The AIA/CRL URLs in the certificates name this server's own public listener (loopback).
      CHANCERY_PUBLIC_LISTEN: `127.0.0.1:${publicPort}`,
      CHANCERY_PUBLIC_URL: `http://127.0.0.1:${publicPort}`,
    },
  });
  const home = join(chancery.workDir, 'caddy');
  const dirs = { home, data: join(home, 'data'), config: join(home, 'config'), storage: join(home, 'storage') };
  for (const dir of Object.values(dirs)) await mkdir(dir, { recursive: true });
  // Caddy keeps everything under these; nothing is read from or written to the real HOME.
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: dirs.home,
    XDG_DATA_HOME: dirs.data,
    XDG_CONFIG_HOME: dirs.config,
  };

  const caddyfile = join(home, 'Caddyfile');
  await writeFile(
    caddyfile,
    [
      '{',
      '\tadmin off',
      `\thttp_port ${chancery.http01Port}`,
      `\thttps_port ${chancery.tlsAlpn01Port}`,
      '\tdefault_bind 127.0.0.1',
      `\tacme_ca ${chancery.directory}`,
      `\tacme_ca_root ${chancery.rootPem}`,
      '\temail ops@example.internal',
      '\tskip_install_trust',
      '\tocsp_stapling off',
      '\trenew_interval 3s',
      `\tstorage file_system ${dirs.storage}`,
      '}',
      '',
      `${NAME} {`,
      `\trespond "${BODY}"`,
      '}',
      '',
    ].join('\n'),
  );

  const adapted = await runCommand(tools.caddy, ['adapt', '--config', caddyfile, '--adapter', 'caddyfile'], { env, timeoutMs: 20_000 });
  if (adapted.code !== 0) throw new Error(`caddy adapt failed:\n${describeResult(adapted)}`);
  const config = JSON.parse(adapted.stdout) as {
    apps: { tls: { automation: { policies: { issuers: { module: string; ca?: string }[]; renewal_window_ratio?: number }[] } } };
  };
  const policies = config.apps.tls.automation.policies;
  const issuers = policies.flatMap((p) => p.issuers.map((i) => [i.module, i.ca]));
  for (const policy of policies) policy.renewal_window_ratio = RENEWAL_WINDOW_RATIO;
  const configFile = join(home, 'caddy.json');
  await writeFile(configFile, JSON.stringify(config, null, 2));

  const caddy: Daemon = startDaemon(tools.caddy, ['run', '--config', configFile], { env, cwd: home, replaceEnv: true });
  t.teardown(() => caddy.stop());

  const report = (): string =>
    `--- caddy output (tail) ---\n${caddy.output().slice(-6000)}\n--- chancery output (tail) ---\n${chancery.output().slice(-3000)}`;
  const https = `https://${NAME}:${chancery.tlsAlpn01Port}/`;
  // curl trusts exactly our root and reaches the name on loopback (there is no DNS for it outside the test).
  const curl = () =>
    runCommand(tools.curl, ['-sS', '--max-time', '5', '--cacert', chancery.rootPem, '--resolve', `${NAME}:${chancery.tlsAlpn01Port}:127.0.0.1`, https], { timeoutMs: 10_000 });

  /** The certificate Caddy serves right now for NAME, as PEM, with s_client's verdict against our root. */
  async function served(): Promise<{ pem: string; serial: string; verified: boolean; output: string }> {
    const result = await runCommand(
      tools!.openssl,
      ['s_client', '-connect', `127.0.0.1:${chancery.tlsAlpn01Port}`, '-servername', NAME, '-CAfile', chancery.rootPem, '-showcerts'],
      { input: '', timeoutMs: 10_000 },
    );
    const pem = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(result.stdout)?.[0] ?? '';
    const serial = pem ? ((await openssl(['x509', '-noout', '-serial'], Buffer.from(pem))).stdout.trim().replace(/^serial=/, '')) : '';
    return { pem, serial, verified: /Verify return code: 0 \(ok\)/.test(result.stdout), output: result.stdout + result.stderr };
  }

  let first: { pem: string; serial: string } | undefined;

  await t.test('the adapted Caddyfile names Chancery as the only issuer', async (tt) => {
    tt.same(issuers, [['acme', chancery.directory]], 'one ACME issuer, Chancery: no public CA to fall back to');
  });

  await t.test('Caddy obtains a certificate by itself and serves the site', async (tt: Test) => {
    try {
      await waitFor('Caddy to serve the site with a certificate our root verifies', async () => {
        if (caddy.exited()) throw new Error('caddy exited');
        const result = await curl();
        return result.code === 0 && result.stdout.includes(BODY);
      }, 90_000, 500);
    } catch (error) {
      tt.fail(`curl --cacert root.pem ${https}: ${(error as Error).message}`, { report: report() });
      return;
    }
    tt.pass(`curl trusting only root.pem gets ${https}`);
    const now = await served();
    tt.ok(now.verified, 'openssl s_client verifies the served chain against root.pem', { output: now.output });
    const leaf = join(home, 'served-1.pem');
    await writeFile(leaf, now.pem);
    const text = await certificateFileText(leaf);
    tt.match(text, new RegExp(`DNS:${NAME.replace('.', '\\.')}`), `the certificate names ${NAME}`);
    tt.ok(now.serial, `serial ${now.serial}`);
    // The renewal below relies on this arithmetic (see the top of the file); say so if validity or backdate change.
    const notBefore = Date.parse(/Not Before: (.+)/.exec(text)?.[1] ?? '');
    const notAfter = Date.parse(/Not After : (.+)/.exec(text)?.[1] ?? '');
    const windowStart = notAfter - RENEWAL_WINDOW_RATIO * (notAfter - notBefore);
    tt.ok(windowStart < Date.now(), `the certificate (${new Date(notBefore).toISOString()} .. ${new Date(notAfter).toISOString()}) is inside Caddy's renewal window (ratio ${RENEWAL_WINDOW_RATIO}), which opened ${new Date(windowStart).toISOString()}`);
    first = now;
  });

  await t.test('Caddy renews the certificate and serves the new one', { skip: first ? false : 'no certificate was obtained' }, async (tt: Test) => {
    const left = FILE_BUDGET_MS - (performance.now() - started);
    let renewed: { pem: string; serial: string; verified: boolean; output: string } | undefined;
    try {
      await waitFor('Caddy to serve a renewed certificate', async () => {
        if (caddy.exited()) throw new Error('caddy exited');
        const now = await served();
        if (now.serial && now.serial !== first!.serial) renewed = now;
        return renewed !== undefined;
      }, Math.max(10_000, left - 10_000), 1_000);
    } catch (error) {
      tt.fail(`renewal: ${(error as Error).message}`, { report: report() });
      return;
    }
    tt.pass(`serial ${first!.serial} -> ${renewed!.serial}`);
    tt.ok(renewed!.verified, 'the renewed chain verifies against root.pem', { output: renewed!.output });
    const chainFile = join(home, 'served-2-chain.pem');
    const leafFile = join(home, 'served-2.pem');
    const all = /-----BEGIN CERTIFICATE-----[\s\S]+-----END CERTIFICATE-----/.exec(renewed!.output)?.[0] ?? '';
    await writeFile(leafFile, renewed!.pem);
    await writeFile(chainFile, all);
    const verdict = await verifyChain(chancery.rootPem, chainFile, leafFile);
    tt.ok(verdict.ok, 'openssl verify: the renewed leaf with the chain Caddy sends, against root.pem', { output: verdict.output });
    const result = await curl();
    tt.ok(result.code === 0 && result.stdout.includes(BODY), 'curl still gets the site', { output: describeResult(result) });
    // Caddy stored what it renewed (certmagic's layout: certificates/<issuer key>/<name>/<name>.crt).
    const stored = await runCommand('find', [dirs.storage, '-name', `${NAME}.crt`], { timeoutMs: 5_000 });
    const crt = stored.stdout.trim().split('\n')[0];
    tt.ok(crt, 'the certificate is in Caddy\'s storage');
    if (crt) tt.match(await readFile(crt, 'utf8'), /BEGIN CERTIFICATE/, `${crt} holds a certificate`);
  });

  await t.test('Caddy named no host but loopback and the site', async (tt) => {
    // Its log names every CA, OCSP responder and URL it used: none may be outside this machine.
    const hosts = new Set([...caddy.output().matchAll(/\bhttps?:\/\/([^/:"\s\\]+)/g)].map((m) => m[1]!));
    const foreign = [...hosts].filter((h) => h !== '127.0.0.1' && h !== NAME);
    tt.same(foreign, [], `hosts in Caddy's log: ${[...hosts].join(', ')}`);
  });

  await t.test('within the file budget', async (tt) => {
    const ms = performance.now() - started;
    tt.ok(ms < FILE_BUDGET_MS, `obtain, serve and renew took ${(ms / 1000).toFixed(1)} s (cap ${FILE_BUDGET_MS / 1000} s)`);
  });
}
