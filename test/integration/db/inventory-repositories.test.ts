/**
 * The inventory's SQL (migration 0014) on PGlite and PostgreSQL: predecessors recorded by the certificate's
 * own statement (every writer, batches included), renewal chains, the migration linking certificates stored
 * before it, last-seen writes at most once an hour, and the expression indexes the walks rely on.
 */
import t from 'tap';
import type { IssuedCertificate } from '../../../src/core/certificate.js';
import { DAY, FakeClock, HOUR, MINUTE } from '../../../src/core/clock.js';
import type { Database } from '../../../src/db/database.js';
import { migrate } from '../../../src/db/migrate.js';
import { AccountActivityRepository } from '../../../src/db/repositories/account-activity-repository.js';
import { AccountRepository } from '../../../src/db/repositories/account-repository.js';
import { CertificateRepository } from '../../../src/db/repositories/certificate-repository.js';
import { LineageRepository } from '../../../src/db/repositories/lineage-repository.js';
import { builders } from '../../helpers/builders.js';
import { insertRootIssuer, migrateBefore, withEachDatabase } from '../../helpers/databases.js';

const T0 = new Date('2026-01-01T00:00:00.000Z');
const { buildAccount, buildCertificate } = builders(T0);

async function store(db: Database, overrides: Partial<IssuedCertificate>): Promise<IssuedCertificate> {
  const certificate = buildCertificate(overrides);
  const repository = new CertificateRepository(db);
  await repository.reserveSerial(certificate.serial, certificate.issuerId, certificate.createdAt);
  await repository.insert(certificate);
  return certificate;
}

async function predecessorOf(db: Database, serial: string): Promise<string | null> {
  const { rows } = await db.query<{ p: string | null }>('SELECT predecessor_serial AS p FROM certificates WHERE serial = $1', [serial]);
  return rows[0]!.p;
}

const dns = (...names: string[]): IssuedCertificate['identifiers'] => names.map((value) => ({ type: 'dns' as const, value }));
const day = (n: number): Date => new Date(T0.getTime() + n * DAY);

