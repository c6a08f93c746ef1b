import { existsSync } from 'node:fs';
import { readFile, readdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import type { Clock } from '../core/clock.js';
import { CaError } from '../core/errors.js';
import type { Database } from './database.js';

/**
 * Key of the advisory lock that serializes migration runs of all instances on one database. An arbitrary
 * fixed value; nothing else in Chancery may use it.
 */
export const MIGRATION_LOCK_KEY = 7_263_512_001;

const FILE_NAME = /^(\d{4})_([a-z0-9_]+)\.sql$/;

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

/** The package root: the nearest directory above this module holding package.json (works from src/ and dist/src/). */
function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    const parent = dirname(dir);
    if (parent === dir) throw new CaError('serverInternal', 'cannot find the package root (package.json) for migrations/');
    dir = parent;
  }
}

export function defaultMigrationsDir(): string {
  return join(packageRoot(), 'migrations');
}

/** Reads NNNN_name.sql files in version order. Any other .sql file is an error rather than silently skipped. */
export async function loadMigrations(dir: string): Promise<Migration[]> {
  const migrations: Migration[] = [];
  for (const file of (await readdir(dir)).sort()) {
    if (!file.endsWith('.sql')) continue;
    const match = FILE_NAME.exec(file);
    if (match === null) {
      throw new CaError('serverInternal', `migration file ${file} is not named NNNN_name.sql`);
    }
    const version = Number(match[1]);
    const name = match[2] ?? '';
    if (migrations.some((m) => m.version === version)) {
      throw new CaError('serverInternal', `two migration files have version ${match[1]}`);
    }
    migrations.push({ version, name, sql: await readFile(join(dir, file), 'utf8') });
  }
  return migrations;
}

const LOCK = 'SELECT pg_advisory_xact_lock($1)';

/**
 * Applies the forward-only migrations that this database has not seen yet, in order, and returns their
 * versions.
 *
 * Several instances may start together on one PostgreSQL (rule 7). Each migration runs in its own
 * transaction that first takes a transaction-scoped advisory lock, then checks schema_migrations, then
 * applies the file and records it. The lock is held on that transaction's own connection (a session lock
 * taken through a pool could land on one connection and be released from another), and it is released by
 * COMMIT/ROLLBACK, so a crashed run never leaves it held. A second runner waits on the lock, then finds the
 * version recorded and skips it: every migration is applied exactly once, and a failing one rolls back
 * alone, leaving the earlier ones committed.
 *
 * A file must not contain BEGIN/COMMIT (the runner owns the transaction) nor statements that cannot run
 * inside one (CREATE INDEX CONCURRENTLY). applied_at comes from the Clock (rule 4).
 */
export async function migrate(db: Database, clock: Clock, migrationsDir: string = defaultMigrationsDir()): Promise<number[]> {
  const migrations = await loadMigrations(migrationsDir);

  await db.transaction(async (tx) => {
    // Under the lock too: concurrent CREATE TABLE IF NOT EXISTS can still fail on PostgreSQL's catalog
    // unique index.
    await tx.query(LOCK, [MIGRATION_LOCK_KEY]);
    await tx.query(
      'CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL)',
    );
  });

  const applied: number[] = [];
  for (const migration of migrations) {
    const label = `${String(migration.version).padStart(4, '0')}_${migration.name}`;
    const didApply = await db.transaction(async (tx) => {
      await tx.query(LOCK, [MIGRATION_LOCK_KEY]);
      const existing = await tx.query<{ name: string }>('SELECT name FROM schema_migrations WHERE version = $1', [
        migration.version,
      ]);
      const recorded = existing.rows[0];
      if (recorded !== undefined) {
        // Landed migrations are never edited or renamed; a different name means this code and this
        // database disagree about history, and applying anything more would be a guess.
        if (recorded.name !== migration.name) {
          throw new CaError(
            'serverInternal',
            `migration ${migration.version} is recorded as "${recorded.name}" but the file is ${label}.sql`,
          );
        }
        return false;
      }
      try {
        await tx.query(migration.sql);
      } catch (error) {
        const reason = error instanceof Error ? error.message : String(error);
        throw new CaError('serverInternal', `migration ${label} failed: ${reason}`, { cause: error });
      }
      await tx.query('INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)', [
        migration.version,
        migration.name,
        clock.now(),
      ]);
      return true;
    });
    if (didApply) applied.push(migration.version);
  }
  return applied;
}
