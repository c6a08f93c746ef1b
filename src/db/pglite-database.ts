import { AsyncLocalStorage } from 'node:async_hooks';
import { readFile, rm, writeFile } from 'node:fs/promises';

import { PGlite, type Results, type Transaction } from '@electric-sql/pglite';

import { CaError } from '../core/errors.js';
import type { Database, ListenHandlers, Queryable, QueryResult, Subscription } from './database.js';
import { makeTreePrivate, PRIVATE_FILE_MODE } from './private-files.js';

type PgliteRunner = Pick<Transaction, 'query' | 'exec'>;

/** One-at-a-time queue: PGlite is a single connection, so a transaction must own it from BEGIN to COMMIT. */
class Mutex {
  private tail: Promise<unknown> = Promise.resolve();

  run<T>(fn: () => Promise<T>): Promise<T> {
    const result = this.tail.then(fn);
    this.tail = result.catch(() => undefined);
    return result;
  }
}

function toResult<R>(result: Results<R> | undefined): QueryResult<R> {
  if (result === undefined) return { rows: [], rowCount: 0 };
  return { rows: result.rows, rowCount: result.rowCount ?? result.affectedRows ?? result.rows.length };
}

async function run<R>(runner: PgliteRunner, sql: string, params: readonly unknown[] | undefined): Promise<QueryResult<R>> {
  if (params === undefined || params.length === 0) {
    // Same rule as pg: without parameters the simple protocol runs, which accepts several statements
    // (a migration file). The last statement's result is the answer.
    const results = await runner.exec(sql);
    return toResult(results[results.length - 1] as Results<R> | undefined);
  }
  return toResult(await runner.query<R>(sql, [...params]));
}

class PgliteDatabase implements Database {
  readonly driver = 'pglite' as const;
  private readonly mutex = new Mutex();
  /** Marks the async context of a running transaction, to catch re-entrant calls (see below). */
  private readonly inTransaction = new AsyncLocalStorage<true>();
  private closing: Promise<void> | undefined;

  constructor(
    private readonly pglite: PGlite,
    private readonly releaseLock: () => Promise<void>,
  ) {}

  async query<R = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<QueryResult<R>> {
    this.assertUsable('query');
    return this.mutex.run(() => run<R>(this.pglite, sql, params));
  }

  async transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
    this.assertUsable('transaction');
    return this.mutex.run(() =>
      this.pglite.transaction(async (pgTx) => {
        let active = true;
        const tx: Queryable = {
          query: async <R>(sql: string, params?: readonly unknown[]) => {
            if (!active) throw new CaError('serverInternal', 'query on a transaction that has already ended');
            return run<R>(pgTx, sql, params);
          },
        };
        try {
          return await this.inTransaction.run(true, () => fn(tx));
        } finally {
          active = false;
        }
      }),
    );
  }

  /**
   * PGlite is one in-process backend, so a LISTEN here hears the NOTIFYs of this same instance (delivered
   * when the notifying transaction commits); there is no connection to lose, so `lost` never fires.
   */
  async listen(channel: string, handlers: ListenHandlers): Promise<Subscription> {
    this.assertUsable('listen');
    let done = false;
    const unlisten = await this.mutex.run(() =>
      this.pglite.listen(channel, (payload) => {
        if (!done) handlers.message(payload);
      }),
    );
    return {
      close: async () => {
        if (done) return;
        done = true;
        if (this.closing === undefined) await this.mutex.run(() => unlisten());
      },
    };
  }

  close(): Promise<void> {
    // Wait for queued work, then stop the WASM instance; an unclosed PGlite keeps the process alive.
    this.closing ??= this.mutex.run(async () => {
      try {
        await this.pglite.close();
      } finally {
        await this.releaseLock();
      }
    });
    return this.closing;
  }

  private assertUsable(what: string): void {
    if (this.closing !== undefined) throw new CaError('serverInternal', 'database is closed');
    // On pg, using the Database (not tx) inside a transaction silently runs on another connection; on a
    // single connection it would wait forever for the transaction that is waiting for it. Fail loudly.
    if (this.inTransaction.getStore() === true) {
      throw new CaError('serverInternal', `${what} on the Database inside one of its transactions: use the tx argument`);
    }
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

const openInThisProcess = new Set<string>();

/**
 * PGlite does not stop two processes from opening one data directory, and two writers would corrupt it.
 * A lock file beside the directory (not inside: initdb wants it empty) names the owning process; one left
 * by a process that has died is taken over. A best-effort guard against running two instances on one data
 * directory, not a cluster lock.
 */
async function lockDataDir(dir: string): Promise<() => Promise<void>> {
  const lockFile = `${dir}.lock`;
  const inUse = (owner: string): CaError =>
    new CaError(
      'badConfig',
      `the embedded database in ${dir} is in use by ${owner}; run one instance per data directory, or point ` +
        `CHANCERY_DATABASE_URL at PostgreSQL to run several (remove ${lockFile} only if no instance is running)`,
    );
  if (openInThisProcess.has(lockFile)) throw inUse('this process');
  for (let attempt = 0; ; attempt++) {
    try {
      await writeFile(lockFile, `${process.pid}\n`, { flag: 'wx', mode: PRIVATE_FILE_MODE });
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 0) {
        throw (error as NodeJS.ErrnoException).code === 'EEXIST' ? inUse('another process') : error;
      }
      const owner = Number.parseInt(await readFile(lockFile, 'utf8').catch(() => ''), 10);
      if (Number.isInteger(owner) && owner > 0 && owner !== process.pid && isAlive(owner)) throw inUse(`process ${owner}`);
      await rm(lockFile, { force: true });
    }
  }
  openInThisProcess.add(lockFile);
  return async () => {
    openInThisProcess.delete(lockFile);
    await rm(lockFile, { force: true });
  };
}

/**
 * Opens the embedded database: in memory when dir is undefined (tests), otherwise in dir, with PGlite's
 * default durability (relaxedDurability off). One process per data directory: PGlite is not a server, so
 * running several instances (rule 7) needs PostgreSQL.
 */
export async function openPgliteDatabase(dir: string | undefined): Promise<Database> {
  if (dir === undefined) return new PgliteDatabase(await PGlite.create(), async () => undefined);
  const unlock = await lockDataDir(dir);
  // Files PGlite writes get loose modes (see private-files.ts): tightened before it reads any (a data
  // directory from a version that left them 0666), after it starts (the files of a new cluster, the
  // relation-cache init file) and after it stops (anything written in between).
  const release = async (): Promise<void> => {
    try {
      await makeTreePrivate(dir);
    } finally {
      await unlock();
    }
  };
  try {
    await makeTreePrivate(dir);
    const pglite = await PGlite.create(dir);
    await makeTreePrivate(dir).catch(async (error: unknown) => {
      await pglite.close();
      throw error;
    });
    return new PgliteDatabase(pglite, release);
  } catch (error) {
    await unlock();
    throw error;
  }
}