await withEachDatabase(t, async (t, db) => {
  await insertRootIssuer(db, T0);
  const accounts = new AccountRepository(db);
  const alice = buildAccount();
  const bob = buildAccount();
  await accounts.insert(alice);
  await accounts.insert(bob);

  await t.test('ok/the previous certificate of the same account for the same identifier set', async (t) => {
    const first = await store(db, { accountId: alice.id, identifiers: dns('a.lineage.test', 'b.lineage.test'), createdAt: day(0) });
    const second = await store(db, { accountId: alice.id, identifiers: dns('b.lineage.test', 'a.lineage.test'), createdAt: day(60) });
    const third = await store(db, { accountId: alice.id, identifiers: dns('a.lineage.test', 'b.lineage.test'), createdAt: day(120) });
    t.equal(await predecessorOf(db, first.serial), null, 'the first has none');
    t.equal(await predecessorOf(db, second.serial), first.serial, 'the order of the identifiers does not matter');
    t.equal(await predecessorOf(db, third.serial), second.serial, 'the newest earlier one, not the first');
    const otherSet = await store(db, { accountId: alice.id, identifiers: dns('a.lineage.test'), createdAt: day(130) });
    t.equal(await predecessorOf(db, otherSet.serial), null, 'another identifier set starts its own lineage');
    const otherAccount = await store(db, { accountId: bob.id, identifiers: dns('a.lineage.test', 'b.lineage.test'), createdAt: day(140) });
    t.equal(await predecessorOf(db, otherAccount.serial), null, 'another account starts its own lineage');
  });

  await t.test('ok/replaces wins over the implicit predecessor', async (t) => {
    const old = await store(db, { accountId: alice.id, identifiers: dns('r.lineage.test'), createdAt: day(0) });
    const middle = await store(db, { accountId: alice.id, identifiers: dns('r.lineage.test'), createdAt: day(10) });
    const renewal = await store(db, { accountId: alice.id, identifiers: dns('r.lineage.test', 'r2.lineage.test'), replacesSerial: old.serial, createdAt: day(20) });
    t.equal(await predecessorOf(db, renewal.serial), old.serial, 'RFC 9773 replaces names it, whatever the identifiers');
    t.equal(await predecessorOf(db, middle.serial), old.serial);
  });

  await t.test('ok/certificates without an account chain among themselves (the listener certificate)', async (t) => {
    const first = await store(db, { identifiers: dns('127.0.0.1.lineage.test'), createdAt: day(0) });
    const next = await store(db, { identifiers: dns('127.0.0.1.lineage.test'), createdAt: day(5) });
    t.equal(await predecessorOf(db, next.serial), first.serial);
  });

  await t.test('ok/two certificates of one lineage stored by one batched statement', async (t) => {
    const repository = new CertificateRepository(db, { batch: true });
    const one = buildCertificate({ accountId: bob.id, identifiers: dns('batch.lineage.test'), createdAt: day(1) });
    const two = buildCertificate({ accountId: bob.id, identifiers: dns('batch.lineage.test'), createdAt: day(2) });
    for (const c of [one, two]) await repository.reserveSerial(c.serial, c.issuerId, c.createdAt);
    await Promise.all([repository.insertForOrder(one, 'no-such-order-1'), repository.insertForOrder(two, 'no-such-order-2')]);
    t.equal(await predecessorOf(db, two.serial), one.serial, 'the second sees the first, stored before it by the same statement');
  });

  await t.test('ok/chains: both directions, limits, the earliest successor', async (t) => {
    const names = dns('chain.lineage.test');
    const chain: IssuedCertificate[] = [];
    for (let i = 0; i < 6; i += 1) chain.push(await store(db, { accountId: alice.id, identifiers: names, createdAt: day(i * 30) }));
    const lineage = new LineageRepository(db);
    const whole = await lineage.chain(chain[2]!.serial, { before: 10, after: 10 });
    t.same(whole?.items.map((i) => i.certificate.serial), chain.map((c) => c.serial), 'oldest first');
    t.same(whole?.items.map((i) => i.position), [-2, -1, 0, 1, 2, 3]);
    t.equal(whole?.items[3]?.predecessorSerial, chain[2]!.serial);
    t.same([whole?.moreBefore, whole?.moreAfter], [false, false]);
    const cut = await lineage.chain(chain[2]!.serial, { before: 1, after: 2 });
    t.same(cut?.items.map((i) => i.certificate.serial), chain.slice(1, 5).map((c) => c.serial));
    t.same([cut?.moreBefore, cut?.moreAfter], [true, true]);
    // A second renewal of chain[5] (e.g. an ARI replacement racing a plain renewal): the earlier one continues the chain.
    const later = await store(db, { accountId: alice.id, identifiers: names, replacesSerial: chain[5]!.serial, createdAt: day(200) });
    const again = await lineage.chain(chain[5]!.serial, { before: 0, after: 5 });
    t.same(again?.items.map((i) => i.certificate.serial), [chain[5]!.serial, later.serial]);
    t.equal(await lineage.chain('00ff00ff', { before: 1, after: 1 }), undefined, 'no such certificate');
  });

  await t.test('ok/last seen: written at most once an hour, whoever reports it', async (t) => {
    const activity = new AccountActivityRepository(db);
    const at = new Date(T0.getTime() + 400 * DAY);
    t.equal(await activity.recordSeen([{ accountId: alice.id, at }]), 1);
    t.equal(await activity.recordSeen([{ accountId: alice.id, at: new Date(at.getTime() + 59 * MINUTE) }]), 0, 'within the hour: no write');
    t.equal(await activity.recordSeen([{ accountId: alice.id, at: new Date(at.getTime() + HOUR) }, { accountId: bob.id, at }]), 2);
    const seen = await activity.lastSeen([alice.id, bob.id]);
    t.same(seen.get(alice.id), new Date(at.getTime() + HOUR));
    const page = await activity.notSeenSince(new Date(at.getTime() + 2 * HOUR), undefined, { limit: 10 });
    t.same(page.items.map((i) => i.account.id), [bob.id, alice.id], 'least recently seen first');
  });

  await t.test('ok/the walks can use their expression indexes', async (t) => {
    if (db.driver !== 'pg') return t.pass('PGlite: plans are PostgreSQL\'s to check');
    await db.transaction(async (tx) => {
      await tx.query('SET LOCAL enable_seqscan = off');
      await tx.query('SET LOCAL enable_bitmapscan = off');
      const plan = async (sql: string, params: unknown[]): Promise<string> =>
        (await tx.query<{ 'QUERY PLAN': string }>(`EXPLAIN ${sql}`, params)).rows.map((r) => r['QUERY PLAN']).join('\n');
      t.match(
        await plan(
          `SELECT p.serial FROM certificates p WHERE coalesce(p.account_id, '') = $1 AND p.identifier_set = certificate_identifier_set($2::jsonb)
           ORDER BY p.created_at DESC, p.serial DESC LIMIT 1`,
          [alice.id, JSON.stringify(dns('x.test'))],
        ),
        /Index Scan using certificates_lineage/,
        'the predecessor lookup',
      );
      t.match(
        await plan(
          `SELECT c.serial FROM certificates c WHERE c.status = 'valid' AND certificate_renewal_due(c.not_before, c.not_after) > $1 AND certificate_renewal_due(c.not_before, c.not_after) <= $2
           ORDER BY certificate_renewal_due(c.not_before, c.not_after), c.serial LIMIT 10`,
          [T0, day(10)],
        ),
        /Index Scan using certificates_renewal_due/,
        'the renewal-due walk',
      );
      t.match(await plan(`SELECT 1 FROM certificates s WHERE s.predecessor_serial = $1`, ['ab']), /certificates_successor/, 'the successor probe');
    });
  });
});

