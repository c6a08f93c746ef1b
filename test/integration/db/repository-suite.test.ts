/**
 * The shared repository suite (DESIGN.md rule 6): the same cases against PGlite and PostgreSQL.
 */
import { randomBytes } from 'node:crypto';
import { copyFile, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import t, { type Test } from 'tap';

import type { IssuedCertificate, IssuerRecord } from '../../../src/core/certificate.js';
import { DAY, FakeClock } from '../../../src/core/clock.js';
import { isCaError } from '../../../src/core/errors.js';
import type { Database } from '../../../src/db/database.js';
import { defaultMigrationsDir, migrate } from '../../../src/db/migrate.js';
import { openPgDatabase } from '../../../src/db/pg-database.js';
import { CertificateRepository } from '../../../src/db/repositories/certificate-repository.js';
import { IssuerRepository } from '../../../src/db/repositories/issuer-repository.js';
import { KeyBlobRepository } from '../../../src/db/repositories/key-blob-repository.js';
import { builders, newSerial } from '../../helpers/builders.js';
import { freshPgDatabase, withEachDatabase } from '../../helpers/databases.js';

const T0 = new Date('2026-01-01T00:00:00.000Z');
const at = (ms: number): Date => new Date(T0.getTime() + ms);

// What the cases below lean on: a shard other than 0, identifiers of both types in a set order, times off
// the whole second (milliseconds must survive a round trip).
const { buildIssuer, buildCertificate } = builders(T0, {
  certificate: {
    crlShard: 3,
    identifiers: [
      { type: 'dns', value: 'web01.example.internal' },
      { type: 'ip', value: '2001:db8::1' },
      { type: 'dns', value: '*.apps.example.internal' },
    ],
    notBefore: at(123),
    notAfter: at(90 * DAY + 456),
    createdAt: at(789),
  },
});

async function rejectsKind(t: Test, promise: Promise<unknown>, kind: string, detail?: RegExp): Promise<void> {
  try {
    await promise;
    t.fail(`expected CaError(${kind}), but it resolved`);
  } catch (error) {
    t.ok(isCaError(error), `is a CaError: ${String(error)}`);
    if (isCaError(error)) {
      t.equal(error.kind, kind);
      if (detail) t.match(error.detail, detail);
    }
  }
}

/** A migrations dir: the real files plus extras (name -> SQL). */
async function migrationsDir(t: Test, extras: Record<string, string>, withReal = true): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'chancery-migrations-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  if (withReal) {
    for (const file of await readdir(defaultMigrationsDir())) {
      if (file.endsWith('.sql')) await copyFile(join(defaultMigrationsDir(), file), join(dir, file));
    }
  }
  for (const [name, sql] of Object.entries(extras)) await writeFile(join(dir, name), sql);
  return dir;
}

async function tableExists(db: Database, name: string): Promise<boolean> {
  const result = await db.query<{ present: boolean }>('SELECT to_regclass($1) IS NOT NULL AS present', [name]);
  return result.rows[0]?.present === true;
}

// Test-only migrations use versions far above the real ones so they never collide with a future 0002.
const PROBE = {
  '9001_suite_probe.sql': 'CREATE TABLE suite_probe (id integer PRIMARY KEY);\nINSERT INTO suite_probe (id) VALUES (1);\n',
  '9002_suite_probe_more.sql': 'INSERT INTO suite_probe (id) VALUES (2);\n',
};

