/**
 * Databases for tests: the shared repository suite runs against PGlite and PostgreSQL (DESIGN.md rule 6).
 *
 * PostgreSQL comes from CHANCERY_TEST_PG_URL (default postgresql://postgres@127.0.0.1:5432/postgres, a
 * maintenance database used only to CREATE and DROP a fresh chancery_test_<random> database per test).
 * If it is unreachable the pg half fails when CI=true and is skipped loudly otherwise (DESIGN.md Testing).
 *
 * A migrated test database is a copy (CREATE DATABASE ... TEMPLATE) of chancery_template_<hash>, where
 * <hash> names the contents of migrations/: the first process that needs a template migrates it once, and
 * later tests and later runs copy it instead of migrating again. Templates of other migration sets are
 * dropped when a new one is made. tap runs test files in parallel processes, so making and dropping
 * templates happens under an advisory lock on the maintenance database.
 */
import { createHash, randomBytes } from 'node:crypto';
import { copyFile, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import type { Test } from 'tap';

import { FakeClock } from '../../src/core/clock.js';
import type { Database, Queryable } from '../../src/db/database.js';
import { defaultMigrationsDir, loadMigrations, migrate, type Migration } from '../../src/db/migrate.js';
import { describePgUrl, openPgDatabase } from '../../src/db/pg-database.js';
import { openPgliteDatabase } from '../../src/db/pglite-database.js';
import { IssuerRepository } from '../../src/db/repositories/issuer-repository.js';
import { builders } from './builders.js';

export const PG_ADMIN_URL = process.env.CHANCERY_TEST_PG_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres';

export type Driver = Database['driver'];

export interface PgTestDatabase {
  name: string;
  url: string;
  /** Drops the database, closing any connection still open on it. */
  drop(): Promise<void>;
}

let pgProbe: Promise<string | undefined> | undefined;

/** Undefined when PostgreSQL answers, otherwise why not. Probed once per process. */
export function pgUnavailableReason(): Promise<string | undefined> {
  pgProbe ??= (async () => {
    try {
      const admin = await openPgDatabase(PG_ADMIN_URL, { poolSize: 1 });
      await admin.close();
      return undefined;
    } catch (error) {
      return error instanceof Error ? error.message : String(error);
    }
  })();
  return pgProbe;
}

async function withAdmin<T>(fn: (admin: Database) => Promise<T>): Promise<T> {
  const admin = await openPgDatabase(PG_ADMIN_URL, { poolSize: 1 });
  try {
    return await fn(admin);
  } finally {
    await admin.close();
  }
}

function urlOf(name: string): string {
  const url = new URL(PG_ADMIN_URL);
  url.pathname = `/${name}`;
  return url.toString();
}

export interface PgTestDatabaseOptions {
  /**
   * A copy of the migrated template instead of an empty database (default false: empty, for migration tests
   * and for servers that migrate on start-up).
   */
  migrated?: boolean;
}

/** Creates a database on the test server, empty or migrated. Callers must drop() it. */
export async function createPgTestDatabase(options: PgTestDatabaseOptions = {}): Promise<PgTestDatabase> {
  // Hex only, so interpolating it into CREATE/DROP (identifiers cannot be parameters) is safe.
  const name = `chancery_test_${randomBytes(6).toString('hex')}`;
  if (options.migrated === true) await createFromTemplate(name);
  else await withAdmin((admin) => admin.query(`CREATE DATABASE ${name}`));
  return {
    name,
    url: urlOf(name),
    drop: () => withAdmin(async (admin) => void (await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`))),
  };
}

// ---- the migrated template ------------------------------------------------------------------------------

/**
 * Key of the advisory lock, taken on the maintenance database, under which a process makes the template
 * and drops stale ones. Not MIGRATION_LOCK_KEY: that one is taken inside the databases being migrated.
 */
const TEMPLATE_LOCK_KEY = 7_263_512_901;
const TEMPLATE_PREFIX = 'chancery_template_';
/** What the cleanup may drop: templates and half-built ones (…_building) this file made, nothing else. */
const OUR_TEMPLATE = /^chancery_template_[0-9a-z_]+$/;

/** SQLSTATEs: the database has sessions (or a copy is being made from it); no such database. */
const OBJECT_IN_USE = '55006';
const UNDEFINED_DATABASE = '3D000';

function sqlState(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/**
 * The migrations as read now and the template named by their contents (12 hex digits of SHA-256 over
 * version, name and SQL of each file). Read per call: a migration added while tests run gets its own template.
 */
async function currentTemplate(): Promise<{ name: string; migrations: Migration[] }> {
  const migrations = await loadMigrations(defaultMigrationsDir());
  const hash = createHash('sha256');
  for (const m of migrations) hash.update(`${m.version}\0${m.name}\0${m.sql}\0`);
  return { name: `${TEMPLATE_PREFIX}${hash.digest('hex').slice(0, 12)}`, migrations };
}

/**
 * Runs fn again while PostgreSQL answers that the database is in use. A session that has just closed may
 * still be exiting on the server for a moment, and both CREATE DATABASE ... TEMPLATE and RENAME refuse a
 * database with any session on it.
 */
async function whileInUse<T>(fn: () => Promise<T>, timeoutMs = 10_000): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    try {
      return await fn();
    } catch (error) {
      if (sqlState(error) !== OBJECT_IN_USE || performance.now() > deadline) throw error;
      await sleep(50);
    }
  }
}

/** Templates this process knows to exist (made or found under the lock). */
const knownTemplates = new Map<string, Promise<void>>();

async function createFromTemplate(name: string): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    const template = await currentTemplate();
    let known = knownTemplates.get(template.name);
    if (known === undefined) {
      known = ensureTemplate(template.name, template.migrations);
      knownTemplates.set(template.name, known);
      known.catch(() => knownTemplates.delete(template.name));
    }
    await known;
    try {
      await whileInUse(() => withAdmin((admin) => admin.query(`CREATE DATABASE ${name} TEMPLATE ${template.name}`)));
      return;
    } catch (error) {
      // Dropped as stale by a process that read other migration files (one was being written): make it again.
      if (sqlState(error) !== UNDEFINED_DATABASE || attempt >= 3) throw error;
      knownTemplates.delete(template.name);
    }
  }
}

/**
 * Makes the template `name` unless it exists. It is migrated as chancery_template_<hash>_building and
 * renamed when complete, so a template under its final name is always a migrated one (a process that dies
 * half-way leaves only a …_building database, which the next maker drops). No session stays on it: a copy
 * cannot be made while one does, so it is closed to connections once migrated.
 */
async function ensureTemplate(name: string, migrations: Migration[]): Promise<void> {
  // Two connections: the lock is held by a transaction on one, and CREATE/ALTER/DROP DATABASE cannot run
  // inside a transaction, so they run on the other.
  const admin = await openPgDatabase(PG_ADMIN_URL, { poolSize: 2, keyedPoolSize: 1 });
  try {
    await admin.transaction(async (lock) => {
      // Released at the end of the transaction, also when this process dies.
      await lock.query('SELECT pg_advisory_xact_lock($1)', [TEMPLATE_LOCK_KEY]);
      const existing = await admin.query<{ datname: string }>('SELECT datname FROM pg_database WHERE starts_with(datname, $1)', [
        TEMPLATE_PREFIX,
      ]);
      const names = existing.rows.map((r) => r.datname);
      if (names.includes(name)) return; // made by another process while this one waited for the lock
      for (const stale of names.filter((n) => OUR_TEMPLATE.test(n))) await dropTemplate(admin, stale);

      const building = `${name}_building`;
      await admin.query(`CREATE DATABASE ${building}`);
      try {
        await migrateFromSnapshot(urlOf(building), migrations);
        await whileInUse(() => admin.query(`ALTER DATABASE ${building} RENAME TO ${name}`));
      } catch (error) {
        await admin.query(`DROP DATABASE IF EXISTS ${building} WITH (FORCE)`).catch(() => undefined);
        throw error;
      }
      await admin.query(`ALTER DATABASE ${name} WITH ALLOW_CONNECTIONS false IS_TEMPLATE true`);
    });
  } finally {
    await admin.close();
  }
}

/**
 * Migrates the database at url with exactly the migrations the template's name was computed from (a copy in
 * a temporary directory: the real folder may change meanwhile), then closes every connection to it.
 */
async function migrateFromSnapshot(url: string, migrations: Migration[]): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'chancery-template-'));
  try {
    for (const m of migrations) await writeFile(join(dir, `${String(m.version).padStart(4, '0')}_${m.name}.sql`), m.sql);
    const db = await openPgDatabase(url, { poolSize: 1, keyedPoolSize: 1 });
    try {
      await migrate(db, new FakeClock(), dir);
    } finally {
      await db.close();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Drops a template of other migrations (or a half-built one). A failure is reported, not fatal to the test. */
async function dropTemplate(admin: Database, name: string): Promise<void> {
  try {
    // PostgreSQL refuses to drop a database marked as a template.
    await admin.query(`ALTER DATABASE ${name} WITH IS_TEMPLATE false`);
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  } catch (error) {
    console.error(`could not drop the stale test template ${name}: ${error instanceof Error ? error.message : String(error)}`);
  }
}

// ---- per test -------------------------------------------------------------------------------------------

/**
 * A fresh PostgreSQL database dropped at the end of t, or undefined when PostgreSQL is unreachable (after
 * failing t under CI=true, or recording a loud skip otherwise). Empty unless options.migrated.
 */
export async function freshPgDatabase(t: Test, options: PgTestDatabaseOptions = {}): Promise<PgTestDatabase | undefined> {
  const reason = await pgUnavailableReason();
  if (reason !== undefined) {
    reportPgMissing(t, reason);
    return undefined;
  }
  const database = await createPgTestDatabase(options);
  t.teardown(() => database.drop());
  return database;
}

function reportPgMissing(t: Test, reason: string): void {
  const message = `no PostgreSQL for tests (${reason}); start it or set CHANCERY_TEST_PG_URL (now ${describePgUrl(PG_ADMIN_URL)})`;
  if (process.env.CI === 'true') {
    t.fail(`${message}. CI=true: the pg half of the repository suite is required`);
  } else {
    console.error(`\n*** SKIPPING PostgreSQL tests: ${message} ***\n`);
    void t.test('pg', { skip: message }, () => undefined);
  }
}

export interface EachDatabaseOptions {
  /** Apply migrations/ before fn runs (default true). */
  migrate?: boolean;
}

/**
 * Runs fn as a subtest "pglite" (in-memory) and a subtest "pg" (a fresh database), each on a database of its
 * own that is closed (and, for pg, dropped) afterwards. PGlite takes seconds to start: call this once per
 * test file and put the cases inside fn. Migrated, the pg database is a copy of the template.
 */
export async function withEachDatabase(
  t: Test,
  fn: (t: Test, db: Database) => Promise<void>,
  options: EachDatabaseOptions = {},
): Promise<void> {
  const migrated = options.migrate !== false;

  await t.test('pglite', async (t) => {
    const db = await openPgliteDatabase(undefined);
    t.teardown(() => db.close());
    if (migrated) await migrate(db, new FakeClock());
    await fn(t, db);
  });

  const reason = await pgUnavailableReason();
  if (reason !== undefined) {
    reportPgMissing(t, reason);
    return;
  }
  await t.test('pg', async (t) => {
    const database = await createPgTestDatabase({ migrated });
    const db = await openPgDatabase(database.url, { poolSize: 4 });
    t.teardown(async () => {
      await db.close();
      await database.drop();
    });
    await fn(t, db);
  });
}

/**
 * Migrates `db` with the migrations numbered before `first` only (e.g. '0018'): the schema as an earlier
 * version left it, for tests of what a migration does to rows stored before it.
 */
export async function migrateBefore(t: Test, db: Database, clock: FakeClock, first: string): Promise<void> {
  const before = await mkdtemp(join(tmpdir(), 'chancery-migrations-'));
  t.teardown(() => rm(before, { recursive: true, force: true }));
  for (const file of await readdir(defaultMigrationsDir())) {
    if (file.endsWith('.sql') && file < first) await copyFile(join(defaultMigrationsDir(), file), join(before, file));
  }
  await migrate(db, clock, before);
}

/** A root issuer row ('root', valid ten years from `at`) for repository tests that store certificates. */
export async function insertRootIssuer(db: Queryable, at: Date): Promise<void> {
  await new IssuerRepository(db).insert(
    builders(at).buildIssuer({ id: 'root', role: 'root', keyName: 'root-key', subject: 'CN=Root', der: new Uint8Array(randomBytes(100)) }),
  );
}
