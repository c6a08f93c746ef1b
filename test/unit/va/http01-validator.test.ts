import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import t, { type Test } from 'tap';
import type { CaErrorKind } from '../../../src/core/errors.js';
import type { Identifier } from '../../../src/core/identifier.js';
import { createValidationAuthority } from '../../../src/va/validation-authority.js';
import type { ValidationOutcome, ValidationReach } from '../../../src/va/validator.js';
import { startDnsServer } from '../../helpers/dns-server.js';

/**
 * http-01 against a real responder on 127.0.0.1 (RFC 8555 §8.3). Names resolve to 127.0.0.1 either through
 * `resolveAddress` or through the test DNS server configured as the resolver, as in production.
 */

type Handler = (req: http.IncomingMessage, res: http.ServerResponse) => void;
let handler: Handler = (_req, res) => res.writeHead(500).end();
const seen: { host: string | undefined; url: string | undefined }[] = [];
const server = http.createServer((req, res) => {
  seen.push({ host: req.headers.host, url: req.url });
  handler(req, res);
});
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
const port = (server.address() as AddressInfo).port;
t.teardown(() => {
  server.closeAllConnections();
  server.close();
});

// A port with nothing listening: bind, note the port, close.
const refused = http.createServer();
await new Promise<void>((resolve) => refused.listen(0, '127.0.0.1', resolve));
const refusedPort = (refused.address() as AddressInfo).port;
await new Promise<void>((resolve) => refused.close(() => resolve()));

const dns = await startDnsServer({ a: new Map([['web.test', '127.0.0.1']]) });
t.teardown(() => dns.close());

function challenge(): { token: string; keyAuthorization: string } {
  const token = randomBytes(32).toString('base64url');
  return { token, keyAuthorization: `${token}.${randomBytes(32).toString('base64url')}` };
}

const reach = (overrides: Partial<ValidationReach> = {}): ValidationReach => ({
  http01Port: port,
  tlsAlpn01Port: 443,
  dnsResolvers: [],
  timeoutMs: 3000,
  ...overrides,
});
const toLoopback = async (): Promise<string> => '127.0.0.1';

interface Case {
  name: string;
  identifier?: Identifier;
  reach?: Partial<ValidationReach>;
  /** Use the test DNS server instead of resolveAddress. */
  viaDns?: boolean;
  handler: (keyAuthorization: string, token: string) => Handler;
  valid: boolean;
  kind?: CaErrorKind;
  retryable?: boolean;
  detail?: RegExp;
  check?: (t: Test, token: string) => void;
}

const serve = (body: string): Handler => (req, res) => res.writeHead(200, { 'Content-Type': 'text/plain' }).end(body);

