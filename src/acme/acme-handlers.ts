import type { Clock } from '../core/clock.js';
import type { AcmeRegistrationAuthority } from '../ra/acme-registration-authority.js';
import * as accounts from './handlers/accounts.js';
import * as certificates from './handlers/certificates.js';
import {
  link,
  ResponseProblem,
  type AcmeRequest,
  type AcmeResponse,
  type DirectoryMeta,
  type HandlerContext,
} from './handlers/context.js';
import * as directory from './handlers/directory.js';
import * as orders from './handlers/orders.js';
import { JwsVerifier } from './jws-verifier.js';
import { acmeLinker, type AcmeLinker, type AcmeRoute, type AcmeRouteName } from './linker.js';
import type { NonceStore } from './nonce-store.js';
import { PROBLEM_CONTENT_TYPE, problemFromError } from './problem.js';
import type { Logger } from '../core/logger.js';

export type { AcmeRequest, AcmeResponse, DirectoryMeta } from './handlers/context.js';

/**
 * The ACME server as framework-free functions: a parsed request in, a response out. http/acme-app.ts adapts
 * Fastify to this; everything protocol-shaped (routing, methods, media type, nonces, Link index, problem
 * documents) is decided here so that it is the same whatever serves it.
 */
export interface AcmeHandlerDeps {
  ra: AcmeRegistrationAuthority;
  nonces: NonceStore;
  clock: Clock;
  logger: Logger;
  /** CHANCERY_ACME_URL: the base every ACME URL is built from. */
  externalUrl: string;
  meta: DirectoryMeta;
}

export interface AcmeHandlers {
  readonly linker: AcmeLinker;
  handle(request: AcmeRequest): Promise<AcmeResponse>;
  /**
   * A problem response (type malformed) for a request the HTTP layer refused before handle() could see it,
   * e.g. a body over the size limit (413). It gets the same Replay-Nonce and Link headers as any response.
   */
  refuse(request: Pick<AcmeRequest, 'method' | 'path'>, status: number, detail: string): Promise<AcmeResponse>;
  /** The problem response for an error raised outside handle() (logged; serverInternal unless a CaError). */
  fail(request: Pick<AcmeRequest, 'method' | 'path'>, error: unknown): Promise<AcmeResponse>;
  /**
   * A problem response (type malformed) for bytes that never became a request: HTTP that does not parse,
   * headers too large (431), a client too slow to send its request (408). Synchronous, because the HTTP
   * layer writes it straight to the connection; no Replay-Nonce, because there is no request to know the
   * method of (§6.5 gives one to every POST), and the client's next request gets one as usual.
   */
  unreadable(status: number, detail: string): AcmeResponse;
}

export const JOSE_CONTENT_TYPE = 'application/jose+json';

/**
 * RFC 8555 §6.3: every resource is POSTed, except the directory and newNonce (GET; HEAD for newNonce, §7.2).
 * RFC 9773 §4.1 adds GET renewal-info. Everything else refuses GET: it is read with POST-as-GET so reads are
 * authenticated.
 */
const METHODS: Partial<Record<AcmeRouteName, readonly string[]>> = {
  directory: ['GET'],
  newNonce: ['HEAD', 'GET'],
  renewalInfo: ['GET'],
};
const POST_ONLY = ['POST'] as const;

function mediaType(value: string | string[] | undefined): string | undefined {
  const first = Array.isArray(value) ? value[0] : value;
  return first?.split(';')[0]?.trim().toLowerCase() || undefined;
}

