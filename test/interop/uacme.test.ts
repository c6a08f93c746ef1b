import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import {
  certificateFileText,
  describeResult,

  freePort,
  IN_CI,
  requireTools,
  runCommand,
  splitPem,
  startChalltestsrv,
  startInteropChancery,
  verifyChain,
  type CommandResult,
} from '../helpers/interop.js';
import { runInGroup } from '../helpers/process-group.js';
import { startWebroot } from '../helpers/webroot.js';
import { ocspStatus } from '../helpers/ocsp-check.js';

/**
 * uacme 1.7 (the C client, Debian's uacme; libcurl + GnuTLS) against a running Chancery over HTTPS: `new`
 * (terms accepted with -y), `issue` for one name (EC) and two names (RSA) answering http-01 through uacme's
 * own hook script (/usr/share/uacme/uacme.sh writes the key authorization under UACME_CHALLENGE_PATH, which
 * the test serves on CHANCERY_HTTP01_PORT), `issue -f` to renew, `issue` without -f kept (still current),
 * `revoke` signed by the certificate's own key (RFC 8555 §7.6), then `issue` without -f again: uacme asks the
 * certificate's OCSP responder (Chancery's, on loopback), learns it is revoked, and reissues.
 *
 * Trust: uacme 1.7.4 has no setting for the CA bundle (UACME_CAINFO arrived in 1.7.6) and libcurl, unlike
 * the curl tool, reads no CA variable: it trusts the system directory /etc/ssl/certs. So uacme runs in a
 * mount namespace of its own (unshare -m, root only) where /etc/ssl/certs is a directory holding only our
 * root; the machine's store is untouched. With uacme >= 1.7.6 UACME_CAINFO=root.pem is used instead.
 *
 * GnuTLS as a relying party: uacme verifies OCSP answers with gnutls_ocsp_resp_verify_direct against the
 * issuer in cert.pem; GnuTLS's ocsptool shows which trust file an operator must give it (see README).
 */
const CHALLENGE_HOOK = '/usr/share/uacme/uacme.sh';
/** Renew with fewer than this many days left (uacme's default, 30, is Chancery's whole default validity). */
const RENEW_DAYS = 10;

/**
 * uacme keeps the certificate it replaces as cert-<unix seconds>.pem and stops when that name exists: two
 * renewals of one name within a second (only a test is that quick) would collide.
 */
async function oneSecondLater(): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, 1_100));
}
const tools = requireTools(t, ['uacme', 'unshare', 'mount', 'ocsptool', 'pebble-challtestsrv', 'openssl']);

/** uacme's version, e.g. [1, 7, 4]. */
async function uacmeVersion(binary: string): Promise<number[]> {
  const result = await runCommand(binary, ['-V'], { timeoutMs: 5_000 });
  const match = /version (\d+)\.(\d+)\.?(\d+)?/.exec(result.stdout + result.stderr);
  return match ? [Number(match[1]), Number(match[2]), Number(match[3] ?? 0)] : [0, 0, 0];
}

