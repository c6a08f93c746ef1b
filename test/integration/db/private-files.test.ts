import { chmod, lstat, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { openDatabase } from '../../../src/db/open-database.js';

/**
 * The embedded database is private to the user Chancery runs as: the data directory and every directory
 * under data/db 0700, every file 0600, whatever the umask, on a new data directory, while it runs, after it
 * stops, and on a data directory left by an earlier version with 0666 files.
 */

// The loosest umask there is: nothing may depend on it. (tap runs each test file in its own process.)
process.umask(0);

interface Modes {
  loose: string[];
  files: number;
}

/** Every entry under `root` whose mode is not 0700 (directories) or 0600 (files). */
async function looseEntries(root: string): Promise<Modes> {
  const loose: string[] = [];
  let files = 0;
  const visit = async (path: string): Promise<void> => {
    const stats = await lstat(path);
    const mode = stats.mode & 0o777;
    if (stats.isDirectory()) {
      if (mode !== 0o700) loose.push(`${path} ${mode.toString(8)}`);
      for (const name of await readdir(path)) await visit(join(path, name));
    } else if (stats.isFile()) {
      files++;
      if (mode !== 0o600) loose.push(`${path} ${mode.toString(8)}`);
    }
  };
  await visit(root);
  return { loose, files };
}

/** What an earlier version left behind: PGlite's 0666 files, directories 0777/0755. */
async function loosen(root: string): Promise<void> {
  const visit = async (path: string): Promise<void> => {
    const stats = await lstat(path);
    if (stats.isDirectory()) {
      await chmod(path, 0o777);
      for (const name of await readdir(path)) await visit(join(path, name));
    } else if (stats.isFile()) {
      await chmod(path, 0o666);
    }
  };
  await visit(root);
  await chmod(root, 0o755);
}

const root = await mkdtemp(join(tmpdir(), 'chancery-private-'));
t.teardown(() => rm(root, { recursive: true, force: true }));
const dataDir = join(root, 'data');

await t.test('ok/a new data dir is 0700 with 0600 files, under umask 0, open and after close', async (t) => {
  const db = await openDatabase({ dataDir });
  try {
    const open = await looseEntries(dataDir);
    t.ok(open.files > 100, `a PGlite cluster (${open.files} files)`);
    t.same(open.loose, [], 'nothing readable by others while open');
    // Work that makes PGlite write new files: relations, WAL, a checkpoint.
    await db.query('CREATE TABLE private_probe (id int PRIMARY KEY, v text)');
    await db.query("INSERT INTO private_probe SELECT g, repeat('x', 100) FROM generate_series(1, 5000) g");
    await db.query('CHECKPOINT');
  } finally {
    await db.close();
  }
  const closed = await looseEntries(dataDir);
  t.same(closed.loose, [], 'nothing readable by others after close');
});

await t.test('ok/an earlier version\'s data dir (0666 files, 0755 dir) is tightened at start and still works', async (t) => {
  await loosen(dataDir);
  const before = await looseEntries(dataDir);
  t.ok(before.loose.length > 100, `the earlier layout: ${before.loose.length} loose entries`);
  const db = await openDatabase({ dataDir });
  try {
    t.same((await looseEntries(dataDir)).loose, [], 'tightened before serving');
    const { rows } = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM private_probe');
    t.equal(rows[0]!.n, 5000, 'the data survived');
  } finally {
    await db.close();
  }
  t.same((await looseEntries(dataDir)).loose, [], 'and after close');
});
