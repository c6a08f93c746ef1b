/**
 * CertificateInventory over a store double: the RBAC scope goes into the store's criteria (a group-admin's
 * search and export never ask for another group's rows), exports stream page by page at the consumer's
 * pace (memory is one page), each page continuing after the last line of the one before. The lines
 * themselves are the database's (test/integration/inventory/certificate-export.test.ts); the double writes
 * them with the JavaScript reference.
 */
import t from 'tap';

import type { IssuedCertificate } from '../../../src/core/certificate.js';
import { DAY, FakeClock } from '../../../src/core/clock.js';
import { CSV_COLUMNS } from '../../../src/core/certificate-export.js';
import { parseFilter } from '../../../src/inventory/certificate-filter.js';
import { CertificateInventory, EXPORT_PAGE, type InventoryCriteria, type InventoryStore } from '../../../src/inventory/certificate-inventory.js';
import { builders } from '../../helpers/builders.js';
import { csvLine, jsonLine } from '../../helpers/export-reference.js';

const clock = new FakeClock('2026-06-01T00:00:00Z');
const { buildCertificate } = builders(clock);

/** A store of `total` certificates (made on demand) that records what it was asked. */
function fakeStore(total: number, make: (i: number) => IssuedCertificate = (i) => buildCertificate({ serial: (0x1000 + i).toString(16) })) {
  const calls: { criteria: InventoryCriteria; after?: { serial: string }; limit: number }[] = [];
  let served = 0;
  const read = (page: { criteria: InventoryCriteria; after?: { serial: string }; limit: number }): { items: IssuedCertificate[]; more: boolean } => {
    calls.push({ criteria: page.criteria, ...(page.after ? { after: page.after } : {}), limit: page.limit });
    const start = page.after ? parseInt(page.after.serial, 16) - 0x1000 + 1 : 0;
    const items = Array.from({ length: Math.max(0, Math.min(page.limit, total - start)) }, (_, i) => make(start + i));
    served += items.length;
    return { items, more: start + items.length < total };
  };
  const store: InventoryStore = {
    async search(page) {
      return read(page);
    },
    async exportLines(page) {
      const { items, more } = read(page);
      const last = items.at(-1);
      const lines = items.map((certificate) => (page.format === 'csv' ? csvLine : jsonLine)(certificate, page.now));
      return more && last ? { lines, more, last: { at: last.notAfter, serial: last.serial } } : { lines, more };
    },
    async count(criteria) {
      calls.push({ criteria, limit: 0 });
      return { count: 3, capped: false };
    },
    async counts(_now, groups) {
      calls.push({ criteria: groups ? { groups } : {}, limit: 0 });
      return [];
    },
  };
  return { store, calls, served: () => served };
}

