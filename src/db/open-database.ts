import { join } from 'node:path';

import { CaError } from '../core/errors.js';
import type { Database } from './database.js';
import { ensurePrivateDir } from './private-files.js';

export interface OpenDatabaseOptions {
  /** CHANCERY_DATABASE_URL: empty for the embedded PGlite, or a postgres:// / postgresql:// URL. */
  url?: string | undefined;
  /** The data directory; PGlite keeps its files in `<dataDir>/db`. */
  dataDir: string;
  poolSize?: number;
}

const ALLOWED = 'empty (embedded PGlite in <dataDir>/db) or a postgres:// or postgresql:// URL';

/**
 * Picks the driver from the URL. Error messages never repeat the URL: it may carry a password. Only a
 * recognisable scheme is quoted, so the operator can see what was wrong.
 */
export async function openDatabase(options: OpenDatabaseOptions): Promise<Database> {
  const url = options.url?.trim() ?? '';
  if (url === '') {
    const dir = join(options.dataDir, 'db');
    // The data directory and the database are the installation's private state: 0700, whatever the umask
    // (the files inside are made private by openPgliteDatabase).
    await ensurePrivateDir(options.dataDir);
    await ensurePrivateDir(dir);
    // Drivers load lazily: each pulls in a large dependency that the other deployment never needs,
    // and start-up time is part of the spec (docs/benchmarks.md, bench:startup).
    const { openPgliteDatabase } = await import('./pglite-database.js');
    return openPgliteDatabase(dir);
  }
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(url)?.[1]?.toLowerCase();
  if (scheme !== 'postgres' && scheme !== 'postgresql') {
    const got = scheme === undefined ? 'a value without a URL scheme' : `a ${scheme}:// URL`;
    throw new CaError('badConfig', `CHANCERY_DATABASE_URL must be ${ALLOWED}; got ${got}`);
  }
  try {
    new URL(url);
  } catch {
    throw new CaError('badConfig', `CHANCERY_DATABASE_URL is not a valid ${scheme}:// URL (must be ${ALLOWED})`);
  }
  const { openPgDatabase } = await import('./pg-database.js');
  return openPgDatabase(url, options.poolSize === undefined ? {} : { poolSize: options.poolSize });
}