async function suite(t: Test, db: Database): Promise<void> {
  const clock = new FakeClock(T0);
  const realVersions = (await readdir(defaultMigrationsDir()))
    .filter((f) => /^\d{4}_.*\.sql$/.test(f))
    .map((f) => Number(f.slice(0, 4)))
    .sort((a, b) => a - b);

  // ---- migrations ---------------------------------------------------------------------------------------

  await t.test('ok/migrations apply in order and are recorded with the clock time', async (t) => {
    const applied = await migrate(db, clock);
    t.same(applied, realVersions);
    t.ok(realVersions.includes(1), '0001 is among them');
    const rows = await db.query<{ version: number; name: string; applied_at: Date }>(
      'SELECT version, name, applied_at FROM schema_migrations ORDER BY version',
    );
    t.same(
      rows.rows.map((r) => r.version),
      realVersions,
    );
    t.equal(rows.rows[0]?.name, 'init');
    t.same(rows.rows[0]?.applied_at, T0, 'applied_at is the Clock, not now()');
    for (const table of ['issuers', 'key_blobs', 'serials', 'certificates']) {
      t.ok(await tableExists(db, table), `table ${table}`);
    }
  });

  await t.test('ok/a second migrate is a no-op', async (t) => {
    t.same(await migrate(db, clock), []);
  });

  await t.test('ok/concurrent migrate calls on one Database apply each migration once', async (t) => {
    const dir = await migrationsDir(t, PROBE);
    const results = await Promise.all([migrate(db, clock, dir), migrate(db, clock, dir), migrate(db, clock, dir)]);
    t.same(results.flat().sort(), [9001, 9002], 'each applied by exactly one caller');
    const probe = await db.query<{ id: number }>('SELECT id FROM suite_probe ORDER BY id', []);
    t.same(
      probe.rows.map((r) => r.id),
      [1, 2],
    );
  });

  const failingMigrations: { name: string; extras: Record<string, string>; withReal?: boolean; detail: RegExp }[] = [
    {
      name: 'fail/a failing migration rolls back alone',
      extras: { ...PROBE, '9003_suite_broken.sql': 'CREATE TABLE suite_broken (id integer);\nSELECT 1 / 0;\n' },
      detail: /9003_suite_broken failed/,
    },
    { name: 'fail/a renamed migration is refused', extras: { '0001_renamed.sql': 'SELECT 1;' }, withReal: false, detail: /recorded as "init"/ },
    { name: 'fail/a badly named file is refused', extras: { 'init.sql': 'SELECT 1;' }, detail: /not named NNNN_name\.sql/ },
    { name: 'fail/a duplicate version is refused', extras: { '9001_other.sql': 'SELECT 1;', ...PROBE }, detail: /two migration files/ },
  ];
  for (const c of failingMigrations) {
    await t.test(c.name, async (t) => {
      const before = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM schema_migrations', []);
      await rejectsKind(t, migrate(db, clock, await migrationsDir(t, c.extras, c.withReal ?? true)), 'serverInternal', c.detail);
      const after = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM schema_migrations', []);
      t.same(after.rows, before.rows, 'schema_migrations unchanged');
      t.notOk(await tableExists(db, 'suite_broken'), 'nothing of the failed migration is left');
    });
  }

  // ---- issuers ------------------------------------------------------------------------------------------

  const issuers = new IssuerRepository(db);
  const root = buildIssuer({ id: 'root', role: 'root' });
  const int1 = buildIssuer({ id: 'int1', role: 'intermediate', parentId: 'root', createdAt: at(1000) });
  const int2 = buildIssuer({ id: 'int2', role: 'intermediate', parentId: 'root', createdAt: at(2000) });

  await t.test('ok/issuer insert and find', async (t) => {
    t.equal(await issuers.findRoot(), undefined, 'no root yet');
    t.equal(await issuers.findActiveIntermediate(), undefined, 'no intermediate yet');
    await issuers.insert(root);
    await issuers.insert(int2);
    await issuers.insert(int1);
    t.same(await issuers.findById('root'), root);
    t.same(await issuers.findById('int1'), int1);
    t.equal(await issuers.findById('nope'), undefined);
    t.same(await issuers.findRoot(), root);
    t.same((await issuers.findActiveIntermediate())?.id, 'int2', 'the most recently created intermediate');
    t.same(
      (await issuers.list()).map((i) => i.id),
      ['root', 'int1', 'int2'],
    );
    t.equal((await issuers.findById('int1'))?.parentId, 'root');
    t.notOk('parentId' in ((await issuers.findRoot()) ?? {}), 'a root has no parentId key');
  });

  const issuerFailures: { name: string; record: IssuerRecord; kind: string; detail: RegExp }[] = [
    { name: 'fail/duplicate issuer id', record: buildIssuer({ id: 'int1', role: 'intermediate', parentId: 'root' }), kind: 'conflict', detail: /int1 already exists/ },
    { name: 'fail/a second root', record: buildIssuer({ id: 'root2', role: 'root' }), kind: 'conflict', detail: /root CA already exists/ },
    { name: 'fail/unknown parent', record: buildIssuer({ id: 'int9', role: 'intermediate', parentId: 'ghost' }), kind: 'notFound', detail: /ghost/ },
  ];
  for (const c of issuerFailures) {
    await t.test(c.name, async (t) => {
      await rejectsKind(t, issuers.insert(c.record), c.kind, c.detail);
      t.equal((await issuers.list()).length, 3, 'nothing stored');
    });
  }

  // ---- serials and certificates -------------------------------------------------------------------------

  const certs = new CertificateRepository(db);

  await t.test('ok/reserve a serial, then a duplicate is a conflict', async (t) => {
    const s = newSerial();
    t.equal(await certs.isSerialReserved(s), false);
    await certs.reserveSerial(s, 'int2', at(5));
    t.equal(await certs.isSerialReserved(s), true);
    await rejectsKind(t, certs.reserveSerial(s, 'int2', at(6)), 'conflict', /already been used/);
    await rejectsKind(t, certs.reserveSerial(s, 'int1', at(6)), 'conflict', /already been used/);
  });

  await t.test('fail/reserve a serial for an unknown issuer', async (t) => {
    const s = newSerial();
    await rejectsKind(t, certs.reserveSerial(s, 'ghost', at(5)), 'notFound', /ghost/);
    t.equal(await certs.isSerialReserved(s), false);
  });

  await t.test('ok/certificate round trip', async (t) => {
    const cert = buildCertificate({ issuerId: 'int2' });
    const before = await certs.countByIssuer('int2');
    await certs.reserveSerial(cert.serial, cert.issuerId, at(1));
    await certs.insert(cert);
    const found = await certs.findBySerial(cert.serial);
    t.same(found, cert, 'every field survives');
    t.ok(found !== undefined && Buffer.from(found.der).equals(Buffer.from(cert.der)), 'DER bytes equal');
    t.equal(found?.notBefore.getTime(), cert.notBefore.getTime(), 'milliseconds kept');
    t.same(found?.identifiers, cert.identifiers, 'identifier types, values and order kept');
    t.notOk(found && 'revokedAt' in found, 'no revocation fields on a valid certificate');
    t.equal(await certs.countByIssuer('int2'), before + 1);
    t.equal(await certs.findBySerial(newSerial()), undefined, 'unknown serial');
  });

  await t.test('ok/revoked certificate round trip', async (t) => {
    const cert = buildCertificate({
      issuerId: 'int1',
      status: 'revoked',
      revokedAt: at(10 * DAY),
      revocationReason: 1,
      invalidityDate: at(9 * DAY),
    });
    await certs.reserveSerial(cert.serial, cert.issuerId, at(1));
    await certs.insert(cert);
    t.same(await certs.findBySerial(cert.serial), cert);
  });

  const certFailures: { name: string; prepare: (c: IssuedCertificate) => Promise<void>; cert: () => IssuedCertificate; kind: string; detail: RegExp }[] = [
    {
      name: 'fail/certificate without a reserved serial',
      prepare: async () => undefined,
      cert: () => buildCertificate({ issuerId: 'int2' }),
      kind: 'serverInternal',
      detail: /not reserved/,
    },
    {
      name: 'fail/certificate whose serial was reserved for another issuer',
      prepare: (c) => certs.reserveSerial(c.serial, 'int1', at(1)),
      cert: () => buildCertificate({ issuerId: 'int2' }),
      kind: 'serverInternal',
      detail: /not reserved for issuer int2/,
    },
  ];
  for (const c of certFailures) {
    await t.test(c.name, async (t) => {
      const cert = c.cert();
      await c.prepare(cert);
      await rejectsKind(t, certs.insert(cert), c.kind, c.detail);
      t.equal(await certs.findBySerial(cert.serial), undefined, 'nothing stored');
    });
  }

  await t.test('fail/the same certificate twice', async (t) => {
    const cert = buildCertificate({ issuerId: 'int2' });
    await certs.reserveSerial(cert.serial, cert.issuerId, at(1));
    await certs.insert(cert);
    await rejectsKind(t, certs.insert({ ...cert, crlShard: 0 }), 'conflict', /already stored/);
    t.equal((await certs.findBySerial(cert.serial))?.crlShard, 3, 'the first one is kept');
  });

  // ---- key blobs ----------------------------------------------------------------------------------------

  const blobs = new KeyBlobRepository(db);

  await t.test('ok/key blob put and get', async (t) => {
    const blob = { name: 'int2-key', algorithm: 'ecdsa-p384' as const, encryptedPkcs8: new Uint8Array(randomBytes(512)), createdAt: at(42) };
    t.equal(await blobs.getKeyBlob('int2-key'), undefined);
    await blobs.putKeyBlob(blob);
    t.same(await blobs.getKeyBlob('int2-key'), blob);
  });

  await t.test('fail/duplicate key blob keeps the first', async (t) => {
    const original = await blobs.getKeyBlob('int2-key');
    const replacement = { name: 'int2-key', algorithm: 'rsa-2048' as const, encryptedPkcs8: new Uint8Array([1]), createdAt: at(43) };
    await rejectsKind(t, blobs.putKeyBlob(replacement), 'conflict', /int2-key already exists/);
    t.same(await blobs.getKeyBlob('int2-key'), original);
  });

  await t.test('ok/bytea round trip of every byte value and a large blob', async (t) => {
    const every = new Uint8Array(512).map((_, i) => i % 256);
    const large = new Uint8Array(randomBytes(256 * 1024));
    for (const [name, bytes] of [
      ['bytes-every', every],
      ['bytes-large', large],
      ['bytes-empty', new Uint8Array(0)],
    ] as const) {
      await blobs.putKeyBlob({ name, algorithm: 'rsa-4096', encryptedPkcs8: bytes, createdAt: T0 });
      const back = await blobs.getKeyBlob(name);
      t.ok(back !== undefined && Buffer.from(back.encryptedPkcs8).equals(Buffer.from(bytes)), `${name} equal`);
      t.equal(back?.encryptedPkcs8.constructor, Uint8Array, `${name} is a plain Uint8Array at the boundary`);
    }
    const raw = await db.query<{ b: Uint8Array }>('SELECT $1::bytea AS b', [every]);
    t.ok(raw.rows[0] !== undefined && Buffer.from(raw.rows[0].b).equals(Buffer.from(every)), 'driver-level bytea');
  });

  // ---- transactions -------------------------------------------------------------------------------------

  await t.test('ok/transaction commits and returns the value', async (t) => {
    const s = newSerial();
    const value = await db.transaction(async (tx) => {
      await new CertificateRepository(tx).reserveSerial(s, 'int2', at(1));
      return 'done';
    });
    t.equal(value, 'done');
    t.equal(await certs.isSerialReserved(s), true);
  });

  await t.test('fail/transaction rollback leaves nothing stored', async (t) => {
    const cert = buildCertificate({ issuerId: 'int2' });
    await t.rejects(
      db.transaction(async (tx) => {
        const txCerts = new CertificateRepository(tx);
        await txCerts.reserveSerial(cert.serial, cert.issuerId, at(1));
        await txCerts.insert(cert);
        t.ok(await txCerts.findBySerial(cert.serial), 'visible inside the transaction');
        throw new Error('boom');
      }),
      { message: 'boom' },
    );
    t.equal(await certs.isSerialReserved(cert.serial), false);
    t.equal(await certs.findBySerial(cert.serial), undefined);
  });

  await t.test('fail/a swallowed failed statement does not commit the rest', async (t) => {
    const s = newSerial();
    await t.rejects(
      db.transaction(async (tx) => {
        const txCerts = new CertificateRepository(tx);
        await txCerts.reserveSerial(s, 'int2', at(1));
        await txCerts.reserveSerial(s, 'int2', at(1)).catch(() => undefined); // aborts the transaction
      }),
    );
    t.equal(await certs.isSerialReserved(s), false);
  });

  await t.test('fail/a transaction handle used after the transaction', async (t) => {
    let leaked: Parameters<Parameters<Database['transaction']>[0]>[0] | undefined;
    await db.transaction(async (tx) => {
      leaked = tx;
    });
    await rejectsKind(t, leaked!.query('SELECT 1 AS one', []), 'serverInternal', /already ended/);
  });

  await t.test('ok/concurrent transactions and queries do not interleave', async (t) => {
    const serials = Array.from({ length: 12 }, newSerial);
    await Promise.all(
      serials.map((s, i) =>
        i % 2 === 0
          ? db.transaction(async (tx) => {
              const txCerts = new CertificateRepository(tx);
              await txCerts.reserveSerial(s, 'int2', at(i));
              t.equal(await txCerts.isSerialReserved(s), true);
            })
          : certs.reserveSerial(s, 'int1', at(i)),
      ),
    );
    for (const s of serials) t.equal(await certs.isSerialReserved(s), true);
  });

  if (db.driver === 'pglite') {
    await t.test('fail/using the Database inside its own transaction fails instead of hanging', async (t) => {
      await rejectsKind(
        t,
        db.transaction(async () => {
          await db.query('SELECT 1 AS one', []);
        }),
        'serverInternal',
        /use the tx argument/,
      );
    });
  }
}

