/**
 * The one error type below HTTP (DESIGN.md rule 3). `kind` says what went wrong in terms a caller can
 * act on; only `acme/` maps a kind to an RFC 8555 problem document. `detail` is safe to show a client;
 * `cause` is for logs only and must never carry a secret.
 */
export type CaErrorKind =
  | 'malformed'
  | 'badNonce'
  | 'badCSR'
  | 'badPublicKey'
  | 'badSignatureAlgorithm'
  | 'rejectedIdentifier'
  | 'unsupportedIdentifier'
  | 'unauthorized'
  | 'accountDoesNotExist'
  | 'externalAccountRequired'
  | 'invalidContact'
  | 'unsupportedContact'
  | 'orderNotReady'
  | 'badRevocationReason'
  | 'alreadyRevoked'
  | 'alreadyReplaced'
  | 'invalidProfile'
  | 'caa'
  | 'incorrectResponse'
  | 'connection'
  | 'dns'
  | 'tls'
  | 'rateLimited'
  | 'notFound'
  | 'conflict'
  | 'badConfig'
  | 'keyStore'
  | 'caState'
  | 'serverInternal'
  /**
   * Temporarily unable to serve (the database connection dropped, the HSM is away): nothing the client did
   * was wrong, and the same request may succeed after `retryAfterSeconds`.
   */
  | 'unavailable';

export interface SubProblem {
  kind: CaErrorKind;
  detail: string;
  identifier?: { type: string; value: string };
}

/** A problem as stored and rendered later (a failed challenge or order keeps one). */
export interface Problem {
  kind: CaErrorKind;
  detail: string;
  subproblems?: SubProblem[];
}

export class CaError extends Error {
  readonly kind: CaErrorKind;
  readonly detail: string;
  readonly subproblems: readonly SubProblem[];
  /** When the same request may be tried again (kind `unavailable`): the wire layers send it as Retry-After. */
  readonly retryAfterSeconds: number | undefined;

  constructor(kind: CaErrorKind, detail: string, options: { subproblems?: SubProblem[]; cause?: unknown; retryAfterSeconds?: number } = {}) {
    super(detail, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'CaError';
    this.kind = kind;
    this.detail = detail;
    this.subproblems = options.subproblems ?? [];
    this.retryAfterSeconds = options.retryAfterSeconds;
  }
}

export function isCaError(value: unknown, kind?: CaErrorKind): value is CaError {
  return value instanceof CaError && (kind === undefined || value.kind === kind);
}
