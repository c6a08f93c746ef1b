import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Clock } from '../core/clock.js';
import type { OcspReply } from '../revocation/ocsp-source.js';
import type { Logger } from '../core/logger.js';

/** What the OCSP routes need; compose.ts wires `ocsp` to the OcspSource. */
export interface OcspRoutesDeps {
  ocsp: {
    /** requestKey: the request's exact bytes as sent (raw GET path, POST body), so a repeat skips decoding. */
    respond(requestDer: Uint8Array, requestKey?: string): Promise<OcspReply>;
    cachedByRequestKey?(requestKey: string): OcspReply | undefined;
  };
  clock: Clock;
  /** Largest POST body accepted; default 64 KiB (a one-certificate request is ~100 bytes). */
  bodyLimit?: number;
  logger?: Logger;
}

export const DEFAULT_OCSP_BODY_LIMIT = 64 * 1024;

const MEDIA_TYPE = 'application/ocsp-response';
/** OCSPResponse { responseStatus malformedRequest } (RFC 6960 §4.2.1), no responseBytes. */
const MALFORMED = Buffer.from([0x30, 0x03, 0x0a, 0x01, 0x01]);
/** Standard base64 as RFC 6960 Appendix A.1 asks, after URL-decoding; base64url is accepted as well. */
const BASE64 = /^[A-Za-z0-9+/_-]*={0,2}$/;

/**
 * The OCSP endpoints of the public listener (DESIGN.md "URLs"; RFC 6960 Appendix A, RFC 5019 §5):
 * POST /ocsp with an application/ocsp-request body, and GET /ocsp/<url-encoded base64 request> (what
 * nginx stapling and most browsers send; the base64 may hold %2B %2F %3D or literal '/'). Every answer,
 * errors included, is an application/ocsp-response with HTTP 200, as OCSP clients expect: bad input is a
 * malformedRequest response, never an HTML or JSON error. Registered inside its own plugin scope, so its
 * catch-all body parser and error handler touch nothing else on the app.
 */
