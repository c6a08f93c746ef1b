/**
 * The label filter (migration 0018, certificate_labels) on PGlite and PostgreSQL: it finds exactly the
 * certificates whose labels hold, in each sort order and a page at a time, alone and with every other
 * condition; keyset pages meet each row once while rows are inserted between them; and the side table stays
 * exactly what the certificates' labels say through every writer (plain and batched inserts, label edits,
 * revocations, deletes) and across the migration that backfills it.
 */

import t, { type Test } from 'tap';

import type { IssuedCertificate } from '../../../src/core/certificate.js';
import { DAY, FakeClock, HOUR } from '../../../src/core/clock.js';
import type { Labels } from '../../../src/core/group.js';
import type { Database, Queryable } from '../../../src/db/database.js';
import { migrate } from '../../../src/db/migrate.js';
import { CertificateLabelRepository } from '../../../src/db/repositories/certificate-label-repository.js';
import { CertificateRepository } from '../../../src/db/repositories/certificate-repository.js';
import { CertificateSearchRepository, type SearchCriteria, type SearchOrder } from '../../../src/db/repositories/certificate-search-repository.js';
import { builders } from '../../helpers/builders.js';
import { insertRootIssuer, migrateBefore, withEachDatabase } from '../../helpers/databases.js';

const T0 = new Date('2026-03-01T00:00:00.000Z');
const at = (ms: number): Date => new Date(T0.getTime() + ms);
const NOW = at(0);
const { buildCertificate } = builders(T0);

const ORDERS: SearchOrder[] = [
  { by: 'notAfter', descending: false },
  { by: 'notAfter', descending: true },
  { by: 'issuedAt', descending: false },
  { by: 'issuedAt', descending: true },
];
const orderName = (o: SearchOrder): string => `${o.descending ? '-' : ''}${o.by}`;

async function store(db: Database, overrides: Partial<IssuedCertificate>): Promise<IssuedCertificate> {
  const certificate = buildCertificate(overrides);
  const repository = new CertificateRepository(db);
  await repository.reserveSerial(certificate.serial, certificate.issuerId, certificate.createdAt);
  await repository.insert(certificate);
  return certificate;
}

/** Every row of a search, page by page (limit 2 unless given). */
async function all(search: CertificateSearchRepository, criteria: SearchCriteria, order: SearchOrder, limit = 2): Promise<string[]> {
  const serials: string[] = [];
  let after: { at: Date; serial: string } | undefined;
  for (;;) {
    const page = await search.search({ criteria, now: NOW, order, limit, ...(after ? { after } : {}) });
    serials.push(...page.items.map((c) => c.serial));
    if (!page.more) return serials;
    const last = page.items.at(-1)!;
    after = { at: order.by === 'notAfter' ? last.notAfter : last.createdAt, serial: last.serial };
  }
}

/** What a search must answer, decided here from the certificates themselves (the reference for the SQL). */
function matches(c: IssuedCertificate, criteria: SearchCriteria): boolean {
  const notAfter = c.notAfter.getTime();
  const valid = c.status === 'valid' && notAfter > NOW.getTime();
  if (criteria.name !== undefined && !c.identifiers.some((i) => i.value === criteria.name)) return false;
  if (criteria.suffix !== undefined && !c.identifiers.some((i) => i.value.endsWith(criteria.suffix!))) return false;
  if (criteria.groups !== undefined && (c.group === undefined || !criteria.groups.includes(c.group))) return false;
  for (const label of criteria.labels ?? []) if (c.labels?.[label.key] !== label.value) return false;
  if (criteria.status === 'valid' && !valid) return false;
  if (criteria.status === 'expired' && !(c.status === 'valid' && notAfter <= NOW.getTime())) return false;
  if (criteria.status === 'revoked' && c.status !== 'revoked') return false;
  if (criteria.expiringBy !== undefined && !(valid && notAfter <= criteria.expiringBy.getTime())) return false;
  if (criteria.issuer !== undefined && c.issuerId !== criteria.issuer) return false;
  if (criteria.profile !== undefined && c.profile !== criteria.profile) return false;
  if (criteria.account !== undefined && c.accountId !== criteria.account) return false;
  if (criteria.serial !== undefined && c.serial !== criteria.serial) return false;
  if (criteria.spki !== undefined && c.spkiSha256 !== criteria.spki) return false;
  if (criteria.issuedAfter !== undefined && !(c.createdAt > criteria.issuedAfter)) return false;
  if (criteria.issuedBefore !== undefined && !(c.createdAt < criteria.issuedBefore)) return false;
  return true;
}

