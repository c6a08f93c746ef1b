import t from 'tap';
import { DAY, HOUR } from '../../../src/core/clock.js';
import { isCaError } from '../../../src/core/errors.js';
import type { Group, GroupPolicy } from '../../../src/core/group.js';
import type { Identifier } from '../../../src/core/identifier.js';
import type { KeyFacts } from '../../../src/core/key-facts.js';
import type { Authorization, Challenge } from '../../../src/core/order.js';
import { DEFAULT_PROFILE } from '../../../src/core/profile.js';
import {
  certificateLabels,
  checkGroupIdentifiers,
  checkGroupKey,
  checkGroupValidity,
  compileGroups,
  groupChallengeTypes,
  groupProfileId,
  isPreapproved,
  mayReuse,
  narrowProfile,
  refusedIdentifiers,
} from '../../../src/policy/group-policy.js';

/**
 * Group policy at issuance, rule by rule, as table cases: each names the policy field that refuses, and
 * a field left out is the ceiling.
 */
const group = (name: string, policy: GroupPolicy): Group => ({ name, contacts: [], policy });
const payments = group('payments', {
  identifiers: [
    { type: 'suffix', value: 'pay.internal', shared: false },
    { type: 'name', value: 'gw.corp.internal', shared: false },
    { type: 'cidr', value: '10.20.0.0/16', shared: false },
  ],
  wildcards: false,
  challengeTypes: ['http-01', 'tls-alpn-01'],
  keyTypes: ['ecdsa'],
  ecdsaCurves: ['P-256'],
  maxValidityMs: 7 * DAY,
  profiles: ['mtls', 'tls-server'],
  labels: { owner: 'payments', environment: 'production' },
  preapproved: ['legacy-hsm.pay.internal', '10.20.0.9'],
});
const hr = group('hr', { identifiers: [{ type: 'suffix', value: 'hr.internal', shared: false }], rsaMinBits: 3072, keyTypes: ['rsa', 'ecdsa'] });
const everything = group('default', {});
const set = compileGroups([payments, hr, everything]);
const rules = (name: string) => set.rules(name)!;
const dns = (value: string): Identifier => ({ type: 'dns', value });
const ip = (value: string): Identifier => ({ type: 'ip', value });

await t.test('identifiers, wildcards, challenge types: one subproblem per refused identifier naming the rule', async (t) => {
  const cases: [string, string, Identifier[], RegExp[]][] = [
    ['ok/a name within the suffix', 'payments', [dns('api.pay.internal')], []],
    ['ok/the exact name', 'payments', [dns('gw.corp.internal')], []],
    ['ok/an address within the network', 'payments', [ip('10.20.1.2')], []],
    ['fail/a name outside every scope', 'payments', [dns('db.hr.internal')], [/db.hr.internal is outside the identifier scopes of group "payments" \(policy identifiers: suffix pay.internal, name gw.corp.internal, cidr 10.20.0.0\/16\)/]],
    ['fail/an address outside the network', 'payments', [ip('10.21.0.1')], [/policy identifiers/]],
    ['fail/a wildcard when wildcards are off', 'payments', [dns('*.pay.internal')], [/does not allow wildcard names \(policy wildcards: false\)/]],
    [
      'fail/two refused of three: one subproblem each',
      'payments',
      [dns('api.pay.internal'), dns('db.hr.internal'), dns('x.example.internal')],
      [/db.hr.internal is outside/, /x.example.internal is outside/],
    ],
    ['ok/a group without scopes may have a name no group declares', 'default', [dns('web.example.internal')], []],
    ['ok/... and a wildcard (the ceiling allows them)', 'default', [dns('*.apps.example.internal')], []],
    [
      'fail/a group without scopes may not have a name another group declares',
      'default',
      [dns('api.pay.internal')],
      [/api.pay.internal is in the scope suffix pay.internal of group "payments"; group "default" declares no identifier scopes/],
    ],
    ['fail/... nor a wildcard that reaches into it', 'default', [dns('*.internal')], [/in the scope suffix pay.internal of group "payments"/]],
    ['fail/... nor an address in its network', 'default', [ip('10.20.0.1')], [/cidr 10.20.0.0\/16 of group "payments"/]],
  ];
  for (const [name, groupName, identifiers, expected] of cases) {
    const refused = refusedIdentifiers(set, rules(groupName), identifiers);
    t.equal(refused.length, expected.length, `${name}: ${refused.map((r) => r.detail).join(' | ')}`);
    expected.forEach((pattern, i) => {
      t.match(refused[i]?.detail, pattern, name);
      t.equal(refused[i]?.kind, 'rejectedIdentifier');
    });
  }
  const onlyDns = compileGroups([group('dnsonly', { challengeTypes: ['dns-01'] }), group('httponly', { challengeTypes: ['http-01'] })]);
  const [ipRefused] = refusedIdentifiers(onlyDns, onlyDns.rules('dnsonly')!, [ip('192.0.2.1')]);
  t.match(ipRefused?.detail, /192.0.2.1 can only be validated with http-01 or tls-alpn-01, which group "dnsonly" does not allow \(policy challengeTypes: dns-01\)/, 'fail/an address cannot be proven with dns-01 alone (RFC 8738 §7)');
  const [wildRefused] = refusedIdentifiers(onlyDns, onlyDns.rules('httponly')!, [dns('*.apps.internal')]);
  t.match(wildRefused?.detail, /\*.apps.internal can only be validated with dns-01/, 'fail/a wildcard needs dns-01 (RFC 8555 §7.1.3)');
  t.same(refusedIdentifiers(onlyDns, onlyDns.rules('httponly')!, [dns('web.apps.internal')]), [], 'ok/a name with an allowed challenge');

  try {
    checkGroupIdentifiers(set, rules('payments'), [dns('api.pay.internal'), dns('db.hr.internal')]);
    t.fail('refused');
  } catch (error) {
    t.ok(isCaError(error, 'rejectedIdentifier'), 'fail/checkGroupIdentifiers throws rejectedIdentifier');
    if (isCaError(error)) {
      t.match(error.detail, /the policy of group "payments" refuses an identifier: db.hr.internal is outside/);
      t.same(error.subproblems.map((s) => s.identifier), [dns('db.hr.internal')], 'the subproblem names the identifier');
    }
  }
});

