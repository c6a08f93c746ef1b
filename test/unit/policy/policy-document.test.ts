import t from 'tap';
import { DAY, HOUR } from '../../../src/core/clock.js';
import { parseDuration, formatDuration } from '../../../src/policy/group-policy.js';
import { labelProblem, parseLabelArgument } from '../../../src/policy/labels.js';
import { parsePolicyDocument, policyDocumentOf } from '../../../src/policy/policy-document.js';

/** The policy document's form: each field's rule, reported with its path; a good document round-trips. */
const doc = (payments: unknown): unknown => ({ groups: { default: {}, payments } });

await t.test('ok/a full document reads into groups, and export writes it back the same', async (t) => {
  const document = {
    version: 1,
    groups: {
      default: { contacts: ['pki@example.com'] },
      payments: {
        contacts: ['mailto:pay-ops@example.com'],
        identifiers: [{ suffix: 'Pay.Internal' }, { name: 'gw.corp.internal' }, { cidr: '10.20.0.0/16', shared: true }],
        wildcards: false,
        challengeTypes: ['http-01', 'dns-01', 'http-01'],
        keyTypes: ['ecdsa'],
        rsaMinBits: 3072,
        ecdsaCurves: ['P-256'],
        maxValidity: '7d',
        profiles: ['tls-server', 'mtls'],
        labels: { owner: 'payments', criticality: 1, pci: true },
        preapproved: ['Legacy-HSM.pay.internal', '10.20.0.9'],
      },
      hr: null,
    },
  };
  const { groups, issues } = parsePolicyDocument(document);
  t.same(issues, []);
  const payments = groups?.find((g) => g.name === 'payments');
  t.same(payments?.policy, {
    identifiers: [
      { type: 'suffix', value: 'pay.internal', shared: false },
      { type: 'name', value: 'gw.corp.internal', shared: false },
      { type: 'cidr', value: '10.20.0.0/16', shared: true },
    ],
    wildcards: false,
    challengeTypes: ['http-01', 'dns-01'],
    keyTypes: ['ecdsa'],
    rsaMinBits: 3072,
    ecdsaCurves: ['P-256'],
    maxValidityMs: 7 * DAY,
    profiles: ['tls-server', 'mtls'],
    labels: { owner: 'payments', criticality: '1', pci: 'true' },
    preapproved: ['legacy-hsm.pay.internal', '10.20.0.9'],
  });
  t.same(groups?.find((g) => g.name === 'hr'), { name: 'hr', contacts: [], policy: {} }, 'an empty group is the ceiling');
  const exported = policyDocumentOf(groups!);
  t.same(Object.keys(exported.groups), ['default', 'hr', 'payments'], 'default first, then by name');
  t.same(parsePolicyDocument(exported).groups, [...groups!].sort((a, b) => (a.name === 'default' ? -1 : b.name === 'default' ? 1 : a.name.localeCompare(b.name))), 'export, then read: the same groups');
});

