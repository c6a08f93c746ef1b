import type { Config } from '../../config/config.js';
import { systemClock } from '../../core/clock.js';
import { migrate } from '../../db/migrate.js';
import { openDatabase } from '../../db/open-database.js';

/** `chancery migrate`: apply pending migrations (safe to run from several hosts at once). */
export async function migrateCommand(config: Config): Promise<void> {
  const db = await openDatabase({ url: config.database.url, dataDir: config.dataDir });
  try {
    const applied = await migrate(db, systemClock);
    process.stdout.write(applied.length ? `Applied migrations: ${applied.join(', ')}\n` : 'Database is up to date\n');
  } finally {
    await db.close();
  }
}
