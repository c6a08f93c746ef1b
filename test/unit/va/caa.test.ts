import t from 'tap';
import { evaluateCaa, parseIssueValue, relevantCaaSet, type CaaRecord, type CaaRequest } from '../../../src/va/caa.js';

/** CAA evaluation (RFC 8659 §4, RFC 8657) as a pure function over a record set: table cases. */
const US = ['ca.test', 'pki.example.internal'];
const ACCOUNT = 'https://127.0.0.1:8443/acme/acct/abc';
const issue = (value: string, critical = false): CaaRecord => ({ critical, tag: 'issue', value });
const issuewild = (value: string): CaaRecord => ({ critical: false, tag: 'issuewild', value });
const request = (overrides: Partial<CaaRequest> = {}): CaaRequest => ({ name: 'web.zone.test', wildcard: false, accountUri: ACCOUNT, method: 'http-01', ...overrides });
const at = (...records: CaaRecord[]) => ({ name: 'zone.test', records });

const cases: [name: string, set: ReturnType<typeof at> | undefined, request: CaaRequest, permitted: boolean, detail?: RegExp][] = [
  ['ok/no CAA anywhere', undefined, request(), true],
  ['ok/issue names us', at(issue('ca.test')), request(), true, /authorizes ca\.test/],
  ['ok/issue names us in another case, with spaces', at(issue(' CA.Test ')), request(), true],
  ['ok/one of several issue records names us', at(issue('other.example'), issue('pki.example.internal')), request(), true],
  ['fail/issue names another CA', at(issue('letsencrypt.org')), request(), false, /issue names letsencrypt\.org/],
  ['fail/issue ";" forbids every CA', at(issue(';')), request(), false, /forbids every CA/],
  ['fail/a malformed issue value authorizes no one', at(issue('ca.test; accounturi')), request(), false, /malformed issue/],
  ['fail/a malformed issuer name', at(issue('ca..test')), request(), false, /malformed issue/],
  ['fail/an unknown critical property forbids issuance', at(issue('ca.test'), { critical: true, tag: 'tbs', value: 'x' }), request(), false, /critical property "tbs"/],
  ['ok/an unknown non-critical property is ignored', at(issue('ca.test'), { critical: false, tag: 'tbs', value: 'x' }), request(), true],
  ['ok/only iodef: no issue property, issuance allowed', at({ critical: false, tag: 'iodef', value: 'mailto:sec@zone.test' }), request(), true],
  ['ok/wildcard without issuewild uses issue', at(issue('ca.test')), request({ wildcard: true }), true],
  ['fail/wildcard: issuewild decides over issue', at(issue('ca.test'), issuewild('other.example')), request({ wildcard: true }), false, /issuewild names other\.example/],
  ['ok/wildcard: issuewild names us', at(issue('other.example'), issuewild('ca.test')), request({ wildcard: true }), true],
  ['ok/non-wildcard ignores issuewild', at(issue('ca.test'), issuewild(';')), request(), true],
  ['ok/accounturi matches (RFC 8657 §3)', at(issue(`ca.test; accounturi=${ACCOUNT}`)), request(), true],
  ['fail/accounturi names another account', at(issue('ca.test; accounturi=https://127.0.0.1:8443/acme/acct/zzz')), request(), false, /another account/],
  ['ok/validationmethods includes the method (RFC 8657 §4)', at(issue('ca.test; validationmethods=dns-01,http-01')), request(), true],
  ['fail/validationmethods excludes the method', at(issue('ca.test; validationmethods=dns-01')), request(), false, /allows only dns-01/],
  ['ok/both parameters', at(issue(`ca.test; accounturi=${ACCOUNT}; validationmethods=http-01`)), request(), true],
];

for (const [name, set, req, permitted, detail] of cases) {
  t.test(name, async (t) => {
    const verdict = evaluateCaa(set, req, US);
    t.equal(verdict.permitted, permitted, verdict.detail);
    if (detail) t.match(verdict.detail, detail);
  });
}

t.test('ok/parseIssueValue', async (t) => {
  t.same(parseIssueValue('ca.test'), { issuer: 'ca.test', parameters: new Map() });
  t.same(parseIssueValue(';'), { issuer: '', parameters: new Map() });
  t.same(parseIssueValue('ca.test; a=b; c = d'), { issuer: 'ca.test', parameters: new Map([['a', 'b'], ['c', 'd']]) });
  t.equal(parseIssueValue('ca.test; =b'), undefined);
  t.equal(parseIssueValue('-ca.test'), undefined);
});

t.test('ok/relevant set: the first non-empty set climbing to the TLD (RFC 8659 §3)', async (t) => {
  const asked: string[] = [];
  const zone = new Map([['zone.test', [issue('ca.test')]]]);
  const set = await relevantCaaSet('a.b.zone.test.', async (name) => {
    asked.push(name);
    return zone.get(name) ?? [];
  });
  t.same(asked, ['a.b.zone.test', 'b.zone.test', 'zone.test']);
  t.equal(set?.name, 'zone.test');
  t.equal(await relevantCaaSet('x.none.test', async () => []), undefined);
});