if (tools) {
  const version = await uacmeVersion(tools.uacme);
  const hasCainfo = version[0]! > 1 || (version[0] === 1 && (version[1]! > 7 || (version[1] === 7 && version[2]! >= 6)));
  const dns = await startChalltestsrv(tools['pebble-challtestsrv'], t);
  const publicPort = await freePort();
  const chancery = await startInteropChancery(t, {
    dnsResolver: dns.resolver,
    // The AIA OCSP URL uacme follows names this server's own public listener (loopback).
    env: { CHANCERY_PUBLIC_LISTEN: `127.0.0.1:${publicPort}`, CHANCERY_PUBLIC_URL: `http://127.0.0.1:${publicPort}` },
  });
  const base = join(chancery.workDir, 'uacme');
  const confdir = join(base, 'conf');
  const webrootDir = join(base, 'webroot');
  const challengePath = join(webrootDir, '.well-known', 'acme-challenge');
  const trustDir = join(base, 'trust');
  for (const dir of [confdir, challengePath, trustDir]) await mkdir(dir, { recursive: true });
  // The only CA uacme trusts inside its namespace, under both names GnuTLS and libcurl look for.
  await copyFile(chancery.rootPem, join(trustDir, 'chancery-root.pem'));
  await copyFile(chancery.rootPem, join(trustDir, 'ca-certificates.crt'));
  await startWebroot(chancery.http01Port, webrootDir, t);

  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin',
    HOME: base,
    LANG: 'C',
    UACME_CHALLENGE_PATH: challengePath,
    ...(hasCainfo ? { UACME_CAINFO: chancery.rootPem } : {}),
  };

  /** uacme with our directory and confdir, trusting only our root (see above). */
  async function uacme(args: string[]): Promise<CommandResult> {
    const command = [tools!.uacme, '-v', '-c', confdir, '-a', chancery.directory, ...args];
    if (hasCainfo) return runInGroup(command[0]!, command.slice(1), { env, replaceEnv: true, cwd: base, timeoutMs: 60_000 });
    return runInGroup(
      tools!.unshare,
      ['--mount', '--propagation', 'private', 'sh', '-c', 'mount --bind "$0" /etc/ssl/certs && exec "$@"', trustDir, ...command],
      { env, replaceEnv: true, cwd: base, timeoutMs: 60_000 },
    );
  }

  const report = (result: CommandResult): string => `${describeResult(result)}\n--- chancery output (tail) ---\n${chancery.output().slice(-3000)}`;

  async function expectExit(tt: Test, result: CommandResult, code: number, what: string): Promise<boolean> {
    const ok = result.code === code && !result.timedOut;
    tt.ok(ok, what, ok ? {} : { report: report(result) });
    return ok;
  }

  /** uacme's files: cert.pem is the leaf followed by the chain; the key lives under private/. */
  const files = (name: string) => ({ cert: join(confdir, name, 'cert.pem'), key: join(confdir, 'private', name, 'key.pem'), issuer: join(base, `${name}.issuer.pem`) });

  async function judge(tt: Test, name: string, names: string[]): Promise<string> {
    const f = files(name);
    const verdict = await verifyChain(chancery.rootPem, f.cert, f.cert);
    tt.ok(verdict.ok, 'openssl verifies cert.pem (leaf + chain) against our root', { output: verdict.output });
    await writeFile(f.issuer, `${splitPem(await readFile(f.cert, 'utf8')).slice(1).join('\n')}\n`);
    const text = await certificateFileText(f.cert);
    for (const n of names) tt.ok(text.includes(`DNS:${n}`), `the certificate names ${n}`);
    return /Serial Number:\s*\n?\s*([0-9a-f:]+)/i.exec(text)?.[1] ?? '';
  }

  // The namespace needs root and CAP_SYS_ADMIN; say so plainly rather than fail on a TLS error later.
  const probe = hasCainfo ? undefined : await runInGroup(tools.unshare, ['--mount', '--propagation', 'private', 'true'], { timeoutMs: 10_000 });
  const canIsolate = hasCainfo || probe?.code === 0;
  const issued = new Map<string, string>();

  await t.test('uacme can be given our root as its only trust anchor', async (tt) => {
    if (!canIsolate) {
      const why = `uacme ${version.join('.')} has no CA bundle setting and unshare -m is not permitted here: ${probe ? describeResult(probe) : ''}`;
      if (IN_CI) tt.fail(why);
      else {
        console.error(`\n*** SKIPPING UACME INTEROP TESTS: ${why} ***\n`);
        tt.pass(`skipped: ${why}`);
      }
      return;
    }
    tt.pass(hasCainfo ? 'UACME_CAINFO' : 'a private /etc/ssl/certs in a mount namespace');
  });

  if (canIsolate) {
    await t.test('new (-y accepts the terms)', async (tt) => {
      await expectExit(tt, await uacme(['-y', 'new', 'ops@example.internal']), 0, 'uacme new exits 0');
    });

    await t.test('issue: one name, EC, http-01 through uacme.sh', async (tt) => {
      const name = 'uacme.test';
      if (!(await expectExit(tt, await uacme(['-h', CHALLENGE_HOOK, '-t', 'EC', 'issue', name]), 0, 'uacme issue exits 0'))) return;
      const serial = await judge(tt, name, [name]);
      tt.match(await certificateFileText(files(name).cert), /id-ecPublicKey/, 'an EC key');
      issued.set(name, serial);
    });

    await t.test('issue: two names, RSA', async (tt) => {
      const name = 'rsa.uacme.test';
      const result = await uacme(['-h', CHALLENGE_HOOK, '-t', 'RSA', '-b', '2048', 'issue', name, 'www.rsa.uacme.test']);
      if (!(await expectExit(tt, result, 0, 'uacme issue -t RSA exits 0'))) return;
      const serial = await judge(tt, name, [name, 'www.rsa.uacme.test']);
      tt.match(await certificateFileText(files(name).cert), /rsaEncryption/, 'an RSA key');
      issued.set(name, serial);
    });

    await t.test('issue -f renews; issue without -f keeps a current certificate', { skip: issued.has('uacme.test') ? false : 'nothing issued' }, async (tt) => {
      const name = 'uacme.test';
      await oneSecondLater();
      if (!(await expectExit(tt, await uacme(['-h', CHALLENGE_HOOK, '-f', 'issue', name]), 0, 'uacme issue -f exits 0'))) return;
      const serial = await judge(tt, name, [name]);
      tt.not(serial, issued.get(name), `a new certificate (serial ${String(issued.get(name))} -> ${serial})`);
      issued.set(name, serial);
      // uacme exits 1 when it had nothing to do: the certificate is current and OCSP calls it good.
      const kept = await uacme(['-h', CHALLENGE_HOOK, '-d', String(RENEW_DAYS), 'issue', name]);
      await expectExit(tt, kept, 1, 'uacme issue without -f exits 1 (nothing to do)');
      tt.match(kept.stderr, new RegExp(`querying OCSP server at http://127\\.0\\.0\\.1:${publicPort}/`), 'after asking Chancery\'s OCSP responder', { output: describeResult(kept) });
      tt.notMatch(kept.stderr, /failed to verify OCSP response|unsuccessful/, 'whose answer GnuTLS verifies (a delegated responder issued by the intermediate, RFC 6960 §4.2.2.2)', { output: describeResult(kept) });
      tt.match(kept.stderr, /skipping/, 'and skips the certificate', { output: describeResult(kept) });
    });

    await t.test('GnuTLS ocsptool: OCSP verifies with the intermediate as trust anchor, not with root.pem alone', { skip: issued.has('uacme.test') ? false : 'nothing issued' }, async (tt) => {
      // What the README tells relying parties: Chancery's OCSP responses are signed by a delegated responder
      // issued by the intermediate (RFC 6960 §4.2.2.2). GnuTLS accepts a signer that is a trust anchor or is
      // issued by one, and builds no longer chain, so its trust file must hold data/ca/chain.pem.
      const f = files('uacme.test');
      const leaf = join(base, 'ocsptool-leaf.pem');
      await writeFile(leaf, `${splitPem(await readFile(f.cert, 'utf8'))[0]}\n`);
      const chainPem = join(chancery.dataDir, 'ca', 'chain.pem');
      const ask = (trust: string) =>
        runCommand(tools!.ocsptool, [`--ask=http://127.0.0.1:${publicPort}/ocsp`, '--load-cert', leaf, '--load-issuer', chainPem, '--load-trust', trust, '--outfile', join(base, 'ocsp.der')], { timeoutMs: 20_000 });
      const withRoot = await ask(chancery.rootPem);
      tt.not(withRoot.code, 0, 'ocsptool --load-trust root.pem cannot verify the response', { output: describeResult(withRoot) });
      tt.match(withRoot.stdout + withRoot.stderr, /Signer cert is not trusted/, 'because the signer is not issued by a trust anchor');
      const withChain = await ask(chainPem);
      tt.equal(withChain.code, 0, 'ocsptool --load-trust data/ca/chain.pem verifies it', { output: describeResult(withChain) });
      tt.match(withChain.stdout, /Verifying OCSP Response: Success/, 'Verifying OCSP Response: Success');
      tt.match(withChain.stdout, /Certificate Status: good/, 'and the certificate is good');
    });

    await t.test('revoke with the certificate key, then issue reissues because OCSP says revoked', { skip: issued.has('uacme.test') ? false : 'nothing issued' }, async (tt) => {
      const name = 'uacme.test';
      const f = files(name);
      // uacme renames a file it revoked (…-revoked): revoke copies, so cert.pem stays where uacme's next
      // issue finds it — a revoked certificate that has not expired, which only OCSP can tell apart.
      const judged = join(base, 'judged.pem');
      const first = join(base, 'revoke-1.pem');
      const second = join(base, 'revoke-2.pem');
      for (const copy of [judged, first, second]) await copyFile(f.cert, copy);
      const result = await uacme(['-r', '1', 'revoke', first, f.key]);
      if (!(await expectExit(tt, result, 0, 'uacme revoke CERTFILE CERTKEYFILE (signed by the certificate key) exits 0'))) return;
      const status = await ocspStatus(chancery.rootPem, f.issuer, judged);
      tt.equal(status.status, 'revoked', 'openssl ocsp: revoked as soon as uacme returns', { output: status.output });
      const again = await uacme(['revoke', second]);
      tt.not(again.code, 0, 'a second revoke (account key) is refused');
      tt.match(again.stderr, /alreadyRevoked/, 'with alreadyRevoked', { output: describeResult(again) });

      await oneSecondLater();
      const reissue = await uacme(['-h', CHALLENGE_HOOK, '-d', String(RENEW_DAYS), 'issue', name]);
      if (!(await expectExit(tt, reissue, 0, 'uacme issue (no -f) exits 0: it reissued'))) return;
      tt.match(reissue.stderr, /revoked/i, 'because uacme\'s OCSP check (GnuTLS) found the certificate revoked', { output: describeResult(reissue) });
      tt.notMatch(reissue.stderr, /failed to verify OCSP response/, 'in a response GnuTLS verified', { output: describeResult(reissue) });
      const serial = await judge(tt, name, [name]);
      tt.not(serial, issued.get(name), `a new certificate (serial ${String(issued.get(name))} -> ${serial})`);
    });
  }
}

