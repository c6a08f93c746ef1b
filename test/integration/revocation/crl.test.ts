import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import { pino } from 'pino';
import t, { type Test } from 'tap';
import { compose, type CaHierarchy, type Chancery } from '../../../src/compose.js';
import { loadConfig } from '../../../src/config/load-config.js';
import type { IssuedCertificate } from '../../../src/core/certificate.js';
import { DAY, FakeClock, HOUR, MINUTE, type Clock } from '../../../src/core/clock.js';
import { toPem } from '../../../src/core/pem.js';
import type { Database, Queryable } from '../../../src/db/database.js';
import { CrlRepository } from '../../../src/db/repositories/crl-repository.js';
import { IssuerRepository } from '../../../src/db/repositories/issuer-repository.js';
import { registerCrlRoutes } from '../../../src/http/crl-routes.js';
import type { CrlPublisher, CrlSettings } from '../../../src/revocation/crl-publisher.js';
import type { Revoker } from '../../../src/revocation/revoker.js';
import { freshPgDatabase, withEachDatabase } from '../../helpers/databases.js';
import { builders } from '../../helpers/builders.js';
import { expectCaError } from '../../helpers/expect-error.js';
import { openssl, requireOpenssl, writeTemp } from '../../helpers/openssl.js';

/**
 * CRLs end to end: generated from the database, signed through the key store, served over HTTP
 * and judged by openssl (`crl -verify`, `verify -crl_check_all`); regenerated after revocations (coalesced)
 * and on schedule (fake clock); numbers increasing across two runtimes on one PostgreSQL; the repository on
 * PGlite and PostgreSQL.
 */
requireOpenssl();

const PASSPHRASE = 'test-passphrase-0123456789';

/** A whole Chancery (compose()) with a CA; `crl` shortens the publisher's settings. */
async function runtimeOn(options: { databaseUrl?: string; clock: Clock; dir?: string; crl?: Partial<CrlSettings> }): Promise<Chancery> {
  const dir = options.dir ?? (await mkdtemp(join(tmpdir(), 'chancery-crl-')));
  const config = loadConfig({
    env: {
      CHANCERY_DATA_DIR: join(dir, 'data'),
      CHANCERY_KEY_PASSPHRASE: PASSPHRASE,
      CHANCERY_LOG_LEVEL: 'silent',
      CHANCERY_PUBLIC_URL: 'http://crl.test.internal:8080',
      ...(options.databaseUrl ? { CHANCERY_DATABASE_URL: options.databaseUrl } : {}),
    },
    cwd: dir,
  });
  return compose(config, {
    clock: options.clock,
    logger: pino({ level: 'silent' }),
    ca: 'create-if-missing',
    listen: false,
    ...(options.crl ? { tuning: { crl: options.crl } } : {}),
  });
}

function crlApp(publisher: CrlPublisher, clock: Clock): FastifyInstance {
  const app = Fastify();
  registerCrlRoutes(app, {
    latest: (issuerId, shard) => publisher.latest(issuerId, shard),
    rootCrl: () => publisher.rootCrl(),
    clock,
    maxAgeSeconds: publisher.refreshMs / 1000,
  });
  return app;
}

interface Fixture {
  runtime: Chancery;
  hierarchy: CaHierarchy;
  clock: FakeClock;
  publisher: CrlPublisher;
  revocation: Revoker<Queryable>;
  app: FastifyInstance;
  dir: string;
  rootPem: string;
  bothPem: string;
  issue(name: string): Promise<IssuedCertificate>;
}

async function fixture(t: Test, options: { databaseUrl?: string } = {}): Promise<Fixture> {
  const clock = new FakeClock('2026-03-01T10:00:00Z');
  const runtime = await runtimeOn({ clock, ...options });
  t.teardown(() => runtime.close());
  const { hierarchy } = runtime;
  // compose() wires every revocation to schedule its scope's regeneration.
  const { issuance, crl: publisher, revoker: revocation } = runtime.services;
  const app = crlApp(publisher, clock);
  t.teardown(() => app.close());
  const dir = await mkdtemp(join(tmpdir(), 'chancery-crl-files-'));
  const rootPem = join(dir, 'root.pem');
  const bothPem = join(dir, 'both.pem');
  await writeFile(rootPem, toPem(hierarchy.root.der));
  await writeFile(bothPem, toPem(hierarchy.root.der) + toPem(hierarchy.intermediate.der));
  const issue = (name: string): Promise<IssuedCertificate> => {
    const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    return issuance.issueForKey(new Uint8Array(publicKey.export({ type: 'spki', format: 'der' })), [{ type: 'dns', value: `${name}.crl.test.internal` }]);
  };
  return { runtime, hierarchy, clock, publisher, revocation, app, dir, rootPem, bothPem, issue };
}

