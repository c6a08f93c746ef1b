/**
 * CertificateInventory over a store double: the RBAC scope goes into the store's criteria (a group-admin's
 * search and export never ask for another group's rows), exports stream page by page at the consumer's
 * pace (memory is one page), CSV cells are defused against formula injection (OWASP CSV Injection) and
 * quoted (RFC 4180), JSON lines carry the same fields.
 */
import t from 'tap';

import type { IssuedCertificate } from '../../../src/core/certificate.js';
import { DAY, FakeClock } from '../../../src/core/clock.js';
import { csvCell, CSV_COLUMNS } from '../../../src/inventory/certificate-export.js';
import { parseFilter } from '../../../src/inventory/certificate-filter.js';
import { CertificateInventory, EXPORT_PAGE, type InventoryCriteria, type InventoryStore } from '../../../src/inventory/certificate-inventory.js';
import { builders } from '../../helpers/builders.js';

const clock = new FakeClock('2026-06-01T00:00:00Z');
const { buildCertificate } = builders(clock);

/** A store of `total` certificates (made on demand) that records what it was asked. */
function fakeStore(total: number, make: (i: number) => IssuedCertificate = (i) => buildCertificate({ serial: (0x1000 + i).toString(16) })) {
  const calls: { criteria: InventoryCriteria; after?: { serial: string }; limit: number }[] = [];
  let served = 0;
  const store: InventoryStore = {
    async search(page) {
      calls.push({ criteria: page.criteria, ...(page.after ? { after: page.after } : {}), limit: page.limit });
      const start = page.after ? parseInt(page.after.serial, 16) - 0x1000 + 1 : 0;
      const items = Array.from({ length: Math.max(0, Math.min(page.limit, total - start)) }, (_, i) => make(start + i));
      served += items.length;
      return { items, more: start + items.length < total };
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

t.test('ok/CSV cells that a spreadsheet would evaluate are defused; separators are quoted', async (t) => {
  t.equal(csvCell('=HYPERLINK("http://x","y")'), `"'=HYPERLINK(""http://x"",""y"")"`);
  t.equal(csvCell('+1+1'), "'+1+1");
  t.equal(csvCell('-2+3'), "'-2+3");
  t.equal(csvCell('@SUM(A1)'), "'@SUM(A1)");
  t.equal(csvCell('\t=1'), "'\t=1");
  t.equal(csvCell('\r=1'), `"'\r=1"`);
  t.equal(csvCell('a,b'), '"a,b"');
  t.equal(csvCell('line\nbreak'), '"line\nbreak"');
  t.equal(csvCell('plain.example'), 'plain.example');
  t.equal(csvCell('x=1'), 'x=1', 'only a leading character matters');
  t.equal(csvCell(''), '');
});

t.test('ok/a hostile certificate exported as CSV and as JSON lines', async (t) => {
  const hostile = buildCertificate({
    serial: '0a',
    identifiers: [{ type: 'dns', value: 'a.example' }, { type: 'dns', value: 'b.example' }],
    group: 'alpha',
    labels: { note: '=cmd|" /C calc"!A0', owner: '@ops', 'cost-center': '-42' },
    notAfter: new Date(clock.now().getTime() - DAY),
  });
  const { store } = fakeStore(1, () => hostile);
  const inventory = new CertificateInventory({ store, clock });
  let csv = '';
  for await (const chunk of inventory.exportParameters('all', {}, 'csv')) csv += chunk;
  const [header, row, end] = csv.split('\r\n');
  t.equal(header, CSV_COLUMNS.join(','));
  t.equal(end, '');
  t.match(row, /^0a,expired,a\.example b\.example,alpha,/);
  t.match(row, /,"note==cmd\|"" \/C calc""!A0;owner=@ops;cost-center=-42",/, 'labels joined into one cell (starting with a key: harmless) and quoted');
  let jsonl = '';
  for await (const chunk of inventory.exportParameters('all', {}, 'jsonl')) jsonl += chunk;
  const record = JSON.parse(jsonl.trim()) as Record<string, unknown>;
  t.same(record.labels, hostile.labels, 'JSON lines keep the values exactly');
  t.same(record.names, hostile.identifiers);
  t.equal(record.status, 'expired');
  t.equal(jsonl.split('\n').length, 2, 'one line and its end');

  const leading = buildCertificate({ serial: '0b', group: '=evil', labels: {} });
  const second = new CertificateInventory({ store: fakeStore(1, () => leading).store, clock });
  let out = '';
  for await (const chunk of second.exportParameters('all', {}, 'csv')) out += chunk;
  t.match(out.split('\r\n')[1], /,'=evil,/, 'a cell that starts with = gets an apostrophe');
});
