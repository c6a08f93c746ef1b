import { randomBytes } from 'node:crypto';
import http from 'node:http';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import t from 'tap';
import type { CaErrorKind } from '../../../src/core/errors.js';
import type { Identifier } from '../../../src/core/identifier.js';
import type { ResolveAddress } from '../../../src/va/attempt.js';
import { tcpConnector, type Connector } from '../../../src/va/dial.js';
import { createNetworkPolicy, type NetworkPolicySettings } from '../../../src/va/network-policy.js';
import { createValidationAuthority } from '../../../src/va/validation-authority.js';
import type { ValidationOutcome } from '../../../src/va/validator.js';
import { startDnsServer } from '../../helpers/dns-server.js';
import { installLoopbackGuard, isLoopbackHost } from '../../helpers/loopback-guard.js';

/**
 * http-01 and tls-alpn-01 under the validation network policy (RFC 8555 §10.2). Every connection goes through
 * a connector that records it: a denied address must be refused with zero attempts, before any packet. Only
 * loopback is ever contacted; "denied" addresses (169.254.169.254, 10.x, ...) appear only as DNS answers,
 * identifiers and redirect targets, and the connector — and, beneath it, a guard on net.Socket#connect —
 * refuse anything off loopback should the policy ever let one through.
 */
const guard = installLoopbackGuard();
t.teardown(() => guard.uninstall());

const attempts: string[] = [];
const offLoopback: string[] = [];
const connector: Connector = {
  connect(target) {
    attempts.push(`${target.address}:${target.port}`);
    if (!isLoopbackHost(target.address)) {
      offLoopback.push(target.address);
      throw new Error(`test connector: refused to connect to ${target.address}`);
    }
    return tcpConnector.connect(target);
  },
};

// The http-01 responder.
type Handler = (req: http.IncomingMessage, res: http.ServerResponse) => void;
let handler: Handler = (_req, res) => res.writeHead(500).end();
const seen: string[] = [];
const server = http.createServer((req, res) => {
  seen.push(`${req.headers.host ?? ''} ${req.url ?? ''}`);
  handler(req, res);
});
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
const port = (server.address() as AddressInfo).port;
t.teardown(() => {
  server.closeAllConnections();
  server.close();
});

// A tls-alpn-01 "responder" that accepts TCP and hangs up: enough to see where the validator connected.
const hangUp = createNetServer((socket) => socket.destroy());
await new Promise<void>((resolve) => hangUp.listen(0, '127.0.0.1', resolve));
const tlsPort = (hangUp.address() as AddressInfo).port;
t.teardown(() => hangUp.close());

const dns = await startDnsServer({
  a: new Map([
    ['web.test', '127.0.0.1'],
    ['meta.test', '169.254.169.254'],
    ['mapped-meta.test', '::ffff:169.254.169.254'],
  ]),
});
t.teardown(() => dns.close());

const serve = (body: string): Handler => (_req, res) => res.writeHead(200, { 'Content-Type': 'text/plain' }).end(body);
const redirect = (location: string): Handler => (_req, res) => res.writeHead(302, { Location: location }).end();
const noResolution: ResolveAddress = async (name) => {
  throw new Error(`resolved ${name}: an ip identifier must not be resolved`);
};

interface Case {
  name: string;
  type?: 'http-01' | 'tls-alpn-01';
  identifier?: Identifier;
  policy?: NetworkPolicySettings;
  /** Addresses the name resolves to (resolveAddress); 'dns' uses the loopback DNS server. Default 127.0.0.1. */
  resolve?: readonly string[] | 'dns' | 'none';
  handler?: (keyAuthorization: string, token: string) => Handler;
  valid: boolean;
  kind?: CaErrorKind;
  detail?: RegExp;
  /** Text that must not appear in the problem detail. */
  notInDetail?: string;
  /** The exact connections expected, as address:port. */
  attempts: string[];
}

const loop = `127.0.0.1:${port}`;

