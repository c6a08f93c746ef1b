/**
 * The database seam (DESIGN.md rule 6). Two drivers implement it — PostgreSQL through `pg` and the embedded
 * PGlite — and both run the same SQL and migrations. Parameters are always positional ($1, $2, ...).
 */
export interface QueryResult<R> {
  rows: R[];
  rowCount: number;
}

export interface Queryable {
  query<R = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<QueryResult<R>>;
}

export interface Database extends Queryable {
  readonly driver: 'pg' | 'pglite';
  /** Runs fn in one transaction: committed if fn resolves, rolled back if it throws. */
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}
