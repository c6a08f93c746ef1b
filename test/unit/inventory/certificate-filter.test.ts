/**
 * The inventory's one filter grammar (src/inventory/certificate-filter.ts): every parameter parsed from the
 * shapes a query string and a command line give, and every mistake a CaError('malformed') naming the
 * parameter; cursors that are opaque, bound to their search, and refused when forged or reused elsewhere.
 */
import t, { type Test } from 'tap';

import { CaError } from '../../../src/core/errors.js';
import {
  decodeSearchCursor,
  DEFAULT_SORT,
  encodeSearchCursor,
  parseFilter,
  parseSearch,
  type FilterParameters,
} from '../../../src/inventory/certificate-filter.js';

function refused(t: Test, parameters: FilterParameters, parameter: string, detail?: RegExp): void {
  try {
    parseSearch(parameters);
    t.fail(`${JSON.stringify(parameters)} was accepted`);
  } catch (error) {
    t.ok(error instanceof CaError && error.kind === 'malformed', `${JSON.stringify(parameters)}: malformed`);
    t.match((error as CaError).detail, new RegExp(`^parameter "${parameter}"`), `names ${parameter}`);
    if (detail) t.match((error as CaError).detail, detail);
  }
}

t.test('ok/each filter', async (t) => {
  const cases: [FilterParameters, object][] = [
    [{ name: 'API.Pay.Internal.' }, { name: 'api.pay.internal' }],
    [{ name: '10.0.0.7' }, { name: '10.0.0.7' }],
    [{ name: '2001:db8::1' }, { name: '2001:db8::1' }],
    [{ suffix: '.pay.internal' }, { suffix: '.pay.internal' }],
    [{ group: 'payments' }, { group: 'payments' }],
    [{ label: 'env:prod' }, { labels: [{ key: 'env', value: 'prod' }] }],
    [{ label: ['env:prod', 'owner:team:a'] }, { labels: [{ key: 'env', value: 'prod' }, { key: 'owner', value: 'team:a' }] }],
    [{ status: 'valid' }, { status: 'valid' }],
    [{ status: 'expired' }, { status: 'expired' }],
    [{ status: 'revoked' }, { status: 'revoked' }],
    [{ issuer: 'int-a' }, { issuer: 'int-a' }],
    [{ profile: 'tls-server' }, { profile: 'tls-server' }],
    [{ account: 'acct_1-X' }, { account: 'acct_1-X' }],
    [{ spki: 'AB'.repeat(32) }, { spki: 'ab'.repeat(32) }],
    [{ serial: '0A:F0:01' }, { serial: '0af001' }],
    [{ expiringWithinDays: '30' }, { expiringWithinDays: 30 }],
    [{ expiringWithinDays: 30 }, { expiringWithinDays: 30 }],
    [{ expiringWithinDays: '7', status: 'valid' }, { expiringWithinDays: 7, status: 'valid' }],
    [{ issuedAfter: '2026-01-31' }, { issuedAfter: new Date('2026-01-31T00:00:00Z') }],
    [{ issuedBefore: '2026-01-31T12:30:00+02:00' }, { issuedBefore: new Date('2026-01-31T10:30:00Z') }],
    [{ issuedAfter: '2026-01-01', issuedBefore: '2026-02-01' }, { issuedAfter: new Date('2026-01-01T00:00:00Z'), issuedBefore: new Date('2026-02-01T00:00:00Z') }],
    [{ name: ['only.once'] }, { name: 'only.once' }],
    [{ status: undefined }, {}],
  ];
  for (const [parameters, filter] of cases) t.same(parseSearch(parameters).filter, filter, JSON.stringify(parameters));
});

t.test('ok/sort, limit and their defaults', async (t) => {
  t.same(parseSearch({}), { filter: {}, sort: DEFAULT_SORT, limit: 100 });
  for (const sort of ['notAfter', '-notAfter', 'issuedAt', '-issuedAt']) t.equal(parseSearch({ sort }).sort, sort);
  t.equal(parseSearch({ limit: '500' }).limit, 500);
  t.equal(parseSearch({ limit: 1 }).limit, 1);
  t.equal(parseSearch({ limit: '5000' }, { maxLimit: 10_000 }).limit, 5000, 'the CLI may ask for more');
  t.same(parseFilter({ group: 'a', sort: 'notAfter' }), { filter: { group: 'a' }, sort: 'notAfter' });
});

