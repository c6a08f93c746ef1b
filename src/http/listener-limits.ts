import { STATUS_CODES, type ServerOptions } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyInstance } from 'fastify';
import type { Config } from '../config/config.js';

/**
 * What one slow or greedy client may hold of a listener (docs/security.md "HTTP limits"). Without them a
 * client trickling a body one byte at a time keeps a request open for as long as it likes (Fastify turns
 * Node's 300 s request timeout off), and enough such clients hold every socket the process may open.
 */
export interface HttpLimits {
  /** The request line and headers must have arrived this long after the request started (http.headersTimeoutSeconds). */
  headersTimeoutMs: number;
  /** The whole request, body included, must have arrived this long after it started (http.requestTimeoutSeconds). */
  requestTimeoutMs: number;
  /** Open connections per listener; Node closes any beyond it as soon as it is accepted (http.maxConnections). */
  maxConnections: number;
}

/**
 * How often Node looks for requests past either timeout. Its default (30 s) would let a trickle run up to
 * 30 s past its limit; twice a second bounds the overrun by 0.5 s for the price of a walk over the list of
 * connections still receiving a request.
 */
export const TIMEOUT_CHECK_INTERVAL_MS = 500;

type NodeServerLimits = Pick<ServerOptions, 'headersTimeout' | 'requestTimeout' | 'connectionsCheckingInterval'>;

/** The options Node's http.createServer / https.createServer take for the timeouts. */
function serverTimeouts(limits: HttpLimits): NodeServerLimits {
  return { headersTimeout: limits.headersTimeoutMs, requestTimeout: limits.requestTimeoutMs, connectionsCheckingInterval: TIMEOUT_CHECK_INTERVAL_MS };
}

/**
 * Fastify options carrying the limits: the timeouts where Fastify creates the server (`http`, or inside the
 * `https` options, which https.createServer reads as well), and `requestTimeout` once more because Fastify
 * assigns its own (default 0: off) to the server after creating it. `return503OnClosing: false`: while the
 * process drains (SIGTERM), a request that arrives on a connection that is already open is served, with
 * `Connection: close`, instead of Fastify's JSON 503.
 */
export function limitOptions<H extends object>(
  limits: HttpLimits | undefined,
  https?: H,
): { requestTimeout?: number; http?: NodeServerLimits; https?: H & NodeServerLimits; return503OnClosing: false } {
  if (limits === undefined) return { return503OnClosing: false, ...(https ? { https: https as H & NodeServerLimits } : {}) };
  const timeouts = serverTimeouts(limits);
  return { requestTimeout: limits.requestTimeoutMs, return503OnClosing: false, ...(https ? { https: { ...https, ...timeouts } } : { http: timeouts }) };
}

/** What Fastify's options cannot say: the connection cap is a property of the server once created. */
export function applyConnectionLimit(app: FastifyInstance, limits: HttpLimits | undefined): void {
  if (limits !== undefined) app.server.maxConnections = limits.maxConnections;
}

/** Node's error for bytes that are not an HTTP request, as it reaches a `clientError` listener. */
export interface ClientError extends Error {
  code?: string;
  /** llhttp's description of what did not parse (its own text, never the client's bytes). */
  reason?: string;
}

/** The status a connection-level error answers with (RFC 9110 §15.5, RFC 6585 §5), and a detail a client can act on. */
export function describeClientError(error: ClientError): { status: number; detail: string } {
  switch (error.code) {
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return { status: 408, detail: 'the request was not received in time; send it at once, body included' };
    case 'HPE_HEADER_OVERFLOW':
      return { status: 431, detail: 'the request headers are larger than the server accepts' };
    default: {
      const reason = typeof error.reason === 'string' ? error.reason.slice(0, 100) : (error.code ?? 'unparsable');
      // Request smuggling's classic shape: the two framings disagree, so the request is refused (RFC 9112 §6.3).
      if (/Transfer-Encoding/i.test(reason) && /Content-Length/i.test(reason)) {
        return { status: 400, detail: 'a request must not carry both Transfer-Encoding and Content-Length (RFC 9112 §6.3)' };
      }
      return { status: 400, detail: `the request is not valid HTTP/1.1: ${reason}` };
    }
  }
}

/**
 * Writes a complete response straight to a connection whose request Node could not parse, then closes it.
 * Nothing is written when a response has already begun on it (that would corrupt it for the client); the
 * connection is destroyed after a second at the latest, whether or not the client reads.
 */
export function writeRawResponse(socket: Socket, response: { status: number; headers: Record<string, string | string[]>; body: Buffer }): void {
  const inFlight = (socket as Socket & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
  if (socket.destroyed) return;
  if (!socket.writable || inFlight?.headersSent === true) {
    socket.destroy();
    return;
  }
  const lines = [`HTTP/1.1 ${response.status} ${STATUS_CODES[response.status] ?? 'Error'}`];
  for (const [name, value] of Object.entries(response.headers)) {
    for (const one of Array.isArray(value) ? value : [value]) lines.push(`${name}: ${one}`);
  }
  lines.push(`content-length: ${response.body.length}`, 'connection: close', '', '');
  const timer = setTimeout(() => socket.destroy(), 1000);
  timer.unref();
  socket.end(Buffer.concat([Buffer.from(lines.join('\r\n'), 'latin1'), response.body]), () => {
    clearTimeout(timer);
    socket.destroy();
  });
}

/** The limits of the `http.*` settings. */
export function httpLimits(settings: Config['http']): HttpLimits {
  return {
    headersTimeoutMs: settings.headersTimeoutSeconds * 1000,
    requestTimeoutMs: settings.requestTimeoutSeconds * 1000,
    maxConnections: settings.maxConnections,
  };
}