await t.test('fail/each field\'s rule, with the path of what broke it', async (t) => {
  const cases: [string, unknown, { path: (string | number)[]; rule: string; message: RegExp }][] = [
    ['fail/not a mapping', 'groups: x', { path: [], rule: 'document', message: /a policy file is a mapping/ }],
    ['fail/no groups', { version: 1 }, { path: [], rule: 'document', message: /`groups` must be a mapping/ }],
    ['fail/a top-level typo', { groups: { default: {} }, group: {} }, { path: ['group'], rule: 'unknown-key', message: /unknown key "group"/ }],
    ['fail/a wrong version', { version: 2, groups: { default: {} } }, { path: ['version'], rule: 'document', message: /version must be 1/ }],
    ['fail/a bad group name', { groups: { default: {}, 'pay ments': {} } }, { path: ['groups', 'pay ments'], rule: 'group-name', message: /must be 1-64 letters/ }],
    ['fail/a field typo', doc({ maxValidty: '7d' }), { path: ['groups', 'payments', 'maxValidty'], rule: 'unknown-key', message: /unknown key "maxValidty" in group "payments"/ }],
    ['fail/a contact that is not an address', doc({ contacts: ['payments team'] }), { path: ['groups', 'payments', 'contacts', 0], rule: 'contacts', message: /must be an e-mail address/ }],
    ['fail/identifiers not a list', doc({ identifiers: 'pay.internal' }), { path: ['groups', 'payments', 'identifiers'], rule: 'identifiers', message: /must be a list/ }],
    ['fail/a scope naming two kinds', doc({ identifiers: [{ suffix: 'a.internal', name: 'b.internal' }] }), { path: ['groups', 'payments', 'identifiers', 0], rule: 'identifiers', message: /exactly one of suffix, name or cidr/ }],
    ['fail/a scope key typo', doc({ identifiers: [{ suffix: 'a.internal', shard: true }] }), { path: ['groups', 'payments', 'identifiers', 0, 'shard'], rule: 'unknown-key', message: /unknown key "shard"/ }],
    ['fail/a bad network', doc({ identifiers: [{ cidr: '10.20.0.1/16' }] }), { path: ['groups', 'payments', 'identifiers', 0, 'cidr'], rule: 'identifiers', message: /host bits set/ }],
    ['fail/a bad suffix', doc({ identifiers: [{ suffix: 'pay..internal' }] }), { path: ['groups', 'payments', 'identifiers', 0, 'suffix'], rule: 'identifiers', message: /invalid label/ }],
    ['fail/wildcards not a boolean', doc({ wildcards: 'no' }), { path: ['groups', 'payments', 'wildcards'], rule: 'wildcards', message: /true or false/ }],
    ['fail/an unknown challenge type', doc({ challengeTypes: ['http-01', 'email-reply-00'] }), { path: ['groups', 'payments', 'challengeTypes', 1], rule: 'challengeTypes', message: /"email-reply-00" is not one of http-01, dns-01, tls-alpn-01/ }],
    ['fail/an empty list', doc({ keyTypes: [] }), { path: ['groups', 'payments', 'keyTypes'], rule: 'keyTypes', message: /at least one of rsa, ecdsa/ }],
    ['fail/an unknown key type', doc({ keyTypes: ['dsa'] }), { path: ['groups', 'payments', 'keyTypes', 0], rule: 'keyTypes', message: /"dsa" is not one of rsa, ecdsa/ }],
    ['fail/RSA bits not a number', doc({ rsaMinBits: '3072 bits' }), { path: ['groups', 'payments', 'rsaMinBits'], rule: 'rsaMinBits', message: /a whole number of bits/ }],
    ['fail/a curve that is not a curve name', doc({ ecdsaCurves: ['secp256r1'] }), { path: ['groups', 'payments', 'ecdsaCurves', 0], rule: 'ecdsaCurves', message: /not a curve name/ }],
    ['fail/a validity that is not a duration', doc({ maxValidity: '1 week' }), { path: ['groups', 'payments', 'maxValidity'], rule: 'maxValidity', message: /90m, 12h or 30d/ }],
    ['fail/an unknown profile', doc({ profiles: ['gold'] }), { path: ['groups', 'payments', 'profiles', 0], rule: 'profiles', message: /"gold" is not one of tls-server, tls-client, mtls, short-lived/ }],
    ['fail/a label key with capitals', doc({ labels: { Owner: 'x' } }), { path: ['groups', 'payments', 'labels', 'Owner'], rule: 'labels', message: /must start with a lower-case letter/ }],
    ['fail/a label that is a list', doc({ labels: { owner: ['a'] } }), { path: ['groups', 'payments', 'labels', 'owner'], rule: 'labels', message: /must be text/ }],
    ['fail/a pre-approved wildcard', doc({ preapproved: ['*.pay.internal'] }), { path: ['groups', 'payments', 'preapproved', 0], rule: 'preapproved', message: /wildcard names cannot be pre-approved/ }],
  ];
  for (const [name, document, want] of cases) {
    const { groups, issues } = parsePolicyDocument(document);
    t.equal(groups, undefined, `${name}: no groups from a document with a problem`);
    t.equal(issues.length, 1, `${name}: ${issues.map((i) => i.message).join(' | ')}`);
    t.match(issues[0], want, name);
  }
});

await t.test('durations and labels', async (t) => {
  const durations: [string, string, number | undefined][] = [
    ['ok/minutes', '90m', 90 * 60_000],
    ['ok/hours', '12h', 12 * HOUR],
    ['ok/days', '30d', 30 * DAY],
    ['fail/weeks', '1w', undefined],
    ['fail/fractions', '1.5d', undefined],
  ];
  for (const [name, text, ms] of durations) t.equal(parseDuration(text), ms, name);
  t.equal(formatDuration(7 * DAY), '7d');
  t.equal(formatDuration(36 * HOUR), '36h');
  const labels: [string, string, RegExp | undefined][] = [
    ['ok/key=value', 'owner=payments', undefined],
    ['ok/the value may hold "="', 'query=a=b', undefined],
    ['fail/no "="', 'owner', /--label "owner" must be key=value/],
    ['fail/an empty key', '=x', /must be key=value/],
    ['fail/an empty value', 'owner=', /label "owner" needs a value/],
    ['fail/a bad key', 'Owner Name=x', /must start with a lower-case letter/],
  ];
  for (const [name, text, expected] of labels) {
    const parsed = parseLabelArgument(text);
    if (expected === undefined) t.notOk('error' in parsed, name);
    else t.match('error' in parsed ? parsed.error : '', expected, name);
  }
  t.match(labelProblem('note', 'a\u0007b'), /control character/, 'fail/a control character in a value');
});
