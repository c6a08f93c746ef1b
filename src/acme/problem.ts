import { CaError, type CaErrorKind, type Problem, type SubProblem } from '../core/errors.js';
import { SUPPORTED_JWS_ALGORITHMS } from './jws-verifier.js';

/**
 * The one place a CaError kind becomes an RFC 8555 problem document (DESIGN.md rule 3; RFC 8555 §6.7,
 * RFC 7807). Everything below HTTP throws CaError; handlers catch and call problemFromError(). An error without
 * a kind, or one of the kinds that describe our own failures (badConfig, keyStore, caState, serverInternal),
 * becomes `serverInternal` with a generic detail: the cause is for the log, never for the client.
 */

export const PROBLEM_CONTENT_TYPE = 'application/problem+json';
const ACME_ERROR = 'urn:ietf:params:acme:error:';
const GENERIC_INTERNAL_DETAIL = 'The server experienced an internal error';

export interface SubProblemDocument {
  type: string;
  detail: string;
  /** RFC 8555 §6.7.1: which identifier of the request this subproblem is about. */
  identifier?: { type: string; value: string };
}

export interface ProblemDocument {
  type: string;
  detail: string;
  status: number;
  /** RFC 8555 §6.7.1: one entry per identifier that failed, each with its own type. */
  subproblems?: SubProblemDocument[];
  /** RFC 8555 §6.2: a badSignatureAlgorithm problem lists the algorithms the server accepts. */
  algorithms?: string[];
}

interface KindMapping {
  /** The ACME error name after urn:ietf:params:acme:error: */
  type: string;
  status: number;
  /** Detail replaced by a generic one: these describe our failures and may name internals. */
  internal?: boolean;
}

/**
 * kind -> ACME error type + HTTP status. Statuses follow RFC 8555 §6.7 and current practice (Boulder, Pebble):
 * 400 for a request the client must change, 403 for authorization failures and orderNotReady (§7.4), 404/409
 * for a missing/conflicting resource (which RFC 8555 has no error type for, so they carry `malformed`), 429 for
 * rateLimited (§6.6), and RFC 9773 §7.4's alreadyReplaced with 409.
 */
const KINDS: Record<CaErrorKind, KindMapping> = {
  malformed: { type: 'malformed', status: 400 },
  badNonce: { type: 'badNonce', status: 400 },
  badCSR: { type: 'badCSR', status: 400 },
  badPublicKey: { type: 'badPublicKey', status: 400 },
  badSignatureAlgorithm: { type: 'badSignatureAlgorithm', status: 400 },
  rejectedIdentifier: { type: 'rejectedIdentifier', status: 400 },
  unsupportedIdentifier: { type: 'unsupportedIdentifier', status: 400 },
  unauthorized: { type: 'unauthorized', status: 403 },
  accountDoesNotExist: { type: 'accountDoesNotExist', status: 400 },
  externalAccountRequired: { type: 'externalAccountRequired', status: 400 },
  invalidContact: { type: 'invalidContact', status: 400 },
  unsupportedContact: { type: 'unsupportedContact', status: 400 },
  orderNotReady: { type: 'orderNotReady', status: 403 },
  badRevocationReason: { type: 'badRevocationReason', status: 400 },
  alreadyRevoked: { type: 'alreadyRevoked', status: 400 },
  alreadyReplaced: { type: 'alreadyReplaced', status: 409 },
  // draft-ietf-acme-profiles: a profile the server does not offer.
  invalidProfile: { type: 'invalidProfile', status: 400 },
  // RFC 8555 §6.7: CAA records forbid issuance (RFC 8659, RFC 8657).
  caa: { type: 'caa', status: 403 },
  incorrectResponse: { type: 'incorrectResponse', status: 403 },
  connection: { type: 'connection', status: 400 },
  dns: { type: 'dns', status: 400 },
  tls: { type: 'tls', status: 400 },
  rateLimited: { type: 'rateLimited', status: 429 },
  notFound: { type: 'malformed', status: 404 },
  conflict: { type: 'malformed', status: 409 },
  badConfig: { type: 'serverInternal', status: 500, internal: true },
  keyStore: { type: 'serverInternal', status: 500, internal: true },
  caState: { type: 'serverInternal', status: 500, internal: true },
  serverInternal: { type: 'serverInternal', status: 500, internal: true },
  // RFC 8555 has no "try again later" type; serverInternal with 503 and Retry-After (RFC 9110 §15.6.4,
  // §10.2.3) tells a client the failure is ours and passing. The detail is ours to write and says so.
  unavailable: { type: 'serverInternal', status: 503 },
};

function mappingOf(kind: string): KindMapping {
  // A kind outside the table can only arrive from a cast or a newer core; treat it as our failure.
  return Object.hasOwn(KINDS, kind) ? KINDS[kind as CaErrorKind] : KINDS.serverInternal;
}

/** The ACME error URN and HTTP status of a kind. */
export function problemTypeOf(kind: CaErrorKind): { type: string; status: number } {
  const m = mappingOf(kind);
  return { type: ACME_ERROR + m.type, status: m.status };
}

function renderSubproblem(sub: SubProblem): SubProblemDocument {
  const m = mappingOf(sub.kind);
  const doc: SubProblemDocument = { type: ACME_ERROR + m.type, detail: m.internal ? GENERIC_INTERNAL_DETAIL : sub.detail };
  if (sub.identifier) doc.identifier = { type: sub.identifier.type, value: sub.identifier.value };
  return doc;
}

/** Renders a problem of a kind; shared by live errors and stored ones. */
function render(kind: CaErrorKind, detail: string, subproblems: readonly SubProblem[]): ProblemDocument {
  const m = mappingOf(kind);
  const doc: ProblemDocument = {
    type: ACME_ERROR + m.type,
    detail: m.internal ? GENERIC_INTERNAL_DETAIL : detail,
    status: m.status,
  };
  if (subproblems.length > 0) doc.subproblems = subproblems.map(renderSubproblem);
  if (m.type === 'badSignatureAlgorithm') doc.algorithms = [...SUPPORTED_JWS_ALGORITHMS];
  return doc;
}

export interface RenderedError {
  status: number;
  document: ProblemDocument;
  /**
   * True when the client got the generic serverInternal detail: the caller must log `error` (with its cause),
   * because nothing of it reached the response.
   */
  internal: boolean;
  /** Seconds for the Retry-After header (kind `unavailable`), when the error says when to try again. */
  retryAfterSeconds?: number;
}

/**
 * Any thrown value -> problem document. CaError of a client-facing kind keeps its detail and subproblems;
 * everything else becomes serverInternal/500 with a generic detail (DESIGN.md rule 3).
 */
export function problemFromError(error: unknown): RenderedError {
  if (error instanceof CaError) {
    const document = render(error.kind, error.detail, error.subproblems);
    const rendered: RenderedError = { status: document.status, document, internal: mappingOf(error.kind).internal === true };
    if (error.kind === 'unavailable') rendered.retryAfterSeconds = Math.max(1, Math.ceil(error.retryAfterSeconds ?? 1));
    return rendered;
  }
  const document = render('serverInternal', GENERIC_INTERNAL_DETAIL, []);
  return { status: document.status, document, internal: true };
}

/**
 * A stored Problem (a failed challenge's or order's `error`, RFC 8555 §7.1.3, §7.1.5) as the JSON embedded in
 * the resource. It carries `status` too, as Boulder and Pebble do, so a client can treat it like a response.
 */
export function renderStoredProblem(problem: Problem): ProblemDocument {
  return render(problem.kind, problem.detail, problem.subproblems ?? []);
}
