import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import tls from 'node:tls';
import t from 'tap';
import type { CaErrorKind } from '../../../src/core/errors.js';
import type { Identifier } from '../../../src/core/identifier.js';
import { createValidationAuthority } from '../../../src/va/validation-authority.js';
import { openssl, requireOpenssl } from '../../helpers/openssl.js';
import { startDnsServer } from '../../helpers/dns-server.js';

/**
 * tls-alpn-01 (RFC 8737) against a node:tls responder on 127.0.0.1 presenting certificates made by openssl
 * with the acmeIdentifier extension (1.3.6.1.5.5.7.1.31) critical or not, right or wrong.
 */
requireOpenssl();

interface Pair {
  key: string;
  cert: string;
}

/** A self-signed P-256 certificate with the given subjectAltName and extra -addext options. */
async function makeCertificate(san: string | undefined, extensions: string[]): Promise<Pair> {
  const dir = await mkdtemp(join(tmpdir(), 'chancery-tls-alpn-'));
  const keyFile = join(dir, 'key.pem');
  const certFile = join(dir, 'cert.pem');
  const args = ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', '/', '-days', '1'];
  args.push('-keyout', keyFile, '-out', certFile);
  if (san) args.push('-addext', `subjectAltName=${san}`);
  for (const extension of extensions) args.push('-addext', extension);
  const { code, stderr } = await openssl(args);
  if (code !== 0) throw new Error(`openssl req -x509 failed: ${stderr}`);
  return { key: await readFile(keyFile, 'utf8'), cert: await readFile(certFile, 'utf8') };
}

const derHex = (bytes: Buffer): string => [...bytes].map((b) => b.toString(16).padStart(2, '0')).join(':');
/** The acmeIdentifier extension as openssl -addext: extnValue = DER OCTET STRING of the digest (RFC 8737 §3). */
const acmeExtension = (digest: Buffer, critical = true): string =>
  `1.3.6.1.5.5.7.1.31=${critical ? 'critical,' : ''}DER:04:${digest.length.toString(16).padStart(2, '0')}:${derHex(digest)}`;

// The responder picks the certificate per connection through SNI, and records the SNI it saw.
let current: tls.SecureContext | undefined;
const sniSeen: string[] = [];
const sniCallback = (servername: string, callback: (error: Error | null, context?: tls.SecureContext) => void): void => {
  sniSeen.push(servername);
  callback(null, current);
};
const fallback = await makeCertificate('DNS:fallback.test', []);

async function listen(server: tls.Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => server.close());
  return (server.address() as AddressInfo).port;
}
const acmePort = await listen(tls.createServer({ ...fallback, ALPNProtocols: ['acme-tls/1'], SNICallback: sniCallback }));
const plainPort = await listen(tls.createServer({ ...fallback, SNICallback: sniCallback }));
const h2Port = await listen(tls.createServer({ ...fallback, ALPNProtocols: ['h2', 'http/1.1'], SNICallback: sniCallback }));
// Accepts TCP but never speaks TLS.
const silent = createNetServer(() => undefined);
await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
t.teardown(() => silent.close());
const silentPort = (silent.address() as AddressInfo).port;
const refusedServer = createNetServer();
await new Promise<void>((resolve) => refusedServer.listen(0, '127.0.0.1', resolve));
const refusedPort = (refusedServer.address() as AddressInfo).port;
await new Promise<void>((resolve) => refusedServer.close(() => resolve()));

const dns = await startDnsServer({ a: new Map([['a.test', '127.0.0.1']]) });
t.teardown(() => dns.close());

interface Case {
  name: string;
  identifier?: Identifier;
  port?: number;
  timeoutMs?: number;
  viaDns?: boolean;
  certificate: (digest: Buffer) => Promise<Pair>;
  valid: boolean;
  kind?: CaErrorKind;
  retryable?: boolean;
  detail?: RegExp;
  sni?: string;
}