function sorted(list: readonly IssuedCertificate[], order: SearchOrder): string[] {
  const key = (c: IssuedCertificate): number => (order.by === 'notAfter' ? c.notAfter : c.createdAt).getTime();
  const ascending = [...list].sort((x, y) => key(x) - key(y) || (x.serial < y.serial ? -1 : x.serial > y.serial ? 1 : 0));
  return (order.descending ? ascending.reverse() : ascending).map((c) => c.serial);
}

interface LabelRow {
  key: string;
  value: string;
  serial: string;
  not_after: number;
  created_at: number;
  group_name: string | null;
  revoked: boolean;
}

const byRow = (x: LabelRow, y: LabelRow): number =>
  x.serial < y.serial ? -1 : x.serial > y.serial ? 1 : x.key < y.key ? -1 : x.key > y.key ? 1 : Number(x.revoked) - Number(y.revoked);

/** certificate_labels as stored, and as the certificates' own labels say it must be (text values only). */
async function labelRows(db: Database): Promise<{ stored: LabelRow[]; derived: LabelRow[] }> {
  const stored = await db.query<LabelRow & { not_after: Date; created_at: Date }>(
    'SELECT key, value, serial, not_after, created_at, group_name, revoked FROM certificate_labels',
  );
  const certificates = await db.query<{ serial: string; labels: Record<string, unknown> | null; not_after: Date; created_at: Date; group_name: string | null; status: string }>(
    'SELECT serial, labels, not_after, created_at, group_name, status FROM certificates',
  );
  // Every text label once, and once more for a revoked certificate (its revocation's rows).
  const derived = certificates.rows.flatMap((c) =>
    Object.entries(c.labels ?? {})
      .filter((entry): entry is [string, string] => typeof entry[1] === 'string')
      .flatMap(([key, value]) =>
        (c.status === 'revoked' ? [false, true] : [false]).map((revoked) => ({
          key,
          value,
          serial: c.serial,
          not_after: new Date(c.not_after).getTime(),
          created_at: new Date(c.created_at).getTime(),
          group_name: c.group_name,
          revoked,
        })),
      ),
  );
  return {
    stored: stored.rows.map((r) => ({ ...r, not_after: new Date(r.not_after).getTime(), created_at: new Date(r.created_at).getTime() })).sort(byRow),
    derived: derived.sort(byRow),
  };
}

async function sideTableIsExact(t: Test, db: Database, what: string): Promise<void> {
  const { stored, derived } = await labelRows(db);
  t.same(stored, derived, `certificate_labels is exactly the certificates' labels: ${what}`);
}