async function get(app: FastifyInstance, url: string, headers: Record<string, string> = {}) {
  const response = await app.inject({ method: 'GET', url, headers });
  return { status: response.statusCode, headers: response.headers, der: response.rawPayload };
}

async function crlText(f: Fixture, der: Uint8Array): Promise<string> {
  const file = await writeTemp('crl.der', der);
  const { stdout, stderr, code } = await openssl(['crl', '-inform', 'DER', '-in', file, '-noout', '-text', '-CAfile', f.bothPem, '-verify']);
  if (code !== 0 || !/verify OK/.test(stderr)) throw new Error(`openssl crl -verify failed: ${stderr}`);
  return stdout;
}

/** `openssl verify -crl_check_all` at the fake clock's time, with the CRLs the routes serve. */
async function verifyLeaf(f: Fixture, certificate: IssuedCertificate): Promise<{ ok: boolean; output: string }> {
  const leafCrl = await get(f.app, `/crl/${f.hierarchy.intermediate.id}/${certificate.crlShard}.crl`);
  const rootCrl = await get(f.app, '/crl/root.crl');
  const files = await Promise.all([
    writeTemp('leaf-crl.pem', toPem(leafCrl.der, 'X509 CRL')),
    writeTemp('root-crl.pem', toPem(rootCrl.der, 'X509 CRL')),
    writeTemp('chain.pem', toPem(f.hierarchy.intermediate.der)),
    writeTemp('leaf.pem', toPem(certificate.der)),
  ]);
  const [leafCrlFile, rootCrlFile, chainFile, leafFile] = files as [string, string, string, string];
  const result = await openssl([
    'verify', '-attime', String(Math.floor(f.clock.now().getTime() / 1000)), '-crl_check_all',
    '-CRLfile', leafCrlFile, '-CRLfile', rootCrlFile, '-CAfile', f.rootPem, '-untrusted', chainFile, leafFile,
  ]);
  return { ok: result.code === 0, output: result.stdout + result.stderr };
}

function serialUpper(certificate: IssuedCertificate): string {
  return certificate.serial.toUpperCase();
}