const cases: Case[] = [
  {
    name: 'ok/http-01 connects once, to the address that was checked',
    handler: (ka) => serve(ka),
    valid: true,
    attempts: [loop],
  },
  {
    name: 'ok/of a denied and an allowed address, only the allowed one is contacted',
    resolve: ['169.254.169.254', '127.0.0.1'],
    handler: (ka) => serve(ka),
    valid: true,
    attempts: [loop],
  },
  {
    name: 'fail/ip identifier 169.254.169.254 is refused as an identifier, zero attempts',
    identifier: { type: 'ip', value: '169.254.169.254' },
    resolve: 'none',
    valid: false,
    kind: 'rejectedIdentifier',
    detail: /validation network policy refuses 169\.254\.169\.254: 169\.254\.169\.254 is always denied: 169\.254\.0\.0\/16/,
    attempts: [],
  },
  {
    name: 'fail/ip identifier ::ffff:169.254.169.254 is judged as its IPv4 address, zero attempts',
    identifier: { type: 'ip', value: '::ffff:169.254.169.254' },
    resolve: 'none',
    valid: false,
    kind: 'rejectedIdentifier',
    detail: /IPv4 169\.254\.169\.254\) is always denied/,
    attempts: [],
  },
  {
    name: 'fail/a name resolving only to a denied address (DNS A 169.254.169.254), zero attempts',
    identifier: { type: 'dns', value: 'meta.test' },
    resolve: 'dns',
    valid: false,
    kind: 'connection',
    detail: new RegExp(`the validation network policy refuses to connect to any address of meta\\.test on port ${port}: 169\\.254\\.169\\.254 is always denied`),
    attempts: [],
  },
  {
    name: 'fail/a name whose AAAA is ::ffff:169.254.169.254, zero attempts',
    identifier: { type: 'dns', value: 'mapped-meta.test' },
    resolve: 'dns',
    valid: false,
    kind: 'connection',
    detail: /::ffff:(a9fe:a9fe|169\.254\.169\.254) \(IPv4 169\.254\.169\.254\) is always denied/,
    attempts: [],
  },
  {
    name: 'fail/a name resolving into denyNetworks, zero attempts',
    policy: { denyNetworks: ['10.9.0.0/16'] },
    resolve: ['10.9.0.1'],
    valid: false,
    kind: 'connection',
    detail: /10\.9\.0\.1 is denied by validation\.denyNetworks \(10\.9\.0\.0\/16\)/,
    attempts: [],
  },
  {
    name: 'fail/a name resolving outside allowNetworks, zero attempts',
    policy: { allowNetworks: ['10.0.0.0/8'] },
    resolve: ['192.0.2.1'],
    valid: false,
    kind: 'connection',
    detail: /outside validation\.allowNetworks/,
    attempts: [],
  },
  {
    name: 'fail/loopback when allowLoopback is false, zero attempts',
    policy: { allowLoopback: false },
    valid: false,
    kind: 'connection',
    detail: /127\.0\.0\.1 is loopback and validation\.allowLoopback is false/,
    attempts: [],
  },
  {
    name: "fail/http-01 aimed at Chancery's own listener, zero attempts",
    policy: { ownListeners: () => [{ name: 'ACME', host: '127.0.0.1', port }] },
    valid: false,
    kind: 'connection',
    detail: new RegExp(`127\\.0\\.0\\.1 port ${port} is Chancery's own ACME listener`),
    attempts: [],
  },
  {
    name: 'fail/redirect to http://169.254.169.254/ is refused before connect',
    handler: () => redirect('http://169.254.169.254/latest/meta-data/iam/security-credentials/'),
    valid: false,
    kind: 'connection',
    detail: /http:\/\/169\.254\.169\.254\/latest\/meta-data\/iam\/security-credentials\/: the validation network policy refuses to connect to 169\.254\.169\.254:80: 169\.254\.169\.254 is always denied/,
    attempts: [loop],
  },
  {
    name: 'fail/redirect to http://[::ffff:a9fe:a9fe]/ is refused before connect',
    handler: () => redirect('http://[::ffff:a9fe:a9fe]/latest/meta-data/'),
    valid: false,
    kind: 'connection',
    detail: /refuses to connect to \[::ffff:a9fe:a9fe\]:80: ::ffff:a9fe:a9fe \(IPv4 169\.254\.169\.254\) is always denied/,
    attempts: [loop],
  },
  {
    name: 'fail/redirect to https://[fd00:ec2::254]/ is refused before connect',
    handler: () => redirect('https://[fd00:ec2::254]/latest/api/token'),
    valid: false,
    kind: 'connection',
    detail: /fd00:ec2::254 is always denied: fd00:ec2::254\/128 is the AWS EC2 instance metadata service/,
    attempts: [loop],
  },
  {
    name: 'fail/redirect into denyNetworks is refused before connect',
    policy: { denyNetworks: ['10.0.0.0/8'] },
    handler: () => redirect('http://10.0.0.1/admin'),
    valid: false,
    kind: 'connection',
    detail: /10\.0\.0\.1 is denied by validation\.denyNetworks/,
    attempts: [loop],
  },
  {
    name: 'fail/redirect to a name resolving to a denied address is refused before connect',
    resolve: 'dns',
    handler: () => redirect('http://meta.test/latest/meta-data/'),
    valid: false,
    kind: 'connection',
    detail: /any address of meta\.test on port 80: 169\.254\.169\.254 is always denied/,
    attempts: [loop],
  },
  {
    name: "fail/redirect to Chancery's own listener on port 80 is refused before connect",
    policy: { ownListeners: () => [{ name: 'public', host: '0.0.0.0', port: 80 }] },
    handler: () => redirect('http://127.0.0.1/crl/root.crl'),
    valid: false,
    kind: 'connection',
    detail: /127\.0\.0\.1 port 80 is Chancery's own public listener \(bound to 0\.0\.0\.0:80\)/,
    attempts: [loop],
  },
  {
    name: 'fail/a wrong body is not echoed: its length and that it did not match',
    handler: () => serve('INTERNAL-SERVICE-SECRET'),
    valid: false,
    kind: 'incorrectResponse',
    detail: /returned 23 bytes \(after trailing whitespace\) that do not match the key authorization \(\d+ bytes\)/,
    notInDetail: 'INTERNAL-SERVICE-SECRET',
    attempts: [loop],
  },
  {
    name: 'fail/a wrong body behind a redirect to an internal path is not echoed',
    handler: (_ka, token) => (req, res) => {
      if (req.url === `/.well-known/acme-challenge/${token}`) redirect('/internal/secret')(req, res);
      else serve('INTERNAL-SERVICE-SECRET\n')(req, res);
    },
    valid: false,
    kind: 'incorrectResponse',
    detail: /\/internal\/secret returned 23 bytes/,
    notInDetail: 'SECRET',
    attempts: [loop, loop],
  },
  {
    name: 'ok/tls-alpn-01 goes through the connector, to the checked address only',
    type: 'tls-alpn-01',
    valid: false,
    kind: 'connection',
    attempts: [`127.0.0.1:${tlsPort}`],
  },
  {
    name: 'fail/tls-alpn-01 ip identifier 169.254.169.254, zero attempts',
    type: 'tls-alpn-01',
    identifier: { type: 'ip', value: '169.254.169.254' },
    resolve: 'none',
    valid: false,
    kind: 'rejectedIdentifier',
    detail: /169\.254\.0\.0\/16/,
    attempts: [],
  },
  {
    name: 'fail/tls-alpn-01 ip identifier 64:ff9b::a9fe:a9fe (NAT64), zero attempts',
    type: 'tls-alpn-01',
    identifier: { type: 'ip', value: '64:ff9b::a9fe:a9fe' },
    resolve: 'none',
    valid: false,
    kind: 'rejectedIdentifier',
    detail: /IPv4 169\.254\.169\.254/,
    attempts: [],
  },
  {
    name: 'fail/tls-alpn-01 name resolving to a denied address, zero attempts',
    type: 'tls-alpn-01',
    identifier: { type: 'dns', value: 'meta.test' },
    resolve: 'dns',
    valid: false,
    kind: 'connection',
    detail: new RegExp(`tls-alpn-01 to meta\\.test:${tlsPort}: the validation network policy refuses to connect to any address of meta\\.test`),
    attempts: [],
  },
  {
    name: 'fail/tls-alpn-01 with loopback off, zero attempts',
    type: 'tls-alpn-01',
    policy: { allowLoopback: false },
    valid: false,
    kind: 'connection',
    detail: /allowLoopback is false/,
    attempts: [],
  },
  {
    name: "fail/tls-alpn-01 aimed at Chancery's own listener, zero attempts",
    type: 'tls-alpn-01',
    policy: { ownListeners: () => [{ name: 'ACME', host: '::', port: tlsPort }] },
    valid: false,
    kind: 'connection',
    detail: /own ACME listener \(bound to :::\d+\)/,
    attempts: [],
  },
];

