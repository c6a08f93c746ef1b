import { mkdir, mkdtemp, readFile, realpath, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, normalize } from 'node:path';
import t from 'tap';
import { parse as parseYaml } from 'yaml';
import { SETTINGS } from '../../src/config/settings.js';
import { startChancery } from '../helpers/chancery-process.js';
import { certificateFileText, describeResult, freePort, requireTools, verifyChain } from '../helpers/interop.js';
import { runInGroup } from '../helpers/process-group.js';

/**
 * README.md's "## Getting a certificate" block, extracted from the README itself and run as written: in a
 * shell of its own (bash, a new session: no terminal, stdin /dev/null), in a directory of its own, against a
 * server started the way `npm start` starts it (`chancery start`, shipped defaults). The test moves the
 * server off the ports a user gets (8443, 80, 8080 may be taken here) only through the CHANCERY_* variables
 * the block itself reads with defaults, and gives the block the same ones, as the README tells a user to.
 * The certificates it leaves are judged by openssl against the server's root.pem; the defaults written in
 * the block are checked against config/default.yaml, so README and shipped defaults cannot drift apart.
 *
 * The server runs from src/ through tsx: the same CLI entry and command as `npm start` runs from dist/,
 * without depending on a build that may be older than the sources in a working tree.
 */
const ROOT_DIR = join(import.meta.dirname, '..', '..');
const README = join(ROOT_DIR, 'README.md');

/** The first ```sh block under "## Getting a certificate". */
export function gettingACertificateBlock(markdown: string): string {
  const section = /^## Getting a certificate\s*$([\s\S]*?)(?=^## )/m.exec(markdown)?.[1];
  if (!section) throw new Error('README.md has no "## Getting a certificate" section');
  const block = /^```sh\n([\s\S]*?)^```\s*$/m.exec(section)?.[1];
  if (!block) throw new Error('the "## Getting a certificate" section has no ```sh block');
  return block;
}

const tools = requireTools(t, ['bash', 'certbot', 'lego', 'openssl']);
if (tools) {
  const block = gettingACertificateBlock(await readFile(README, 'utf8'));

  await t.test('the defaults the block falls back to are the shipped defaults', async (tt) => {
    const defaults = parseYaml(await readFile(join(ROOT_DIR, 'config', 'default.yaml'), 'utf8')) as Record<string, unknown>;
    const valueAt = (path: string): unknown => path.split('.').reduce<unknown>((node, key) => (node as Record<string, unknown> | undefined)?.[key], defaults);
    // Innermost ${CHANCERY_X:-default} only: an outer default that is itself an expansion is built from these.
    const uses = [...block.matchAll(/\$\{(CHANCERY_[A-Z0-9_]+):-([^${}]*)\}/g)].map((m) => ({ env: m[1]!, fallback: m[2]! }));
    tt.ok(uses.length >= 3, `the block reads ${uses.map((u) => u.env).join(', ')}`);
    for (const { env, fallback } of uses) {
      const setting = SETTINGS.find((s) => s.env === env);
      tt.ok(setting, `${env} is a setting`);
      if (!setting) continue;
      const shipped = String(valueAt(setting.path));
      const same = setting.path === 'dataDir' ? normalize(fallback) === normalize(shipped) : fallback === shipped;
      tt.ok(same, `\${${env}:-${fallback}} matches ${setting.path}: ${shipped} in config/default.yaml`);
    }
    const acmeTls = valueAt('acme.tls');
    tt.ok(acmeTls === true && /\$\{CHANCERY_ACME_URL:-https:\/\/\$\{CHANCERY_ACME_LISTEN:-/.test(block), 'the directory URL defaults to https:// on the ACME listen address (acme.tls is true)');
  });

  const workDir = await mkdtemp(join(tmpdir(), 'chancery-readme-'));
  t.teardown(() => (process.env.CHANCERY_INTEROP_KEEP === '1' ? undefined : rm(workDir, { recursive: true, force: true })));
  const shellDir = join(workDir, 'shell');
  const home = join(workDir, 'home');
  for (const dir of [shellDir, home]) await mkdir(dir, { recursive: true });
  const acmePort = await freePort();
  const http01Port = await freePort();
  const publicPort = await freePort();
  // Set for the server and, as the README says, for the shell running the block.
  const chanceryEnv: Record<string, string> = {
    CHANCERY_DATA_DIR: join(workDir, 'data'),
    CHANCERY_ACME_LISTEN: `127.0.0.1:${acmePort}`,
    CHANCERY_ADMIN_LISTEN: '127.0.0.1:0',
    CHANCERY_HTTP01_PORT: String(http01Port),
    CHANCERY_PUBLIC_LISTEN: `127.0.0.1:${publicPort}`,
    CHANCERY_PUBLIC_URL: `http://127.0.0.1:${publicPort}`,
  };
  // Nothing else from this process reaches the server or the shell (no CHANCERY_* of the caller's, no
  // REQUESTS_CA_BUNDLE or proxy variables).
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('CHANCERY_') && !/_proxy$|^REQUESTS_CA_BUNDLE$|^LEGO_/i.test(k))) as Record<string, string>;
  const server = await startChancery('start', { ...clean, ...chanceryEnv }, 90_000);
  t.teardown(() => server.stop());
  const rootPem = join(chanceryEnv.CHANCERY_DATA_DIR!, 'ca', 'root.pem');

  await t.test('the block runs as written, in a shell with no terminal', async (tt) => {
    const result = await runInGroup(tools!.bash, ['-e', '-o', 'pipefail', '-c', block], {
      env: { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', HOME: home, LANG: 'C.UTF-8', ...chanceryEnv },
      replaceEnv: true,
      cwd: shellDir,
      timeoutMs: 100_000,
    });
    const ok = result.code === 0 && !result.timedOut;
    tt.ok(ok, 'bash -e runs the block to its end (exit 0)', ok ? {} : { report: `${describeResult(result)}\n--- server output (tail) ---\n${server.output().slice(-3000)}` });
    tt.equal((result.stdout.match(/: OK$/gm) ?? []).length, 2, "both of the block's own openssl verify lines print OK", { stdout: result.stdout });
  });

  await t.test('what it left verifies against data/ca/root.pem', async (tt) => {
    const files = [
      { who: 'certbot', cert: join(shellDir, 'certbot', 'live', 'localhost', 'cert.pem'), chain: join(shellDir, 'certbot', 'live', 'localhost', 'chain.pem') },
      { who: 'lego', cert: join(shellDir, '.lego', 'certificates', 'localhost.crt'), chain: join(shellDir, '.lego', 'certificates', 'localhost.issuer.crt') },
    ];
    for (const { who, cert, chain } of files) {
      const real = await realpath(cert).catch(() => undefined);
      if (!real) {
        tt.fail(`${who} left no certificate at ${cert}`);
        continue;
      }
      const verdict = await verifyChain(rootPem, chain, real);
      tt.ok(verdict.ok, `${who}: openssl verify against root.pem`, { output: verdict.output });
      tt.match(await certificateFileText(real), /DNS:localhost/, `${who}: the certificate names localhost`);
    }
  });
}
