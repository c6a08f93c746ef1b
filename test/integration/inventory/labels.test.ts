import t from 'tap';
import type { EventOf } from '../../../src/core/events.js';
import { applyGroups, issue, newAccount } from '../../helpers/inventory-fixtures.js';
import { composeForTest } from '../../helpers/runtime.js';

/**
 * Labels edited per certificate through the admin API: replaced as a whole, checked by the label rules
 * before anything is written, raised as `certificate.labels.changed` inside the change's transaction (what
 * the audit log records), and a group-admin edits its own groups' certificates only.
 */
const { chancery } = await composeForTest({ env: { CHANCERY_ADMIN_LISTEN: '127.0.0.1:0' } });
t.teardown(() => chancery.close());
await applyGroups(chancery, [{ name: 'payments' }, { name: 'ops' }]);
const payments = await issue(chancery, { account: await newAccount(chancery, 'payments'), names: ['labels.pay.test'] });
const ops = await issue(chancery, { account: await newAccount(chancery, 'ops'), names: ['labels.ops.test'] });
const ungrouped = await issue(chancery, { names: ['labels.none.test'] });

const raised: { event: EventOf<'certificate.labels.changed'>; inTransaction: unknown }[] = [];
chancery.events.onCommitting('certificate.labels.changed', async (event, tx) => {
  // Inside the change's transaction: the new labels are there to read on its connection.
  const { rows } = await tx.query<{ labels: unknown }>('SELECT labels FROM certificates WHERE serial = $1', [event.serial]);
  raised.push({ event, inTransaction: rows[0]!.labels });
});

const local = await chancery.localAdmin();
const listener = (await chancery.apps()).admin;
async function send(method: 'GET' | 'PUT' | 'POST', url: string, options: { token?: string; body?: unknown } = {}): Promise<{ status: number; body: Record<string, unknown> }> {
  const app = options.token === undefined ? local : listener;
  const response = await app.inject({
    method,
    url: `/admin/v1${url}`,
    headers: {
      ...(options.token === undefined ? { 'x-chancery-user': 'test' } : { authorization: `Bearer ${options.token}` }),
      ...(options.body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    ...(options.body === undefined ? {} : { payload: JSON.stringify(options.body) }),
  });
  return { status: response.statusCode, body: JSON.parse(response.body) as Record<string, unknown> };
}
const token = async (body: Record<string, unknown>): Promise<string> => String((await send('POST', '/tokens', { body })).body.secret);
const opsAdmin = await token({ role: 'group-admin', groups: ['ops'] });
const auditor = await token({ role: 'auditor' });
const labelsOf = async (serial: string): Promise<unknown> => (await chancery.db.query<{ labels: unknown }>('SELECT labels FROM certificates WHERE serial = $1', [serial])).rows[0]!.labels;

await t.test('ok/an admin replaces the labels; the change is raised in its transaction', async (t) => {
  const answer = await send('PUT', `/certificates/${payments.serial}/labels`, { body: { labels: { owner: 'team-pay', environment: 'prod' } } });
  t.equal(answer.status, 200, JSON.stringify(answer.body));
  t.same(answer.body, { serial: payments.serial, labels: { owner: 'team-pay', environment: 'prod' }, previous: {} });
  t.same(await labelsOf(payments.serial), { owner: 'team-pay', environment: 'prod' });
  t.equal(raised.length, 1);
  t.same(raised[0]!.event, { type: 'certificate.labels.changed', serial: payments.serial, group: 'payments', before: {}, after: { owner: 'team-pay', environment: 'prod' }, actor: 'cli:test' });
  t.same(raised[0]!.inTransaction, { owner: 'team-pay', environment: 'prod' });
  const replaced = await send('PUT', `/certificates/${payments.serial}/labels`, { body: { labels: { owner: 'team-payments' } } });
  t.same(replaced.body.previous, { owner: 'team-pay', environment: 'prod' }, 'the whole set is replaced');
  t.same((await send('GET', `/certificates/${payments.serial}`)).body.labels, { owner: 'team-payments' }, 'as the certificate reads');
});

await t.test('ok/a group-admin edits its own groups only; an auditor edits nothing', async (t) => {
  t.equal((await send('PUT', `/certificates/${ops.serial}/labels`, { token: opsAdmin, body: { labels: { owner: 'ops' } } })).status, 200);
  t.same(await labelsOf(ops.serial), { owner: 'ops' });
  const before = await labelsOf(payments.serial);
  t.equal((await send('PUT', `/certificates/${payments.serial}/labels`, { token: opsAdmin, body: { labels: { owner: 'x' } } })).status, 404, "another group's: not there");
  t.equal((await send('PUT', `/certificates/${ungrouped.serial}/labels`, { token: opsAdmin, body: { labels: { owner: 'x' } } })).status, 404, "one in no group: an admin's");
  t.equal((await send('PUT', `/certificates/${ops.serial}/labels`, { token: auditor, body: { labels: { owner: 'x' } } })).status, 403);
  t.same(await labelsOf(payments.serial), before);
  t.same(await labelsOf(ops.serial), { owner: 'ops' });
});

await t.test('fail/bad labels change nothing and name the problem', async (t) => {
  const count = raised.length;
  const cases: [unknown, RegExp][] = [
    [{ labels: { Owner: 'x' } }, /label key "Owner" must start with a lower-case letter/],
    [{ labels: { owner: 'a\u0007b' } }, /control character/],
    [{ labels: { owner: '' } }, /needs a value/],
    [{ labels: Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`k${i}`, 'v'])) }, /must NOT have more than 32 properties/],
    [{ owner: 'x' }, /labels/],
  ];
  for (const [body, detail] of cases) {
    const answer = await send('PUT', `/certificates/${ops.serial}/labels`, { body });
    t.equal(answer.status, 400, JSON.stringify(body).slice(0, 60));
    t.match(String(answer.body.detail), detail);
  }
  t.same(await labelsOf(ops.serial), { owner: 'ops' }, 'unchanged');
  t.equal(raised.length, count, 'nothing raised');
  t.equal((await send('PUT', '/certificates/00deadbeef/labels', { body: { labels: {} } })).status, 404);
});