async function validate(c: Omit<Case, 'name' | 'valid' | 'attempts'>): Promise<{ outcome: ValidationOutcome; token: string }> {
  const token = randomBytes(32).toString('base64url');
  const keyAuthorization = `${token}.${randomBytes(32).toString('base64url')}`;
  handler = c.handler?.(keyAuthorization, token) ?? serve('unused');
  const resolve = c.resolve ?? ['127.0.0.1'];
  const va = createValidationAuthority(
    { http01Port: port, tlsAlpn01Port: tlsPort, dnsResolvers: resolve === 'dns' ? [dns.resolver] : [], timeoutMs: 3000 },
    {
      policy: createNetworkPolicy(c.policy),
      connector,
      ...(resolve === 'none' ? { resolveAddress: noResolution } : resolve === 'dns' ? {} : { resolveAddress: async () => resolve }),
    },
  );
  const outcome = await va.validate({ type: c.type ?? 'http-01', identifier: c.identifier ?? { type: 'dns', value: 'web.test' }, token, keyAuthorization });
  return { outcome, token };
}

for (const c of cases) {
  await t.test(c.name, async (t) => {
    attempts.length = 0;
    seen.length = 0;
    const { outcome } = await validate(c);
    t.equal(outcome.valid, c.valid, outcome.valid ? 'valid' : `invalid: ${outcome.problem.kind} ${outcome.problem.detail}`);
    if (!outcome.valid) {
      if (c.kind) t.equal(outcome.problem.kind, c.kind);
      if (c.detail) t.match(outcome.problem.detail, c.detail);
      if (c.notInDetail) t.notMatch(outcome.problem.detail, c.notInDetail, 'the body is not echoed');
      if (c.kind === 'connection' && c.detail) t.equal(outcome.retryable, false, 'a policy refusal is final');
    }
    t.same(attempts, c.attempts, 'connection attempts');
    t.same(offLoopback, [], 'nothing off loopback reached the connector');
  });
}