const cases: Case[] = [
  {
    name: 'ok/the responder returns the key authorization',
    handler: (ka, token) => (req, res) => (req.url === `/.well-known/acme-challenge/${token}` ? serve(ka)(req, res) : res.writeHead(404).end()),
    valid: true,
    check: (t, token) => {
      t.same(seen.at(-1), { host: `web.test:${port}`, url: `/.well-known/acme-challenge/${token}` }, 'Host names the identifier and the non-default port');
    },
  },
  {
    name: 'ok/trailing whitespace is ignored (RFC 8555 §8.3)',
    handler: (ka) => serve(`${ka}\r\n \t\n`),
    valid: true,
  },
  {
    name: 'ok/name resolved through the configured DNS resolver',
    viaDns: true,
    handler: (ka) => serve(ka),
    valid: true,
    check: (t) => t.ok(dns.queries.includes('A web.test'), 'asked the configured resolver for A web.test'),
  },
  {
    name: 'ok/ip identifier: connect to the address, Host is the address (RFC 8738 §5)',
    identifier: { type: 'ip', value: '127.0.0.1' },
    handler: (ka) => serve(ka),
    valid: true,
    check: (t) => t.equal(seen.at(-1)?.host, `127.0.0.1:${port}`),
  },
  {
    name: 'ok/relative redirect on the same host and port is followed',
    handler: (ka, token) => (req, res) => {
      if (req.url === `/.well-known/acme-challenge/${token}`) res.writeHead(302, { Location: `/central/${token}` }).end();
      else if (req.url === `/central/${token}`) serve(ka)(req, res);
      else res.writeHead(404).end();
    },
    valid: true,
  },
  {
    name: 'ok/absolute redirect to the same host:port is followed',
    handler: (ka, token) => (req, res) => {
      if (req.url?.startsWith('/.well-known/')) res.writeHead(301, { Location: `http://web.test:${port}/moved/${token}` }).end();
      else serve(ka)(req, res);
    },
    valid: true,
  },
  {
    // The body may come from any host a redirect reached; the client reads this problem (RFC 8555 §10.2).
    name: 'fail/wrong key authorization: its length is said, its text never',
    handler: () => serve('not-the-key-authorization'),
    valid: false,
    kind: 'incorrectResponse',
    retryable: false,
    detail: /returned 25 bytes \(after trailing whitespace\) that do not match the key authorization \(\d+ bytes\)$/,
  },
  {
    name: 'fail/a long wrong body: its length only',
    handler: () => serve('x'.repeat(5000)),
    valid: false,
    kind: 'incorrectResponse',
    detail: /^(?!.*x{16}).*returned 5000 bytes /,
  },
  {
    name: 'fail/404',
    handler: () => (_req, res) => res.writeHead(404).end('nope'),
    valid: false,
    kind: 'unauthorized',
    retryable: false,
    detail: /answered HTTP 404/,
  },
  {
    name: 'fail/connection refused is retryable',
    reach: { http01Port: refusedPort },
    handler: () => serve('unused'),
    valid: false,
    kind: 'connection',
    retryable: true,
    detail: /connection refused/,
  },
  {
    name: 'fail/a responder that never answers times out, retryable',
    reach: { timeoutMs: 300 },
    handler: () => () => undefined,
    valid: false,
    kind: 'connection',
    retryable: true,
    detail: /timed out after 300 ms/,
  },
  {
    name: 'fail/a huge body is cut off at 8 KiB',
    handler: () => (_req, res) => {
      res.writeHead(200, { 'Content-Type': 'text/plain' });
      const chunk = Buffer.alloc(64 * 1024, 0x61);
      let sent = 0;
      const pump = (): void => {
        while (sent < 64 * 1024 * 1024 && !res.destroyed) {
          sent += chunk.length;
          if (!res.write(chunk)) {
            res.once('drain', pump);
            return;
          }
        }
        res.end();
      };
      res.on('error', () => undefined);
      pump();
    },
    valid: false,
    kind: 'incorrectResponse',
    detail: /larger than 8192 bytes/,
  },
  {
    name: 'fail/redirect to another port is not followed',
    handler: (_ka, token) => (_req, res) => res.writeHead(302, { Location: `http://web.test:${refusedPort}/${token}` }).end(),
    valid: false,
    kind: 'connection',
    retryable: false,
    detail: /only ports 80 \(http\) and 443 \(https\) are followed/,
  },
  {
    name: 'fail/redirect to another scheme is not followed',
    handler: () => (_req, res) => res.writeHead(302, { Location: 'ftp://web.test/file' }).end(),
    valid: false,
    kind: 'connection',
    detail: /only http and https are followed/,
  },
  {
    name: 'fail/redirect loop stops after 10 redirects',
    handler: () => (req, res) => res.writeHead(302, { Location: `${req.url ?? '/'}x` }).end(),
    valid: false,
    kind: 'connection',
    detail: /too many redirects \(more than 10\)/,
    check: (t) => t.equal(seen.length, 11, 'the first request and 10 redirects, no more'),
  },
  {
    name: 'fail/name without an address (NXDOMAIN) is a dns problem',
    identifier: { type: 'dns', value: 'missing.test' },
    viaDns: true,
    handler: () => serve('unused'),
    valid: false,
    kind: 'dns',
    retryable: true,
    detail: /no A or AAAA record for missing\.test/,
  },
  {
    name: 'fail/wildcard is refused for http-01',
    identifier: { type: 'dns', value: '*.web.test' },
    handler: () => serve('unused'),
    valid: false,
    kind: 'malformed',
    detail: /use dns-01/,
  },
];

