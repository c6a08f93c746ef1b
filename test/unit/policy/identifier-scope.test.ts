import t from 'tap';
import type { IdentifierScope } from '../../../src/core/group.js';
import type { Identifier } from '../../../src/core/identifier.js';
import { compileScope, scopeCovers, scopeProblem, scopeReaches, scopesOverlap } from '../../../src/policy/identifier-scope.js';

/** Identifier scopes: what a scope lets its group order, what it keeps from groups without scopes, overlaps. */
const scope = (text: string, shared = false): IdentifierScope => {
  const [type, value] = text.split(' ') as [IdentifierScope['type'], string];
  return { type, value, shared };
};
const id = (value: string): Identifier => (/^[\d.]+$|:/.test(value) ? { type: 'ip', value } : { type: 'dns', value });

await t.test('scopeCovers: what a group with this scope may order', async (t) => {
  const cases: [string, string, string, boolean][] = [
    ['ok/suffix covers a name below it', 'suffix pay.internal', 'api.pay.internal', true],
    ['ok/suffix covers the name itself', 'suffix pay.internal', 'pay.internal', true],
    ['ok/suffix covers names several labels below', 'suffix pay.internal', 'a.b.pay.internal', true],
    ['ok/suffix covers a wildcard on a name at or below it', 'suffix pay.internal', '*.pay.internal', true],
    ['ok/suffix is compared case-insensitively (written upper-case)', 'suffix PAY.internal', 'api.pay.internal', true],
    ['fail/suffix is label-wise: xpay.internal is not below pay.internal', 'suffix pay.internal', 'xpay.internal', false],
    ['fail/suffix does not cover a name elsewhere', 'suffix pay.internal', 'db.hr.internal', false],
    ['fail/suffix does not cover its parent', 'suffix api.pay.internal', 'pay.internal', false],
    ['fail/a DNS suffix covers no address', 'suffix pay.internal', '10.0.0.1', false],
    ['ok/name covers exactly itself', 'name gw.corp.internal', 'gw.corp.internal', true],
    ['fail/name does not cover names below it', 'name gw.corp.internal', 'a.gw.corp.internal', false],
    ['fail/name does not cover a wildcard on itself', 'name gw.corp.internal', '*.gw.corp.internal', false],
    ['ok/a wildcard name scope covers that wildcard', 'name *.web.internal', '*.web.internal', true],
    ['ok/cidr covers an IPv4 address inside', 'cidr 10.20.0.0/16', '10.20.3.4', true],
    ['fail/cidr does not cover an address outside', 'cidr 10.20.0.0/16', '10.21.0.1', false],
    ['ok/cidr covers an IPv6 address inside', 'cidr 2001:db8::/32', '2001:db8::7', true],
    ['ok/an IPv4 cidr covers the IPv4-mapped form', 'cidr 10.0.0.0/8', '::ffff:10.1.2.3', true],
    ['fail/a cidr covers no DNS name', 'cidr 10.0.0.0/8', 'ten.internal', false],
  ];
  for (const [name, s, value, expected] of cases) t.equal(scopeCovers(compileScope(scope(s)), id(value)), expected, name);
});

await t.test('scopeReaches: what a group without scopes may not order from a group that declares this one', async (t) => {
  const cases: [string, string, string, boolean][] = [
    ['ok/a name below the suffix is reached', 'suffix pay.internal', 'api.pay.internal', true],
    ['ok/a wildcard one label above a suffix reaches it (*.internal matches pay.internal)', 'suffix pay.internal', '*.internal', true],
    ['ok/a wildcard on the suffix itself reaches it', 'suffix pay.internal', '*.pay.internal', true],
    ['fail/a wildcard two labels above does not reach (one label only, RFC 6125 §6.4.3)', 'suffix a.pay.internal', '*.internal', false],
    ['fail/an unrelated name is not reached', 'suffix pay.internal', 'db.hr.internal', false],
    ['ok/a wildcard reaches a name scope one label below its base', 'name gw.corp.internal', '*.corp.internal', true],
    ['fail/a wildcard does not reach a name two labels below', 'name a.gw.corp.internal', '*.corp.internal', false],
    ['ok/an address inside a cidr is reached', 'cidr 10.20.0.0/16', '10.20.0.9', true],
  ];
  for (const [name, s, value, expected] of cases) t.equal(scopeReaches(compileScope(scope(s)), id(value)), expected, name);
});

await t.test('scopesOverlap: two groups may hold these only if both mark them shared', async (t) => {
  const cases: [string, string, string, boolean][] = [
    ['ok/equal suffixes overlap', 'suffix pay.internal', 'suffix pay.internal', true],
    ['ok/a suffix below another overlaps it', 'suffix pay.internal', 'suffix db.pay.internal', true],
    ['ok/the other way round too', 'suffix db.pay.internal', 'suffix pay.internal', true],
    ['fail/sibling suffixes do not overlap', 'suffix pay.internal', 'suffix hr.internal', false],
    ['fail/label-wise: xpay.internal and pay.internal do not overlap', 'suffix xpay.internal', 'suffix pay.internal', false],
    ['ok/a name inside a suffix overlaps it', 'name gw.pay.internal', 'suffix pay.internal', true],
    ['ok/a wildcard name inside a suffix overlaps it', 'suffix pay.internal', 'name *.web.pay.internal', true],
    ['fail/a name outside a suffix does not', 'name gw.hr.internal', 'suffix pay.internal', false],
    ['ok/equal names overlap', 'name gw.internal', 'name gw.internal', true],
    ['fail/different names do not', 'name gw.internal', 'name gw2.internal', false],
    ['ok/nested networks overlap', 'cidr 10.0.0.0/8', 'cidr 10.20.0.0/16', true],
    ['fail/disjoint networks do not', 'cidr 10.20.0.0/16', 'cidr 10.21.0.0/16', false],
    ['ok/an IPv4 network and its IPv4-mapped IPv6 form overlap', 'cidr 10.0.0.0/8', 'cidr ::ffff:10.0.0.0/104', true],
    ['fail/a network and a DNS suffix never overlap', 'cidr 10.0.0.0/8', 'suffix pay.internal', false],
  ];
  for (const [name, a, b, expected] of cases) t.equal(scopesOverlap(compileScope(scope(a)), compileScope(scope(b))), expected, name);
});

await t.test('scopeProblem: a scope must be well formed', async (t) => {
  const cases: [string, string, RegExp | undefined][] = [
    ['ok/a suffix', 'suffix pay.internal', undefined],
    ['ok/a single-label suffix (private networks)', 'suffix internal', undefined],
    ['ok/a wildcard name', 'name *.web.internal', undefined],
    ['ok/a network', 'cidr 10.20.0.0/16', undefined],
    ['fail/a suffix with a wildcard', 'suffix *.pay.internal', /must not contain "\*"/],
    ['fail/a name with an invalid label', 'name bad_name.internal', /invalid label/],
    ['fail/a network with host bits set', 'cidr 10.20.0.1/16', /host bits set; did you mean 10.20.0.0\/16/],
    ['fail/not a network', 'cidr ten/8', /not an IPv4 or IPv6 address/],
  ];
  for (const [name, s, expected] of cases) {
    const problem = scopeProblem(scope(s));
    if (expected === undefined) t.equal(problem, undefined, name);
    else t.match(problem, expected, name);
  }
});