export function registerOcspRoutes(app: FastifyInstance, deps: OcspRoutesDeps): void {
  const bodyLimit = deps.bodyLimit ?? DEFAULT_OCSP_BODY_LIMIT;
  const internalError = Buffer.from([0x30, 0x03, 0x0a, 0x01, 0x02]);

  // RFC 7231 Date from the Clock (rule 4), formatted at most once per second.
  let dateSecond = -1;
  let dateText = '';
  const httpDate = (nowMs: number): string => {
    const second = Math.floor(nowMs / 1000);
    if (second !== dateSecond) {
      dateSecond = second;
      dateText = new Date(second * 1000).toUTCString();
    }
    return dateText;
  };

  const send = (request: FastifyRequest, reply: FastifyReply, answer: OcspReply): FastifyReply => {
    const now = deps.clock.now().getTime();
    const cache = answer.cache;
    if (cache === undefined) {
      // Errors and nonce answers are for this request only.
      return reply.headers({ 'content-type': MEDIA_TYPE, date: httpDate(now), 'cache-control': 'no-store' }).send(answer.der);
    }
    // RFC 5019 §6.2: let HTTP caches keep a pre-produced response until its nextUpdate.
    const maxAge = Math.max(0, Math.floor((cache.nextUpdate.getTime() - now) / 1000));
    reply.headers({
      'content-type': MEDIA_TYPE,
      date: httpDate(now),
      'cache-control': `max-age=${maxAge}, public, no-transform, must-revalidate`,
      'last-modified': cache.lastModified,
      expires: cache.expires,
      etag: cache.etag,
    });
    if (request.headers['if-none-match'] === cache.etag) return reply.code(304).send();
    return reply.send(answer.der);
  };

  const answer = async (request: FastifyRequest, reply: FastifyReply, der: Buffer | undefined, requestKey?: string): Promise<FastifyReply> => {
    if (der === undefined || der.length === 0) return reply.headers({ 'content-type': MEDIA_TYPE, 'cache-control': 'no-store' }).send(MALFORMED);
    return send(request, reply, await deps.ocsp.respond(der, requestKey));
  };

  void app.register(async (scope) => {
    // The body is the DER request whatever Content-Type a client declares (RFC 6960 A.1.1 asks for
    // application/ocsp-request; rejecting others would only break clients).
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit }, (_request, body, done) => done(null, body));

    scope.setErrorHandler(async (error: Error & { statusCode?: number; code?: string }, request, reply) => {
      // Body over the limit, bad Content-Length, aborted upload: a malformed request in OCSP's terms.
      if (error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 500) {
        return reply.code(200).headers({ 'content-type': MEDIA_TYPE, 'cache-control': 'no-store', connection: 'close' }).send(MALFORMED);
      }
      deps.logger?.error({ err: error, url: request.url.slice(0, 200) }, 'OCSP request failed');
      return reply.code(200).headers({ 'content-type': MEDIA_TYPE, 'cache-control': 'no-store' }).send(internalError);
    });

    // Request keys (see cachedByRequestKey) are the exact bytes as sent: 'P' + the body, 'G' + the raw path.
    const post = (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> | undefined => {
      const body = Buffer.isBuffer(request.body) ? request.body : undefined;
      const key = body !== undefined && body.length > 0 && body.length <= 256 ? `P${body.toString('latin1')}` : undefined;
      const hit = key === undefined ? undefined : deps.ocsp.cachedByRequestKey?.(key);
      if (hit !== undefined) {
        send(request, reply, hit);
        return undefined;
      }
      return answer(request, reply, body, key);
    };
    scope.post('/ocsp', { bodyLimit }, post);
    scope.post('/ocsp/', { bodyLimit }, post);

    scope.get('/ocsp/*', (request, reply) => {
      const path = rawRequestPath(request.url);
      const key = path === undefined ? undefined : `G${path}`;
      const hit = key === undefined ? undefined : deps.ocsp.cachedByRequestKey?.(key);
      if (hit !== undefined) {
        send(request, reply, hit);
        return undefined;
      }
      return answer(request, reply, path === undefined ? undefined : decodeRequestPath(path), key);
    });
  });
}

/** The text after /ocsp/ up to any query, undecoded, or undefined when the path has no /ocsp/. */
function rawRequestPath(url: string): string | undefined {
  const start = url.indexOf('/ocsp/');
  if (start === -1) return undefined;
  const query = url.indexOf('?', start);
  return url.slice(start + '/ocsp/'.length, query === -1 ? undefined : query);
}

/** The DER request of a raw GET path (url-encoded base64, RFC 6960 Appendix A.1), or undefined. */
function decodeRequestPath(raw: string): Buffer | undefined {
  let text = raw;
  if (text.includes('%')) {
    try {
      text = decodeURIComponent(text);
    } catch {
      return undefined;
    }
  }
  if (text.length === 0 || !BASE64.test(text)) return undefined;
  return Buffer.from(text, text.includes('-') || text.includes('_') ? 'base64url' : 'base64');
}

/** The DER request in GET /ocsp/<url-encoded base64>, or undefined when it is not one. */
export function requestFromPath(url: string): Buffer | undefined {
  const raw = rawRequestPath(url);
  return raw === undefined ? undefined : decodeRequestPath(raw);
}

/**
 * Fastify's `frameworkErrors` for an app that serves these routes. A URL the router cannot decode (bad
 * percent-encoding) never reaches a route, so without this a GET under /ocsp/ with one got Fastify's JSON
 * 400, which OCSP clients cannot read; it gets the malformedRequest answer every other bad request there
 * gets. Elsewhere on the app the answer is Fastify's own.
 */
export function ocspFrameworkErrors(error: FastifyError, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  if (request.url.startsWith('/ocsp/')) {
    return reply.code(200).headers({ 'content-type': MEDIA_TYPE, 'cache-control': 'no-store' }).send(MALFORMED);
  }
  const statusCode = error.statusCode ?? 400;
  return reply.code(statusCode).send({ error: 'Bad Request', code: error.code, message: error.message, statusCode });
}
