import t from 'tap';
import type { Validator } from '../../../src/va/validator.js';
import { InjectClient, makeAccountKey } from '../../helpers/acme-jws.js';
import { composeForTest } from '../../helpers/runtime.js';

/**
 * newOrder refuses ip identifiers the validation network policy denies (RFC 8555 §6.7.1 rejectedIdentifier,
 * one subproblem per identifier), through the whole stack as configured by CHANCERY_VALIDATION_* variables,
 * and stores nothing. No validation runs: the validator fails the test if it is ever asked.
 */
const validator: Validator = {
  validate: async (request) => {
    t.fail(`validation of ${request.identifier.value} was attempted`);
    return { valid: false, problem: { kind: 'serverInternal', detail: 'unexpected' }, retryable: false };
  },
};
const { chancery } = await composeForTest({
  validator,
  env: { CHANCERY_VALIDATION_DENY_NETWORKS: '10.9.0.0/16', CHANCERY_VALIDATION_ALLOW_LOOPBACK: 'false' },
});
t.teardown(() => chancery.close());
const app = (await chancery.apps()).acme;
const client = new InjectClient(app, chancery.acmeUrl);

const key = await makeAccountKey('ES256');
const created = await client.post('/acme/new-account', key, { payload: { termsOfServiceAgreed: true } });
if (created.statusCode !== 201) throw new Error(`newAccount: ${created.statusCode} ${created.body}`);
const kid = String(created.headers.location);

async function counts(): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const table of ['orders', 'authorizations', 'challenges']) {
    out[table] = (await chancery.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${table}`)).rows[0]!.n;
  }
  return out;
}

interface Problem {
  type: string;
  detail: string;
  subproblems?: { type: string; detail: string; identifier: { type: string; value: string } }[];
}

const refused: { name: string; identifiers: { type: string; value: string }[]; refused: string[]; detail: RegExp }[] = [
  { name: 'fail/169.254.169.254 (cloud metadata)', identifiers: [{ type: 'ip', value: '169.254.169.254' }], refused: ['169.254.169.254'], detail: /169\.254\.0\.0\/16.*always denied|always denied.*169\.254\.0\.0\/16/ },
  { name: 'fail/::ffff:169.254.169.254 (IPv4-mapped)', identifiers: [{ type: 'ip', value: '::ffff:169.254.169.254' }], refused: ['::ffff:169.254.169.254'], detail: /IPv4 169\.254\.169\.254\) is always denied/ },
  { name: 'fail/fd00:ec2::254 (AWS IPv6 metadata)', identifiers: [{ type: 'ip', value: 'fd00:ec2::254' }], refused: ['fd00:ec2::254'], detail: /AWS/ },
  { name: 'fail/an address in CHANCERY_VALIDATION_DENY_NETWORKS', identifiers: [{ type: 'ip', value: '10.9.0.1' }], refused: ['10.9.0.1'], detail: /validation\.denyNetworks \(10\.9\.0\.0\/16\)/ },
  { name: 'fail/loopback with CHANCERY_VALIDATION_ALLOW_LOOPBACK=false', identifiers: [{ type: 'ip', value: '127.0.0.1' }], refused: ['127.0.0.1'], detail: /allowLoopback is false/ },
  {
    name: 'fail/a subproblem per refused identifier; acceptable ones are not named',
    identifiers: [
      { type: 'dns', value: 'fine.example.internal' },
      { type: 'ip', value: '169.254.169.254' },
      { type: 'ip', value: '10.1.2.3' },
      { type: 'ip', value: '::ffff:169.254.169.254' },
    ],
    refused: ['169.254.169.254', '::ffff:169.254.169.254'],
    detail: /validation network policy refuses 169\.254\.169\.254.*; the validation network policy refuses ::ffff:169\.254\.169\.254/,
  },
];

for (const c of refused) {
  await t.test(c.name, async (t) => {
    const before = await counts();
    const response = await client.post('/acme/new-order', key, { kid, payload: { identifiers: c.identifiers } });
    t.equal(response.statusCode, 400, response.body);
    t.match(String(response.headers['content-type']), /application\/problem\+json/);
    const problem = JSON.parse(response.body) as Problem;
    t.equal(problem.type, 'urn:ietf:params:acme:error:rejectedIdentifier');
    t.match(problem.detail, c.detail);
    t.same(
      (problem.subproblems ?? []).map((s) => [s.type, s.identifier.type, s.identifier.value]),
      c.refused.map((value) => ['urn:ietf:params:acme:error:rejectedIdentifier', 'ip', value]),
    );
    for (const sub of problem.subproblems ?? []) t.match(sub.detail, /^the validation network policy refuses /);
    t.same(await counts(), before, 'nothing stored');
  });
}

await t.test('ok/a private address and a public one are ordered', async (t) => {
  const response = await client.post('/acme/new-order', key, {
    kid,
    payload: { identifiers: [{ type: 'ip', value: '10.1.2.3' }, { type: 'ip', value: '192.0.2.10' }] },
  });
  t.equal(response.statusCode, 201, response.body);
});
