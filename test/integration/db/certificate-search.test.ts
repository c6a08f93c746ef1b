/**
 * CertificateSearchRepository (migration 0013) against PGlite and PostgreSQL (DESIGN.md rule 6): every
 * filter of the inventory grammar as SQL, keyset pages that meet each row once while rows are inserted
 * between pages, capped counts, and the exact counts by group x status x expiry bucket across folds, time
 * passing and revocations (compared with a count of the table itself).
 */
import t from 'tap';

import type { IssuedCertificate } from '../../../src/core/certificate.js';
import { DAY, HOUR } from '../../../src/core/clock.js';
import type { Database } from '../../../src/db/database.js';
import { CertificateRepository } from '../../../src/db/repositories/certificate-repository.js';
import {
  CertificateSearchRepository,
  foldCertificateCounts,
  type GroupCounts,
  type SearchCriteria,
  type SearchOrder,
} from '../../../src/db/repositories/certificate-search-repository.js';
import { builders } from '../../helpers/builders.js';
import { insertRootIssuer, withEachDatabase } from '../../helpers/databases.js';

const T0 = new Date('2026-03-01T00:00:00.000Z');
const at = (ms: number): Date => new Date(T0.getTime() + ms);
const { buildCertificate } = builders(T0);
const BY_NOT_AFTER: SearchOrder = { by: 'notAfter', descending: false };

async function store(db: Database, overrides: Partial<IssuedCertificate>): Promise<IssuedCertificate> {
  const certificate = buildCertificate(overrides);
  await new CertificateRepository(db).reserveSerial(certificate.serial, certificate.issuerId, certificate.createdAt);
  await new CertificateRepository(db).insert(certificate);
  return certificate;
}

/** Every row of a search, page by page (limit 2), with the cursor position of each last row. */
async function all(search: CertificateSearchRepository, criteria: SearchCriteria, now: Date, order = BY_NOT_AFTER): Promise<string[]> {
  const serials: string[] = [];
  let after: { at: Date; serial: string } | undefined;
  for (;;) {
    const page = await search.search({ criteria, now, order, limit: 2, ...(after ? { after } : {}) });
    serials.push(...page.items.map((c) => c.serial));
    if (!page.more) return serials;
    const last = page.items.at(-1)!;
    after = { at: order.by === 'notAfter' ? last.notAfter : last.createdAt, serial: last.serial };
  }
}

/** Counts by group x bucket computed from the table itself, for comparison. */
async function countedDirectly(db: Database, now: Date): Promise<GroupCounts[]> {
  const { rows } = await db.query<{ g: string; status: string; not_after: Date }>(`SELECT coalesce(group_name, '') AS g, status, not_after FROM certificates`);
  const map = new Map<string, GroupCounts>();
  for (const row of rows) {
    const c = map.get(row.g) ?? { group: row.g, valid: 0, expired: 0, revoked: 0, expiring7: 0, expiring30: 0, expiring90: 0 };
    map.set(row.g, c);
    const left = new Date(row.not_after).getTime() - now.getTime();
    if (row.status === 'revoked') c.revoked++;
    else if (left <= 0) c.expired++;
    else {
      c.valid++;
      if (left <= 7 * DAY) c.expiring7++;
      if (left <= 30 * DAY) c.expiring30++;
      if (left <= 90 * DAY) c.expiring90++;
    }
  }
  return [...map.values()].sort((x, y) => (x.group < y.group ? -1 : 1));
}

