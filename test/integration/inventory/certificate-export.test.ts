/**
 * The certificate export rendered by the database (certificate-search-repository.ts, exportLinesSql) on
 * PGlite and PostgreSQL: byte for byte the JavaScript reference (test/helpers/export-reference.ts) over
 * the same rows, for certificates with awkward values (formula-like and separator-laden cells, quotes,
 * line breaks, backslashes, control characters, non-ASCII text, integer-like label keys, several names,
 * none, revoked, expired, no group, profile or account), in every sort order, through CertificateInventory
 * and page by page; and the cursor rule while rows are inserted between pages. Without a sort, on PostgreSQL:
 * the same lines in no particular order, from one snapshot (certificate-snapshot-export.ts).
 */
import t from 'tap';

import type { IssuedCertificate } from '../../../src/core/certificate.js';
import type { ExportFormat } from '../../../src/core/certificate-export.js';
import { DAY, FakeClock, HOUR } from '../../../src/core/clock.js';
import type { Database } from '../../../src/db/database.js';
import { AccountRepository } from '../../../src/db/repositories/account-repository.js';
import { CertificateRepository } from '../../../src/db/repositories/certificate-repository.js';
import { CertificateSearchRepository, type SearchCriteria, type SearchOrder } from '../../../src/db/repositories/certificate-search-repository.js';
import { CertificateSnapshotExport, snapshotExportOf } from '../../../src/db/repositories/certificate-snapshot-export.js';
import { IssuerRepository } from '../../../src/db/repositories/issuer-repository.js';
import { parseFilter } from '../../../src/inventory/certificate-filter.js';
import { CertificateInventory, criteriaOf } from '../../../src/inventory/certificate-inventory.js';
import { builders } from '../../helpers/builders.js';
import { insertRootIssuer, withEachDatabase } from '../../helpers/databases.js';
import { referenceExport } from '../../helpers/export-reference.js';

const T0 = new Date('2026-03-01T00:00:00.000Z');
const at = (ms: number): Date => new Date(T0.getTime() + ms);
const { buildCertificate, buildAccount, buildIssuer } = builders(T0);
const ORDERS: SearchOrder[] = [
  { by: 'notAfter', descending: false },
  { by: 'notAfter', descending: true },
  { by: 'issuedAt', descending: false },
  { by: 'issuedAt', descending: true },
];
const SORTS = ['notAfter', '-notAfter', 'issuedAt', '-issuedAt'] as const;
const FORMATS: ExportFormat[] = ['csv', 'jsonl'];

async function store(db: Database, overrides: Partial<IssuedCertificate>): Promise<IssuedCertificate> {
  const certificate = buildCertificate({ createdAt: at(-10 * DAY), notBefore: at(-10 * DAY), notAfter: at(30 * DAY), ...overrides });
  await new CertificateRepository(db).reserveSerial(certificate.serial, certificate.issuerId, certificate.createdAt);
  await new CertificateRepository(db).insert(certificate);
  return certificate;
}

/** Every matching certificate as the row mapper reads it (DER and all), in `order`. */
async function mapped(search: CertificateSearchRepository, criteria: SearchCriteria, now: Date, order: SearchOrder): Promise<IssuedCertificate[]> {
  const out: IssuedCertificate[] = [];
  let after: { at: Date; serial: string } | undefined;
  for (;;) {
    const page = await search.search({ criteria, now, order, limit: 50, ...(after ? { after } : {}) });
    out.push(...page.items);
    const last = page.items.at(-1);
    if (!page.more || last === undefined) return out;
    after = { at: order.by === 'notAfter' ? last.notAfter : last.createdAt, serial: last.serial };
  }
}

/** An export walked with exportLines `limit` rows at a time, as CertificateInventory walks it. */
async function walked(search: CertificateSearchRepository, criteria: SearchCriteria, now: Date, order: SearchOrder, format: ExportFormat, limit: number): Promise<string> {
  let text = '';
  let after: { at: Date; serial: string } | undefined;
  for (;;) {
    const page = await search.exportLines({ criteria, now, order, limit, format, ...(after ? { after } : {}) });
    text += page.lines.join('');
    if (!page.more || page.last === undefined) return text;
    after = page.last;
  }
}

async function exported(inventory: CertificateInventory, parameters: Record<string, string>, format: ExportFormat): Promise<string> {
  let text = '';
  for await (const chunk of inventory.exportParameters('all', parameters, format)) text += chunk;
  return text;
}

