import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { compose, type Chancery, type ComposeOptions } from '../../src/compose.js';
import { loadConfig } from '../../src/config/load-config.js';
import type { Config } from '../../src/config/config.js';

/**
 * A whole Chancery (the composition root) on a temp data dir: PGlite unless CHANCERY_DATABASE_URL is given,
 * software keys, a fresh CA, logs silenced, background work not started (call chancery.start()). The ACME
 * listener is plain HTTP for app.inject() while its URLs stay those of the default HTTPS listener. Close it
 * in teardown.
 */
export async function composeForTest(
  options: { env?: Record<string, string> } & Omit<ComposeOptions, 'logger' | 'ca'> = {},
): Promise<{ chancery: Chancery; config: Config; dir: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'chancery-rt-'));
  const { env, ...composeOptions } = options;
  const config = testConfig(dir, env);
  const chancery = await compose(config, { ...composeOptions, logger: pino({ level: 'silent' }), ca: 'create-if-missing' });
  return { chancery, config, dir };
}

/** The configuration composeForTest uses, for a second instance or a CLI command on the same data. */
export function testConfig(dir: string, env: Record<string, string> = {}): Config {
  return loadConfig({
    env: {
      CHANCERY_DATA_DIR: join(dir, 'data'),
      CHANCERY_KEY_PASSPHRASE: 'test-passphrase-0123456789',
      CHANCERY_LOG_LEVEL: 'silent',
      CHANCERY_ACME_TLS: 'false',
      CHANCERY_ACME_URL: 'https://127.0.0.1:8443',
      ...env,
    },
    cwd: dir,
  });
}
