import t from 'tap';
import { DAY } from '../../../src/core/clock.js';
import type { Group, GroupPolicy } from '../../../src/core/group.js';
import { PROFILE_IDS } from '../../../src/core/profile.js';
import { refusedChanges, type PolicyActor } from '../../../src/policy/group-permissions.js';
import type { PolicyCeiling } from '../../../src/policy/group-policy.js';
import { validateGroups } from '../../../src/policy/group-validation.js';
import { diffGroups, formatDiff } from '../../../src/policy/policy-diff.js';

/**
 * A set of groups checked together: narrowing-only against the ceiling, overlapping scopes, pre-approved
 * names in scope, the default group; then who may change what (admin vs a group's admin), and the diff.
 */
const ceiling: PolicyCeiling = {
  profileIds: PROFILE_IDS,
  defaultProfileId: 'tls-server',
  maxValidityMs: 30 * DAY,
  keys: { minRsaBits: 2048, maxRsaBits: 8192, allowedCurves: ['P-256', 'P-384'] },
};
const group = (name: string, policy: GroupPolicy, contacts: string[] = []): Group => ({ name, contacts, policy });
const base = group('default', {});
const suffix = (value: string, shared = false) => ({ type: 'suffix' as const, value, shared });

await t.test('validateGroups: table of ok/ and fail/ sets', async (t) => {
  const cases: [string, Group[], { rule: string; path: (string | number)[]; message: RegExp }[]][] = [
    ['ok/the default group alone (the ceiling)', [base], []],
    ['ok/limits within the ceiling', [base, group('payments', { maxValidityMs: 30 * DAY, rsaMinBits: 3072, ecdsaCurves: ['P-256'], profiles: ['mtls'] })], []],
    ['fail/no default group', [group('payments', {})], [{ rule: 'default-group', path: ['groups'], message: /"default" group must stay/ }]],
    [
      'fail/narrowing-only: maxValidity longer than the longest profile',
      [base, group('payments', { maxValidityMs: 31 * DAY })],
      [{ rule: 'narrowing-only', path: ['groups', 'payments', 'maxValidity'], message: /maxValidity 31d is longer than the longest profile validity, 30d: a group may only narrow/ }],
    ],
    [
      'fail/narrowing-only: an RSA minimum below the ceiling\'s',
      [base, group('payments', { rsaMinBits: 1024 })],
      [{ rule: 'narrowing-only', path: ['groups', 'payments', 'rsaMinBits'], message: /rsaMinBits 1024 is outside 2048-8192/ }],
    ],
    [
      'fail/narrowing-only: a curve the ceiling does not allow',
      [base, group('payments', { ecdsaCurves: ['P-256', 'P-521' as 'P-384'] })],
      [{ rule: 'narrowing-only', path: ['groups', 'payments', 'ecdsaCurves', 1], message: /curve P-521 is not one certificate keys may use/ }],
    ],
    ['ok/shared on both sides: overlapping suffixes', [base, group('payments', { identifiers: [suffix('pay.internal', true)] }), group('ops', { identifiers: [suffix('db.pay.internal', true)] })], []],
    [
      'fail/overlapping suffixes, shared on one side only',
      [base, group('payments', { identifiers: [suffix('pay.internal', true)] }), group('ops', { identifiers: [suffix('hr.internal'), suffix('db.pay.internal')] })],
      [{ rule: 'scope-overlap', path: ['groups', 'ops', 'identifiers', 1], message: /suffix db.pay.internal of group "ops" overlaps suffix pay.internal \(shared\) of group "payments".*not marked in group "ops"/ }],
    ],
    [
      'fail/overlapping networks, shared on neither side',
      [base, group('a', { identifiers: [{ type: 'cidr', value: '10.0.0.0/8', shared: false }] }), group('b', { identifiers: [{ type: 'cidr', value: '10.20.0.0/16', shared: false }] })],
      [{ rule: 'scope-overlap', path: ['groups', 'b', 'identifiers', 0], message: /cidr 10.20.0.0\/16 of group "b" overlaps cidr 10.0.0.0\/8 of group "a".*group "a" and group "b"/ }],
    ],
    ['ok/overlapping scopes within one group', [base, group('a', { identifiers: [suffix('pay.internal'), suffix('db.pay.internal')] })], []],
    ['ok/a pre-approved name within the scopes', [base, group('payments', { identifiers: [suffix('pay.internal')], preapproved: ['hsm.pay.internal'] })], []],
    [
      'fail/a pre-approved name outside the scopes',
      [base, group('payments', { identifiers: [suffix('pay.internal')], preapproved: ['hsm.hr.internal'] })],
      [{ rule: 'preapproved-in-scope', path: ['groups', 'payments', 'preapproved', 0], message: /hsm.hr.internal is outside the identifier scopes of group "payments"/ }],
    ],
    [
      'fail/a group without scopes pre-approving a name another declares',
      [group('default', { preapproved: ['hsm.pay.internal'] }), group('payments', { identifiers: [suffix('pay.internal')] })],
      [{ rule: 'preapproved-in-scope', path: ['groups', 'default', 'preapproved', 0], message: /in the scope suffix pay.internal of group "payments"/ }],
    ],
  ];
  for (const [name, groups, expected] of cases) {
    const issues = validateGroups(groups, ceiling);
    t.equal(issues.length, expected.length, `${name}: ${issues.map((i) => i.message).join(' | ')}`);
    expected.forEach((want, i) => t.match(issues[i], { rule: want.rule, path: want.path, message: want.message }, name));
  }
});