await withEachDatabase(t, async (t, db) => {
  await insertRootIssuer(db, at(-400 * DAY));
  const clock = new FakeClock(T0);
  const now = clock.now();
  const search = new CertificateSearchRepository(db);
  const inventory = new CertificateInventory({ store: search, clock });

  // Identifiers chosen by operators and clients: an issuer, a profile and an account with awkward ids.
  await new IssuerRepository(db).insert(buildIssuer({ id: '=int,"b"', role: 'intermediate', parentId: 'root', keyName: 'int-b-key', subject: 'CN=Int B' }));
  const account = buildAccount({ id: '@acct;"x"' });
  await new AccountRepository(db).insert(account);

  const plain = await store(db, {
    identifiers: [{ type: 'dns', value: 'api.pay.internal' }],
    group: 'payments',
    labels: { env: 'prod', owner: 'team-pay', 'cost-center': '4711' },
    accountId: account.id,
  });
  const hostile = await store(db, {
    identifiers: [
      { type: 'dns', value: 'a.example' },
      { type: 'dns', value: 'b.example' },
      { type: 'ip', value: '10.0.0.1' },
    ],
    group: 'alpha',
    labels: {
      note: '=cmd|" /C calc"!A0',
      owner: '@ops',
      'cost-center': '-42',
      plus: '+1',
      comma: 'a,b',
      quote: 'say "hi"',
      separators: 'x", "y": "z',
      newline: 'line\nbreak',
      cr: 'x\ry',
      tab: '\tlead',
      unicode: 'naïve 日本 😀 \u2028',
      backslash: 'C:\\path\\',
      control: '\u0001bell\u001f',
      empty: '',
      'k"ey': 'v',
    },
    profile: '+profile',
    issuerId: '=int,"b"',
    accountId: account.id,
    replacesSerial: plain.serial,
  });
  const indexKeys = await store(db, {
    group: 'beta',
    labels: { b: '1', '10': 'ten', '2': 'two', a: 'x', '0': 'zero', '4294967294': 'max index', '4294967295': 'not an index', '01': 'lead', '-1': 'minus', '1a': 'mixed', z: '123' },
  });
  const digitValues = await store(db, { group: 'beta', labels: { app: '42', n: '7', '1a': 'x' } });
  const bare = await store(db, { identifiers: [], group: undefined, labels: undefined, accountId: undefined });
  const emptyLabels = await store(db, { identifiers: [{ type: 'dns', value: '-lead.example' }], labels: {} });
  const expired = await store(db, { group: 'gamma', notAfter: at(-DAY) });
  const expiresNow = await store(db, { group: 'gamma', notAfter: now });
  const revoked = await store(db, { group: 'gamma', labels: { env: 'staging' } });
  await new CertificateRepository(db).revoke(revoked.serial, at(-HOUR), 1);
  const superseded = await store(db, { group: 'gamma', notAfter: at(-2 * DAY) });
  await new CertificateRepository(db).revoke(superseded.serial, at(-3 * DAY + 123), 4);
  const odd = await store(db, { createdAt: at(-20 * DAY + 1), notBefore: new Date('1969-12-31T23:59:59.999Z'), notAfter: new Date('9999-12-31T23:59:59.000Z') });
  const early = await store(db, { createdAt: at(-5 * DAY + 7), notBefore: new Date('1950-01-01T00:00:00.000Z'), notAfter: at(5 * DAY + 999) });
  // CSV cells that a spreadsheet would evaluate, or that hold separators, as groups.
  const cells: [group: string, cell: string][] = [
    ['=HYPERLINK("http://x","y")', `"'=HYPERLINK(""http://x"",""y"")"`],
    ['+1+1', "'+1+1"],
    ['-2+3', "'-2+3"],
    ['@SUM(A1)', "'@SUM(A1)"],
    ['\t=1', "'\t=1"],
    ['\r=1', `"'\r=1"`],
    ['a,b', '"a,b"'],
    ['line\nbreak', '"line\nbreak"'],
    ['plain.example', 'plain.example'],
    ['x=1', 'x=1'],
    ['', ''],
  ];
  const byCell: [IssuedCertificate, string][] = [];
  for (const [group, cell] of cells) byCell.push([await store(db, { group, notAfter: at(40 * DAY) }), cell]);
  const awkward = [plain, hostile, indexKeys, digitValues, bare, emptyLabels, expired, expiresNow, revoked, superseded, odd, early];

  t.test('ok/the lines are byte for byte the JavaScript rendering, in every sort order and both formats', async (t) => {
    for (const [i, sort] of SORTS.entries()) {
      const certificates = await mapped(search, {}, now, ORDERS[i]!);
      t.equal(certificates.length, awkward.length + byCell.length);
      for (const format of FORMATS) {
        t.equal(await exported(inventory, { sort }, format), referenceExport(format, now, certificates), `${format}, sort ${sort}`);
      }
    }
  });

  t.test('ok/page by page, each page continuing after the last line of the one before', async (t) => {
    for (const order of ORDERS) {
      const certificates = await mapped(search, {}, now, order);
      for (const format of FORMATS) {
        for (const limit of [1, 2, 5]) {
          t.equal(await walked(search, {}, now, order, format, limit), referenceExport(format, now, certificates).replace(/^serial,.*\r\n/, ''), `${format}, ${order.by}${order.descending ? ' desc' : ''}, pages of ${limit}`);
        }
      }
    }
  });

  t.test('ok/filtered exports (the same WHERE as a search) are the JavaScript rendering too', async (t) => {
    const filters: Record<string, string>[] = [
      { group: 'gamma' },
      { status: 'expired', sort: 'notAfter' },
      { status: 'revoked' },
      { label: 'env:staging' },
      { suffix: '.example', sort: 'notAfter' },
      { name: 'a.example' },
      { issuer: 'root', sort: 'issuedAt' },
    ];
    for (const parameters of filters) {
      const { filter, sort } = parseFilter(parameters);
      const criteria: SearchCriteria = {
        ...(filter.group ? { groups: [filter.group] } : {}),
        ...(filter.status ? { status: filter.status } : {}),
        ...(filter.labels ? { labels: filter.labels } : {}),
        ...(filter.suffix ? { suffix: filter.suffix } : {}),
        ...(filter.name ? { name: filter.name } : {}),
        ...(filter.issuer ? { issuer: filter.issuer } : {}),
      };
      const certificates = await mapped(search, criteria, now, { by: sort.endsWith('notAfter') ? 'notAfter' : 'issuedAt', descending: sort.startsWith('-') });
      t.ok(certificates.length > 0, JSON.stringify(parameters));
      for (const format of FORMATS) t.equal(await exported(inventory, parameters, format), referenceExport(format, now, certificates), `${format} ${JSON.stringify(parameters)}`);
    }
  });

  /** `text` is exactly `lines` in some order, each once (lines start with distinct serials). */
  const permutationOf = (text: string, lines: readonly string[]): boolean =>
    text.length === lines.reduce((n, line) => n + line.length, 0) && lines.every((line) => text.indexOf(line) >= 0 && text.indexOf(line) === text.lastIndexOf(line));
  const linesOf = (format: ExportFormat, certificates: readonly IssuedCertificate[]): string[] =>
    certificates.map((certificate) => referenceExport(format, now, [certificate]).replace(/^serial,.*?\r\n/, ''));

  t.test('ok/without sort: on PostgreSQL every matching row once, in no particular order, from one snapshot; on PGlite sorted', async (t) => {
    const unordered = snapshotExportOf(db);
    if (db.driver === 'pglite') {
      t.equal(unordered, undefined, 'the embedded database has no snapshot export (it would hold its only connection)');
      return;
    }
    const fast = new CertificateInventory({ store: search, clock, unordered: unordered! });
    const filters: Record<string, string>[] = [{}, { group: 'gamma' }, { status: 'revoked' }, { status: 'valid' }, { label: 'env:staging' }, { suffix: '.example' }, { name: 'a.example' }, { issuer: 'root' }, { profile: 'tls-server' }];
    for (const parameters of filters) {
      const { filter } = parseFilter(parameters);
      const criteria = criteriaOf(filter, 'all', now)!;
      const certificates = await mapped(search, criteria, now, ORDERS[0]!);
      t.ok(certificates.length > 0, JSON.stringify(parameters));
      for (const format of FORMATS) {
        const text = await exported(fast, parameters, format);
        const header = format === 'csv' ? `${referenceExport('csv', now, []).trimEnd()}\r\n` : '';
        t.ok(text.startsWith(header), 'the header first');
        t.ok(permutationOf(text.slice(header.length), linesOf(format, certificates)), `${format} ${JSON.stringify(parameters)}: the lines of the sorted export, each once`);
      }
    }
    // A group-admin's scope is the query's: other groups' rows are never read.
    const scoped: string[] = [];
    for await (const chunk of fast.export(['gamma', 'beta'], {}, undefined, 'jsonl')) scoped.push(...chunk.trimEnd().split('\n').map((line) => (JSON.parse(line) as { group: string }).group));
    t.same([...new Set(scoped)].sort(), ['beta', 'gamma'], 'a scope of two groups exports those two');
    t.equal(await exported(fast, { sort: 'notAfter' }, 'csv'), referenceExport('csv', now, await mapped(search, {}, now, ORDERS[0]!)), 'with sort: that order');

    // One snapshot, two lines a FETCH: rows stored and revoked while it is read change nothing in it.
    const group = 'snapshot';
    const existing: IssuedCertificate[] = [];
    for (let i = 0; i < 7; i++) existing.push(await store(db, { group }));
    const exporter = new CertificateSnapshotExport(db, { fetchRows: 2 });
    let text = '';
    let round = 0;
    for await (const chunk of exporter.lines({ criteria: { groups: [group] }, now, format: 'csv' })) {
      text += chunk;
      if (round++ === 0) {
        await store(db, { group });
        await new CertificateRepository(db).revoke(existing[6]!.serial, now, 1);
      }
    }
    t.ok(round > 3, 'read over several FETCHes');
    t.ok(permutationOf(text, linesOf('csv', existing)), 'exactly the rows of the snapshot, each once, as they were (the revoked one still valid)');

    // A consumer that stops early: the transaction ends and releases its locks before the return resolves.
    const early = exporter.lines({ criteria: {}, now, format: 'csv' });
    t.ok((await early.next()).value);
    await early.return(undefined);
    await db.transaction(async (tx) => {
      await tx.query("SET LOCAL lock_timeout = '2s'");
      await tx.query('LOCK TABLE certificates IN ACCESS EXCLUSIVE MODE');
    });
    t.pass('no export transaction holds certificates after the consumer stopped');

    // A consumer that stops reading without going away: after stallMs the transaction ends; its next read fails.
    const stalling = new CertificateSnapshotExport(db, { fetchRows: 2, stallMs: 300 });
    const stalled = stalling.lines({ criteria: {}, now, format: 'csv' });
    t.ok((await stalled.next()).value);
    await new Promise((resolve) => setTimeout(resolve, 600));
    await db.transaction(async (tx) => {
      await tx.query("SET LOCAL lock_timeout = '2s'");
      await tx.query('LOCK TABLE certificates IN ACCESS EXCLUSIVE MODE');
    });
    t.pass('no export transaction holds certificates once the reader stalled');
    await t.rejects(
      (async () => {
        for (;;) if ((await stalled.next()).done) return;
      })(),
      /took more than 0\.3 s to take the next part; the transaction was ended/,
      'the stalled reader is told why its export ended',
    );
  });

  t.test('ok/a broad suffix (walked in sort order, checked on each row) exports the same lines', async (t) => {
    const walking = new CertificateSearchRepository(db, { broadSuffix: 1 });
    const certificates = await mapped(search, { suffix: '.example' }, now, ORDERS[0]!);
    t.ok(certificates.length > 1);
    for (const format of FORMATS) {
      const expected = referenceExport(format, now, certificates).replace(/^serial,.*\r\n/, '');
      t.equal(await walked(walking, { suffix: '.example' }, now, ORDERS[0]!, format, 2), expected, format);
    }
  });

  t.test('ok/what the lines say: defused and quoted cells, status at now, labels in JavaScript order', async (t) => {
    const csv = await exported(inventory, { sort: 'notAfter' }, 'csv');
    const lines = csv.split('\r\n');
    t.equal(lines[0], 'serial,status,names,group,labels,notBefore,notAfter,issuedAt,issuer,profile,account,spkiSha256,replaces,revokedAt,revocationReason');
    const lineOf = (serial: string): string => {
      const start = csv.indexOf(`\r\n${serial},`);
      return csv.slice(start + 2, csv.indexOf('\r\n', start + 2));
    };
    for (const [certificate, cell] of byCell) t.ok(lineOf(certificate.serial).startsWith(`${certificate.serial},valid,${certificate.identifiers[0]!.value},${cell},`), `group ${JSON.stringify(certificate.group)} is the cell ${JSON.stringify(cell)}`);
    t.match(lineOf(hostile.serial), /^[0-9a-f]+,valid,a\.example b\.example 10\.0\.0\.1,alpha,"cr=x\ry;tab=\tlead;k""ey=v;note==cmd\|"" \/C calc""!A0;/, 'names in order; labels in one quoted cell, in jsonb key order');
    t.match(lineOf(hostile.serial), /,"'=int,""b""",'\+profile,"'@acct;""x""",/, 'issuer, profile and account defused, and quoted where they hold separators');
    t.match(lineOf(indexKeys.serial), /,beta,"?0=zero;2=two;10=ten;4294967294=max index;a=x;b=1;z=123;-1=minus;01=lead;1a=mixed;4294967295=not an index"?,/, 'integer-like keys first, as JavaScript orders them');
    t.match(lineOf(expired.serial), /^[0-9a-f]+,expired,/);
    t.match(lineOf(expiresNow.serial), /^[0-9a-f]+,expired,/, 'notAfter = now: expired');
    t.match(lineOf(revoked.serial), /,2026-02-28T23:00:00\.000Z,keyCompromise$/);
    t.match(lineOf(superseded.serial), /^[0-9a-f]+,revoked,.*,2026-02-26T00:00:00\.123Z,superseded$/);
    t.match(lineOf(odd.serial), /,1969-12-31T23:59:59\.999Z,9999-12-31T23:59:59\.000Z,2026-02-09T00:00:00\.001Z,/);
    t.match(lineOf(bare.serial), /^[0-9a-f]+,valid,,,,/, 'no names, group or labels');
    t.match(lineOf(emptyLabels.serial), /^[0-9a-f]+,valid,'-lead\.example,,,/);
    t.equal(lineOf(plain.serial).split(',')[12], '', 'replaces nothing');
    t.equal(lineOf(hostile.serial).split(',').at(-3), plain.serial, 'replaces');

    const jsonl = await exported(inventory, { sort: 'notAfter' }, 'jsonl');
    const records = jsonl.trimEnd().split('\n').map((line) => JSON.parse(line) as { serial: string; labels: Record<string, string>; names: unknown });
    const record = records.find((r) => r.serial === hostile.serial)!;
    t.same(record.labels, hostile.labels, 'JSON lines keep the values exactly');
    t.same(Object.keys(record.labels), Object.keys(hostile.labels!).sort((x, y) => x.length - y.length || (x < y ? -1 : 1)), "in jsonb's key order (no integer-like key)");
    t.same(record.names, hostile.identifiers);
    t.same(Object.keys(records.find((r) => r.serial === indexKeys.serial)!.labels), ['0', '2', '10', '4294967294', 'a', 'b', 'z', '-1', '01', '1a', '4294967295']);
    const none = records.find((r) => r.serial === bare.serial)!;
    t.same([none.names, none.labels], [[], {}], 'no names, no labels');
  });

  t.test('ok/every row that existed at the first page, and still matches, is exported exactly once while rows are inserted between pages', async (t) => {
    for (const order of ORDERS) {
      const group = `cursor-${order.by}-${order.descending ? 'desc' : 'asc'}`;
      const existing: IssuedCertificate[] = [];
      // Ties on the sort key (same notAfter, same createdAt) are broken by serial.
      for (let i = 0; i < 9; i++) existing.push(await store(db, { group, createdAt: at(-(i % 3) * DAY), notAfter: at((10 + (i % 3)) * DAY) }));
      const seen: string[] = [];
      let after: { at: Date; serial: string } | undefined;
      for (let round = 0; ; round++) {
        const page = await search.exportLines({ criteria: { groups: [group] }, now, order, limit: 2, format: 'csv', ...(after ? { after } : {}) });
        seen.push(...page.lines.map((line) => line.slice(0, line.indexOf(','))));
        // Between pages: rows before, at and after the cursor position, and ties with it.
        await store(db, { group, createdAt: at(-(round % 3) * DAY), notAfter: at((10 + (round % 3)) * DAY) });
        await store(db, { group, createdAt: at(-5 * DAY + round), notAfter: at(11 * DAY + round) });
        if (!page.more || page.last === undefined) break;
        after = page.last;
      }
      t.equal(existing.filter((x) => seen.filter((s) => s === x.serial).length === 1).length, existing.length, `${group}: each existing row once`);
      t.equal(new Set(seen).size, seen.length, `${group}: no row twice`);
    }
  });
});
