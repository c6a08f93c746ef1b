/**
 * The database seam (DESIGN.md rule 6). Two drivers implement it — PostgreSQL through `pg` and the embedded
 * PGlite — and both run the same SQL and migrations. Parameters are always positional ($1, $2, ...).
 */
export interface QueryResult<R> {
  rows: R[];
  rowCount: number;
}

export interface QueryOptions {
  /**
   * A statement whose every table access is a lookup by key, typically one carrying a batch of rows
   * (StatementBatcher) and updating the rows it joins. PostgreSQL runs it as a named prepared statement with
   * a generic plan on connections whose planner may only look rows up through indexes and join by nested
   * loop (pg-database.ts, KEYED_PLAN_SETTINGS): made on small tables without statistics, the plain planner
   * would join an UPDATE's target by scanning it, and keep that plan as the tables grow. Inside a
   * transaction it is planned per call with its values instead. PGlite ignores it.
   */
  keyedPlan?: boolean;
}

export interface Queryable {
  query<R = Record<string, unknown>>(sql: string, params?: readonly unknown[], options?: QueryOptions): Promise<QueryResult<R>>;
}

/** Callbacks of a LISTEN (see Database.listen). */
export interface ListenHandlers {
  /** A NOTIFY payload on the channel, delivered after the notifying transaction committed. */
  message(payload: string): void;
  /**
   * The listening connection is gone (server restart, network): notifications may have been missed since.
   * Called at most once; the caller listens again (src/db/notifications.ts does, with backoff).
   */
  lost(error: Error): void;
}

export interface Subscription {
  close(): Promise<void>;
}

export interface Database extends Queryable {
  readonly driver: 'pg' | 'pglite';
  /**
   * LISTEN on `channel` (a lower-case SQL identifier) on a connection of its own, so that instances hear
   * each other's changes (rule 7). Optional so that test doubles need not implement it; both drivers do.
   * NOTIFY goes through query() (`SELECT pg_notify($1, $2)`), inside a transaction when it must only be
   * heard once that transaction commits. Use src/db/notifications.ts rather than calling this directly.
   */
  listen?(channel: string, handlers: ListenHandlers): Promise<Subscription>;
  /** Runs fn in one transaction: committed if fn resolves, rolled back if it throws. */
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}
