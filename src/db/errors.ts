/**
 * Driver errors as repositories see them. pg and PGlite both expose the server's error fields under the
 * same names, so one helper reads either; repositories turn the SQLSTATEs below into CaError kinds and
 * let anything else through unchanged (it becomes serverInternal above).
 */

/** SQLSTATE codes (PostgreSQL Appendix A) that repositories turn into CaError kinds. */
export const UNIQUE_VIOLATION = '23505';
export const FOREIGN_KEY_VIOLATION = '23503';
export const CHECK_VIOLATION = '23514';

/** The SQLSTATE and constraint of a pg or PGlite error. */
export function sqlError(error: unknown): { code?: string; constraint?: string } {
  if (typeof error !== 'object' || error === null) return {};
  const { code, constraint } = error as { code?: unknown; constraint?: unknown };
  return {
    ...(typeof code === 'string' ? { code } : {}),
    ...(typeof constraint === 'string' ? { constraint } : {}),
  };
}
