import { execFileSync } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Where Debian/Ubuntu (and the multiarch layout) install SoftHSM v2's PKCS#11 library. */
const LIBRARY_CANDIDATES = ['/usr/lib/softhsm/libsofthsm2.so', '/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so'];

export function softHsmLibraryPath(): string | undefined {
  const fromEnv = process.env.SOFTHSM2_LIBRARY;
  if (fromEnv !== undefined && fromEnv !== '' && existsSync(fromEnv)) return fromEnv;
  return LIBRARY_CANDIDATES.find((path) => existsSync(path));
}

export interface SoftHsmToken {
  library: string;
  tokenLabel: string;
  pin: string;
  soPin: string;
  /** Path of the softhsm2.conf this token lives under (also put in process.env.SOFTHSM2_CONF). */
  conf: string;
  dir: string;
  cleanup(): void;
}

/**
 * A fresh SoftHSM token in a temp directory. SoftHSM reads SOFTHSM2_CONF at C_Initialize, so call this BEFORE
 * the first PKCS#11 key store of the process opens the library; tokens created while the library is already
 * initialized are invisible to it until every store has closed (the last close finalizes the library).
 *
 * Returns undefined when SoftHSM is not installed, after a loud warning, so the caller can t.skip — except under
 * CI=true, where a missing HSM must fail the run rather than silently pass it (DESIGN.md, Testing).
 */
export function createSoftHsmToken(label = 'chancery-test'): SoftHsmToken | undefined {
  const library = softHsmLibraryPath();
  const util = findSoftHsmUtil();
  if (library === undefined || util === undefined) {
    const missing = [library === undefined ? 'libsofthsm2.so' : undefined, util === undefined ? 'softhsm2-util' : undefined]
      .filter((m) => m !== undefined)
      .join(' and ');
    const message = `SoftHSM not available (${missing} missing; Debian package softhsm2)`;
    if (process.env.CI === 'true') throw new Error(`${message}: required when CI=true`);
    console.warn(`\n*** SKIPPING PKCS#11 TESTS: ${message} ***\n`);
    return undefined;
  }
  const dir = mkdtempSync(join(tmpdir(), 'chancery-softhsm-'));
  const tokenDir = join(dir, 'tokens');
  mkdirSync(tokenDir, { mode: 0o700 });
  const conf = join(dir, 'softhsm2.conf');
  writeFileSync(
    conf,
    [`directories.tokendir = ${tokenDir}`, 'objectstore.backend = file', 'log.level = ERROR', 'slots.removable = false', ''].join('\n'),
  );
  // Random PINs so a test asserting "the PIN is not in this message" cannot pass by accident.
  const pin = String(randomInt(10_000_000, 99_999_999));
  const soPin = String(randomInt(10_000_000, 99_999_999));
  const previousConf = process.env.SOFTHSM2_CONF;
  process.env.SOFTHSM2_CONF = conf;
  try {
    execFileSync(util, ['--init-token', '--free', '--label', label, '--pin', pin, '--so-pin', soPin], {
      env: { ...process.env, SOFTHSM2_CONF: conf },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    restoreConf(previousConf);
    const stderr = (error as { stderr?: Buffer }).stderr?.toString().trim();
    throw new Error(`softhsm2-util --init-token failed${stderr ? `: ${stderr}` : ''}`);
  }
  return {
    library,
    tokenLabel: label,
    pin,
    soPin,
    conf,
    dir,
    cleanup: () => {
      rmSync(dir, { recursive: true, force: true });
      if (process.env.SOFTHSM2_CONF === conf) restoreConf(previousConf);
    },
  };
}

function restoreConf(previous: string | undefined): void {
  if (previous === undefined) delete process.env.SOFTHSM2_CONF;
  else process.env.SOFTHSM2_CONF = previous;
}

function findSoftHsmUtil(): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(':')) {
    if (dir === '') continue;
    const candidate = join(dir, 'softhsm2-util');
    if (existsSync(candidate)) return candidate;
  }
  return ['/usr/bin/softhsm2-util', '/usr/local/bin/softhsm2-util'].find((path) => existsSync(path));
}