await withEachDatabase(t, async (t, db) => {
  await insertRootIssuer(db, at(-400 * DAY));
  const search = new CertificateSearchRepository(db);
  const certificates = new CertificateRepository(db);
  const stored: IssuedCertificate[] = [];
  const keep = async (overrides: Partial<IssuedCertificate>): Promise<IssuedCertificate> => {
    const c = await store(db, overrides);
    stored.push(c);
    return c;
  };

  // An estate in which every condition cuts: two groups and none, three values of env, owners across groups,
  // expired, revoked and valid certificates, ties on both sort keys (broken by serial), another issuer and
  // profile, labels with other keys, and a certificate without labels.
  const groups = ['payments', 'web', undefined] as const;
  const envs = ['prod', 'staging', 'dev'] as const;
  for (let i = 0; i < 36; i++) {
    const group = groups[i % 3];
    const labels: Labels = { env: envs[Math.floor(i / 3) % 3]!, owner: `team-${i % 4}` };
    if (i % 5 === 0) labels.app = 'ledger';
    await keep({
      identifiers: [{ type: 'dns', value: `h${i}.${group ?? 'none'}.internal` }],
      ...(group === undefined ? {} : { group }),
      labels,
      createdAt: at(-(i % 7) * DAY),
      notBefore: at(-(i % 7) * DAY),
      notAfter: at((((i * 5) % 11) - 3) * DAY),
      ...(i % 6 === 1 ? { issuerId: 'root', profile: 'tls-client' } : {}),
    });
  }
  await keep({ identifiers: [{ type: 'dns', value: 'bare.web.internal' }], group: 'web', createdAt: at(-DAY), notAfter: at(3 * DAY) });
  for (const c of stored.filter((_, i) => i % 8 === 2)) {
    const revoked = await certificates.revoke(c.serial, at(-HOUR), 1);
    Object.assign(c, { status: revoked!.status, revokedAt: revoked!.revokedAt });
  }

  await t.test('ok/the side table holds every text label of every certificate stored or revoked', (t) => sideTableIsExact(t, db, 'after inserts and revocations'));

  const label = (key: string, value: string): { key: string; value: string } => ({ key, value });
  const cases: [string, SearchCriteria][] = [
    ['one label', { labels: [label('env', 'prod')] }],
    ['a label few certificates have', { labels: [label('app', 'ledger')] }],
    ['a value no certificate has', { labels: [label('env', 'nowhere')] }],
    ['a key no certificate has', { labels: [label('nokey', 'prod')] }],
    ['two labels (all must hold)', { labels: [label('env', 'prod'), label('owner', 'team-1')] }],
    ['two labels, the narrower second', { labels: [label('owner', 'team-2'), label('app', 'ledger')] }],
    ['two values of one key: nothing', { labels: [label('env', 'prod'), label('env', 'dev')] }],
    ['label + group', { labels: [label('env', 'staging')], groups: ['payments'] }],
    ['label + a scope of two groups', { labels: [label('owner', 'team-1')], groups: ['payments', 'web'] }],
    ['label + status valid', { labels: [label('env', 'prod')], status: 'valid' }],
    ['label + status expired', { labels: [label('env', 'dev')], status: 'expired' }],
    ['label + status revoked', { labels: [label('owner', 'team-2')], status: 'revoked' }],
    ['label + group + status', { labels: [label('env', 'prod')], groups: ['web'], status: 'valid' }],
    ['label + group + revoked', { labels: [label('owner', 'team-2')], groups: ['payments'], status: 'revoked' }],
    ['two labels + group + status', { labels: [label('env', 'staging'), label('owner', 'team-0')], groups: ['payments', 'web'], status: 'valid' }],
    ['label + expiring', { labels: [label('env', 'prod')], expiringBy: at(4 * DAY) }],
    ['label + issued after and before', { labels: [label('owner', 'team-3')], issuedAfter: at(-5 * DAY), issuedBefore: at(-DAY) }],
    ['label + profile', { labels: [label('env', 'staging')], profile: 'tls-client' }],
    ['label + issuer', { labels: [label('env', 'dev')], issuer: 'root' }],
    ['label + account', { labels: [label('env', 'prod')], account: 'nobody' }],
    ['label + name', { labels: [label('env', 'prod')], name: 'h2.none.internal' }],
    ['label + suffix', { labels: [label('owner', 'team-1')], suffix: '.web.internal' }],
    ['label + suffix of every name', { labels: [label('app', 'ledger')], suffix: '.internal' }],
    ['label + serial', { labels: [label('env', 'prod')], serial: stored[1]!.serial }],
    ['label + no group in scope', { labels: [label('env', 'prod')], groups: [] }],
  ];
  for (const [name, criteria] of cases) {
    await t.test(`ok/${name}`, async (t) => {
      const expected = stored.filter((c) => matches(c, criteria));
      for (const order of ORDERS) t.same(await all(search, criteria, order), sorted(expected, order), `${orderName(order)}, pages of 2`);
      t.same(await all(search, criteria, ORDERS[0]!, 100), sorted(expected, ORDERS[0]!), 'one page');
      t.same(await search.count(criteria, NOW, 100), { count: expected.length, capped: false }, 'count');
      if (expected.length > 2) t.same(await search.count(criteria, NOW, 2), { count: 2, capped: true }, 'count past the cap');
    });
  }

  await t.test('ok/a broad suffix with a label: the same answers', async (t) => {
    const walking = new CertificateSearchRepository(db, { broadSuffix: 1 });
    for (const [name, criteria] of cases.filter(([, criteria]) => criteria.suffix !== undefined)) {
      const expected = stored.filter((c) => matches(c, criteria));
      for (const order of ORDERS) t.same(await all(walking, criteria, order), sorted(expected, order), `${name}, ${orderName(order)}`);
      t.same(await walking.count(criteria, NOW, 100), { count: expected.length, capped: false });
    }
  });

  await t.test('ok/the narrowest of the labels, the group and the suffix is walked', async (t) => {
    const sent: { sql: string; params: readonly unknown[] }[] = [];
    const recorder: Queryable = {
      query: (sql, params, options) => {
        sent.push({ sql, params: params ?? [] });
        return db.query(sql, params, options);
      },
    };
    const recorded = new CertificateSearchRepository(recorder);
    // Two groups of one certificate each; app=ledger has 9 certificates, env=prod 13, bulk=yes 52, the
    // suffix .web.internal 13 names.
    await keep({ identifiers: [{ type: 'dns', value: 'solo.tiny.internal' }], group: 'tiny', labels: { env: 'prod', app: 'ledger', bulk: 'yes' }, createdAt: at(-DAY), notAfter: at(9 * DAY) });
    await keep({ identifiers: [{ type: 'dns', value: 'solo.tiny2.internal' }], group: 'tiny2', labels: { bulk: 'yes' }, createdAt: at(-2 * DAY), notAfter: at(8 * DAY) });
    for (let i = 0; i < 50; i++) {
      const group = groups[i % 3];
      await keep({ ...(group === undefined ? {} : { group }), labels: { bulk: 'yes' }, createdAt: at(-(i % 5) * DAY), notAfter: at((i % 9) * DAY) });
    }
    const walked = async (criteria: SearchCriteria): Promise<string> => {
      sent.length = 0;
      const order = ORDERS[3]!;
      t.same(await all(recorded, criteria, order, 100), sorted(stored.filter((c) => matches(c, criteria)), order), `${JSON.stringify(criteria)}: the answer`);
      const last = sent.at(-1)!;
      if (/FROM certificate_labels w/.test(last.sql)) return `label ${String(last.params[0])}=${String(last.params[1])}`;
      if (/FROM certificates w/.test(last.sql)) return 'group';
      if (/FROM certificate_names n/.test(last.sql)) return 'names';
      return 'certificates';
    };
    t.equal(await walked({ labels: [label('env', 'prod')] }), 'label env=prod', 'one label');
    t.equal(await walked({ labels: [label('env', 'prod'), label('app', 'ledger')] }), 'label app=ledger', 'the narrower of two');
    t.equal(await walked({ labels: [label('app', 'ledger'), label('env', 'prod')] }), 'label app=ledger', 'whichever comes first');
    t.equal(await walked({ labels: [label('bulk', 'yes')], groups: ['tiny'] }), 'group', 'a group much narrower than the label (a probe costs PROBE_WEIGHT entries)');
    t.equal(await walked({ labels: [label('bulk', 'yes')], groups: ['tiny', 'tiny2'] }), 'group', "a scope's groups, each walked in order and merged");
    t.equal(await walked({ labels: [label('bulk', 'yes')], groups: ['tiny'], status: 'valid' }), 'group', 'with a status');
    t.equal(await walked({ labels: [label('bulk', 'yes'), label('env', 'prod')], groups: ['tiny', 'tiny2'] }), 'group', 'two labels, probed');
    t.equal(await walked({ labels: [label('env', 'prod')], groups: ['tiny'] }), 'label env=prod', 'a group not narrow enough to be probed');
    t.equal(await walked({ labels: [label('app', 'ledger')], groups: ['payments', 'web'] }), 'label app=ledger', 'a scope wider than the label');
    t.equal(await walked({ labels: [label('env', 'prod')], status: 'revoked', groups: ['payments'] }), 'label env=prod', "revoked: the label's revoked rows, narrower than the group");
    t.equal(await walked({ labels: [label('app', 'ledger')], suffix: '.web.internal' }), 'label app=ledger', 'a suffix wider than the label');
    t.equal(await walked({ labels: [label('env', 'prod')], suffix: 'solo.tiny.internal' }), 'names', 'a suffix narrower than the label');
    t.equal(await walked({ labels: [label('env', 'prod')], name: 'solo.tiny.internal' }), 'names', 'a name');
    t.equal(await walked({ labels: [label('env', 'prod')], serial: stored[1]!.serial }), 'certificates', 'a serial');

    // Labels too wide to count (past labelCountCap, 8 here; 20,000 in production): the one whose entries match
    // the others most often is walked, whichever is given first. owner=team-0 (9 certificates) and env=prod
    // (13 and more) both pass 8; every entry that holds both counts for each, so the narrower one's entries
    // match more often.
    const capped = new CertificateSearchRepository(recorder, { labelCountCap: 8 });
    const walkedCapped = async (criteria: SearchCriteria): Promise<string> => {
      sent.length = 0;
      const order = ORDERS[0]!;
      t.same(await all(capped, criteria, order, 100), sorted(stored.filter((c) => matches(c, criteria)), order), `${JSON.stringify(criteria)}: the answer`);
      const last = sent.at(-1)!;
      return /FROM certificate_labels w/.test(last.sql) ? `label ${String(last.params[0])}=${String(last.params[1])}` : 'another walk';
    };
    const envProd = label('env', 'prod');
    const team0 = label('owner', 'team-0');
    const holding = (l: { key: string; value: string }): IssuedCertificate[] => stored.filter((c) => c.labels?.[l.key] === l.value);
    t.ok(holding(team0).length > 8 && holding(envProd).length > holding(team0).length, 'both past the cap, team-0 the narrower');
    t.equal(await walkedCapped({ labels: [envProd, team0] }), 'label owner=team-0', 'both past the cap: the label whose entries match the other more often');
    t.equal(await walkedCapped({ labels: [team0, envProd] }), 'label owner=team-0', 'whichever comes first');
  });

  await t.test('ok/export lines by label, page by page, through the label walk and the group walk', async (t) => {
    for (const criteria of [{ labels: [label('env', 'prod')], status: 'valid' as const }, { labels: [label('bulk', 'yes')], groups: ['tiny', 'tiny2'] }]) {
      for (const order of ORDERS) {
        const serials: string[] = [];
        let after: { at: Date; serial: string } | undefined;
        for (;;) {
          const page = await search.exportLines({ criteria, now: NOW, order, limit: 2, format: 'csv', ...(after ? { after } : {}) });
          serials.push(...page.lines.map((line) => line.split(',')[0]!));
          if (!page.more) break;
          after = page.last;
        }
        t.same(serials, sorted(stored.filter((c) => matches(c, criteria)), order), `${JSON.stringify(criteria)}, ${orderName(order)}`);
      }
    }
  });

  await t.test('ok/export pages (no DER) by label', async (t) => {
    const criteria: SearchCriteria = { labels: [label('env', 'prod')], groups: ['payments', 'web'] };
    const page = await search.search({ criteria, now: NOW, order: ORDERS[0]!, limit: 100, withoutDer: true });
    t.same(
      page.items.map((c) => c.serial),
      sorted(stored.filter((c) => matches(c, criteria)), ORDERS[0]!),
    );
    t.ok(page.items.every((c) => c.der.length === 0 && c.labels?.env === 'prod'));
  });

  await t.test('ok/every row that existed at the first page, and still matches, appears exactly once while rows are inserted between pages', async (t) => {
    for (const order of ORDERS) {
      for (const extra of [{}, { groups: ['cursor'] }, { groups: ['cursor'], status: 'valid' as const }]) {
        const value = `cursor-${orderName(order)}-${Object.keys(extra).join('-')}`;
        const criteria: SearchCriteria = { labels: [label('run', value)], ...extra };
        const existing: IssuedCertificate[] = [];
        // Ties on the sort key (same notAfter, same createdAt) are broken by serial.
        for (let i = 0; i < 9; i++) {
          existing.push(await store(db, { group: 'cursor', labels: { run: value }, createdAt: at(-(i % 3) * DAY), notAfter: at((10 + (i % 3)) * DAY) }));
        }
        // Not matching: another value; another group (when the group is a condition); expired (when valid is).
        const others = [
          await store(db, { group: 'cursor', labels: { run: `${value}-not` }, createdAt: at(-DAY), notAfter: at(11 * DAY) }),
          ...(criteria.groups ? [await store(db, { group: 'other', labels: { run: value }, createdAt: at(-DAY), notAfter: at(11 * DAY) })] : []),
          ...(criteria.status ? [await store(db, { group: 'cursor', labels: { run: value }, createdAt: at(-3 * DAY), notAfter: at(-DAY) })] : []),
        ];
        const seen: string[] = [];
        let after: { at: Date; serial: string } | undefined;
        for (let round = 0; ; round++) {
          const page = await search.search({ criteria, now: NOW, order, limit: 2, ...(after ? { after } : {}) });
          seen.push(...page.items.map((x) => x.serial));
          // Between pages: matching rows before, at and after the cursor position, and ties with it.
          await store(db, { group: 'cursor', labels: { run: value }, createdAt: at(-(round % 3) * DAY), notAfter: at((10 + (round % 3)) * DAY) });
          await store(db, { group: 'cursor', labels: { run: value }, createdAt: at(-5 * DAY + round), notAfter: at(11 * DAY + round) });
          if (!page.more) break;
          const last = page.items.at(-1)!;
          after = { at: order.by === 'notAfter' ? last.notAfter : last.createdAt, serial: last.serial };
        }
        t.equal(existing.filter((x) => seen.filter((s) => s === x.serial).length === 1).length, existing.length, `${value}: each existing row once`);
        t.equal(new Set(seen).size, seen.length, `${value}: no row twice`);
        t.notOk(others.some((x) => seen.includes(x.serial)), `${value}: no row that does not match`);
      }
    }
  });

  await t.test('ok/after a label edit the old value no longer matches and the new one does', async (t) => {
    const labels = new CertificateLabelRepository(db);
    const target = await store(db, { group: 'edit', labels: { env: 'edit-old', keep: 'edit-same' }, createdAt: at(-DAY), notAfter: at(20 * DAY) });
    const other = await store(db, { group: 'edit', labels: { env: 'edit-old' }, createdAt: at(-DAY), notAfter: at(21 * DAY) });
    const find = (key: string, value: string, extra: SearchCriteria = {}): Promise<string[]> => all(search, { labels: [label(key, value)], ...extra }, ORDERS[0]!);
    t.same(await find('env', 'edit-old'), [target.serial, other.serial]);
    await labels.replace(target.serial, { env: 'edit-new', keep: 'edit-same', added: 'edit-added' });
    t.same(await find('env', 'edit-old'), [other.serial], 'the old value: only the other certificate');
    t.same(await find('env', 'edit-new'), [target.serial], 'the new value');
    t.same(await find('added', 'edit-added', { groups: ['edit'], status: 'valid' }), [target.serial], 'a label added, with group and status');
    t.same(await find('keep', 'edit-same'), [target.serial], 'an unchanged label still matches');
    t.same(await search.count({ labels: [label('env', 'edit-old')] }, NOW, 10), { count: 1, capped: false }, 'counted');
    await labels.replace(target.serial, {});
    t.same(await find('keep', 'edit-same'), [], 'every label removed');
    t.same(await find('env', 'edit-new'), []);
    await labels.replace(target.serial, { env: 'edit-old' });
    t.same(await find('env', 'edit-old'), [target.serial, other.serial], 'and back');
    await sideTableIsExact(t, db, 'after label edits');
  });

  await t.test('ok/revocation moves a labelled certificate from valid to revoked, one at a time or many in one statement', async (t) => {
    const batch = await Promise.all([0, 1, 2].map((i) => store(db, { group: 'revoke', labels: { env: 'rv', n: `${i}` }, createdAt: at(-DAY), notAfter: at((20 + i) * DAY) })));
    const find = (status: 'valid' | 'revoked'): Promise<string[]> => all(search, { labels: [label('env', 'rv')], status }, ORDERS[0]!);
    t.same(await find('revoked'), []);
    await certificates.revoke(batch[0]!.serial, at(-HOUR), 4);
    t.same(await find('revoked'), [batch[0]!.serial]);
    t.same(await find('valid'), [batch[1]!.serial, batch[2]!.serial]);
    await db.query(`UPDATE certificates SET status = 'revoked', revoked_at = $2, revocation_reason = 1 WHERE serial = ANY($1::text[])`, [
      [batch[1]!.serial, batch[2]!.serial],
      at(-HOUR),
    ]);
    t.same(await find('revoked'), batch.map((c) => c.serial));
    t.same(await find('valid'), []);
    await sideTableIsExact(t, db, 'after revocations');
  });

  await t.test('ok/certificates stored by the batched issuance statement (insertForOrder) are found by label', async (t) => {
    const repository = new CertificateRepository(db, { batch: true });
    const issued = [0, 1, 2].map((i) => buildCertificate({ group: 'batch', labels: { env: 'batched', i: `${i}` }, createdAt: at(-HOUR), notAfter: at((10 + i) * DAY) }));
    for (const c of issued) await repository.reserveSerial(c.serial, c.issuerId, c.createdAt);
    await Promise.all(issued.map((c) => repository.insertForOrder(c, 'no-such-order')));
    t.same(await all(search, { labels: [label('env', 'batched')], groups: ['batch'] }, ORDERS[0]!), issued.map((c) => c.serial));
    await sideTableIsExact(t, db, 'after a batched insert');
  });

  await t.test('ok/a deleted certificate leaves no label behind', async (t) => {
    const gone = await store(db, { labels: { env: 'deleted' } });
    await db.query('DELETE FROM certificates WHERE serial = $1', [gone.serial]);
    t.same(await all(search, { labels: [label('env', 'deleted')] }, ORDERS[0]!), []);
    await sideTableIsExact(t, db, 'after a delete');
  });
});

