import { connect, type Socket } from 'node:net';
import t, { type Test } from 'tap';
import { loadConfig } from '../../../src/config/load-config.js';
import { isCaError } from '../../../src/core/errors.js';
import { composeForTest } from '../../helpers/runtime.js';

/**
 * The ACME listener answers every error with an RFC 8555 problem document, also those Node and Fastify
 * raise before any route runs (a URL that does not decode, headers too large, Transfer-Encoding with
 * Content-Length, a client too slow), and slow or greedy clients are bounded on both listeners: a trickled
 * body or header is cut within its limit + 1 s, and connections beyond the cap are closed at once. Short
 * limits here (headers 1 s, request 2 s, 4 connections) keep the test fast; raw sockets, because an HTTP
 * client would refuse to send most of this.
 */
const HEADERS_TIMEOUT_MS = 1000;
const REQUEST_TIMEOUT_MS = 2000;
const MAX_CONNECTIONS = 4;
const { chancery } = await composeForTest({
  env: {
    CHANCERY_HTTP_HEADERS_TIMEOUT_SECONDS: String(HEADERS_TIMEOUT_MS / 1000),
    CHANCERY_HTTP_REQUEST_TIMEOUT_SECONDS: String(REQUEST_TIMEOUT_MS / 1000),
    CHANCERY_HTTP_MAX_CONNECTIONS: String(MAX_CONNECTIONS),
  },
});
t.teardown(() => chancery.close());
const apps = await chancery.apps();
await apps.acme.listen({ host: '127.0.0.1', port: 0 });
await apps.public.listen({ host: '127.0.0.1', port: 0 });
const acmePort = (apps.acme.server.address() as { port: number }).port;
const publicPort = (apps.public.server.address() as { port: number }).port;

interface Exchange {
  /** Everything the server sent. */
  response: string;
  /** Milliseconds from the first byte sent until the server closed the connection; undefined if it did not. */
  closedAfterMs: number | undefined;
}

/**
 * Sends `head` at once, then `trickle` one byte every `everyMs` (up to `maxMs`), and waits for the server to
 * close the connection (up to `maxMs`).
 */
function exchange(port: number, head: string | Buffer, options: { trickle?: string; everyMs?: number; maxMs?: number } = {}): Promise<Exchange> {
  const maxMs = options.maxMs ?? 8000;
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let started = 0;
    let timer: NodeJS.Timeout | undefined;
    let trickled = 0;
    const finish = (closed: boolean): void => {
      clearInterval(timer);
      clearTimeout(deadline);
      socket.destroy();
      resolve({ response: Buffer.concat(chunks).toString('latin1'), closedAfterMs: closed ? performance.now() - started : undefined });
    };
    const deadline = setTimeout(() => finish(false), maxMs);
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('close', () => finish(true));
    socket.on('error', (error: NodeJS.ErrnoException) => (error.code === 'ECONNRESET' || error.code === 'EPIPE' ? undefined : reject(error)));
    socket.on('connect', () => {
      started = performance.now();
      socket.write(head);
      const trickle = options.trickle;
      if (trickle !== undefined) {
        timer = setInterval(() => {
          if (socket.destroyed || socket.writableEnded) return;
          socket.write(trickle[trickled++ % trickle.length]!);
        }, options.everyMs ?? 200);
      }
    });
  });
}

interface Parsed {
  status: number;
  headers: Record<string, string>;
  body: string;
}

function parse(response: string): Parsed {
  const end = response.indexOf('\r\n\r\n');
  const [statusLine, ...lines] = response.slice(0, end === -1 ? undefined : end).split('\r\n');
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  return { status: Number(/^HTTP\/1\.1 (\d{3})/.exec(statusLine ?? '')?.[1] ?? 0), headers, body: end === -1 ? '' : response.slice(end + 4) };
}

/** An RFC 8555 §6.7 problem document of type malformed with this status, and the directory link (§7.1). */
function assertProblem(t: Test, response: string, status: number, detail?: RegExp): void {
  const parsed = parse(response);
  t.equal(parsed.status, status, `HTTP ${status}`, { response: response.slice(0, 500) });
  t.equal(parsed.headers['content-type'], 'application/problem+json', 'a problem document');
  let body: { type?: string; status?: number; detail?: string } = {};
  try {
    body = JSON.parse(parsed.body) as typeof body;
  } catch {
    t.fail('the body is JSON', { body: parsed.body.slice(0, 200) });
  }
  t.equal(body.type, 'urn:ietf:params:acme:error:malformed');
  t.equal(body.status, status);
  if (detail) t.match(body.detail, detail);
  t.match(parsed.headers.link ?? '', /\/acme\/directory>;rel="index"/, 'Link rel="index"');
}

const POST_HEAD = (length: number): string =>
  `POST /acme/new-order HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/jose+json\r\nContent-Length: ${length}\r\n\r\n`;