await t.test('challenge types offered and pre-approved names', async (t) => {
  t.same(groupChallengeTypes(rules('payments'), dns('api.pay.internal'), false), ['http-01', 'tls-alpn-01'], 'ok/only the allowed types');
  t.same(groupChallengeTypes(rules('default'), dns('a.internal'), false), ['http-01', 'dns-01', 'tls-alpn-01'], 'ok/the ceiling: all usual types');
  const cases: [string, string, Identifier, boolean, boolean][] = [
    ['ok/a listed name', 'payments', dns('legacy-hsm.pay.internal'), false, true],
    ['ok/listed names compare case-insensitively', 'payments', dns('LEGACY-HSM.pay.internal'), false, true],
    ['ok/a listed address, in any text form', 'payments', ip('10.20.0.9'), false, true],
    ['fail/a name not listed', 'payments', dns('api.pay.internal'), false, false],
    ['fail/a wildcard is never pre-approved', 'payments', dns('legacy-hsm.pay.internal'), true, false],
    ['fail/off unless the group lists names', 'default', dns('legacy-hsm.pay.internal'), false, false],
  ];
  for (const [name, g, identifier, wildcard, expected] of cases) t.equal(isPreapproved(rules(g), identifier, wildcard), expected, name);
  t.same(refusedIdentifiers(compileGroups([group('dnsonly', { challengeTypes: ['dns-01'], preapproved: ['192.0.2.7'] })]), compileGroups([group('dnsonly', { challengeTypes: ['dns-01'], preapproved: ['192.0.2.7'] })]).rules('dnsonly')!, [ip('192.0.2.7')]), [], 'ok/a pre-approved address needs no challenge type');
});

await t.test('key types and minimum sizes (badPublicKey naming the limit)', async (t) => {
  const rsa = (bits: number): KeyFacts => ({ family: 'rsa', bits, publicExponent: 65537n });
  const ec = (curve: string): KeyFacts => ({ family: 'ec', curve });
  const cases: [string, string, KeyFacts, RegExp | undefined][] = [
    ['ok/ECDSA P-256 where only P-256 is allowed', 'payments', ec('P-256'), undefined],
    ['fail/RSA where only ECDSA is allowed', 'payments', rsa(4096), /group "payments" allows only ECDSA certificate keys \(policy keyTypes\); this is an RSA key/],
    ['fail/P-384 where only P-256 is allowed', 'payments', ec('P-384'), /curve P-384; group "payments" allows P-256 \(policy ecdsaCurves\)/],
    ['ok/RSA at the group minimum', 'hr', rsa(3072), undefined],
    ['fail/RSA below the group minimum', 'hr', rsa(2048), /RSA key of 2048 bits is below the minimum of group "hr": at least 3072 bits \(policy rsaMinBits\)/],
    ['ok/the ceiling alone', 'default', rsa(2048), undefined],
  ];
  for (const [name, g, facts, expected] of cases) {
    if (expected === undefined) t.doesNotThrow(() => checkGroupKey(rules(g), facts), name);
    else t.throws(() => checkGroupKey(rules(g), facts), { kind: 'badPublicKey', message: expected }, name);
  }
});

