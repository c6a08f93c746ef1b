import t from 'tap';
import type { CaErrorKind } from '../../../src/core/errors.js';
import type { ChallengeType } from '../../../src/core/order.js';
import type { Identifier } from '../../../src/core/identifier.js';
import { createValidationAuthority } from '../../../src/va/validation-authority.js';

/**
 * Requests the VA refuses before reaching out: each is 'malformed' and not retryable. No responder is
 * running; `resolveAddress` fails the test if anything tries to resolve.
 */
const va = createValidationAuthority(
  { http01Port: 1, tlsAlpn01Port: 1, dnsResolvers: ['127.0.0.1:1'], timeoutMs: 1000 },
  {
    resolveAddress: async (name) => {
      t.fail(`resolved ${name}`);
      return '127.0.0.1';
    },
  },
);

const cases: { name: string; type: ChallengeType; identifier: Identifier; token?: string; kind: CaErrorKind; detail: RegExp }[] = [
  { name: 'fail/dns-01 for an ip identifier (RFC 8738 §7)', type: 'dns-01', identifier: { type: 'ip', value: '192.0.2.1' }, kind: 'malformed', detail: /RFC 8738 §7/ },
  { name: 'fail/http-01 for a wildcard', type: 'http-01', identifier: { type: 'dns', value: '*.a.test' }, kind: 'malformed', detail: /use dns-01/ },
  { name: 'fail/tls-alpn-01 for a wildcard', type: 'tls-alpn-01', identifier: { type: 'dns', value: '*.a.test' }, kind: 'malformed', detail: /use dns-01/ },
  { name: 'fail/ip identifier that is not an address', type: 'http-01', identifier: { type: 'ip', value: 'a.test' }, kind: 'malformed', detail: /is not an IP address/ },
  { name: 'fail/ip identifier with a zone id', type: 'tls-alpn-01', identifier: { type: 'ip', value: 'fe80::1%eth0' }, kind: 'malformed', detail: /is not an IP address/ },
  { name: 'fail/dns identifier with URL syntax', type: 'http-01', identifier: { type: 'dns', value: 'a.test/evil?' }, kind: 'malformed', detail: /is not a DNS name/ },
  { name: 'fail/dns identifier with a port', type: 'http-01', identifier: { type: 'dns', value: 'a.test:8080' }, kind: 'malformed', detail: /is not a DNS name/ },
  { name: 'fail/token with path characters', type: 'http-01', identifier: { type: 'dns', value: 'a.test' }, token: '../../etc', kind: 'malformed', detail: /token is not base64url/ },
  { name: 'fail/unknown challenge type', type: 'http-02' as ChallengeType, identifier: { type: 'dns', value: 'a.test' }, kind: 'malformed', detail: /unknown challenge type "http-02"/ },
  { name: 'fail/unknown identifier type', type: 'http-01', identifier: { type: 'email', value: 'a@a.test' } as unknown as Identifier, kind: 'malformed', detail: /unsupported identifier type "email"/ },
];

for (const c of cases) {
  t.test(c.name, async (t) => {
    const token = c.token ?? 'dG9rZW4tdG9rZW4tdG9rZW4';
    const outcome = await va.validate({ type: c.type, identifier: c.identifier, token, keyAuthorization: `${token}.thumb` });
    if (outcome.valid) {
      t.fail('expected an invalid outcome');
      return;
    }
    t.equal(outcome.problem.kind, c.kind);
    t.equal(outcome.retryable, false);
    t.match(outcome.problem.detail, c.detail);
  });
}
