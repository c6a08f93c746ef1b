import { CaError } from '../core/errors.js';

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

/**
 * A statement whose connection to PostgreSQL was lost (the server restarted or failed over, a proxy or
 * pg_terminate_backend cut it, the network dropped). A failure of ours that passes: the client gets 503 with
 * Retry-After (kind `unavailable`), never a 500.
 *
 * `outcome` says what is known of the statement: 'not-applied' when it provably changed nothing (it never
 * reached the server, or it ran in a transaction that never committed), 'unknown' when it was sent outside a
 * transaction (or was the COMMIT) and the answer was lost — it may have committed. An unknown outcome is
 * never answered by sending the statement again: a repeated compare-and-set would report "someone else
 * won" for the change it made itself. Repositories whose callers need the answer re-read the state instead
 * (OrderRepository.claimForIssuance, CertificateRepository.insertForOrder).
 */
export class ConnectionLost extends CaError {
  constructor(
    readonly outcome: 'not-applied' | 'unknown',
    cause: unknown,
  ) {
    super('unavailable', 'the database is temporarily unavailable: retry after Retry-After', { cause, retryAfterSeconds: CONNECTION_LOST_RETRY_AFTER_SECONDS });
    this.name = 'ConnectionLost';
  }
}

/** Retry-After of a request that lost its database connection: new connections are made at once. */
export const CONNECTION_LOST_RETRY_AFTER_SECONDS = 1;

/** The statement's outcome is not known (see ConnectionLost): re-read before acting on it. */
export function isOutcomeUnknown(error: unknown): error is ConnectionLost {
  return error instanceof ConnectionLost && error.outcome === 'unknown';
}

/**
 * SQLSTATEs of a lost or refused connection (PostgreSQL Appendix A): class 08 (connection exception), 57P01
 * admin_shutdown (pg_terminate_backend, a fast shutdown), 57P02 crash_shutdown, 57P03 cannot_connect_now.
 */
const CONNECTION_SQLSTATE = /^(08[0-9A-Z]{3}|57P0[123])$/;
/** Socket errors that mean the connection is gone or could not be made. */
const CONNECTION_ERRNO = new Set(['ECONNRESET', 'ECONNREFUSED', 'ECONNABORTED', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTCONN']);
/** node-postgres's own messages for a connection that ended or could not be made. */
const CONNECTION_MESSAGE = /Connection terminated|connection error and is not queryable|Client was closed and is not queryable|timeout exceeded when trying to connect|Connection ended unexpectedly/;

/** Whether a driver error is the loss (or refusal) of the connection rather than the statement failing. */
export function isConnectionLoss(error: unknown): boolean {
  if (error instanceof ConnectionLost) return true;
  if (typeof error !== 'object' || error === null) return false;
  const { code, message } = error as { code?: unknown; message?: unknown };
  if (typeof code === 'string' && (CONNECTION_SQLSTATE.test(code) || CONNECTION_ERRNO.has(code))) return true;
  return typeof message === 'string' && CONNECTION_MESSAGE.test(message);
}

/**
 * Whether node-postgres refused the statement before writing it: a client whose connection had already
 * failed or was closed answers these without sending anything.
 */
export function wasNeverSent(error: unknown): boolean {
  const message = (error as { message?: unknown } | null)?.message;
  return typeof message === 'string' && /is not queryable/.test(message);
}
