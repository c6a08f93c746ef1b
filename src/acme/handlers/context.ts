import type { Clock } from '../../core/clock.js';
import { CaError, type CaErrorKind } from '../../core/errors.js';
import type { AcmeRegistrationAuthority } from '../../ra/acme-registration-authority.js';
import type { JwsVerifier } from '../jws-verifier.js';
import type { AcmeLinker } from '../linker.js';
import type { Logger } from '../../core/logger.js';

/** A request as the framework-free handlers see it (http/acme-app.ts builds it from Fastify's). */
export interface AcmeRequest {
  method: string;
  /** Path as received, without the query string. */
  path: string;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer | undefined;
  /** The external URL the request arrived on, query included (what a JWS `url` must equal, RFC 8555 §6.4). */
  externalUrl: string;
}

/** `body`: an object is sent as JSON; a Buffer or string as is; undefined for none. */
export interface AcmeResponse {
  status: number;
  headers: Record<string, string | string[]>;
  body?: object | Buffer | string;
}


export interface DirectoryMeta {
  termsOfService?: string;
  website?: string;
  caaIdentities?: string[];
  /** draft-ietf-acme-profiles: profile name -> description, listed in meta.profiles. */
  profiles?: Record<string, string>;
}

export interface HandlerContext {
  ra: AcmeRegistrationAuthority;
  clock: Clock;
  linker: AcmeLinker;
  verifier: JwsVerifier;
  meta: DirectoryMeta;
}

export const JSON_CONTENT_TYPE = 'application/json';

export function jsonResponse(status: number, body: object, headers: Record<string, string | string[]> = {}): AcmeResponse {
  return { status, headers: { 'content-type': JSON_CONTENT_TYPE, ...headers }, body };
}

/** RFC 8288 link header value. */
export function link(url: string, rel: string): string {
  return `<${url}>;rel="${rel}"`;
}

/**
 * A CaError whose problem response needs a status other than its kind's, or extra headers: the 409 of a
 * keyChange to a key already in use carries the Location of the account holding it (RFC 8555 §7.3.5); a
 * wrong Content-Type is 415 (§6.2) and a wrong method 405 with Allow, both with type malformed.
 */
export class ResponseProblem extends CaError {
  readonly status: number | undefined;
  readonly headers: Record<string, string>;
  constructor(kind: CaErrorKind, detail: string, options: { status?: number; headers?: Record<string, string> } = {}) {
    super(kind, detail);
    this.status = options.status;
    this.headers = options.headers ?? {};
  }
}

/**
 * Retry-After (RFC 8555 §7.4, §8.2) for a resource still being worked on: when the next validation attempt
 * is due if known, else a short default. Whole seconds, at least 1.
 */
export const DEFAULT_RETRY_AFTER_SECONDS = 3;

export function retryAfterSeconds(clock: Clock, due?: Date): string {
  if (!due) return String(DEFAULT_RETRY_AFTER_SECONDS);
  return String(Math.max(1, Math.ceil((due.getTime() - clock.now().getTime()) / 1000)));
}