await withEachDatabase(t, suite, { migrate: false });

// Two instances (two pools) starting together on one PostgreSQL (rule 7). PGlite is single-process.
await t.test('pg/two instances migrating at once apply each migration once', async (t) => {
  const database = await freshPgDatabase(t);
  if (database === undefined) return;
  const a = await openPgDatabase(database.url, { poolSize: 2 });
  const b = await openPgDatabase(database.url, { poolSize: 2 });
  t.teardown(async () => {
    await a.close();
    await b.close();
  });
  const dir = await migrationsDir(t, PROBE);
  const clock = new FakeClock(T0);
  const [fromA, fromB] = await Promise.all([migrate(a, clock, dir), migrate(b, clock, dir)]);
  const all = [...(fromA ?? []), ...(fromB ?? [])].sort((x, y) => x - y);
  t.equal(new Set(all).size, all.length, 'no version applied twice');
  t.ok(all.includes(1) && all.includes(9001) && all.includes(9002), 'every version applied');
  const recorded = await a.query<{ version: number }>('SELECT version FROM schema_migrations ORDER BY version', []);
  t.same(
    recorded.rows.map((r) => r.version),
    all,
  );
  const probe = await a.query<{ id: number }>('SELECT id FROM suite_probe ORDER BY id', []);
  t.same(
    probe.rows.map((r) => r.id),
    [1, 2],
  );
});
