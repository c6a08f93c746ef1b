import http from 'node:http';
import { isIP } from 'node:net';
import tls from 'node:tls';
import { ValidationFailure, createAddressResolver, hostForUrl, quote, runAttempt, socketFailure, type ResolveAddress } from './attempt.js';
import { createDialer, tcpConnector, type Connector, type Dialer } from './dial.js';
import { createNetworkPolicy, type NetworkPolicy } from './network-policy.js';
import type { ValidationOutcome, ValidationRequest, Validator } from './validator.js';

/** Boulder's practice: a key authorization is ~87 bytes; anything much larger is not one. */
export const HTTP01_BODY_LIMIT = 8 * 1024;
/** RFC 8555 §8.3 lets the server follow redirects; like browsers and Boulder, at most 10. */
export const HTTP01_MAX_REDIRECTS = 10;

export interface Http01Options {
  /** Where the first request goes: 80 per RFC 8555 §8.3, another port only in test set-ups (CHANCERY_HTTP01_PORT). */
  port: number;
  timeoutMs: number;
  /** CHANCERY_DNS_RESOLVERS; empty means the system resolver. */
  dnsResolvers?: string[];
  /** Overrides DNS for names (never for ip identifiers). */
  resolveAddress?: ResolveAddress;
  bodyLimit?: number;
  maxRedirects?: number;
  /** What may be contacted, on the first request and every redirect; the default policy otherwise. */
  policy?: NetworkPolicy;
  /** How connections are opened (tests count them); plain TCP otherwise. */
  connector?: Connector;
}

interface Target {
  url: URL;
  /** Host name or IP from the URL (brackets removed). */
  host: string;
  port: number;
}

const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);

/**
 * http-01 (RFC 8555 §8.3): GET http://<identifier>/.well-known/acme-challenge/<token> and compare the body
 * with the key authorization. For an ip identifier the address itself is the host, DNS is skipped and the
 * Host header carries the address (RFC 8738 §4, §5).
 */
export function createHttp01Validator(options: Http01Options): Validator {
  const bodyLimit = options.bodyLimit ?? HTTP01_BODY_LIMIT;
  const maxRedirects = options.maxRedirects ?? HTTP01_MAX_REDIRECTS;
  const dial: Dialer = createDialer({
    resolve: createAddressResolver(options),
    policy: options.policy ?? createNetworkPolicy(),
    connector: options.connector ?? tcpConnector,
  });

  return {
    validate: (request: ValidationRequest): Promise<ValidationOutcome> =>
      runAttempt(options.timeoutMs, async (signal) => {
        const host = request.identifier.value;
        let first: URL;
        try {
          first = new URL(`http://${hostForUrl(host)}:${options.port}/.well-known/acme-challenge/${request.token}`);
        } catch {
          throw new ValidationFailure('malformed', `cannot form an http-01 URL for ${quote(host)}`, false);
        }
        const origin: Target = { url: first, host, port: options.port };
        let target = origin;
        for (let hop = 0; ; hop += 1) {
          const response = await fetchOnce(target, dial, bodyLimit, options.timeoutMs, signal);
          if (REDIRECT_STATUSES.has(response.status)) {
            if (hop >= maxRedirects) {
              throw new ValidationFailure('connection', `too many redirects (more than ${maxRedirects}) from ${first.href}`, false);
            }
            target = redirectTarget(target, response.location, origin);
            continue;
          }
          if (response.status !== 200) {
            throw new ValidationFailure('unauthorized', `${target.url.href} answered HTTP ${response.status}, expected 200 with the key authorization`, false);
          }
          // RFC 8555 §8.3: "The server SHOULD ignore whitespace characters at the end of the body."
          const body = response.body.trimEnd();
          if (body !== request.keyAuthorization) {
            // The body is never quoted back: after redirects it may come from any host the policy allows
            // (an internal service), and the problem is read by whoever placed the order. Its size is enough
            // for a client to tell an empty, truncated or foreign answer apart.
            throw new ValidationFailure(
              'incorrectResponse',
              `${target.url.href} returned ${Buffer.byteLength(body, 'utf8')} bytes (after trailing whitespace) that do not match the key authorization (${Buffer.byteLength(request.keyAuthorization, 'utf8')} bytes)`,
              false,
            );
          }
          return { valid: true, detail: `${target.url.href} returned the key authorization` };
        }
      }),
  };
}

