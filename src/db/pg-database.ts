import { createHash } from 'node:crypto';
import pg from 'pg';

import { setTimeout as sleep } from 'node:timers/promises';

import { CaError } from '../core/errors.js';
import type { Database, ListenHandlers, Queryable, QueryOptions, QueryResult, Subscription } from './database.js';
import { ConnectionLost, isConnectionLoss, wasNeverSent } from './errors.js';

export interface PgDatabaseOptions {
  /** Connections per instance. Many instances may share one server (rule 7), so keep this modest. */
  poolSize?: number;
  /** Connections per instance for keyed-plan statements (QueryOptions.keyedPlan); default 4. */
  keyedPoolSize?: number;
  /** Errors on idle pooled connections (server restart, failover). The pool drops the connection either way. */
  onIdleError?: (error: Error) => void;
}

const INT8_OID = 20;

/**
 * int8 the way PGlite returns it: a number while it is exact, a bigint beyond 2^53. The default in pg is a
 * string, which would make the two drivers disagree; the schema avoids int8, but count(*) and the like
 * produce it.
 */
function parseInt8(text: string): number | bigint {
  const value = BigInt(text);
  return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : value;
}

// Per-pool type parsers, so nothing global in pg changes. bytea stays Buffer and timestamptz stays Date (the
// pg defaults).
const typeParsers: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') => {
    if (oid === INT8_OID && format !== 'binary') return parseInt8;
    return pg.types.getTypeParser(oid, format);
  }) as pg.CustomTypesConfig['getTypeParser'],
};