for (const c of cases) {
  await t.test(c.name, async (t) => {
    const { token, keyAuthorization } = challenge();
    handler = c.handler(keyAuthorization, token);
    seen.length = 0;
    const va = createValidationAuthority(
      reach({ ...(c.viaDns ? { dnsResolvers: [dns.resolver] } : {}), ...c.reach }),
      c.viaDns ? {} : { resolveAddress: toLoopback },
    );
    const outcome: ValidationOutcome = await va.validate({
      type: 'http-01',
      identifier: c.identifier ?? { type: 'dns', value: 'web.test' },
      token,
      keyAuthorization,
    });
    t.equal(outcome.valid, c.valid, outcome.valid ? 'valid' : `invalid: ${outcome.problem.kind} ${outcome.problem.detail}`);
    if (!outcome.valid) {
      if (c.kind) t.equal(outcome.problem.kind, c.kind);
      if (c.retryable !== undefined) t.equal(outcome.retryable, c.retryable);
      if (c.detail) t.match(outcome.problem.detail, c.detail);
    }
    c.check?.(t, token);
  });
}

// IPv6 loopback may be missing in some containers; the case then skips and says why.
const v6 = http.createServer((req, res) => {
  seen.push({ host: req.headers.host, url: req.url });
  handler(req, res);
});
const v6Bound = await new Promise<boolean>((resolve) => {
  v6.once('error', () => resolve(false));
  v6.listen(0, '::1', () => resolve(true));
});
t.teardown(() => v6.close());

await t.test('ok/IPv6 ip identifier: bracketed Host header (RFC 8738 §5)', { skip: v6Bound ? false : '::1 is not available here' }, async (t) => {
  const v6Port = (v6.address() as AddressInfo).port;
  const { token, keyAuthorization } = challenge();
  handler = serve(keyAuthorization);
  seen.length = 0;
  const va = createValidationAuthority(reach({ http01Port: v6Port }));
  const outcome = await va.validate({ type: 'http-01', identifier: { type: 'ip', value: '::1' }, token, keyAuthorization });
  t.equal(outcome.valid, true, outcome.valid ? 'valid' : outcome.problem.detail);
  t.equal(seen.at(-1)?.host, `[::1]:${v6Port}`);
});

// Port 80 needs privileges (or may be taken); the case then skips and says why.
const port80 = http.createServer((req, res) => {
  seen.push({ host: req.headers.host, url: req.url });
  handler(req, res);
});
const port80Bound = await new Promise<boolean>((resolve) => {
  port80.once('error', () => resolve(false));
  port80.listen(80, '127.0.0.1', () => resolve(true));
});
t.teardown(() => port80.close());

await t.test('ok/redirect to port 80 is followed; Host then carries no port', { skip: port80Bound ? false : 'cannot listen on 127.0.0.1:80 here' }, async (t) => {
  const { token, keyAuthorization } = challenge();
  handler = (req, res) => {
    if (req.headers.host === `web.test:${port}`) res.writeHead(302, { Location: `http://web.test/.well-known/acme-challenge/${token}` }).end();
    else if (req.headers.host === 'web.test') serve(keyAuthorization)(req, res);
    else res.writeHead(400).end(`unexpected Host ${req.headers.host ?? ''}`);
  };
  seen.length = 0;
  const va = createValidationAuthority(reach(), { resolveAddress: toLoopback });
  const outcome = await va.validate({ type: 'http-01', identifier: { type: 'dns', value: 'web.test' }, token, keyAuthorization });
  t.equal(outcome.valid, true, outcome.valid ? 'valid' : outcome.problem.detail);
  t.same(
    seen.map((s) => s.host),
    [`web.test:${port}`, 'web.test'],
  );
});
