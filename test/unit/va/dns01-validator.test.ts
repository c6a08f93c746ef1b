import { randomBytes } from 'node:crypto';
import t from 'tap';
import type { CaErrorKind } from '../../../src/core/errors.js';
import type { Identifier } from '../../../src/core/identifier.js';
import { dns01Digest } from '../../../src/va/dns01-validator.js';
import { createValidationAuthority } from '../../../src/va/validation-authority.js';
import { startDnsServer } from '../../helpers/dns-server.js';

/** dns-01 (RFC 8555 §8.4) against the test DNS server configured as the resolver. */

const dns = await startDnsServer();
t.teardown(() => dns.close());

const va = (timeoutMs = 3000) =>
  createValidationAuthority({ http01Port: 80, tlsAlpn01Port: 443, dnsResolvers: [dns.resolver], timeoutMs });

t.test('the digest is base64url(SHA-256(keyAuthorization)) without padding', async (t) => {
  // Computed independently: printf 'token.thumbprint' | openssl dgst -sha256 -binary | basenc --base64url
  t.equal(dns01Digest('token.thumbprint'), '61rBZ_4knHblO0MNoxFsXZ_eTFUHum0B6IVRbhvUn5I');
  t.match(dns01Digest('x'), /^[A-Za-z0-9_-]{43}$/);
});

interface Case {
  name: string;
  identifier?: Identifier;
  /** Records to publish, given the expected digest. */
  records: (digest: string) => Map<string, string[]>;
  silent?: string;
  timeoutMs?: number;
  valid: boolean;
  kind?: CaErrorKind;
  retryable?: boolean;
  detail?: RegExp;
}

const cases: Case[] = [
  {
    name: 'ok/the TXT record holds the digest',
    records: (d) => new Map([['_acme-challenge.a.test', [d]]]),
    valid: true,
  },
  {
    name: 'ok/the digest among other values (several pending challenges)',
    records: (d) => new Map([['_acme-challenge.a.test', ['stale-value', d, 'other']]]),
    valid: true,
  },
  {
    name: 'ok/wildcard: proven at the base name',
    identifier: { type: 'dns', value: '*.a.test' },
    records: (d) => new Map([['_acme-challenge.a.test', [d]]]),
    valid: true,
  },
  {
    name: 'fail/missing TXT (NXDOMAIN) is a retryable dns problem',
    records: () => new Map(),
    valid: false,
    kind: 'dns',
    retryable: true,
    detail: /^no TXT record found at _acme-challenge\.a\.test$/,
  },
  {
    name: 'fail/name exists without TXT (NODATA) is a retryable dns problem',
    records: () => new Map([['_acme-challenge.a.test', []]]),
    valid: false,
    kind: 'dns',
    retryable: true,
    detail: /no TXT record found at _acme-challenge\.a\.test/,
  },
  {
    name: 'fail/wrong TXT values are quoted (up to three)',
    records: () => new Map([['_acme-challenge.a.test', ['wrong-1', 'wrong-2', 'wrong-3', 'wrong-4']]]),
    valid: false,
    kind: 'incorrectResponse',
    retryable: false,
    detail: /does not hold the expected value "[A-Za-z0-9_-]{43}": found "wrong-1", "wrong-2", "wrong-3" and 1 more/,
  },
  {
    name: 'fail/a server that never answers times out, retryable',
    records: () => new Map(),
    silent: '_acme-challenge.a.test',
    timeoutMs: 400,
    valid: false,
    kind: 'dns',
    retryable: true,
    detail: /DNS query for TXT _acme-challenge\.a\.test timed out after 400 ms/,
  },
  {
    name: 'fail/dns-01 for an ip identifier is malformed (RFC 8738 §7)',
    identifier: { type: 'ip', value: '192.0.2.1' },
    records: () => new Map(),
    valid: false,
    kind: 'malformed',
    detail: /dns-01 cannot validate the ip identifier/,
  },
];

for (const c of cases) {
  await t.test(c.name, async (t) => {
    const token = randomBytes(32).toString('base64url');
    const keyAuthorization = `${token}.${randomBytes(32).toString('base64url')}`;
    const digest = dns01Digest(keyAuthorization);
    dns.setTxt('_acme-challenge.a.test', []);
    dns.setSilent('_acme-challenge.a.test', false);
    for (const [name, values] of c.records(digest)) {
      if (values.length === 0) dns.setA(name, '192.0.2.9'); // exists, but holds no TXT
      else dns.setTxt(name, values);
    }
    if (c.silent) dns.setSilent(c.silent);
    t.teardown(() => dns.setA('_acme-challenge.a.test', undefined));
    const outcome = await va(c.timeoutMs).validate({
      type: 'dns-01',
      identifier: c.identifier ?? { type: 'dns', value: 'a.test' },
      token,
      keyAuthorization,
    });
    t.equal(outcome.valid, c.valid, outcome.valid ? 'valid' : `invalid: ${outcome.problem.kind} ${outcome.problem.detail}`);
    if (!outcome.valid) {
      if (c.kind) t.equal(outcome.problem.kind, c.kind);
      if (c.retryable !== undefined) t.equal(outcome.retryable, c.retryable);
      if (c.detail) t.match(outcome.problem.detail, c.detail);
    }
  });
}

t.test('ok/a long TXT value (several 255-byte strings) beside the digest', async (t) => {
  const keyAuthorization = 'k.' + 'x'.repeat(10);
  dns.setTxt('_acme-challenge.long.test', ['y'.repeat(300), dns01Digest(keyAuthorization)]);
  const outcome = await va().validate({ type: 'dns-01', identifier: { type: 'dns', value: 'long.test' }, token: 'k', keyAuthorization });
  t.equal(outcome.valid, true);
});

t.test('fail/an unusable resolver setting stops construction with badConfig', async (t) => {
  t.throws(() => createValidationAuthority({ http01Port: 80, tlsAlpn01Port: 443, dnsResolvers: ['not a server'], timeoutMs: 1000 }), {
    kind: 'badConfig',
    message: /dnsResolvers/,
  });
});