/** Host, port and database of a URL, for messages: never the user's password. */
export function describePgUrl(url: string): string {
  try {
    const parsed = new URL(url);
    const database = decodeURIComponent(parsed.pathname.replace(/^\//, '')) || '(default database)';
    return `${parsed.hostname || 'localhost'}:${parsed.port || '5432'}/${database}`;
  } catch {
    return '(unparseable URL)';
  }
}

function toResult<R>(result: pg.QueryResult | pg.QueryResult[]): QueryResult<R> {
  // A parameterless query runs over the simple protocol and may hold several statements (migrations);
  // pg then returns one result per statement. The last one is the answer, as in PGlite's driver.
  const last = Array.isArray(result) ? result[result.length - 1] : result;
  if (last === undefined) return { rows: [], rowCount: 0 };
  return { rows: last.rows as R[], rowCount: last.rowCount ?? last.rows.length };
}

/**
 * Parameterized statements run as named prepared statements: each connection parses and plans a statement
 * once, not per call. Measured on the ACME hot path (docs/benchmarks.md, bench:acme), planning was ~28% of
 * PostgreSQL's CPU per issuance. The name is a hash of the SQL, so the same text always maps to the same
 * statement. Batch statements (QueryOptions.keyedPlan) are named too, on the keyed pool, whose planner
 * settings (KEYED_PLAN_SETTINGS) keep their generic plans on indexes. (Behind PgBouncer in transaction mode
 * this needs its prepared-statement support enabled.)
 */
const statementNames = new Map<string, string>();
/** SQL built with a variable number of placeholders yields many texts: past this, run them unnamed. */
const MAX_NAMED_STATEMENTS = 500;

function statementName(sql: string): string | undefined {
  let name = statementNames.get(sql);
  if (name === undefined && statementNames.size < MAX_NAMED_STATEMENTS) {
    name = `c${createHash('sha1').update(sql).digest('hex').slice(0, 20)}`;
    statementNames.set(sql, name);
  }
  return name;
}

/**
 * The planner of the keyed pool (QueryOptions.keyedPlan), set on its connections at start-up: generic plans
 * only, and no sequential or bitmap scan, hash or merge join unless nothing else can run the statement — so
 * a batch statement reaches each row it reads or updates through an index, one lookup per batch item,
 * however small the tables were when the plan was made. Replaces planning every batch per call, which was
 * ~20% of PostgreSQL's CPU per ACME issuance (docs/benchmarks.md). test/integration/db/hot-path-plans.test.ts
 * checks the plans made under these settings. Sent as the `options` start-up parameter: behind PgBouncer it
 * must not be in ignore_startup_parameters.
 */
export const KEYED_PLAN_SETTINGS: Readonly<Record<string, string>> = {
  plan_cache_mode: 'force_generic_plan',
  enable_seqscan: 'off',
  enable_bitmapscan: 'off',
  enable_hashjoin: 'off',
  enable_mergejoin: 'off',
};

/** `named`: run as a named prepared statement (statementName); otherwise planned at each call with its values. */
async function run<R>(client: pg.Pool | pg.PoolClient, sql: string, params: readonly unknown[] | undefined, named: boolean): Promise<QueryResult<R>> {
  if (params === undefined || params.length === 0) return toResult<R>(await client.query(sql));
  const name = named ? statementName(sql) : undefined;
  const result = await client.query(name ? { name, text: sql, values: [...params] } : { text: sql, values: [...params] });
  return toResult<R>(result);
}

/**
 * A statement that only reads: sending it again after its connection was lost cannot change anything. A
 * statement starting with SELECT can only write through a function; these are the ones the schema's SQL uses.
 */
function isReadOnly(sql: string): boolean {
  let readOnly = readOnlyStatements.get(sql);
  if (readOnly === undefined) {
    readOnly = /^\s*SELECT\b/i.test(sql) && !/\b(INSERT|UPDATE|DELETE|pg_notify|nextval|setval|pg_advisory\w*|FOR\s+(NO\s+KEY\s+)?UPDATE|FOR\s+SHARE)\b/i.test(sql);
    if (readOnlyStatements.size < MAX_NAMED_STATEMENTS) readOnlyStatements.set(sql, readOnly);
  }
  return readOnly;
}
const readOnlyStatements = new Map<string, boolean>();

/**
 * Attempts per statement when the connection is lost and sending it again is safe (see PgDatabase.query);
 * with the waits between them, about a third of a second in all before the caller gets ConnectionLost.
 */
const CONNECTION_ATTEMPTS = 3;
const RETRY_WAIT_MS = [20, 100, 200];

/** A connection taken from a pool, with what to do when giving it back. */
interface CheckedOut {
  client: pg.PoolClient;
  /** Back to the pool; destroyed instead when `error` is given or the connection failed while checked out. */
  release(error?: unknown): void;
}

/**
 * A pooled connection, or ConnectionLost('not-applied') when none can be made (nothing was sent). While it
 * is checked out the pool listens to it no more (pg-pool), and a connection killed between two statements
 * (the server's FATAL arrives with no query running) emits 'error' on the client: without a listener of
 * ours, that would end the process. The listener notes it, so the connection is destroyed on release.
 */
async function connect(pool: pg.Pool): Promise<CheckedOut> {
  for (let attempt = 1; ; attempt += 1) {
    try {
      const client = await pool.connect();
      let failed: Error | undefined;
      const onError = (error: Error): void => {
        failed = error;
      };
      client.on('error', onError);
      return {
        client,
        release: (error?: unknown) => {
          client.removeListener('error', onError);
          const destroy = error ?? failed;
          client.release(destroy === undefined ? undefined : destroy instanceof Error ? destroy : true);
        },
      };
    } catch (error) {
      if (!isConnectionLoss(error)) throw error;
      // A server that does not answer within connectionTimeoutMillis is not asked again: callers would wait
      // several timeouts for their 503.
      const timedOut = /timeout exceeded/.test(String((error as Error).message)) || (error as { code?: unknown }).code === 'ETIMEDOUT';
      if (timedOut || attempt >= CONNECTION_ATTEMPTS) throw new ConnectionLost('not-applied', error);
      await sleep(RETRY_WAIT_MS[attempt - 1]);
    }
  }
}

function ignoreError(): void {}

/** LISTEN/NOTIFY channel names are interpolated into LISTEN (identifiers cannot be parameters). */
const CHANNEL = /^[a-z_][a-z0-9_]{0,62}$/;

class PgDatabase implements Database {
  readonly driver = 'pg' as const;
  private closed = false;
  private readonly subscriptions = new Set<Subscription>();

  constructor(
    private readonly pool: pg.Pool,
    /** Connections with KEYED_PLAN_SETTINGS, for statements sent with QueryOptions.keyedPlan. */
    private readonly keyedPool: pg.Pool,
    /** A new client (not from the pool) for LISTEN: it stays connected and idle for the process's life. */
    private readonly newClient: () => pg.Client,
  ) {}

  async listen(channel: string, handlers: ListenHandlers): Promise<Subscription> {
    this.assertOpen();
    if (!CHANNEL.test(channel)) throw new CaError('serverInternal', `bad LISTEN channel name "${channel}"`);
    const client = this.newClient();
    let done = false;
    const subscription: Subscription = {
      close: async () => {
        if (done) return;
        done = true;
        this.subscriptions.delete(subscription);
        await client.end().catch(() => undefined);
      },
    };
    const lost = (error: Error): void => {
      if (done) return;
      done = true;
      this.subscriptions.delete(subscription);
      client.end().catch(() => undefined);
      handlers.lost(error);
    };
    client.on('notification', (message) => {
      if (!done && message.channel === channel) handlers.message(message.payload ?? '');
    });
    client.on('error', (error) => lost(error));
    client.on('end', () => lost(new Error('the LISTEN connection ended')));
    try {
      await client.connect();
      await client.query(`LISTEN ${channel}`);
    } catch (error) {
      done = true;
      await client.end().catch(() => undefined);
      throw error;
    }
    this.subscriptions.add(subscription);
    return subscription;
  }

  /**
   * Runs one statement on a pooled connection. When the connection turns out to be lost (the server killed
   * it, restarted or failed over), the statement is sent again on a new connection only when that is safe:
   * it provably never reached the server (node-postgres refused it on a dead client, or no connection could
   * be made), or it only reads. Otherwise its outcome is unknown and the caller gets
   * ConnectionLost('unknown'): repeating a write might apply it twice or report a compare-and-set it won
   * as lost. Bounded: CONNECTION_ATTEMPTS tries.
   */
  async query<R = Record<string, unknown>>(sql: string, params?: readonly unknown[], options?: QueryOptions): Promise<QueryResult<R>> {
    this.assertOpen();
    const pool = options?.keyedPlan ? this.keyedPool : this.pool;
    for (let attempt = 1; ; attempt += 1) {
      const { client, release } = await connect(pool);
      try {
        const result = await run<R>(client, sql, params, true);
        release();
        return result;
      } catch (error) {
        if (!isConnectionLoss(error)) {
          // The statement failed on a working connection (a constraint, a bad cast): the connection stays.
          release();
          throw error;
        }
        release(error);
        const safe = wasNeverSent(error) || isReadOnly(sql);
        if (!safe) throw new ConnectionLost('unknown', error);
        if (attempt >= CONNECTION_ATTEMPTS) throw new ConnectionLost('not-applied', error);
        await sleep(RETRY_WAIT_MS[attempt - 1]);
      }
    }
  }

  /**
   * BEGIN, fn, COMMIT on one connection. A connection lost before COMMIT was sent loses the transaction
   * with it (the server rolls it back): ConnectionLost('not-applied'), fn is not run again (it may have done
   * more than SQL). Lost during COMMIT: ConnectionLost('unknown'). A connection found dead at BEGIN is
   * replaced, as nothing ran yet.
   */
  async transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
    this.assertOpen();
    const { client, release } = await this.begin();
    let active = true;
    let lost: unknown;
    const tx: Queryable = {
      query: async <R>(sql: string, params?: readonly unknown[], options?: QueryOptions) => {
        // The client goes back to the pool afterwards; a late query on it would run in someone else's session.
        if (!active) throw new CaError('serverInternal', 'query on a transaction that has already ended');
        try {
          // The transaction's connection plans as any other: a keyed-plan statement runs unnamed here, planned
          // at each call with its values, as a generic plan made under the default settings might scan.
          return await run<R>(client, sql, params, options?.keyedPlan !== true);
        } catch (error) {
          if (!isConnectionLoss(error)) throw error;
          lost = error;
          throw new ConnectionLost('not-applied', error);
        }
      },
    };
    let broken: Error | undefined;
    let committing = false;
    try {
      const value = await fn(tx);
      // fn swallowed a lost connection: nothing it did was committed.
      if (lost !== undefined) throw new ConnectionLost('not-applied', lost);
      committing = true;
      const commit = await client.query('COMMIT');
      // PostgreSQL answers COMMIT of an aborted transaction (fn swallowed a failed statement) with ROLLBACK
      // and no error. Nothing was stored, so the caller must not believe otherwise (rule 6).
      if (commit.command === 'ROLLBACK') {
        throw new CaError('serverInternal', 'transaction was aborted by a failed statement; nothing was committed');
      }
      return value;
    } catch (error) {
      if (committing && isConnectionLoss(error)) {
        broken = error instanceof Error ? error : new Error(String(error));
        throw new ConnectionLost('unknown', error);
      }
      try {
        await client.query('ROLLBACK');
      } catch (rollbackError) {
        // The session is in an unknown state: destroy it instead of returning it to the pool.
        broken = rollbackError instanceof Error ? rollbackError : new Error(String(rollbackError));
      }
      throw error;
    } finally {
      active = false;
      release(broken);
    }
  }

  /** A connection with BEGIN done; one found dead is replaced (BEGIN changes nothing, so it is safe to resend). */
  private async begin(): Promise<CheckedOut> {
    for (let attempt = 1; ; attempt += 1) {
      const checkedOut = await connect(this.pool);
      try {
        await checkedOut.client.query('BEGIN');
        return checkedOut;
      } catch (error) {
        checkedOut.release(error);
        if (!isConnectionLoss(error)) throw error;
        if (attempt >= CONNECTION_ATTEMPTS) throw new ConnectionLost('not-applied', error);
        await sleep(RETRY_WAIT_MS[attempt - 1]);
      }
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all([...this.subscriptions].map((subscription) => subscription.close()));
    await Promise.all([this.pool.end(), this.keyedPool.end()]);
  }

  private assertOpen(): void {
    if (this.closed) throw new CaError('serverInternal', 'database is closed');
  }
}

/**
 * Opens a pool on a PostgreSQL URL and checks that the server answers, so a bad URL or an unreachable
 * server stops start-up with a message instead of failing the first request.
 */
export async function openPgDatabase(url: string, options: PgDatabaseOptions = {}): Promise<Database> {
  const common = { connectionString: url, connectionTimeoutMillis: 10_000, types: typeParsers };
  const pool = new pg.Pool({ ...common, max: options.poolSize ?? 10, application_name: 'chancery' });
  const keyedPool = new pg.Pool({
    ...common,
    max: options.keyedPoolSize ?? 4,
    application_name: 'chancery-keyed',
    options: Object.entries(KEYED_PLAN_SETTINGS)
      .map(([name, value]) => `-c ${name}=${value}`)
      .join(' '),
  });
  // Without a listener an idle connection's error (server restart) would crash the process.
  for (const each of [pool, keyedPool]) each.on('error', (error) => options.onIdleError?.(error));
  // Nor may a connection's error end it in the moments pg-pool leaves a client without a listener: it drops
  // its own as it hands a new connection out, while still parsing the bytes that completed the start-up,
  // and a FATAL that came in the same packet (pg_terminate_backend right after connecting) is emitted then.
  // The statement that next uses the connection fails instead, and the connection is discarded.
  for (const each of [pool, keyedPool]) each.on('connect', (client) => client.on('error', ignoreError));
  const db = new PgDatabase(
    pool,
    keyedPool,
    () =>
      new pg.Client({
        connectionString: url,
        connectionTimeoutMillis: 10_000,
        application_name: 'chancery-listen',
        types: typeParsers,
        // A LISTEN connection is idle by design: keepalives notice a dead peer so `lost` fires.
        keepAlive: true,
      }),
  );
  try {
    await db.query('SELECT 1');
    // The keyed pool's connections carry KEYED_PLAN_SETTINGS: a server that refuses them stops start-up here.
    await db.query('SELECT $1::int AS one', [1], { keyedPlan: true });
  } catch (error) {
    await db.close().catch(() => undefined);
    const root = error instanceof ConnectionLost ? error.cause : error;
    const reason = root instanceof Error ? root.message : String(root);
    throw new CaError('badConfig', `cannot connect to PostgreSQL at ${describePgUrl(url)} (CHANCERY_DATABASE_URL): ${reason}`, {
      cause: error,
    });
  }
  return db;
}