await t.test('ok/the migration fills certificate_labels with the labels of certificates stored before it', async (t) => {
  await withEachDatabase(
    t,
    async (t, db) => {
      const clock = new FakeClock(T0);
      await migrateBefore(t, db, clock, '0018');
      await insertRootIssuer(db, at(-400 * DAY));
      const old: IssuedCertificate[] = [];
      for (let i = 0; i < 6; i++) {
        old.push(
          await store(db, {
            ...(i % 3 === 0 ? {} : { group: 'old' }),
            ...(i === 5 ? {} : { labels: { env: i % 2 === 0 ? 'prod' : 'dev', owner: `o${i}` } }),
            createdAt: at(-i * DAY),
            notAfter: at((10 - i) * DAY),
          }),
        );
      }
      await new CertificateRepository(db).revoke(old[2]!.serial, at(-HOUR), 1);
      // A value that is not text (never written by Chancery, which checks labels): not a label to search by.
      await db.query(`UPDATE certificates SET labels = '{"n": 5}'::jsonb WHERE serial = $1`, [old[5]!.serial]);

      await migrate(db, clock);
      await sideTableIsExact(t, db, 'backfilled');
      const search = new CertificateSearchRepository(db);
      t.same(await all(search, { labels: [{ key: 'env', value: 'prod' }] }, ORDERS[0]!), [old[4]!.serial, old[2]!.serial, old[0]!.serial]);
      t.same(await all(search, { labels: [{ key: 'env', value: 'prod' }], status: 'valid' }, ORDERS[3]!), [old[0]!.serial, old[4]!.serial]);
      t.same(await all(search, { labels: [{ key: 'env', value: 'dev' }], groups: ['old'] }, ORDERS[1]!), [old[1]!.serial]);
      t.same(await all(search, { labels: [{ key: 'n', value: '5' }] }, ORDERS[0]!), [], 'the number is not matched');
      t.same(await search.count({ labels: [{ key: 'env', value: 'prod' }] }, NOW, 10), { count: 3, capped: false });
      const later = await store(db, { group: 'old', labels: { env: 'prod' }, createdAt: at(HOUR), notAfter: at(30 * DAY) });
      t.same(await all(search, { labels: [{ key: 'env', value: 'prod' }], groups: ['old'] }, ORDERS[0]!), [old[4]!.serial, old[2]!.serial, later.serial]);
      await sideTableIsExact(t, db, 'and kept after it');
    },
    { migrate: false },
  );
});
