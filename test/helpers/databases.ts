/**
 * Databases for tests: the shared repository suite runs against PGlite and PostgreSQL (DESIGN.md rule 6).
 *
 * PostgreSQL comes from CHANCERY_TEST_PG_URL (default postgresql://postgres@127.0.0.1:5432/postgres, a
 * maintenance database used only to CREATE and DROP a fresh chancery_test_<random> database per test).
 * If it is unreachable the pg half fails when CI=true and is skipped loudly otherwise (DESIGN.md Testing).
 */
import { randomBytes } from 'node:crypto';

import type { Test } from 'tap';

import { FakeClock } from '../../src/core/clock.js';
import type { Database, Queryable } from '../../src/db/database.js';
import { migrate } from '../../src/db/migrate.js';
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

/** Creates an empty database on the test server. Callers must drop() it. */
export async function createPgTestDatabase(): Promise<PgTestDatabase> {
  // Hex only, so interpolating it into CREATE/DROP (identifiers cannot be parameters) is safe.
  const name = `chancery_test_${randomBytes(6).toString('hex')}`;
  await withAdmin((admin) => admin.query(`CREATE DATABASE ${name}`));
  const url = new URL(PG_ADMIN_URL);
  url.pathname = `/${name}`;
  return {
    name,
    url: url.toString(),
    drop: () => withAdmin(async (admin) => void (await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`))),
  };
}

/**
 * A fresh PostgreSQL database dropped at the end of t, or undefined when PostgreSQL is unreachable (after
 * failing t under CI=true, or recording a loud skip otherwise).
 */
export async function freshPgDatabase(t: Test): Promise<PgTestDatabase | undefined> {
  const reason = await pgUnavailableReason();
  if (reason !== undefined) {
    reportPgMissing(t, reason);
    return undefined;
  }
  const database = await createPgTestDatabase();
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
 * test file and put the cases inside fn.
 */
export async function withEachDatabase(
  t: Test,
  fn: (t: Test, db: Database) => Promise<void>,
  options: EachDatabaseOptions = {},
): Promise<void> {
  const prepare = async (db: Database): Promise<void> => {
    if (options.migrate !== false) await migrate(db, new FakeClock());
  };

  await t.test('pglite', async (t) => {
    const db = await openPgliteDatabase(undefined);
    t.teardown(() => db.close());
    await prepare(db);
    await fn(t, db);
  });

  const reason = await pgUnavailableReason();
  if (reason !== undefined) {
    reportPgMissing(t, reason);
    return;
  }
  await t.test('pg', async (t) => {
    const database = await createPgTestDatabase();
    const db = await openPgDatabase(database.url, { poolSize: 4 });
    t.teardown(async () => {
      await db.close();
      await database.drop();
    });
    await prepare(db);
    await fn(t, db);
  });
}

/** A root issuer row ('root', valid ten years from `at`) for repository tests that store certificates. */
export async function insertRootIssuer(db: Queryable, at: Date): Promise<void> {
  await new IssuerRepository(db).insert(
    builders(at).buildIssuer({ id: 'root', role: 'root', keyName: 'root-key', subject: 'CN=Root', der: new Uint8Array(randomBytes(100)) }),
  );
}