const cases: Case[] = [
  {
    name: 'ok/critical acmeIdentifier with the digest, one dNSName',
    certificate: (d) => makeCertificate('DNS:a.test', [acmeExtension(d)]),
    valid: true,
    sni: 'a.test',
  },
  {
    name: 'ok/name resolved through the configured DNS resolver',
    viaDns: true,
    certificate: (d) => makeCertificate('DNS:a.test', [acmeExtension(d)]),
    valid: true,
  },
  {
    name: 'ok/ip identifier: iPAddress SAN, SNI is the reverse name (RFC 8738 §6)',
    identifier: { type: 'ip', value: '127.0.0.1' },
    certificate: (d) => makeCertificate('IP:127.0.0.1', [acmeExtension(d)]),
    valid: true,
    sni: '1.0.0.127.in-addr.arpa',
  },
  {
    name: 'fail/acmeIdentifier not critical',
    certificate: (d) => makeCertificate('DNS:a.test', [acmeExtension(d, false)]),
    valid: false,
    kind: 'incorrectResponse',
    retryable: false,
    detail: /acmeIdentifier extension is not critical/,
  },
  {
    name: 'fail/wrong digest',
    certificate: () => makeCertificate('DNS:a.test', [acmeExtension(randomBytes(32))]),
    valid: false,
    kind: 'incorrectResponse',
    detail: /is not SHA-256 of the key authorization/,
  },
  {
    name: 'fail/digest of the wrong length',
    certificate: (d) => makeCertificate('DNS:a.test', [acmeExtension(d.subarray(0, 16))]),
    valid: false,
    kind: 'incorrectResponse',
    detail: /holds 16 bytes, expected a 32-byte SHA-256 digest/,
  },
  {
    name: 'fail/acmeIdentifier missing',
    certificate: () => makeCertificate('DNS:a.test', []),
    valid: false,
    kind: 'incorrectResponse',
    detail: /acmeIdentifier extension \(1\.3\.6\.1\.5\.5\.7\.1\.31\) is missing/,
  },
  {
    name: 'fail/two subjectAltNames',
    certificate: (d) => makeCertificate('DNS:a.test,DNS:b.test', [acmeExtension(d)]),
    valid: false,
    kind: 'incorrectResponse',
    detail: /subjectAltName has 2 entries, expected exactly one/,
  },
  {
    name: 'fail/subjectAltName for another name',
    certificate: (d) => makeCertificate('DNS:b.test', [acmeExtension(d)]),
    valid: false,
    kind: 'incorrectResponse',
    detail: /subjectAltName is DNS:b\.test, expected DNS:a\.test/,
  },
  {
    name: 'fail/ip identifier with a dNSName SAN',
    identifier: { type: 'ip', value: '127.0.0.1' },
    certificate: (d) => makeCertificate('DNS:1.0.0.127.in-addr.arpa', [acmeExtension(d)]),
    valid: false,
    kind: 'incorrectResponse',
    detail: /expected IP:127\.0\.0\.1/,
  },
  {
    name: 'fail/no subjectAltName',
    certificate: (d) => makeCertificate(undefined, [acmeExtension(d)]),
    valid: false,
    kind: 'incorrectResponse',
    detail: /no subjectAltName extension/,
  },
  {
    name: 'fail/no ALPN negotiated',
    port: plainPort,
    certificate: (d) => makeCertificate('DNS:a.test', [acmeExtension(d)]),
    valid: false,
    kind: 'tls',
    retryable: false,
    detail: /negotiated no protocol instead of ALPN "acme-tls\/1"/,
  },
  {
    name: 'fail/responder speaking only other protocols',
    port: h2Port,
    certificate: (d) => makeCertificate('DNS:a.test', [acmeExtension(d)]),
    valid: false,
    kind: 'tls',
    detail: /TLS handshake with a\.test:\d+ failed: tlsv1 alert no application protocol|negotiated no protocol/,
  },
  {
    name: 'fail/connection refused is retryable',
    port: refusedPort,
    certificate: (d) => makeCertificate('DNS:a.test', [acmeExtension(d)]),
    valid: false,
    kind: 'connection',
    retryable: true,
    detail: /connection refused by a\.test:/,
  },
  {
    name: 'fail/a responder that never completes the handshake times out, retryable',
    port: silentPort,
    timeoutMs: 300,
    certificate: (d) => makeCertificate('DNS:a.test', [acmeExtension(d)]),
    valid: false,
    kind: 'connection',
    retryable: true,
    detail: /timed out after 300 ms/,
  },
  {
    name: 'fail/wildcard is refused for tls-alpn-01',
    identifier: { type: 'dns', value: '*.a.test' },
    certificate: (d) => makeCertificate('DNS:a.test', [acmeExtension(d)]),
    valid: false,
    kind: 'malformed',
    detail: /use dns-01/,
  },
];

for (const c of cases) {
  await t.test(c.name, async (t) => {
    const token = randomBytes(32).toString('base64url');
    const keyAuthorization = `${token}.${randomBytes(32).toString('base64url')}`;
    const digest = createHash('sha256').update(keyAuthorization).digest();
    current = tls.createSecureContext(await c.certificate(digest));
    sniSeen.length = 0;
    const va = createValidationAuthority(
      { http01Port: 80, tlsAlpn01Port: c.port ?? acmePort, dnsResolvers: c.viaDns ? [dns.resolver] : [], timeoutMs: c.timeoutMs ?? 3000 },
      c.viaDns ? {} : { resolveAddress: async () => '127.0.0.1' },
    );
    const outcome = await va.validate({ type: 'tls-alpn-01', identifier: c.identifier ?? { type: 'dns', value: 'a.test' }, token, keyAuthorization });
    t.equal(outcome.valid, c.valid, outcome.valid ? 'valid' : `invalid: ${outcome.problem.kind} ${outcome.problem.detail}`);
    if (!outcome.valid) {
      if (c.kind) t.equal(outcome.problem.kind, c.kind);
      if (c.retryable !== undefined) t.equal(outcome.retryable, c.retryable);
      if (c.detail) t.match(outcome.problem.detail, c.detail);
    }
    if (c.sni) t.same(sniSeen, [c.sni], `SNI was ${c.sni}`);
  });
}
