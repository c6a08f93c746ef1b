import t from 'tap';
import { acmeLinker } from '../../../src/acme/linker.js';
import { problemFromError, problemTypeOf, renderStoredProblem } from '../../../src/acme/problem.js';
import { parseContacts, parseRfc3339 } from '../../../src/acme/schemas.js';
import { CaError, type CaErrorKind } from '../../../src/core/errors.js';
import { expectCaError } from '../../helpers/expect-error.js';

/** The pure pieces of acme/: the kind -> problem table, the URL linker, and the trickier validators. */

const TABLE: [CaErrorKind, string, number][] = [
  ['malformed', 'malformed', 400],
  ['badNonce', 'badNonce', 400],
  ['badCSR', 'badCSR', 400],
  ['badPublicKey', 'badPublicKey', 400],
  ['badSignatureAlgorithm', 'badSignatureAlgorithm', 400],
  ['rejectedIdentifier', 'rejectedIdentifier', 400],
  ['unsupportedIdentifier', 'unsupportedIdentifier', 400],
  ['unauthorized', 'unauthorized', 403],
  ['accountDoesNotExist', 'accountDoesNotExist', 400],
  ['externalAccountRequired', 'externalAccountRequired', 400],
  ['invalidContact', 'invalidContact', 400],
  ['unsupportedContact', 'unsupportedContact', 400],
  ['orderNotReady', 'orderNotReady', 403],
  ['badRevocationReason', 'badRevocationReason', 400],
  ['alreadyRevoked', 'alreadyRevoked', 400],
  ['alreadyReplaced', 'alreadyReplaced', 409],
  ['incorrectResponse', 'incorrectResponse', 403],
  ['connection', 'connection', 400],
  ['dns', 'dns', 400],
  ['tls', 'tls', 400],
  ['rateLimited', 'rateLimited', 429],
  ['notFound', 'malformed', 404],
  ['conflict', 'malformed', 409],
  ['badConfig', 'serverInternal', 500],
  ['keyStore', 'serverInternal', 500],
  ['caState', 'serverInternal', 500],
  ['serverInternal', 'serverInternal', 500],
];

for (const [kind, type, status] of TABLE) {
  await t.test(`ok/problem for ${kind}`, async (t) => {
    t.same(problemTypeOf(kind), { type: `urn:ietf:params:acme:error:${type}`, status });
    const rendered = problemFromError(new CaError(kind, 'the detail'));
    t.equal(rendered.status, status);
    t.equal(rendered.internal, status === 500);
    t.equal(rendered.document.detail, status === 500 ? 'The server experienced an internal error' : 'the detail');
  });
}

await t.test('ok/subproblems keep their own type and identifier; internal ones are masked', async (t) => {
  const rendered = problemFromError(
    new CaError('rejectedIdentifier', 'some names refused', {
      subproblems: [
        { kind: 'unsupportedIdentifier', detail: 'no email', identifier: { type: 'email', value: 'a@b.c' } },
        { kind: 'caState', detail: 'issuer key missing' },
      ],
    }),
  );
  t.same(rendered.document.subproblems, [
    { type: 'urn:ietf:params:acme:error:unsupportedIdentifier', detail: 'no email', identifier: { type: 'email', value: 'a@b.c' } },
    { type: 'urn:ietf:params:acme:error:serverInternal', detail: 'The server experienced an internal error' },
  ]);
});

await t.test('ok/non-CaError values become serverInternal', async (t) => {
  for (const thrown of [new Error('secret'), 'a string', undefined, { kind: 'malformed', detail: 'duck-typed' }]) {
    const rendered = problemFromError(thrown);
    t.equal(rendered.status, 500);
    t.equal(rendered.internal, true);
    t.equal(rendered.document.detail, 'The server experienced an internal error');
  }
});

await t.test('ok/stored problem rendering (challenge/order error)', async (t) => {
  t.same(renderStoredProblem({ kind: 'incorrectResponse', detail: 'wrong key authorization' }), {
    type: 'urn:ietf:params:acme:error:incorrectResponse',
    detail: 'wrong key authorization',
    status: 403,
  });
  t.same(renderStoredProblem({ kind: 'keyStore', detail: 'pkcs11 CKR_DEVICE_ERROR' }).detail, 'The server experienced an internal error');
});

