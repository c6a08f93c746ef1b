import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { loadConfig } from '../../src/config/load-config.js';
import type { Config } from '../../src/config/config.js';
import type { Clock } from '../../src/core/clock.js';
import { initCa, openRuntime, type CaHierarchy, type Runtime } from '../../src/main.js';

/**
 * A whole Chancery runtime (composition root) on a temp data dir: PGlite unless `databaseUrl` is given,
 * software keys, a fresh CA. Close it in teardown.
 */
export async function openTestRuntime(options: { env?: Record<string, string>; clock?: Clock } = {}): Promise<{ runtime: Runtime; hierarchy: CaHierarchy; config: Config }> {
  const dir = await mkdtemp(join(tmpdir(), 'chancery-rt-'));
  const config = loadConfig({
    env: { CHANCERY_DATA_DIR: join(dir, 'data'), CHANCERY_KEY_PASSPHRASE: 'test-passphrase-0123456789', CHANCERY_LOG_LEVEL: 'silent', ...options.env },
    cwd: dir,
  });
  const runtime = await openRuntime(config, { clock: options.clock, logger: pino({ level: 'silent' }) });
  const hierarchy = await initCa(runtime);
  return { runtime, hierarchy, config };
}
