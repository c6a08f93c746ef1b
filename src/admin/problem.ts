import { CaError, type CaErrorKind } from '../core/errors.js';

/**
 * The one place a CaError kind becomes an admin API problem document (DESIGN.md rule 3; RFC 9457,
 * `application/problem+json`): kind -> problem type URI + HTTP status. Kinds that describe our own failures
 * become `server-error` with a generic detail; the cause is logged, never sent. The problems that come from
 * authentication itself (401, 429) are made here too, so the listener has one error format.
 */
export const PROBLEM_CONTENT_TYPE = 'application/problem+json';
/** RFC 9457 §3.1.1: a URI naming the problem type; these are not meant to be dereferenced. */
const TYPE_BASE = 'urn:chancery:admin:problem:';
const GENERIC_INTERNAL_DETAIL = 'The server experienced an internal error';

export interface AdminProblem {
  type: string;
  title: string;
  status: number;
  detail: string;
  /** Policy problems: where in the document and which rule refused it. */
  issues?: { path: (string | number)[]; rule: string; message: string }[];
}

interface Mapping {
  name: string;
  title: string;
  status: number;
  internal?: boolean;
}

const BAD_REQUEST: Mapping = { name: 'bad-request', title: 'The request is not valid', status: 400 };
const INTERNAL: Mapping = { name: 'server-error', title: 'Internal server error', status: 500, internal: true };

/** Every kind: its problem type and status (400 the caller must change the request, 403 not allowed, ...). */
const KINDS: Record<CaErrorKind, Mapping> = {
  malformed: BAD_REQUEST,
  badNonce: BAD_REQUEST,
  badCSR: BAD_REQUEST,
  badPublicKey: BAD_REQUEST,
  badSignatureAlgorithm: BAD_REQUEST,
  rejectedIdentifier: BAD_REQUEST,
  unsupportedIdentifier: BAD_REQUEST,
  invalidContact: BAD_REQUEST,
  unsupportedContact: BAD_REQUEST,
  invalidProfile: BAD_REQUEST,
  badRevocationReason: { name: 'bad-revocation-reason', title: 'Not a revocation reason', status: 400 },
  unauthorized: { name: 'forbidden', title: 'Not allowed for this principal', status: 403 },
  accountDoesNotExist: { name: 'not-found', title: 'No such resource', status: 404 },
  externalAccountRequired: BAD_REQUEST,
  orderNotReady: { name: 'conflict', title: 'The resource is not in a state that allows this', status: 409 },
  alreadyRevoked: { name: 'already-revoked', title: 'Already revoked', status: 409 },
  alreadyReplaced: { name: 'conflict', title: 'The resource is not in a state that allows this', status: 409 },
  caa: { name: 'forbidden', title: 'Not allowed for this principal', status: 403 },
  incorrectResponse: BAD_REQUEST,
  connection: BAD_REQUEST,
  dns: BAD_REQUEST,
  tls: BAD_REQUEST,
  rateLimited: { name: 'rate-limited', title: 'Too many requests', status: 429 },
  notFound: { name: 'not-found', title: 'No such resource', status: 404 },
  conflict: { name: 'conflict', title: 'The resource is not in a state that allows this', status: 409 },
  badConfig: INTERNAL,
  keyStore: INTERNAL,
  caState: INTERNAL,
  serverInternal: INTERNAL,
  unavailable: { name: 'unavailable', title: 'Temporarily unavailable', status: 503 },
};

function mappingOf(kind: string): Mapping {
  return Object.hasOwn(KINDS, kind) ? KINDS[kind as CaErrorKind] : INTERNAL;
}

export interface RenderedProblem {
  status: number;
  problem: AdminProblem;
  headers: Record<string, string>;
  /** The client got the generic detail: the caller logs the error with its cause. */
  internal: boolean;
}

function render(mapping: Mapping, detail: string): AdminProblem {
  return { type: TYPE_BASE + mapping.name, title: mapping.title, status: mapping.status, detail: mapping.internal ? GENERIC_INTERNAL_DETAIL : detail };
}

/** Any thrown value -> problem; CaError of a client-facing kind keeps its detail. */
export function problemFromError(error: unknown): RenderedProblem {
  if (error instanceof CaError) {
    const mapping = mappingOf(error.kind);
    const headers: Record<string, string> = {};
    if (error.kind === 'unavailable' || error.kind === 'rateLimited') headers['retry-after'] = String(Math.max(1, Math.ceil(error.retryAfterSeconds ?? 1)));
    return { status: mapping.status, problem: render(mapping, error.detail), headers, internal: mapping.internal === true };
  }
  return { status: 500, problem: render(INTERNAL, ''), headers: {}, internal: true };
}

/** 401 (RFC 9110 §15.5.2): no credential, or one that is not valid. The reason is kept vague on purpose. */
export function unauthenticated(detail: string): RenderedProblem {
  return {
    status: 401,
    problem: render({ name: 'unauthenticated', title: 'Authentication required', status: 401 }, detail),
    // RFC 6750 §3: the scheme the client should use.
    headers: { 'www-authenticate': 'Bearer realm="chancery-admin"' },
    internal: false,
  };
}

/** 429 for a source that failed to authenticate too often this minute. */
export function tooManyFailures(retryAfterSeconds: number): RenderedProblem {
  return {
    status: 429,
    problem: render(KINDS.rateLimited, 'too many failed authentications from this address; try again later'),
    headers: { 'retry-after': String(retryAfterSeconds) },
    internal: false,
  };
}

/** A request the framework refused before a handler ran (schema, size, unreadable body). */
export function badRequest(status: number, detail: string): RenderedProblem {
  const mapping = status === 413 ? { name: 'too-large', title: 'Request body too large', status } : status === 404 ? KINDS.notFound : { ...BAD_REQUEST, status };
  return { status, problem: render(mapping, detail), headers: {}, internal: false };
}

/** The policy rules a document broke, as a 400 with each issue. */
export function policyProblem(detail: string, issues: AdminProblem['issues']): RenderedProblem {
  return { status: 400, problem: { ...render({ name: 'policy-refused', title: 'The policy was refused', status: 400 }, detail), ...(issues ? { issues } : {}) }, headers: {}, internal: false };
}
