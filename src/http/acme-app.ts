import type { Socket } from 'node:net';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { createAcmeHandlers, type AcmeHandlerDeps, type AcmeResponse, type DirectoryMeta } from '../acme/acme-handlers.js';
import type { NonceStore } from '../acme/nonce-store.js';
import type { Clock } from '../core/clock.js';
import { applyConnectionLimit, describeClientError, limitOptions, writeRawResponse, type ClientError, type HttpLimits } from './listener-limits.js';
import type { TlsServerOptions } from './tls-policy.js';

/** What the ACME listener needs; compose.ts wires it (DESIGN.md rule 5). */
export interface AcmeAppDeps {
  ra: AcmeHandlerDeps['ra'];
  /** Database-backed in production so nonces work across processes (DESIGN.md rule 7). */
  nonces: NonceStore;
  clock: Clock;
  logger: FastifyBaseLogger;
  /** CHANCERY_ACME_URL, e.g. https://127.0.0.1:8443: every ACME URL and the JWS `url` check derive from it. */
  externalUrl: string;
  meta: DirectoryMeta;
  /** Largest accepted request body in bytes; default 64 KiB (a CSR with many names fits several times). */
  bodyLimit?: number;
  /** Serve HTTPS with this key, certificate (PEM) and TLS policy (tls-policy.ts); renew with renewTls(). */
  https?: TlsServerOptions;
  /** Timeouts and the connection cap (listener-limits.ts); Node's and Fastify's defaults without them. */
  limits?: HttpLimits;
}

export const DEFAULT_ACME_BODY_LIMIT = 64 * 1024;

/**
 * The ACME listener (RFC 8555 over HTTPS). Fastify only carries bytes: every protocol decision is made by
 * acme/ (createAcmeHandlers), which this adapts. Returned without listening so tests drive it with
 * app.inject() and `serve` listens with TLS.
 */
export function buildAcmeApp(deps: AcmeAppDeps): FastifyInstance {
  const bodyLimit = deps.bodyLimit ?? DEFAULT_ACME_BODY_LIMIT;
  const handlers = createAcmeHandlers({
    ra: deps.ra,
    nonces: deps.nonces,
    clock: deps.clock,
    logger: deps.logger,
    externalUrl: deps.externalUrl,
    meta: deps.meta,
  });

  // Per-request access logging is left to the reverse proxy / audit layer; errors are logged by acme/.
  const options = {
    loggerInstance: deps.logger,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit,
    exposeHeadRoutes: false,
    frameworkErrors,
    clientErrorHandler,
  };
  const listener = limitOptions(deps.limits, deps.https);
  // Fastify types an HTTPS instance differently; both expose the same routing API used below.
  const app = (listener.https ? Fastify({ ...options, ...listener, https: listener.https }) : Fastify({ ...options, ...listener })) as unknown as FastifyInstance;
  applyConnectionLimit(app, deps.limits);

  // Every answer on this listener is an RFC 8555 problem document (§6.7), also where Fastify or Node would
  // send their own JSON. A URL the router cannot decode (bad percent-encoding) or a path segment over its
  // length limit never reaches a route:
  function frameworkErrors(error: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
    const where = { method: request.method, path: pathOf(request) };
    handlers
      .refuse(where, error.statusCode ?? 400, `the request URL cannot be read (${error.code}): percent-encoding must encode UTF-8 (RFC 3986 §2.1)`)
      .then((response) => send(reply, response), (failure: unknown) => send(reply, handlers.unreadable(500, String(failure))));
  }
  // ...and bytes that never became a request (headers too large, Transfer-Encoding with Content-Length, a
  // client past its timeout) are answered on the connection itself, which is then closed.
  function clientErrorHandler(error: ClientError, socket: Socket): void {
    if (error.code === 'ECONNRESET' || socket.destroyed) return;
    const { status, detail } = describeClientError(error);
    deps.logger.debug({ code: error.code, status }, 'ACME connection refused before a request could be read');
    const response = handlers.unreadable(status, detail);
    writeRawResponse(socket, { status: response.status, headers: response.headers, body: Buffer.from(JSON.stringify(response.body)) });
  }

  // Bodies reach acme/ as raw bytes whatever their declared type: acme/ answers a wrong Content-Type with the
  // 415 problem RFC 8555 §6.2 asks for (with a Replay-Nonce), which Fastify's own 415 would not be.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_request, body, done) => done(null, body));

  function send(reply: FastifyReply, response: AcmeResponse): FastifyReply {
    reply.code(response.status).headers(response.headers);
    const body = response.body;
    if (body === undefined) return reply.send();
    if (typeof body === 'string' || Buffer.isBuffer(body)) return reply.send(body);
    // As bytes: Fastify would append "; charset=utf-8" to a string body, and RFC 8555 media types
    // (application/problem+json, application/json) are sent as registered.
    return reply.send(Buffer.from(JSON.stringify(body)));
  }

  function pathOf(request: FastifyRequest): string {
    const q = request.url.indexOf('?');
    return q === -1 ? request.url : request.url.slice(0, q);
  }

  async function handle(request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
    const response = await handlers.handle({
      method: request.method,
      path: pathOf(request),
      headers: request.headers,
      body: Buffer.isBuffer(request.body) ? request.body : undefined,
      // The external URL comes from configuration, never from the Host header a client controls (§6.4).
      externalUrl: handlers.linker.requestUrl(request.url),
    });
    return send(reply, response);
  }

  app.route({ method: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'], url: '/acme/*', handler: handle });
  // Anything else is a 404 problem document from acme/ too, so clients see one error format.
  app.setNotFoundHandler(handle);

  // Errors Fastify raises before a handler runs (body too large, bad Content-Length, aborted uploads).
  app.setErrorHandler(async (error: Error & { statusCode?: number; code?: string }, request, reply) => {
    const status = error.statusCode ?? 500;
    const where = { method: request.method, path: pathOf(request) };
    if (status === 413) return send(reply, await handlers.refuse(where, 413, `request body exceeds the ${bodyLimit}-byte limit`));
    if (status >= 400 && status < 500) return send(reply, await handlers.refuse(where, status, `request could not be read: ${error.message}`));
    return send(reply, await handlers.fail(where, error));
  });

  return app;
}
