import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import t from 'tap';

import { isCaError } from '../../../src/core/errors.js';
import { openDatabase } from '../../../src/db/open-database.js';

const SECRET = 'hunter2-s3cret';

const badUrls: { name: string; url: string; detail: RegExp }[] = [
  { name: 'fail/mysql URL', url: `mysql://chancery:${SECRET}@db.internal:3306/ca`, detail: /got a mysql:\/\/ URL/ },
  { name: 'fail/http URL', url: `http://chancery:${SECRET}@db.internal/ca`, detail: /got a http:\/\/ URL/ },
  { name: 'fail/no scheme', url: `chancery:${SECRET}@db.internal/ca`, detail: /without a URL scheme/ },
  { name: 'fail/libpq key=value string', url: `host=db.internal password=${SECRET}`, detail: /without a URL scheme/ },
  { name: 'fail/malformed postgres URL', url: `postgres://chancery:${SECRET}@[db.internal/ca`, detail: /not a valid postgres:\/\/ URL/ },
  // Port 1 refuses at once: the connection check fails start-up with where it tried, not the password.
  { name: 'fail/unreachable server', url: `postgresql://chancery:${SECRET}@127.0.0.1:1/ca`, detail: /cannot connect to PostgreSQL at 127\.0\.0\.1:1\/ca/ },
];

for (const c of badUrls) {
  t.test(c.name, async (t) => {
    try {
      await openDatabase({ url: c.url, dataDir: '/nonexistent/never-created' });
      t.fail('expected a badConfig error');
    } catch (error) {
      t.ok(isCaError(error, 'badConfig'), `badConfig: ${String(error)}`);
      if (!isCaError(error)) return;
      t.match(error.detail, /CHANCERY_DATABASE_URL/, 'names the setting');
      t.match(error.detail, c.detail);
      t.notMatch(error.detail, SECRET, 'password not echoed in detail');
      t.notMatch(error.message, SECRET, 'password not echoed in message');
      t.notMatch(String(error.cause ?? ''), SECRET, 'password not echoed in cause');
    }
  });
}

t.test('ok/empty URL opens PGlite in <dataDir>/db', async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'chancery-open-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  const dataDir = join(root, 'not', 'yet', 'there');
  for (const url of [undefined, '', '  ']) {
    const db = await openDatabase({ url, dataDir });
    try {
      t.equal(db.driver, 'pglite', `url ${JSON.stringify(url)}`);
      t.same((await db.query<{ one: number }>('SELECT 1 AS one', [])).rows, [{ one: 1 }]);
    } finally {
      await db.close();
    }
  }
  t.ok((await stat(join(dataDir, 'db'))).isDirectory(), 'created with mkdir -p');
});

t.test('fail/a second open of one data directory while the first is open', async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), 'chancery-open-'));
  t.teardown(() => rm(dataDir, { recursive: true, force: true }));
  const lockFile = join(dataDir, 'db.lock');
  // A lock left by a process that has exited is taken over.
  const dead = spawnSync(process.execPath, ['-e', '']).pid;
  await writeFile(lockFile, `${dead}\n`);
  const first = await openDatabase({ url: '', dataDir });
  try {
    const sameProcess = await openDatabase({ url: '', dataDir }).then(() => undefined, (error: unknown) => error);
    t.ok(isCaError(sameProcess, 'badConfig') && /in use by this process/.test(sameProcess.detail), String(sameProcess));
  } finally {
    await first.close();
  }
  await t.rejects(stat(lockFile), 'lock removed on close');

  // As if another live process held it (the parent is alive while this test runs).
  await writeFile(lockFile, `${process.ppid}\n`);
  const other = await openDatabase({ url: '', dataDir }).then(() => undefined, (error: unknown) => error);
  t.ok(isCaError(other, 'badConfig') && other.detail.includes(`in use by process ${process.ppid}`), String(other));
  t.ok(isCaError(other) && other.detail.includes(lockFile), 'names the lock file');
  await rm(lockFile);

  const again = await openDatabase({ url: '', dataDir });
  await again.close();
  t.pass('reopens once the lock is gone');
});