await t.test('CRLs of a runtime on PGlite: openssl, HTTP, revocations, schedule, expiry', async (t) => {
  const f = await fixture(t);
  const intermediateId = f.hierarchy.intermediate.id;
  const leafUrl = `/crl/${intermediateId}/0.crl`;

  const first = await f.publisher.generateAll();
  t.same(
    first.map((c) => [c.issuerId, c.shard, c.number, c.entries]),
    [
      [f.hierarchy.root.id, 0, 1, 0],
      [intermediateId, 0, 1, 0],
    ],
    'root CRL and the one intermediate shard, numbered from 1',
  );

  const good = await f.issue('good');
  const bad = await f.issue('bad');
  const expiring = await f.issue('expiring');

  await t.test('ok/both CRLs served as DER and verified by openssl', async (t) => {
    const leaf = await get(f.app, leafUrl);
    t.equal(leaf.status, 200);
    t.equal(leaf.headers['content-type'], 'application/pkix-crl');
    const text = await crlText(f, leaf.der);
    t.match(text, /No Revoked Certificates/);
    t.match(text, /Last Update: Mar  1 10:00:00 2026 GMT/);
    t.match(text, /Next Update: Mar  2 10:00:00 2026 GMT/, 'nextUpdate 24 h by default');
    t.match(text, new RegExp(`URI:http://crl\\.test\\.internal:8080/crl/${intermediateId}/0\\.crl\\s*Only User Certificates`));
    const root = await get(f.app, '/crl/root.crl');
    t.equal(root.status, 200);
    t.match(await crlText(f, root.der), /Issuer: .*Root CA[\s\S]*Only CA Certificates/);
  });

  await t.test('ok/a revocation regenerates the CRL: openssl rejects the revoked leaf, accepts the good one', async (t) => {
    f.clock.advance(MINUTE);
    await f.revocation.revoke(bad.serial, 1);
    await f.publisher.settled();
    const info = await f.publisher.latest(intermediateId, 0);
    t.equal(info?.number, 2, 'regenerated once');
    t.equal(info?.entries, 1);
    const text = await crlText(f, info!.der);
    t.match(text, new RegExp(`Serial Number: 0*${serialUpper(bad)}\\s*\\n\\s*Revocation Date: Mar  1 10:01:00 2026 GMT\\s*\\n\\s*CRL entry extensions:\\s*\\n\\s*X509v3 CRL Reason Code:\\s*\\n\\s*Key Compromise`));
    const rejected = await verifyLeaf(f, bad);
    t.notOk(rejected.ok);
    t.match(rejected.output, /certificate revoked/);
    const accepted = await verifyLeaf(f, good);
    t.ok(accepted.ok, accepted.output);
  });

  await t.test('ok/HTTP caching headers and conditional GETs', async (t) => {
    const first = await get(f.app, leafUrl);
    t.equal(first.headers.etag, `"${intermediateId}-0-2"`);
    t.equal(first.headers['last-modified'], 'Sun, 01 Mar 2026 10:01:00 GMT');
    t.equal(first.headers['cache-control'], `public, max-age=${12 * 3600}`, 'capped by the regeneration interval');
    t.equal((await get(f.app, leafUrl, { 'if-none-match': first.headers.etag as string })).status, 304);
    t.equal((await get(f.app, leafUrl, { 'if-none-match': 'W/"other", ' + (first.headers.etag as string) })).status, 304);
    t.equal((await get(f.app, leafUrl, { 'if-none-match': '"other"' })).status, 200);
    t.equal((await get(f.app, leafUrl, { 'if-modified-since': 'Sun, 01 Mar 2026 10:01:00 GMT' })).status, 304);
    t.equal((await get(f.app, leafUrl, { 'if-modified-since': 'Sun, 01 Mar 2026 10:00:59 GMT' })).status, 200);
    const head = await f.app.inject({ method: 'HEAD', url: leafUrl });
    t.equal(head.statusCode, 200);
    f.clock.advance(23 * HOUR);
    t.equal((await get(f.app, leafUrl)).headers['cache-control'], 'public, max-age=3600', 'seconds until nextUpdate once that is sooner');
    f.clock.advance(2 * HOUR);
    t.equal((await get(f.app, leafUrl)).headers['cache-control'], 'public, max-age=0', 'past nextUpdate: not cacheable');
    f.clock.advance(-25 * HOUR);
  });

  await t.test('fail/unknown or malformed CRL URLs are 404', async (t) => {
    for (const url of [`/crl/${intermediateId}/1.crl`, '/crl/inope/0.crl', `/crl/${intermediateId}/01.crl`, `/crl/${intermediateId}/0.der`, `/crl/${intermediateId.toUpperCase()}/0.crl`, `/crl/${intermediateId}/99999.crl`]) {
      t.equal((await get(f.app, url)).status, 404, url);
    }
  });

  await t.test('ok/schedule: nothing due before refresh, regenerated after; nextUpdate follows thisUpdate', async (t) => {
    const before = await f.publisher.latest(intermediateId, 0);
    f.clock.advance(11 * HOUR);
    t.same(await f.publisher.generateDue(), [], 'both CRLs younger than nextUpdate / 2');
    f.clock.advance(2 * HOUR);
    const due = await f.publisher.generateDue();
    t.same(due.map((c) => c.issuerId).sort(), [f.hierarchy.root.id, intermediateId].sort());
    const after = await f.publisher.latest(intermediateId, 0);
    t.ok(after!.number > before!.number);
    t.equal(after!.thisUpdate.toISOString(), '2026-03-01T23:01:00.000Z');
    t.equal(after!.nextUpdate.getTime() - after!.thisUpdate.getTime(), DAY);
    t.match(await crlText(f, after!.der), /Last Update: Mar  1 23:01:00 2026 GMT\s*\n\s*Next Update: Mar  2 23:01:00 2026 GMT/);
  });

  await t.test('ok/concurrent revocations share regenerations', async (t) => {
    const certificates: IssuedCertificate[] = [];
    for (let i = 0; i < 25; i += 1) certificates.push(await f.issue(`bulk-${i}`));
    const before = (await f.publisher.latest(intermediateId, 0))!.number;
    // Each revoke() returns once a CRL listing it is published; those arriving while one is generated share the next.
    await Promise.all(certificates.map((certificate) => f.revocation.revoke(certificate.serial, 4)));
    const after = (await f.publisher.latest(intermediateId, 0))!;
    t.ok(after.number - before < 13, `${after.number - before} regenerations for 25 concurrent revocations`);
    t.equal(after.entries, 26);
    const text = await crlText(f, after.der);
    for (const certificate of certificates) t.match(text, serialUpper(certificate).replace(/^0+/, ''));
  });

  await t.test('ok/a revoked certificate stays listed one CRL period past its notAfter, then drops off (RFC 5280 §3.3)', async (t) => {
    await f.revocation.revoke(expiring.serial, 5);
    await f.publisher.settled();
    f.clock.set(new Date(expiring.notAfter.getTime() + HOUR));
    const justExpired = (await f.publisher.generateAll()).find((c) => c.issuerId === intermediateId);
    t.equal(justExpired?.entries, 27, 'still listed just after notAfter');
    const listed = await crlText(f, (await f.publisher.latest(intermediateId, 0))!.der);
    t.match(listed, serialUpper(expiring).replace(/^0+/, ''));
    f.clock.set(new Date(expiring.notAfter.getTime() + DAY + MINUTE));
    await f.publisher.generateAll();
    const crl = (await f.publisher.latest(intermediateId, 0))!;
    t.equal(crl.entries, 25, 'the two issued 13 h earlier are gone; the bulk ones, 13 h younger, stay');
    const text = await crlText(f, crl.der);
    t.notMatch(text, serialUpper(expiring).replace(/^0+/, ''));
    t.notMatch(text, serialUpper(bad).replace(/^0+/, ''));
  });

  await t.test('fail/generate refuses unknown issuers and shards', async (t) => {
    await expectCaError(t, f.publisher.generate('inope', 0), 'notFound', /no issuer/);
    await expectCaError(t, f.publisher.generate(intermediateId, 3), 'notFound', /no CRL shard 3/);
    await expectCaError(t, f.publisher.generate(f.hierarchy.root.id, 1), 'malformed', /root has one CRL/);
  });
});