await withEachDatabase(t, async (t, db) => {
  await insertRootIssuer(db, at(-400 * DAY));
  const search = new CertificateSearchRepository(db);
  const now = at(0);
  const spki = 'ab'.repeat(32);
  const a = await store(db, {
    identifiers: [{ type: 'dns', value: 'api.pay.internal' }, { type: 'dns', value: 'www.pay.internal' }],
    group: 'payments',
    labels: { env: 'prod', owner: 'team-pay' },
    createdAt: at(-10 * DAY),
    notBefore: at(-10 * DAY),
    notAfter: at(5 * DAY),
    profile: 'tls-server',
    spkiSha256: spki,
  });
  const b = await store(db, {
    identifiers: [{ type: 'dns', value: 'db.pay.internal' }],
    group: 'payments',
    labels: { env: 'staging', owner: 'team-pay' },
    createdAt: at(-20 * DAY),
    notBefore: at(-20 * DAY),
    notAfter: at(25 * DAY),
    profile: 'tls-client',
  });
  const c = await store(db, {
    identifiers: [{ type: 'dns', value: 'xpay.internal' }],
    group: 'web',
    labels: { env: 'prod' },
    createdAt: at(-100 * DAY),
    notBefore: at(-100 * DAY),
    notAfter: at(-1 * DAY),
  });
  const d = await store(db, { identifiers: [{ type: 'ip', value: '10.0.0.7' }], createdAt: at(-1 * DAY), notBefore: at(-1 * DAY), notAfter: at(60 * DAY), spkiSha256: spki });
  const e = await store(db, { identifiers: [{ type: 'dns', value: 'shop.web.internal' }], group: 'web', createdAt: at(-2 * DAY), notBefore: at(-2 * DAY), notAfter: at(200 * DAY) });
  await new CertificateRepository(db).revoke(e.serial, at(-HOUR), 1);

  const cases: [string, SearchCriteria, IssuedCertificate[]][] = [
    ['name (exact, any identifier)', { name: 'www.pay.internal' }, [a]],
    ['name (an IP address)', { name: '10.0.0.7' }, [d]],
    ['suffix (label-wise with the dot)', { suffix: '.pay.internal' }, [a, b]],
    ['suffix (plain text)', { suffix: 'pay.internal' }, [c, a, b]],
    ['group', { groups: ['payments'] }, [a, b]],
    ['groups (a scope of two)', { groups: ['payments', 'web'] }, [c, a, b, e]],
    ['no group in scope', { groups: [] }, []],
    ['label', { labels: [{ key: 'env', value: 'prod' }] }, [c, a]],
    ['labels (all must hold)', { labels: [{ key: 'env', value: 'prod' }, { key: 'owner', value: 'team-pay' }] }, [a]],
    ['status valid', { status: 'valid' }, [a, b, d]],
    ['status expired', { status: 'expired' }, [c]],
    ['status revoked', { status: 'revoked' }, [e]],
    ['issuer', { issuer: 'root' }, [c, a, b, d, e]],
    ['issuer (another)', { issuer: 'other' }, []],
    ['profile', { profile: 'tls-client' }, [b]],
    ['spki', { spki }, [a, d]],
    ['serial', { serial: b.serial }, [b]],
    ['expiring within 30 days', { expiringBy: at(30 * DAY) }, [a, b]],
    ['issued after', { issuedAfter: at(-3 * DAY) }, [d, e]],
    ['issued before', { issuedBefore: at(-15 * DAY) }, [c, b]],
    ['issued between', { issuedAfter: at(-25 * DAY), issuedBefore: at(-5 * DAY) }, [a, b]],
    ['suffix + expiring', { suffix: '.pay.internal', expiringBy: at(7 * DAY) }, [a]],
    ['group + status', { groups: ['web'], status: 'expired' }, [c]],
    // Counted from the indexes alone (the group's revoked index says e is revoked): e is left out.
    ['group + status valid, its one valid-dated certificate revoked', { groups: ['web'], status: 'valid' }, []],
    ['group + expiring, its one valid-dated certificate revoked', { groups: ['web'], expiringBy: at(300 * DAY) }, []],
    ['group + status valid', { groups: ['payments'], status: 'valid' }, [a, b]],
    ['suffix + status valid', { suffix: '.internal', status: 'valid' }, [a, b]],
    ['suffix + issued after', { suffix: '.internal', issuedAfter: at(-15 * DAY) }, [a, e]],
  ];
  for (const [name, criteria, expected] of cases) {
    t.test(`ok/${name}`, async (t) => {
      t.same(await all(search, criteria, now), expected.map((x) => x.serial), 'sorted by notAfter, paged by 2');
      t.same(
        await all(search, criteria, now, { by: 'issuedAt', descending: true }),
        [...expected].sort((x, y) => y.createdAt.getTime() - x.createdAt.getTime()).map((x) => x.serial),
        'newest first',
      );
      t.same(await search.count(criteria, now, 10), { count: expected.length, capped: false });
    });
  }

  t.test('ok/a broad suffix is walked in sort order and checked on each row: the same answers', async (t) => {
    const walking = new CertificateSearchRepository(db, { broadSuffix: 1 });
    for (const [, criteria, expected] of cases.filter(([, criteria]) => criteria.suffix !== undefined)) {
      t.same(await all(walking, criteria, now), expected.map((x) => x.serial), `${criteria.suffix}: sorted by notAfter`);
      t.same(await walking.count(criteria, now, 10), { count: expected.length, capped: false });
    }
  });

  t.test('ok/account', async (t) => {
    t.same(await all(search, { account: 'nobody' }, now), []);
  });

  t.test('ok/export rows leave the DER out', async (t) => {
    const page = await search.search({ criteria: { serial: a.serial }, now, order: BY_NOT_AFTER, limit: 5, withoutDer: true });
    t.equal(page.items[0]?.der.length, 0);
    t.same(page.items[0]?.identifiers, a.identifiers);
  });

  t.test('ok/a count past the cap says so', async (t) => {
    t.same(await search.count({}, now, 3), { count: 3, capped: true });
    t.same(await search.count({}, now, 5), { count: 5, capped: false });
  });

  t.test('ok/every row that existed at the first page, and still matches, appears exactly once while rows are inserted between pages', async (t) => {
    const order: SearchOrder[] = [BY_NOT_AFTER, { by: 'notAfter', descending: true }, { by: 'issuedAt', descending: false }, { by: 'issuedAt', descending: true }];
    for (const o of order) {
      const group = `cursor-${o.by}-${o.descending ? 'desc' : 'asc'}`;
      const existing: IssuedCertificate[] = [];
      // Ties on the sort key (same notAfter, same createdAt) are broken by serial.
      for (let i = 0; i < 9; i++) existing.push(await store(db, { group, createdAt: at(-(i % 3) * DAY), notAfter: at((10 + (i % 3)) * DAY) }));
      const seen: string[] = [];
      let after: { at: Date; serial: string } | undefined;
      for (let round = 0; ; round++) {
        const page = await search.search({ criteria: { groups: [group] }, now, order: o, limit: 2, ...(after ? { after } : {}) });
        seen.push(...page.items.map((x) => x.serial));
        // Between pages: rows before, at and after the cursor position, and ties with it.
        await store(db, { group, createdAt: at(-(round % 3) * DAY), notAfter: at((10 + (round % 3)) * DAY) });
        await store(db, { group, createdAt: at(-5 * DAY + round), notAfter: at(11 * DAY + round) });
        if (!page.more) break;
        const last = page.items.at(-1)!;
        after = { at: o.by === 'notAfter' ? last.notAfter : last.createdAt, serial: last.serial };
      }
      const once = existing.filter((x) => seen.filter((s) => s === x.serial).length === 1);
      t.equal(once.length, existing.length, `${group}: each existing row once`);
      t.equal(new Set(seen).size, seen.length, `${group}: no row twice`);
    }
  });

  t.test('ok/counts by group x status x bucket are exact before and after folds, as time passes and on revocation', async (t) => {
    const mine = (list: GroupCounts[]): GroupCounts[] => list.filter((x) => !x.group.startsWith('cursor-'));
    const check = async (when: Date, label: string): Promise<void> => {
      t.same(mine(await search.counts(when)), mine(await countedDirectly(db, when)), label);
    };
    await check(now, 'no fold yet: all deltas');
    t.ok((await foldCertificateCounts(db, now)) > 0, 'the fold took the deltas');
    await check(now, 'just folded');
    await check(at(6 * DAY), 'six days later without a fold: a crossed the expiry boundary');
    await check(at(26 * DAY), 'b expired, d crossed into 30 days');
    const f = await store(db, { group: 'payments', createdAt: at(HOUR), notAfter: at(3 * DAY) });
    await check(at(2 * HOUR), 'a new certificate (a delta) with folded ones');
    await foldCertificateCounts(db, at(2 * DAY));
    await check(at(2 * DAY), 'folded at a later instant');
    await new CertificateRepository(db).revoke(f.serial, at(2 * DAY + HOUR), 4);
    await check(at(2 * DAY + 2 * HOUR), 'revoked after the fold');
    await check(at(40 * DAY), 'much later');
    t.equal(await foldCertificateCounts(db, at(DAY)), 0, 'a fold never moves back in time');
    await foldCertificateCounts(db, at(40 * DAY));
    await check(at(40 * DAY), 'folded again');
    await check(at(20 * DAY), 'read by a clock behind the last fold');
    await check(at(40 * DAY - 1), 'a millisecond behind');
    t.same(await search.counts(at(40 * DAY), ['web']), mine(await countedDirectly(db, at(40 * DAY))).filter((x) => x.group === 'web'), 'scoped to a group');
    t.same(await search.counts(at(40 * DAY), []), [], 'an empty scope');
  });

  t.test('ok/a certificate stored by the batched issuance statement (insertForOrder) is found and counted', async (t) => {
    const repository = new CertificateRepository(db, { batch: true });
    const issued = [0, 1, 2].map((i) => buildCertificate({ identifiers: [{ type: 'dns', value: `acme${i}.batch.internal` }], group: 'batch', createdAt: at(-HOUR), notAfter: at(10 * DAY) }));
    for (const c of issued) await repository.reserveSerial(c.serial, c.issuerId, c.createdAt);
    await Promise.all(issued.map((c) => repository.insertForOrder(c, 'no-such-order')));
    t.same(await all(search, { suffix: '.batch.internal' }, now), issued.map((c) => c.serial).sort((x, y) => (x < y ? -1 : 1)), 'its names');
    t.same(await search.counts(now, ['batch']), [{ group: 'batch', valid: 3, expired: 0, revoked: 0, expiring7: 0, expiring30: 3, expiring90: 3 }], 'its count');
  });
});