await t.test('who may change what: an admin anything, a group admin only narrowing its own group', async (t) => {
  const payments = group('payments', {
    identifiers: [suffix('pay.internal')],
    challengeTypes: ['http-01', 'dns-01'],
    maxValidityMs: 14 * DAY,
    profiles: ['tls-server', 'mtls'],
    preapproved: ['hsm.pay.internal'],
  });
  const before = [base, payments, group('hr', {})];
  const withPayments = (policy: GroupPolicy, contacts: string[] = []): Group[] => [base, group('payments', policy, contacts), group('hr', {})];
  const own: PolicyActor = { role: 'group-admin', group: 'payments' };
  const cases: [string, PolicyActor, Group[], { rule: string; message: RegExp }[]][] = [
    ['ok/an admin widens a group', { role: 'admin' }, withPayments({ ...payments.policy, maxValidityMs: 30 * DAY, identifiers: [suffix('pay.internal'), suffix('pay2.internal')] }), []],
    ['ok/an admin creates and removes groups', { role: 'admin' }, [base, payments, group('new', {})], []],
    ['ok/a group admin narrows: fewer challenge types, shorter validity, fewer profiles, wildcards off', own, withPayments({ ...payments.policy, challengeTypes: ['dns-01'], maxValidityMs: 7 * DAY, profiles: ['mtls'], wildcards: false }), []],
    ['ok/a group admin sets owners and default labels', own, withPayments({ ...payments.policy, labels: { owner: 'payments' } }, ['pki@pay.example']), []],
    ['ok/a group admin sets an RSA minimum (the ceiling was 2048)', own, withPayments({ ...payments.policy, rsaMinBits: 4096 }), []],
    ['fail/a group admin lengthens validity', own, withPayments({ ...payments.policy, maxValidityMs: 21 * DAY }), [{ rule: 'narrowing-only', message: /maxValidity raised from 14d to 21d/ }]],
    ['fail/a group admin drops a limit (back to the ceiling)', own, withPayments({ ...payments.policy, challengeTypes: undefined }), [{ rule: 'narrowing-only', message: /challengeTypes adds tls-alpn-01/ }]],
    ['fail/a group admin adds a profile', own, withPayments({ ...payments.policy, profiles: ['tls-server', 'mtls', 'short-lived'] }), [{ rule: 'narrowing-only', message: /profiles adds short-lived/ }]],
    ['fail/a group admin sets identifier scopes, even narrower ones', own, withPayments({ ...payments.policy, identifiers: [suffix('api.pay.internal')] }), [{ rule: 'admin-only', message: /only an admin sets the identifier scopes of group "payments"/ }]],
    ['fail/a group admin changes pre-approved names', own, withPayments({ ...payments.policy, preapproved: [] }), [{ rule: 'admin-only', message: /pre-approved names/ }]],
    ['fail/a group admin changes another group', own, [base, payments, group('hr', { wildcards: false })], [{ rule: 'admin-only', message: /only an admin may change group "hr"; a group admin of "payments" may change only that group/ }]],
    ['fail/a group admin creates a group', own, [...before, group('new', {})], [{ rule: 'admin-only', message: /only an admin may create group "new"/ }]],
    ['fail/a group admin removes its own group', own, [base, group('hr', {})], [{ rule: 'admin-only', message: /only an admin may remove group "payments"/ }]],
  ];
  for (const [name, actor, after, expected] of cases) {
    const refused = refusedChanges(actor, before, after, ceiling);
    t.equal(refused.length, expected.length, `${name}: ${refused.map((r) => r.message).join(' | ')}`);
    expected.forEach((want, i) => t.match(refused[i], want, name));
  }
});

await t.test('the diff a policy apply prints', async (t) => {
  const before = [base, group('payments', { maxValidityMs: 30 * DAY, identifiers: [suffix('pay.internal')] }), group('legacy', {})];
  const after = [base, group('payments', { maxValidityMs: 7 * DAY, identifiers: [suffix('pay.internal')] }, ['pki@pay.example']), group('hr', { wildcards: false })];
  const changes = diffGroups(before, after);
  t.same(
    changes.map((c) => [c.name, c.change]),
    [
      ['hr', 'created'],
      ['legacy', 'removed'],
      ['payments', 'updated'],
    ],
    'ok/unchanged groups are left out',
  );
  t.same(formatDiff(changes), ['+ group hr (created)', '    wildcards: false', '- group legacy (removed)', '~ group payments', '    contacts: (not set) -> ["pki@pay.example"]', '    maxValidity: "30d" -> "7d"']);
  t.same(diffGroups(before, before), [], 'ok/the same set: no changes');
});
