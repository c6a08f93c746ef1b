/**
 * What the PostgreSQL driver does when a statement's connection is killed under it (pg_terminate_backend on
 * loopback): a read is sent again on a new connection and answers; a write is not — its outcome is unknown,
 * and the caller gets ConnectionLost('unknown') (a 503 above) rather than the write twice; a transaction
 * loses everything it did. The process survives every kill.
 */
import t from 'tap';

import type { Database } from '../../../src/db/database.js';
import { ConnectionLost } from '../../../src/db/errors.js';
import { openPgDatabase } from '../../../src/db/pg-database.js';
import { freshPgDatabase, PG_ADMIN_URL } from '../../helpers/databases.js';

const database = await freshPgDatabase(t);
if (database !== undefined) {
  const db = await openPgDatabase(database.url, { poolSize: 2, keyedPoolSize: 1 });
  const admin = await openPgDatabase(PG_ADMIN_URL, { poolSize: 1, keyedPoolSize: 1 });
  t.teardown(async () => {
    await db.close();
    await admin.close();
  });
  await db.query('CREATE TABLE marks (n integer NOT NULL)');

  /** Kills, after `ms`, the backends of `db` that are running a statement containing `marker`. */
  const killRunning = async (marker: string, ms: number): Promise<number> => {
    await new Promise((resolve) => setTimeout(resolve, ms));
    const { rows } = await admin.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE datname = $1 AND state = 'active' AND query LIKE '%' || $2 || '%' AND pid <> pg_backend_pid()) AS k`,
      [database.name, marker],
    );
    return rows[0]!.n;
  };
  const marks = async (): Promise<number> => (await db.query<{ n: number }>('SELECT count(*)::int AS n FROM marks')).rows[0]!.n;

  await t.test('ok/a read killed while it runs is sent again and answers', async (t) => {
    const [result, killed] = await Promise.all([
      db.query<{ one: number }>("SELECT 1 AS one, 'read-marker' AS m FROM pg_sleep($1::float)", [0.6]).catch((e: unknown) => e),
      killRunning('read-marker', 200),
    ]);
    t.equal(killed, 1, 'its backend was killed');
    t.same((result as { rows: unknown[] }).rows, [{ one: 1, m: 'read-marker' }]);
  });

  await t.test('ok/a write killed while it runs is not sent again: ConnectionLost, outcome unknown', async (t) => {
    const before = await marks();
    const [error, killed] = await Promise.all([
      db.query("INSERT INTO marks (n) SELECT 1 FROM pg_sleep($1::float) WHERE 'write-marker' <> ''", [0.6]).catch((e: unknown) => e),
      killRunning('write-marker', 200),
    ]);
    t.equal(killed, 1);
    t.ok(error instanceof ConnectionLost, 'ConnectionLost');
    t.equal((error as ConnectionLost).outcome, 'unknown');
    t.equal((error as ConnectionLost).kind, 'unavailable');
    t.equal((error as ConnectionLost).retryAfterSeconds, 1);
    t.equal(await marks(), before, 'not written (it was killed), and not written again by a retry');
  });

  await t.test('ok/a transaction killed before COMMIT loses all of it and says so', async (t) => {
    const before = await marks();
    let ran = 0;
    const [error] = await Promise.all([
      db
        .transaction(async (tx) => {
          ran += 1;
          await tx.query('INSERT INTO marks (n) VALUES (2)');
          await tx.query("SELECT pg_sleep($1::float), 'tx-marker'", [0.6]);
        })
        .catch((e: unknown) => e),
      killRunning('tx-marker', 200),
    ]);
    t.ok(error instanceof ConnectionLost);
    t.equal((error as ConnectionLost).outcome, 'not-applied');
    t.equal(ran, 1, 'the transaction body is not run again');
    t.equal(await marks(), before);
  });

  await t.test('ok/idle connections killed: a read right after answers, a write once they are noticed', async (t) => {
    await Promise.all([db.query('SELECT 1'), db.query('SELECT 2')]);
    const kill = async (): Promise<number> =>
      (
        await admin.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1) AS k`,
          [database.name],
        )
      ).rows[0]!.n;
    t.ok((await kill()) >= 1, 'killed');
    // A dead idle connection may be handed out before its FATAL is read: a read is simply sent again.
    t.same((await db.query<{ one: number }>('SELECT $1::int AS one', [1])).rows, [{ one: 1 }]);
    await Promise.all([db.query('SELECT 1'), db.query('SELECT 2')]);
    t.ok((await kill()) >= 1, 'killed again');
    // Once the pool has read the FATALs it drops those connections; a write then goes to a new one.
    await new Promise((resolve) => setTimeout(resolve, 200));
    const before = await marks();
    await db.query('INSERT INTO marks (n) VALUES (3)');
    t.equal(await marks(), before + 1);
  });

  void (db satisfies Database);
}
