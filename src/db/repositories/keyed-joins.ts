/**
 * Joins on the ACME hot path written so that PostgreSQL can only run them as keyed lookups.
 *
 * Statements run as named prepared statements (pg-database.ts), so each connection plans one once and
 * keeps a generic plan. Planned while the tables were small (a fresh installation, or any database whose
 * statistics are stale — autovacuum off, as on the CI machine), an ordinary join became a hash join over a
 * sequential scan of authorizations or challenges, and stayed one as the tables grew: in a 15 s bench:acme
 * run the authorization reads scanned 8.7 million rows for 1,700 issuances, a cost that grows with every
 * certificate ever issued. A LATERAL subquery with OFFSET 0 is not flattened into the outer query, so it
 * runs once per outer row as a lookup on the named column's index, whatever the statistics say.
 */

/** The authorization whose id is `idExpression`, as FROM item `alias` with `columns` (plain names). */
export function authorizationById(idExpression: string, columns: string, alias = 'a'): string {
  return `CROSS JOIN LATERAL (SELECT ${columns} FROM authorizations WHERE id = ${idExpression} OFFSET 0) AS ${alias}`;
}

/**
 * The challenges of authorization `authorizationAlias` as FROM item `alias` with `columns`; LEFT keeps an
 * authorization that has none (one NULL row), as a LEFT JOIN would.
 */
export function challengesOf(authorizationAlias: string, columns: string, alias = 'c', left = true): string {
  const lateral = `LATERAL (SELECT ${columns} FROM challenges WHERE authorization_id = ${authorizationAlias}.id OFFSET 0) AS ${alias}`;
  return left ? `LEFT JOIN ${lateral} ON true` : `CROSS JOIN ${lateral}`;
}