export function createAcmeHandlers(deps: AcmeHandlerDeps): AcmeHandlers {
  const linker = acmeLinker(deps.externalUrl);
  const verifier = new JwsVerifier({ ra: deps.ra, nonces: deps.nonces, linker });
  const ctx: HandlerContext = {
    ra: deps.ra,
    clock: deps.clock,
    linker,
    verifier,
    meta: deps.meta,
  };

  function dispatch(route: AcmeRoute, request: AcmeRequest): Promise<AcmeResponse> | AcmeResponse {
    switch (route.name) {
      case 'directory':
        return directory.directory(ctx);
      case 'newNonce':
        return directory.newNonce(request);
      case 'renewalInfo':
        return directory.renewalInfo(ctx, route.certId);
      case 'newAccount':
        return accounts.newAccount(ctx, request);
      case 'account':
        return accounts.account(ctx, request, route.accountId);
      case 'accountOrders':
        return accounts.accountOrders(ctx, request, route.accountId);
      case 'keyChange':
        return accounts.keyChange(ctx, request);
      case 'newOrder':
        return orders.newOrder(ctx, request);
      case 'newAuthz':
        return orders.newAuthz(ctx, request);
      case 'order':
        return orders.order(ctx, request, route.orderId);
      case 'finalize':
        return orders.finalize(ctx, request, route.orderId);
      case 'authorization':
        return orders.authorization(ctx, request, route.authorizationId);
      case 'challenge':
        return orders.challenge(ctx, request, route.challengeId);
      case 'certificate':
        return certificates.certificate(ctx, request, route.serial);
      case 'revokeCert':
        return certificates.revokeCert(ctx, request);
    }
  }

  /** Error -> problem+json response. Our own failures are logged with their cause; the client sees none of it. */
  function problemResponse(error: unknown, request: Pick<AcmeRequest, 'method' | 'path'>): AcmeResponse {
    const rendered = problemFromError(error);
    if (rendered.internal) {
      deps.logger.error({ err: error, method: request.method, path: request.path }, 'ACME request failed with an internal error');
    } else if (rendered.retryAfterSeconds !== undefined) {
      // A passing failure of ours (database, HSM): the operator wants to see it, the client retries.
      deps.logger.warn({ err: error, method: request.method, path: request.path }, 'ACME request answered 503: temporarily unavailable');
    } else {
      deps.logger.debug({ problem: rendered.document.type, detail: rendered.document.detail, method: request.method, path: request.path }, 'ACME request refused');
    }
    let status = rendered.status;
    let headers: Record<string, string | string[]> = { 'content-type': PROBLEM_CONTENT_TYPE };
    if (rendered.retryAfterSeconds !== undefined) headers['retry-after'] = String(rendered.retryAfterSeconds);
    if (error instanceof ResponseProblem) {
      if (error.status !== undefined) status = error.status;
      headers = { ...headers, ...error.headers };
    }
    return { status, headers, body: { ...rendered.document, status } };
  }

  /**
   * Headers every response shares. RFC 8555 §6.5: a fresh Replay-Nonce on every response to a POST, errors
   * included (a badNonce client retries with it at once), and on newNonce. §7.1: Link rel="index" to the
   * directory on every resource but the directory itself.
   */
  async function decorate(response: AcmeResponse, request: AcmeRequest | Pick<AcmeRequest, 'method' | 'path'>, route: AcmeRoute | undefined): Promise<AcmeResponse> {
    const headers = { ...response.headers };
    if (request.method === 'POST' || route?.name === 'newNonce') {
      try {
        headers['replay-nonce'] = await deps.nonces.issue();
      } catch (error) {
        // The response stands (a POST that succeeded did change state; saying otherwise would be a lie); the
        // client fetches a nonce from newNonce next, and that answers 500 until the store is back.
        deps.logger.error({ err: error }, 'could not issue a nonce');
        if (route?.name === 'newNonce') return decorateFailure(problemResponse(error, request));
      }
    }
    if (route?.name !== 'directory') {
      const existing = headers.link;
      const links = existing === undefined ? [] : Array.isArray(existing) ? existing : [existing];
      headers.link = [...links, link(linker.directory(), 'index')];
    }
    return { ...response, headers };
  }

  function decorateFailure(response: AcmeResponse): AcmeResponse {
    return { ...response, headers: { ...response.headers, link: [link(linker.directory(), 'index')] } };
  }

  return {
    linker,
    async handle(request) {
      const route = linker.route(request.path);
      let response: AcmeResponse;
      try {
        if (!route) {
          throw new ResponseProblem('notFound', `there is no ACME resource at ${request.path.slice(0, 200)}; start from ${linker.directory()}`);
        }
        const allowed = METHODS[route.name] ?? POST_ONLY;
        if (!allowed.includes(request.method)) {
          const hint = allowed.includes('POST') && request.method === 'GET' ? '; read it with POST-as-GET (RFC 8555 §6.3)' : '';
          throw new ResponseProblem('malformed', `method ${request.method} is not allowed here; use ${allowed.join(' or ')}${hint}`, {
            status: 405,
            headers: { allow: allowed.join(', ') },
          });
        }
        if (request.method === 'POST' && mediaType(request.headers['content-type']) !== JOSE_CONTENT_TYPE) {
          throw new ResponseProblem('malformed', `Content-Type must be ${JOSE_CONTENT_TYPE} (RFC 8555 §6.2)`, { status: 415 });
        }
        response = await dispatch(route, request);
      } catch (error) {
        response = problemResponse(error, request);
      }
      return decorate(response, request, route);
    },
    async refuse(request, status, detail) {
      const response = problemResponse(new ResponseProblem('malformed', detail, { status }), request);
      return decorate(response, request, linker.route(request.path));
    },
    async fail(request, error) {
      return decorate(problemResponse(error, request), request, linker.route(request.path));
    },
    unreadable(status, detail) {
      return decorateFailure(problemResponse(new ResponseProblem('malformed', detail, { status }), { method: '', path: '' }));
    },
  };
}