await t.test('ok/a revocation returns once the CRL listing it is published; concurrent ones share regenerations', async (t) => {
  const clock = new FakeClock('2026-03-01T10:00:00Z');
  const runtime = await runtimeOn({ clock });
  t.teardown(() => runtime.close());
  const { issuance, crl, revoker } = runtime.services;
  const id = runtime.hierarchy.intermediate.id;
  const issue = (name: string): Promise<IssuedCertificate> => {
    const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    return issuance.issueForKey(new Uint8Array(publicKey.export({ type: 'spki', format: 'der' })), [{ type: 'dns', value: `${name}.crl.test.internal` }]);
  };
  const before = (await crl.generate(id, 0)).number;
  const one = await issue('alone');
  await revoker.revoke(one.serial, 1);
  const after = (await crl.latest(id, 0))!;
  t.equal(after.number, before + 1, 'one regeneration, published before revoke() returned');
  t.equal(after.entries, 1);
  const burst = await Promise.all(Array.from({ length: 8 }, (_, i) => issue(`burst-${i}`)));
  await Promise.all(burst.map((c) => revoker.revoke(c.serial, 4)));
  const last = (await crl.latest(id, 0))!;
  t.equal(last.entries, 9, 'every revocation listed when its revoke() returned');
  t.ok(last.number - after.number <= 3, `${last.number - after.number} regenerations for 8 concurrent revocations`);
  const text = (await openssl(['crl', '-inform', 'DER', '-in', await writeTemp('crl.der', last.der), '-noout', '-text'])).stdout;
  for (const c of [one, ...burst]) t.match(text, new RegExp(`Serial Number: ${c.serial}`, 'i'));
});