/**
 * Where a redirect may lead. RFC 8555 §10.2 warns that a validation request can be steered; like Boulder we
 * follow only http and https on their default ports 80 and 443, so a redirect cannot probe arbitrary services.
 * The one exception is the configured non-default http-01 port: a redirect back to the same host and port
 * as the first request stays within what the client was already asked to serve. Where the redirect may
 * connect is then up to the network policy, checked by the dialer on every hop like the first request.
 */
function redirectTarget(from: Target, location: string | undefined, origin: Target): Target {
  if (!location) {
    throw new ValidationFailure('connection', `${from.url.href} redirected without a Location header`, false);
  }
  let url: URL;
  try {
    url = new URL(location, from.url);
  } catch {
    throw new ValidationFailure('connection', `${from.url.href} redirected to an invalid URL ${quote(location, 128)}`, false);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new ValidationFailure('connection', `redirect to ${quote(url.href, 128)}: only http and https are followed`, false);
  }
  if (url.username || url.password) {
    throw new ValidationFailure('connection', `redirect to ${quote(url.href, 128)}: URLs with credentials are not followed`, false);
  }
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  const port = url.port === '' ? (url.protocol === 'https:' ? 443 : 80) : Number(url.port);
  const defaultPort = (url.protocol === 'http:' && port === 80) || (url.protocol === 'https:' && port === 443);
  const sameAsOrigin = url.protocol === 'http:' && port === origin.port && host.toLowerCase() === origin.host.toLowerCase();
  if (!defaultPort && !sameAsOrigin) {
    throw new ValidationFailure('connection', `redirect to ${quote(url.href, 128)}: only ports 80 (http) and 443 (https) are followed`, false);
  }
  return { url, host, port };
}

interface Answer {
  status: number;
  location: string | undefined;
  body: string;
}

/**
 * One request without following redirects; the body is read only for 200 and never beyond `bodyLimit`. The
 * dialer checks the target against the network policy and the request goes over its connection to the
 * checked address: no agent, so nothing else opens a socket or resolves the name again.
 */
async function fetchOnce(target: Target, dial: Dialer, bodyLimit: number, timeoutMs: number, signal: AbortSignal): Promise<Answer> {
  const described = target.url.href;
  const checked = await dial(target.host, target.port, signal, described);
  const secure = target.url.protocol === 'https:';
  const defaultPort = secure ? 443 : 80;
  // The Host header names the identifier (RFC 7230 §5.4), with the port only when it is not the default.
  const hostHeader = target.port === defaultPort ? hostForUrl(target.host) : `${hostForUrl(target.host)}:${target.port}`;
  const requestOptions: http.RequestOptions = {
    host: checked.address,
    port: checked.port,
    method: 'GET',
    path: `${target.url.pathname}${target.url.search}`,
    headers: { Host: hostHeader, Accept: '*/*', 'User-Agent': 'Chancery-VA (http-01)', Connection: 'close' },
    maxHeaderSize: 16 * 1024,
    signal,
    // A redirect to https may present any certificate: what proves control is the body, not the
    // certificate, and the client may be setting that certificate up right now (Boulder does the same).
    createConnection: () =>
      secure
        ? tls.connect({ socket: checked.open(), rejectUnauthorized: false, ...(isIP(target.host) === 0 ? { servername: target.host } : {}) })
        : checked.open(),
  };
  return new Promise<Answer>((resolvePromise, reject) => {
    const fail = (error: unknown): void => reject(socketFailure(error, described, timeoutMs));
    const request = http.request(requestOptions, (response) => {
      const status = response.statusCode ?? 0;
      const location = response.headers.location;
      if (status !== 200) {
        response.destroy();
        resolvePromise({ status, location, body: '' });
        return;
      }
      const chunks: Buffer[] = [];
      let size = 0;
      response.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > bodyLimit) {
          // Stop reading at once: the limit bounds memory and time, whatever the responder sends.
          // Reject before destroying, since destroying reports the reset synchronously.
          reject(new ValidationFailure('incorrectResponse', `${described} returned a body larger than ${bodyLimit} bytes; a key authorization is far shorter`, false));
          response.destroy();
          return;
        }
        chunks.push(chunk);
      });
      response.on('end', () => resolvePromise({ status, location, body: Buffer.concat(chunks).toString('utf8') }));
      response.on('error', fail);
      response.on('aborted', () => fail(Object.assign(new Error('response aborted'), { code: 'ECONNRESET' })));
    });
    request.on('error', fail);
    request.end();
  });
}
