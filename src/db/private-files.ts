import { chmod, lstat, mkdir, readdir } from 'node:fs/promises';
import { join } from 'node:path';

import { CaError } from '../core/errors.js';

/**
 * Owner-only modes for the embedded database. Its files hold every account, order and certificate, and the
 * software CA keys (encrypted, but the passphrase file sits beside them in the data directory), so no other
 * local user may read them. Modes are set with chmod, never left to the umask: PGlite writes the files of
 * its initial cluster with mode 0666 whatever the umask says, and a few files it writes later (the
 * relation-cache init file) get 0666 minus the umask.
 */
export const PRIVATE_DIR_MODE = 0o700;
export const PRIVATE_FILE_MODE = 0o600;

/** `mkdir -p dir`, then mode 0700 whether it was created now or by an earlier version. */
export async function ensurePrivateDir(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: PRIVATE_DIR_MODE });
  await setMode(dir, PRIVATE_DIR_MODE);
}

/**
 * Gives every directory under `root` (itself included) mode 0700 and every regular file 0600; returns how
 * many entries it changed. Symbolic links are neither followed nor changed: what they point at is not ours
 * to change. One lstat per entry (about a thousand for a PGlite cluster), a chmod only where the mode differs.
 */
export async function makeTreePrivate(root: string): Promise<number> {
  let changed = 0;
  const visit = async (path: string): Promise<void> => {
    const stats = await lstat(path);
    if (stats.isDirectory()) {
      if ((stats.mode & 0o777) !== PRIVATE_DIR_MODE) {
        await setMode(path, PRIVATE_DIR_MODE);
        changed++;
      }
      for (const name of await readdir(path)) await visit(join(path, name));
    } else if (stats.isFile() && (stats.mode & 0o777) !== PRIVATE_FILE_MODE) {
      await setMode(path, PRIVATE_FILE_MODE);
      changed++;
    }
  };
  await visit(root);
  return changed;
}

async function setMode(path: string, mode: number): Promise<void> {
  try {
    await chmod(path, mode);
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code ?? 'error';
    throw new CaError('badConfig', `cannot make ${path} private (mode ${mode.toString(8)}): ${code}; the data directory must belong to the user Chancery runs as`, {
      cause,
    });
  }
}