await t.test('reason codes and invalidity dates of bulk rows, 2,000+ entries, two shards', async (t) => {
  const clock = new FakeClock('2026-03-01T10:00:00Z');
  const runtime = await runtimeOn({ clock, crl: { shards: 2 } });
  t.teardown(() => runtime.close());
  const { hierarchy } = runtime;
  const crls = new CrlRepository(runtime.db);
  await crls.insertRevokedForBench({
    issuerId: hierarchy.intermediate.id,
    seed: 'test',
    from: 0,
    count: 2500,
    shards: 2,
    notBefore: new Date('2026-02-01T00:00:00Z'),
    notAfter: new Date('2026-04-01T00:00:00Z'),
    revokedAt: new Date('2026-02-15T00:00:00Z'),
  });
  const publisher = runtime.services.crl;
  const generated = await publisher.generateAll();
  const shards = generated.filter((c) => c.issuerId === hierarchy.intermediate.id);
  t.same(shards.map((c) => c.shard), [0, 1]);
  t.equal(shards[0]!.entries + shards[1]!.entries, 2500, 'every row in exactly one shard');
  t.ok(shards[0]!.entries > 1000 && shards[1]!.entries > 1000, `split ${shards[0]!.entries} / ${shards[1]!.entries}`);
  const bothPem = await writeTemp('both.pem', toPem(hierarchy.root.der) + toPem(hierarchy.intermediate.der));
  for (const shard of [0, 1]) {
    const crl = (await publisher.latest(hierarchy.intermediate.id, shard))!;
    const file = await writeTemp('crl.der', crl.der);
    const { stdout, stderr, code } = await openssl(['crl', '-inform', 'DER', '-in', file, '-noout', '-text', '-CAfile', bothPem, '-verify']);
    t.equal(code, 0, stderr);
    t.equal(stdout.match(/Serial Number:/g)?.length, crl.entries, `shard ${shard}: openssl counts every entry`);
    t.match(stdout, new RegExp(`/crl/${hierarchy.intermediate.id}/${shard}\\.crl`));
    t.match(stdout, /X509v3 CRL Reason Code:\s*\n\s*Key Compromise\s*\n\s*Invalidity Date:\s*\n\s*Feb 14 \d\d:\d\d:\d\d 2026 GMT/);
    t.match(stdout, /X509v3 CRL Reason Code:\s*\n\s*Superseded/);
    t.notMatch(stdout, /Unspecified/, 'unspecified (0) is never written');
  }
});

await t.test('two runtimes on one PostgreSQL: CRL numbers never repeat, either serves the latest', async (t) => {
  const database = await freshPgDatabase(t);
  if (!database) return;
  const clock = new FakeClock('2026-03-01T10:00:00Z');
  const a = await runtimeOn({ clock, databaseUrl: database.url });
  t.teardown(() => a.close());
  const { hierarchy } = a;
  const b = await runtimeOn({ clock, databaseUrl: database.url });
  t.teardown(() => b.close());
  const publisherA = a.services.crl;
  const publisherB = b.services.crl;
  const id = hierarchy.intermediate.id;
  const numbers: number[] = [];
  for (let i = 0; i < 3; i += 1) {
    numbers.push((await publisherA.generate(id, 0)).number);
    numbers.push((await publisherB.generate(id, 0)).number);
  }
  t.same(numbers, [1, 2, 3, 4, 5, 6], 'strictly increasing across instances');
  const concurrent = await Promise.all([publisherA.generate(id, 0), publisherB.generate(id, 0), publisherA.generate(id, 0), publisherB.generate(id, 0)]);
  t.same(concurrent.map((c) => c.number).sort((x, y) => x - y), [7, 8, 9, 10], 'concurrent generations draw distinct numbers');
  t.equal((await publisherA.latest(id, 0))?.number, 10, 'the highest number is the latest, whoever stored last');
  t.equal((await publisherB.latest(id, 0))?.number, 10);
  t.ok(Buffer.from((await publisherA.latest(id, 0))!.der).equals(Buffer.from((await publisherB.latest(id, 0))!.der)), 'both serve the same bytes');
  const appB = crlApp(publisherB, clock);
  t.teardown(() => appB.close());
  await publisherA.generate(id, 0);
  const served = await appB.inject({ method: 'GET', url: `/crl/${id}/0.crl` });
  t.equal(served.headers.etag, `"${id}-0-11"`, 'B serves what A generated, from the database');
});