await t.test('fail/DNS rebinding: the second answer (169.254.169.254) is checked and refused before connect', async (t) => {
  attempts.length = 0;
  seen.length = 0;
  dns.queries.length = 0;
  // 127.0.0.1 for the first query, 169.254.169.254 from then on (TTL 0).
  dns.setAnswers('rebind.test', ['127.0.0.1', '169.254.169.254']);
  const { outcome } = await validate({
    identifier: { type: 'dns', value: 'rebind.test' },
    resolve: 'dns',
    // The first hop sends the validator back to the same name, which now resolves elsewhere.
    handler: (_ka, token) => redirect(`http://rebind.test:${port}/.well-known/acme-challenge/${token}/again`),
  });
  t.equal(outcome.valid, false);
  if (!outcome.valid) {
    t.equal(outcome.problem.kind, 'connection');
    t.match(outcome.problem.detail, /any address of rebind\.test on port \d+: 169\.254\.169\.254 is always denied/);
  }
  t.same(attempts, [loop], 'connected once, to the address checked on the first hop');
  t.equal(seen.length, 1, 'the responder saw the first request only');
  t.equal(dns.queries.filter((q) => q === 'A rebind.test').length, 2, 'each hop resolved the name once');
  t.same(offLoopback, []);
});

await t.test('ok/DNS rebinding: one resolution per hop, and the connection goes to the checked address', async (t) => {
  attempts.length = 0;
  seen.length = 0;
  dns.queries.length = 0;
  dns.setAnswers('rebind-once.test', ['127.0.0.1', '169.254.169.254']);
  const { outcome } = await validate({ identifier: { type: 'dns', value: 'rebind-once.test' }, resolve: 'dns', handler: (ka) => serve(ka) });
  t.equal(outcome.valid, true, outcome.valid ? 'valid' : outcome.problem.detail);
  t.same(attempts, [loop], 'the checked address, once');
  t.same(
    dns.queries.filter((q) => q.endsWith(' rebind-once.test')),
    ['A rebind-once.test'],
    'resolved once: no library resolved the name again',
  );
  t.same(offLoopback, []);
});

t.test('ok/no connect in this file left loopback', async (t) => {
  t.same(guard.refused, []);
  t.same(offLoopback, []);
});
