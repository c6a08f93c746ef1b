import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';

export interface PassphraseSource {
  passphrase: string;
  /** 'env' when CHANCERY_KEY_PASSPHRASE set it; 'file' when read from or generated into the data dir. */
  origin: 'env' | 'file';
  generated: boolean;
}

/**
 * The passphrase that encrypts software keys at rest: CHANCERY_KEY_PASSPHRASE if the operator set one,
 * else a random one kept in `<dataDir>/keys/passphrase` with mode 0600 (created on first use; the caller
 * prints a loud warning, because whoever reads that file and the database holds the CA keys).
 */
export async function resolvePassphrase(configured: string | undefined, file: string): Promise<PassphraseSource> {
  if (configured) return { passphrase: configured, origin: 'env', generated: false };
  try {
    const existing = (await readFile(file, 'utf8')).trim();
    if (existing) return { passphrase: existing, origin: 'file', generated: false };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  const passphrase = randomBytes(32).toString('base64url');
  await mkdir(dirname(file), { recursive: true, mode: 0o700 });
  // 'wx' refuses to overwrite: two instances starting together must not each write their own.
  try {
    await writeFile(file, `${passphrase}\n`, { mode: 0o600, flag: 'wx' });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return resolvePassphrase(undefined, file);
    throw error;
  }
  return { passphrase, origin: 'file', generated: true };
}