await t.test('errors Node and Fastify raise before a route runs are problem documents', async (t) => {
  await t.test('fail/a path that does not percent-decode (FST_ERR_BAD_URL)', async (t) => {
    const { response } = await exchange(acmePort, 'GET /acme/chall/%ff HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n');
    assertProblem(t, response, 400, /percent-encoding/);
    const injected = await apps.acme.inject({ method: 'POST', url: '/acme/order/%c0%af', headers: { 'content-type': 'application/jose+json' }, payload: '{}' });
    t.equal(injected.statusCode, 400);
    t.equal(injected.headers['content-type'], 'application/problem+json');
    t.type(injected.headers['replay-nonce'], 'string', 'a POST gets a Replay-Nonce (RFC 8555 §6.5)');
  });
  await t.test('fail/headers over the size limit (431)', async (t) => {
    const { response, closedAfterMs } = await exchange(acmePort, `GET /acme/directory HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`);
    assertProblem(t, response, 431, /headers are larger/);
    t.ok(closedAfterMs !== undefined, 'connection closed');
  });
  await t.test('fail/Transfer-Encoding with Content-Length', async (t) => {
    const { response, closedAfterMs } = await exchange(
      acmePort,
      'POST /acme/new-order HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/jose+json\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n',
    );
    assertProblem(t, response, 400, /Transfer-Encoding and Content-Length/);
    t.ok(closedAfterMs !== undefined, 'connection closed');
  });
  await t.test('fail/not HTTP at all', async (t) => {
    const { response } = await exchange(acmePort, 'HELLO THERE\r\n\r\n');
    assertProblem(t, response, 400, /not valid HTTP/);
  });
  await t.test('fail/a path segment over the router limit', async (t) => {
    const { response } = await exchange(acmePort, `GET /acme/chall/${'x'.repeat(5000)} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`);
    const parsed = parse(response);
    t.equal(parsed.headers['content-type'], 'application/problem+json', `a problem document (HTTP ${parsed.status})`);
    t.ok(parsed.status >= 400 && parsed.status < 500, 'a 4xx');
  });
});

await t.test('slow clients are cut within their limit + 1 s', async (t) => {
  await t.test('fail/a body trickled a byte every 200 ms (ACME)', async (t) => {
    const { response, closedAfterMs } = await exchange(acmePort, POST_HEAD(1000), { trickle: 'x', everyMs: 200 });
    t.ok(closedAfterMs !== undefined && closedAfterMs <= REQUEST_TIMEOUT_MS + 1000, `closed after ${closedAfterMs?.toFixed(0)} ms`);
    t.ok(closedAfterMs !== undefined && closedAfterMs >= REQUEST_TIMEOUT_MS - 100, 'not before the limit');
    assertProblem(t, response, 408, /not received in time/);
  });
  await t.test('fail/headers trickled a byte every 200 ms (ACME)', async (t) => {
    const { response, closedAfterMs } = await exchange(acmePort, 'GET /acme/directory HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ', { trickle: 'abc', everyMs: 200 });
    t.ok(closedAfterMs !== undefined && closedAfterMs <= HEADERS_TIMEOUT_MS + 1000, `closed after ${closedAfterMs?.toFixed(0)} ms`);
    assertProblem(t, response, 408);
  });
  await t.test('fail/a connection that sends nothing (ACME)', async (t) => {
    const { closedAfterMs } = await exchange(acmePort, '');
    t.ok(closedAfterMs !== undefined && closedAfterMs <= HEADERS_TIMEOUT_MS + 1000, `closed after ${closedAfterMs?.toFixed(0)} ms`);
  });
  await t.test('fail/a body trickled a byte every 200 ms (public listener: OCSP POST)', async (t) => {
    const head = `POST /ocsp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/ocsp-request\r\nContent-Length: 1000\r\n\r\n`;
    const { closedAfterMs } = await exchange(publicPort, head, { trickle: '0', everyMs: 200 });
    t.ok(closedAfterMs !== undefined && closedAfterMs <= REQUEST_TIMEOUT_MS + 1000, `closed after ${closedAfterMs?.toFixed(0)} ms`);
  });
  await t.test('ok/a request within its limits is answered', async (t) => {
    const { response } = await exchange(acmePort, 'GET /acme/directory HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n');
    t.equal(parse(response).status, 200);
  });
});

/** Opens a connection and resolves once it is established. */
function open(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => resolve(socket));
    socket.on('error', reject);
  });
}

for (const [name, port] of [
  ['ACME', acmePort],
  ['public', publicPort],
] as const) {
  await t.test(`fail/a connection beyond http.maxConnections is closed at once (${name} listener)`, async (t) => {
    const held = await Promise.all(Array.from({ length: MAX_CONNECTIONS }, () => open(port)));
    t.teardown(() => held.forEach((socket) => socket.destroy()));
    await new Promise((resolve) => setTimeout(resolve, 100));
    const extra = await exchange(port, 'GET /livez HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n', { maxMs: 900 });
    t.ok(extra.closedAfterMs !== undefined, 'closed without waiting for the headers timeout');
    t.equal(extra.response, '', 'nothing answered');
    held.forEach((socket) => socket.destroy());
    await new Promise((resolve) => setTimeout(resolve, 100));
    const after = await exchange(port, `GET ${name === 'ACME' ? '/acme/directory' : '/livez'} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`);
    t.equal(parse(after.response).status, 200, 'served again once connections are released');
  });
}

await t.test('fail/a headers timeout longer than the request timeout stops start-up', async (t) => {
  try {
    loadConfig({ env: { CHANCERY_DATA_DIR: '/tmp/unused', CHANCERY_HTTP_HEADERS_TIMEOUT_SECONDS: '60', CHANCERY_HTTP_REQUEST_TIMEOUT_SECONDS: '30' } });
    t.fail('accepted');
  } catch (error) {
    t.ok(isCaError(error, 'badConfig'));
    t.match((error as Error).message, /http\.headersTimeoutSeconds \(CHANCERY_HTTP_HEADERS_TIMEOUT_SECONDS\): must not exceed http\.requestTimeoutSeconds/);
  }
});