await t.test('maximum validity: the profile cut to it, requests beyond it refused naming it', async (t) => {
  const now = new Date('2026-06-01T00:00:00Z');
  const narrowed = narrowProfile({ ...DEFAULT_PROFILE, validityMs: 30 * DAY }, rules('payments'));
  t.equal(narrowed.validityMs, 7 * DAY, 'ok/a 30-day profile becomes 7 days for the group');
  t.equal(narrowed.backdateMs, HOUR, 'ok/the backdate stays an hour');
  t.equal(narrowProfile({ ...DEFAULT_PROFILE, validityMs: 2 * DAY }, rules('payments')).validityMs, 2 * DAY, 'ok/a shorter profile is not lengthened');
  t.equal(narrowProfile({ ...DEFAULT_PROFILE, validityMs: 30 * DAY }, rules('default')).validityMs, 30 * DAY, 'ok/no maxValidity: the profile as configured');
  const cases: [string, { notBefore?: Date; notAfter?: Date }, boolean][] = [
    ['ok/nothing asked', {}, true],
    ['ok/exactly 7 days, both ends counted', { notAfter: new Date(now.getTime() + 7 * DAY - 1000) }, true],
    ['fail/one second more', { notAfter: new Date(now.getTime() + 7 * DAY) }, false],
    ['fail/from a later notBefore, still too long', { notBefore: new Date(now.getTime() + DAY), notAfter: new Date(now.getTime() + 9 * DAY) }, false],
  ];
  for (const [name, requested, ok] of cases) {
    if (ok) t.doesNotThrow(() => checkGroupValidity(rules('payments'), requested, now, 'malformed'), name);
    else t.throws(() => checkGroupValidity(rules('payments'), requested, now, 'badCSR'), { kind: 'badCSR', message: /beyond the maximum validity of group "payments": 7d \(policy maxValidity\)/ }, name);
  }
});

await t.test('allowed profiles (invalidProfile naming them)', async (t) => {
  const cases: [string, string, string | undefined, string | RegExp][] = [
    ['ok/none named, the registry default allowed: it', 'payments', undefined, 'tls-server'],
    ['ok/an allowed one named', 'payments', 'mtls', 'mtls'],
    ['fail/a registry profile the group does not allow', 'payments', 'short-lived', /profile "short-lived" is not allowed for group "payments": choose one of mtls, tls-server \(policy profiles\)/],
    ['fail/an unknown one', 'payments', 'gold', /profile "gold" is unknown and not allowed/],
    ['ok/no list: whatever the registry resolves', 'default', 'short-lived', 'short-lived'],
  ];
  for (const [name, g, requested, expected] of cases) {
    if (typeof expected === 'string') t.equal(groupProfileId(rules(g), requested, 'tls-server'), expected, name);
    else t.throws(() => groupProfileId(rules(g), requested, 'tls-server'), { kind: 'invalidProfile', message: expected }, name);
  }
  const clientOnly = compileGroups([group('robots', { profiles: ['tls-client'] })]).rules('robots')!;
  t.equal(groupProfileId(clientOnly, undefined, 'tls-server'), 'tls-client', 'ok/none named and the default not allowed: the group\'s first');
});

await t.test('labels: the group\'s defaults with the credential\'s over them', async (t) => {
  t.same(certificateLabels(rules('payments'), { environment: 'staging', app: 'ledger' }), { owner: 'payments', environment: 'staging', app: 'ledger' }, 'ok/merged, the credential wins');
  t.same(certificateLabels(rules('payments'), undefined), { owner: 'payments', environment: 'production' }, 'ok/the group\'s alone');
  t.same(certificateLabels(rules('default'), undefined), {}, 'ok/none');
});

await t.test('reuse of an authorization the account holds: only one the group would make today', async (t) => {
  const challenge = (type: Challenge['type'], status: Challenge['status']): Challenge => ({ id: type, authorizationId: 'a', type, token: 't', status, attempts: 0 });
  const authz = (status: Authorization['status'], identifier: Identifier, challenges: Challenge[]) => ({ status, identifier, wildcard: false, challenges });
  const cases: [string, ReturnType<typeof authz>, boolean][] = [
    ['ok/valid, proven by an allowed type', authz('valid', dns('api.pay.internal'), [challenge('http-01', 'valid')]), true],
    ['fail/valid, proven by a type no longer allowed', authz('valid', dns('api.pay.internal'), [challenge('dns-01', 'valid')]), false],
    ['ok/valid without a challenge, still pre-approved', authz('valid', dns('legacy-hsm.pay.internal'), []), true],
    ['fail/valid without a challenge, no longer pre-approved', authz('valid', dns('api.pay.internal'), []), false],
    ['ok/pending, offering allowed types only', authz('pending', dns('api.pay.internal'), [challenge('http-01', 'pending')]), true],
    ['fail/pending, offering a type no longer allowed', authz('pending', dns('api.pay.internal'), [challenge('http-01', 'pending'), challenge('dns-01', 'pending')]), false],
    ['fail/pending for a name now pre-approved (it gets a valid one)', authz('pending', dns('legacy-hsm.pay.internal'), [challenge('http-01', 'pending')]), false],
  ];
  for (const [name, authorization, expected] of cases) t.equal(mayReuse(rules('payments'), authorization), expected, name);
});