await t.test('CrlRepository on PGlite and PostgreSQL', async (t) => {
  await withEachDatabase(t, async (t, db: Database) => {
    const at = new Date('2026-03-01T10:00:00Z');
    await new IssuerRepository(db).insert(builders(at).buildIssuer({ id: 'itest' }));
    const crls = new CrlRepository(db);

    await t.test('ok/numbers per scope from 1, never reused', async (t) => {
      t.same([await crls.nextCrlNumber('itest', 0), await crls.nextCrlNumber('itest', 0), await crls.nextCrlNumber('itest', 1)], [1, 2, 1]);
      const parallel = await Promise.all(Array.from({ length: 8 }, () => crls.nextCrlNumber('itest', 0)));
      t.same(parallel.sort((x, y) => x - y), [3, 4, 5, 6, 7, 8, 9, 10]);
      t.same(await crls.publishedShards('itest'), [0, 1]);
      await expectCaError(t, crls.nextCrlNumber('inope', 0), 'notFound', /issuer inope/);
    });

    await t.test('ok/a CRL is stored in parts and read back byte for byte; a lower number never replaces it', async (t) => {
      const der = Buffer.alloc(2.5 * 1024 * 1024 + 17);
      for (let i = 0; i < der.length; i += 1) der[i] = (i * 31 + (i >> 12)) & 0xff;
      const crl = { issuerId: 'itest', shard: 0, number: 5, thisUpdate: at, nextUpdate: new Date(at.getTime() + DAY), entries: 3, der };
      t.equal(await crls.save(crl, at), true);
      const read = await crls.latest('itest', 0);
      t.equal(read?.number, 5);
      t.ok(Buffer.from(read!.der).equals(der), 'same bytes');
      t.equal(await crls.save({ ...crl, number: 4, der: Buffer.from([1, 2, 3]) }, at), false, 'older number refused');
      t.equal(await crls.save({ ...crl, number: 6, entries: 0, der: Buffer.from([1, 2, 3]) }, at), true);
      const latest = await crls.latest('itest', 0);
      t.same([latest?.number, latest?.entries, Buffer.from(latest!.der).toString('hex')], [6, 0, '010203'], 'old parts gone');
      t.same(await crls.latestInfo('itest', 0), { issuerId: 'itest', shard: 0, number: 6, thisUpdate: at, nextUpdate: new Date(at.getTime() + DAY), entries: 0 });
      t.equal(await crls.latest('itest', 1), undefined);
    });

    await t.test('ok/revoked entries page by serial, each once, without expired ones', async (t) => {
      const base = { issuerId: 'itest', seed: 's', shards: 1, notBefore: at, revokedAt: at };
      await crls.insertRevokedForBench({ ...base, from: 0, count: 40, notAfter: new Date('2026-06-01T00:00:00Z') });
      await crls.insertRevokedForBench({ ...base, from: 40, count: 10, notAfter: new Date('2026-03-10T00:00:00Z') });
      const read = async (notAfterAfter: Date, pageSize: number) => {
        const serials: string[] = [];
        let pages = 0;
        for await (const page of crls.revokedEntries('itest', 0, { notAfterAfter, pageSize })) {
          pages += 1;
          let offset = 0;
          for (let i = 0; i < page.count; i += 1) {
            serials.push(Buffer.from(page.serials.subarray(offset, offset + page.serialLengths[i]!)).toString('hex'));
            offset += page.serialLengths[i]!;
            t.equal(page.revokedAt[i]! % 1, 0, 'whole seconds');
            if (page.reasons[i] === 1) t.equal(page.invalidityDates[i], at.getTime() / 1000 - 86_400, 'keyCompromise rows carry an invalidity date');
            else t.ok(Number.isNaN(page.invalidityDates[i]!));
          }
        }
        return { serials, pages };
      };
      const all = await read(new Date('2026-03-05T00:00:00Z'), 7);
      t.equal(all.serials.length, 50);
      t.equal(new Set(all.serials).size, 50, 'no serial twice');
      t.same(all.serials, [...all.serials].sort(), 'byte order');
      t.equal(all.pages, 8);
      t.equal(await crls.countRevoked('itest', 0, { notAfterAfter: new Date('2026-03-05T00:00:00Z') }), 50);
      const live = await read(new Date('2026-03-10T00:00:00Z'), 1000);
      t.equal(live.serials.length, 40, 'notAfter at or before the cut-off leaves the list');
      t.equal(live.pages, 1);
      t.equal((await read(new Date('2026-07-01T00:00:00Z'), 10)).pages, 0);
    });
  });
});