t.test('fail/unknown filters, malformed values and repeats name the parameter', async (t) => {
  refused(t, { nmae: 'x' }, 'nmae', /unknown; the parameters are name, suffix/);
  refused(t, { name: 'a b' }, 'name');
  refused(t, { name: '' }, 'name', /empty/);
  refused(t, { name: ['a', 'b'] }, 'name', /more than once/);
  refused(t, { suffix: 'pay/internal' }, 'suffix');
  refused(t, { group: '-bad' }, 'group');
  refused(t, { label: 'env' }, 'label', /key:value/);
  refused(t, { label: 'env:' }, 'label', /key:value/);
  refused(t, { label: 'Env:prod' }, 'label', /key/);
  refused(t, { label: 'env:pr\u0007od' }, 'label', /control/);
  refused(t, { label: Array.from({ length: 17 }, (_, i) => `k${i}:v`) }, 'label', /at most 16/);
  refused(t, { status: 'active' }, 'status', /valid, expired, revoked/);
  refused(t, { issuer: 'int a' }, 'issuer');
  refused(t, { profile: "tls'" }, 'profile');
  refused(t, { account: '../x' }, 'account');
  refused(t, { spki: 'ab' }, 'spki', /64 hex/);
  refused(t, { serial: 'xyz' }, 'serial');
  refused(t, { serial: 'ab'.repeat(22) }, 'serial');
  refused(t, { expiringWithinDays: 'soon' }, 'expiringWithinDays', /whole number/);
  refused(t, { expiringWithinDays: '0' }, 'expiringWithinDays', /between 1 and 3650/);
  refused(t, { expiringWithinDays: '3651' }, 'expiringWithinDays');
  refused(t, { expiringWithinDays: '7', status: 'revoked' }, 'expiringWithinDays', /status=revoked/);
  refused(t, { issuedAfter: 'yesterday' }, 'issuedAfter');
  refused(t, { issuedAfter: '2026-02-30T00:00:00Z' }, 'issuedAfter');
  refused(t, { issuedBefore: '2026-13-01' }, 'issuedBefore');
  refused(t, { issuedAfter: '2026-02-01', issuedBefore: '2026-01-01' }, 'issuedBefore', /later than issuedAfter/);
  refused(t, { sort: 'name' }, 'sort');
  refused(t, { limit: '0' }, 'limit');
  refused(t, { limit: '501' }, 'limit');
  refused(t, { limit: '1.5' }, 'limit');
  refused(t, { name: { nested: true } }, 'name', /text/);
  t.throws(() => parseFilter({ cursor: 'x' }), /parameter "cursor": unknown/, 'an export takes no cursor');
  t.throws(() => parseFilter({ sort: 'notAfter' }, { allowSort: false }), /parameter "sort": unknown/, 'a count takes no sort');
});

t.test('ok/a cursor is opaque and continues its own search', async (t) => {
  const search = parseSearch({ group: 'payments', label: ['b:2', 'a:1'], sort: 'notAfter' });
  const position = { at: new Date('2026-05-01T00:00:00.123Z'), serial: '0af001' };
  const cursor = encodeSearchCursor(search.filter, search.sort, position);
  t.match(cursor, /^[A-Za-z0-9_-]+$/);
  t.same(parseSearch({ group: 'payments', label: ['b:2', 'a:1'], sort: 'notAfter', cursor }).after, position);
  t.same(parseSearch({ label: ['a:1', 'b:2'], group: 'payments', sort: 'notAfter', cursor }).after, position, 'label order does not matter');
});

t.test('fail/a malformed, forged or foreign cursor names the cursor', async (t) => {
  const search = parseSearch({ group: 'payments', sort: 'notAfter' });
  const cursor = encodeSearchCursor(search.filter, search.sort, { at: new Date('2026-05-01T00:00:00Z'), serial: '0af001' });
  refused(t, { group: 'payments', sort: 'notAfter', cursor: 'not a cursor!' }, 'cursor', /not a cursor this server issued/);
  refused(t, { group: 'payments', sort: 'notAfter', cursor: Buffer.from('{"a":1}').toString('base64url') }, 'cursor', /not a cursor this server issued/);
  refused(t, { group: 'payments', sort: 'notAfter', cursor: 'x'.repeat(300) }, 'cursor');
  refused(t, { group: 'web', sort: 'notAfter', cursor }, 'cursor', /another sort/);
  refused(t, { group: 'payments', sort: '-notAfter', cursor }, 'cursor', /another sort/);
  refused(t, { group: 'payments', sort: 'notAfter', cursor: [cursor, cursor] }, 'cursor', /more than once/);
  const [v, print] = JSON.parse(Buffer.from(cursor, 'base64url').toString()) as string[];
  const forged = Buffer.from(JSON.stringify([v, print, 'not a date', '0af001'])).toString('base64url');
  refused(t, { group: 'payments', sort: 'notAfter', cursor: forged }, 'cursor', /not a cursor/);
  const badSerial = Buffer.from(JSON.stringify([v, print, '2026-05-01T00:00:00.000Z', "0af001' OR 1=1"])).toString('base64url');
  refused(t, { group: 'payments', sort: 'notAfter', cursor: badSerial }, 'cursor', /not a cursor/);
  t.throws(() => decodeSearchCursor(cursor, { group: 'web' }, 'notAfter'), CaError);
});