// ----- linker -----

await t.test('ok/linker builds every URL from one base', async (t) => {
  const l = acmeLinker('https://CA.Example.internal:8443/');
  t.equal(l.base, 'https://ca.example.internal:8443');
  t.equal(l.directory(), 'https://ca.example.internal:8443/acme/directory');
  t.equal(l.renewalInfo('a.b'), 'https://ca.example.internal:8443/acme/renewal-info/a.b');
  t.equal(l.accountOrders('x', 'p2'), 'https://ca.example.internal:8443/acme/acct/x/orders?cursor=p2');
  t.equal(l.finalize('o1'), 'https://ca.example.internal:8443/acme/order/o1/finalize');
  t.equal(l.accountIdFromUrl('https://ca.example.internal:8443/acme/acct/abc'), 'abc');
  t.equal(l.accountIdFromUrl('https://ca.example.internal:8443/acme/acct/abc/orders'), undefined);
  t.equal(l.accountIdFromUrl('https://other:8443/acme/acct/abc'), undefined);
  t.throws(() => l.order('../x'), /cannot be placed in an ACME URL/);
});

await t.test('ok/linker routes paths, with or without a proxy-kept base path', async (t) => {
  const l = acmeLinker('https://ca.example.internal/ca1');
  t.same(l.route('/ca1/acme/order/o1/finalize'), { name: 'finalize', orderId: 'o1' });
  t.same(l.route('/acme/order/o1/finalize'), { name: 'finalize', orderId: 'o1' });
  t.same(l.route('/acme/cert/0A1b'), { name: 'certificate', serial: '0a1b' });
  t.equal(l.route('/acme/cert/xyz'), undefined);
  t.equal(l.requestUrl('/acme/new-order'), 'https://ca.example.internal/ca1/acme/new-order');
  t.equal(l.requestUrl('/ca1/acme/new-order'), 'https://ca.example.internal/ca1/acme/new-order');
});

// ----- schemas -----

await t.test('ok/contacts', async (t) => {
  t.same(parseContacts(['mailto:pki-team+acme@corp.example.internal', 'MailTo:a.b@x.io']), ['mailto:pki-team+acme@corp.example.internal', 'mailto:a.b@x.io']);
});

const badContacts: [string, unknown, CaErrorKind, RegExp][] = [
  ['fail/contact with percent-encoding', ['mailto:a%40b@example.internal'], 'invalidContact', /plausible/],
  ['fail/contact without scheme', ['ops@example.internal'], 'invalidContact', /not a URI/],
  ['fail/https contact', ['https://example.internal/contact'], 'unsupportedContact', /"https" scheme/],
  ['fail/too many contacts', Array.from({ length: 11 }, (_, i) => `mailto:a${i}@example.internal`), 'invalidContact', /at most 10/],
  ['fail/single-label domain', ['mailto:root@localhost'], 'invalidContact', /plausible/],
];
for (const [name, value, kind, detail] of badContacts) {
  await t.test(name, async (t) => {
    await expectCaError(t, Promise.resolve().then(() => parseContacts(value)), kind, detail);
  });
}

await t.test('ok/RFC 3339 date-times', async (t) => {
  t.equal(parseRfc3339('2026-01-01T00:00:00Z', 'x').toISOString(), '2026-01-01T00:00:00.000Z');
  t.equal(parseRfc3339('2026-01-01t05:30:00.5+05:30', 'x').toISOString(), '2026-01-01T00:00:00.500Z');
  t.equal(parseRfc3339('2028-02-29T00:00:00Z', 'x').toISOString(), '2028-02-29T00:00:00.000Z');
  for (const bad of ['2026-01-01', '2026-01-01 00:00:00Z', '2026-02-29T00:00:00Z', '2026-01-01T24:00:00Z', '2026-01-01T00:00:00', '1767225600']) {
    await expectCaError(t, Promise.resolve().then(() => parseRfc3339(bad, 'notBefore')), 'malformed', /"notBefore" must be an RFC 3339/);
  }
});