t.test('ok/the scope is in the criteria of every search, count and export', async (t) => {
  const { store, calls } = fakeStore(1);
  const inventory = new CertificateInventory({ store, clock });
  await inventory.searchParameters(['alpha', 'beta'], {});
  t.same(calls.at(-1)?.criteria, { groups: ['alpha', 'beta'] }, 'a group-admin: its groups');
  await inventory.searchParameters(['alpha', 'beta'], { group: 'beta', status: 'valid' });
  t.same(calls.at(-1)?.criteria, { groups: ['beta'], status: 'valid' }, 'a group filter within the scope');
  await inventory.searchParameters('all', { group: 'gamma' });
  t.same(calls.at(-1)?.criteria, { groups: ['gamma'] }, 'an admin: the group asked for');
  await inventory.searchParameters('all', {});
  t.same(calls.at(-1)?.criteria, {}, 'an admin: everything');
  const before = calls.length;
  t.same(await inventory.searchParameters(['alpha'], { group: 'gamma' }), { items: [] }, 'another group than its own: nothing');
  t.same(await inventory.countParameters(['alpha'], { group: 'gamma' }), { count: 0, capped: false, cap: 10_000 });
  t.same(await inventory.countsParameters(['alpha'], { group: 'gamma' }), { at: clock.now(), groups: [] });
  const exported = [];
  for await (const chunk of inventory.exportParameters(['alpha'], { group: 'gamma' }, 'csv')) exported.push(chunk);
  t.same(exported, [`${CSV_COLUMNS.join(',')}\r\n`], 'an export of nothing: the header');
  t.equal(calls.length, before, 'and the store was not even asked');
  await inventory.countParameters(['alpha'], { label: 'env:prod' });
  t.same(calls.at(-1)?.criteria, { groups: ['alpha'], labels: [{ key: 'env', value: 'prod' }] });
  for await (const _ of inventory.exportParameters(['alpha'], { status: 'revoked' }, 'jsonl')) void _;
  t.same(calls.at(-1)?.criteria, { groups: ['alpha'], status: 'revoked' }, 'an export is scoped too');
  await inventory.countsParameters(['alpha', 'beta'], {});
  t.same(calls.at(-1)?.criteria, { groups: ['alpha', 'beta'] }, 'counts: the groups in scope');
  await inventory.searchParameters('all', { expiringWithinDays: '30' });
  t.same(calls.at(-1)?.criteria, { expiringBy: new Date(clock.now().getTime() + 30 * DAY) }, 'expiringWithinDays resolved against the Clock');
});

t.test('fail/the parameters are judged before anything is read', async (t) => {
  const { store, calls } = fakeStore(1);
  const inventory = new CertificateInventory({ store, clock });
  t.throws(() => inventory.exportParameters('all', { bogus: '1' }, 'csv'), /parameter "bogus": unknown/);
  t.throws(() => inventory.exportParameters('all', { cursor: 'abc' }, 'csv'), /parameter "cursor": unknown/);
  await t.rejects(inventory.countsParameters('all', { status: 'valid' }), /parameter "status": unknown; the counts take only group/);
  await t.rejects(inventory.searchParameters('all', { limit: '0' }), /parameter "limit"/);
  t.equal(calls.length, 0);
});

t.test('ok/search pages carry a cursor that continues after the last row', async (t) => {
  const { store, calls } = fakeStore(5);
  const inventory = new CertificateInventory({ store, clock });
  const first = await inventory.searchParameters('all', { limit: '2', sort: 'notAfter' });
  t.same(first.items.map((c) => c.serial), ['1000', '1001']);
  const second = await inventory.searchParameters('all', { limit: '2', sort: 'notAfter', cursor: first.nextCursor });
  t.same(calls.at(-1)?.after?.serial, '1001');
  t.same(second.items.map((c) => c.serial), ['1002', '1003']);
  const last = await inventory.searchParameters('all', { limit: '2', sort: 'notAfter', cursor: second.nextCursor });
  t.same(last.items.map((c) => c.serial), ['1004']);
  t.equal(last.nextCursor, undefined);
});

t.test('ok/an export streams: it reads at most one page ahead of what was taken', async (t) => {
  const total = 5 * EXPORT_PAGE + 7;
  const { store, served } = fakeStore(total);
  const inventory = new CertificateInventory({ store, clock });
  const { filter, sort } = parseFilter({});
  const chunks = inventory.export('all', filter, sort, 'csv');
  t.equal(served(), 0, 'nothing read before the first chunk is asked for');
  await chunks.next(); // header
  await chunks.next(); // first page
  await Promise.resolve();
  t.equal(served(), 2 * EXPORT_PAGE, 'the first page written, the next one read meanwhile');
  await chunks.next();
  await Promise.resolve();
  t.equal(served(), 3 * EXPORT_PAGE, 'one more page ahead, never more');
  let lines = 2 * EXPORT_PAGE;
  for await (const chunk of chunks) lines += chunk.split('\r\n').length - 1;
  t.equal(lines, total, 'every row once');
  t.equal(served(), total);
});