await t.test('ok/the migration links certificates stored before it', async (t) => {
  await withEachDatabase(
    t,
    async (t, db) => {
      const clock = new FakeClock(T0);
      await migrateBefore(t, db, clock, '0014');
      await insertRootIssuer(db, T0);
      const alice = buildAccount();
      await new AccountRepository(db).insert(alice);
      const insert = async (overrides: Partial<IssuedCertificate>): Promise<IssuedCertificate> => {
        const c = buildCertificate(overrides);
        await db.query('INSERT INTO serials (serial, issuer_id, created_at) VALUES ($1, $2, $3)', [c.serial, c.issuerId, c.createdAt]);
        await db.query(
          `INSERT INTO certificates (serial, issuer_id, crl_shard, der, identifiers, spki_sha256, not_before, not_after, created_at, account_id, replaces_serial)
           VALUES ($1, $2, 0, $3, $4::text::jsonb, $5, $6, $7, $8, $9, $10)`,
          [c.serial, c.issuerId, c.der, JSON.stringify(c.identifiers), c.spkiSha256, c.notBefore, c.notAfter, c.createdAt, c.accountId ?? null, c.replacesSerial ?? null],
        );
        return c;
      };
      const a = await insert({ accountId: alice.id, identifiers: dns('m.lineage.test'), createdAt: day(0) });
      const b = await insert({ accountId: alice.id, identifiers: dns('m.lineage.test'), createdAt: day(30) });
      const c = await insert({ accountId: alice.id, identifiers: dns('n.lineage.test'), replacesSerial: a.serial, createdAt: day(40) });
      await migrate(db, clock);
      t.equal(await predecessorOf(db, a.serial), null);
      t.equal(await predecessorOf(db, b.serial), a.serial);
      t.equal(await predecessorOf(db, c.serial), a.serial);
    },
    { migrate: false },
  );
});
