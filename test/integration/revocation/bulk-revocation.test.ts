import { generateKeyPairSync } from 'node:crypto';
import t, { type Test } from 'tap';
import type { Chancery } from '../../../src/compose.js';
import type { IssuedCertificate } from '../../../src/core/certificate.js';
import { CrlRepository } from '../../../src/db/repositories/crl-repository.js';
import { LeaseRepository } from '../../../src/db/repositories/lease-repository.js';
import { profileRegistryFromConfig } from '../../../src/policy/profiles.js';
import type { BulkSelection } from '../../../src/revocation/bulk-revoker.js';
import { freshPgDatabase } from '../../helpers/databases.js';
import { toPem } from '../../../src/core/pem.js';
import { openssl, requireOpenssl, writeTemp } from '../../helpers/openssl.js';
import { createSoftHsmToken } from '../../helpers/softhsm.js';
import { composeForTest } from '../../helpers/runtime.js';

/**
 * Bulk revocation (revokeMany) on PGlite and on PostgreSQL: planned first (short-lived noRevAvail
 * certificates left out and reported with their expiry, unknown serials counted), then revoked in chunks by
 * the revocation.bulk job — every certificate exactly once, each chunk one audit entry naming its
 * certificates, every OCSP response re-signed as revoked, and the CRL published at the end lists all of them
 * (read by openssl). A chunk carrying an older lease token than the run has seen is refused and revokes
 * nothing. Planning the same origin twice finds the first run. Also with the keys in SoftHSM, where a
 * chunk's OCSP responses are signed as one batch on a worker thread; openssl verifies one of them.
 */
requireOpenssl();

const spki = (): Uint8Array => generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'der' });

async function issue(chancery: Chancery, count: number, profileName = 'tls-server'): Promise<IssuedCertificate[]> {
  const profile = profileRegistryFromConfig(chancery.config).get(profileName as 'tls-server');
  const issued: IssuedCertificate[] = [];
  for (let i = 0; i < count; i += 1) {
    issued.push(await chancery.services.issuance.issueForKey(spki(), [{ type: 'dns', value: `${profileName}-${i}-${issued.length}.bulk.test` }], profile ? { profile } : {}));
  }
  return issued;
}

function selection(serials: string[]): BulkSelection {
  return {
    label: 'test selection',
    async *pages() {
      for (let at = 0; at < serials.length; at += 7) yield serials.slice(at, at + 7);
    },
  };
}

async function crlSerials(chancery: Chancery): Promise<string[]> {
  const crl = await new CrlRepository(chancery.db).latest(chancery.hierarchy.intermediate.id, 0);
  if (crl === undefined) return [];
  const text = await openssl(['crl', '-inform', 'DER', '-noout', '-text'], Buffer.from(crl.der));
  if (text.code !== 0) throw new Error(text.stderr);
  return [...text.stdout.matchAll(/Serial Number: ([0-9A-F]+)/g)].map((m) => m[1]!.toLowerCase().replace(/^0+/, ''));
}

async function suite(t: Test, env: Record<string, string>): Promise<void> {
  const { chancery } = await composeForTest({ env: { CHANCERY_REVOCATION_BULK_CHUNK_SIZE: '10', ...env }, listen: false });
  t.teardown(() => chancery.close());
  const { bulk, jobs, revoker } = chancery.services;
  const valid = await issue(chancery, 41);
  const shortLived = await issue(chancery, 3, 'short-lived');
  const alreadyRevoked = valid.slice(0, 2);
  for (const c of alreadyRevoked) await revoker.revoke(c.serial, 4);
  const serials = [...valid, ...shortLived].map((c) => c.serial);
  // Another instance holds the job's lease: this one's requests for a pass find it taken, and the test drives
  // the passes itself, with the tokens it chooses.
  const leases = new LeaseRepository(chancery.db);
  const now = chancery.clock.now();
  const other = await leases.acquire('revocation.bulk', 'another-instance', now, new Date(now.getTime() + 3_600_000));

  await t.test('ok/planned: short-lived left out with their expiry, unknown serials counted, nothing revoked yet', async (t) => {
    const run = await bulk.revokeMany(selection([...serials, 'abcdef0123']), 1, 'cli:test', { origin: 'test:all' });
    t.match(run, { state: 'running', total: 41, shortLived: 3, unknown: 1, revoked: 0, origin: 'test:all' });
    t.equal(run.shortLivedUntil?.getTime(), Math.max(...shortLived.map((c) => c.notAfter.getTime())), 'reported with their expiry');
    const left = await bulk.leftOut(run.id, undefined, 10);
    t.same(left.map((c) => c.serial).sort(), shortLived.map((c) => c.serial).sort());
    const again = await bulk.revokeMany(selection(serials.slice(0, 3)), 1, 'cli:test', { origin: 'test:all' });
    t.equal(again.id, run.id, 'the same origin finds the run already planned');
    t.equal(again.total, 41, 'unchanged');
  });

  await t.test('fail/a chunk under an older lease token than the run has seen revokes nothing', async (t) => {
    await chancery.db.query(`UPDATE bulk_revocations SET token = 1000000 WHERE origin = 'test:all'`);
    await bulk.runPending({ signal: new AbortController().signal, token: 999_999 });
    const { rows } = await chancery.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM certificates WHERE status = 'revoked'`);
    t.equal(rows[0]!.n, 2, 'only the two revoked before');
    t.equal((await bulk.findByOrigin('test:all'))?.chunks, 0);
  });

  await t.test('ok/revoked in chunks: each once, audited per chunk, OCSP re-signed, the CRL lists all', async (t) => {
    await bulk.runPending({ signal: new AbortController().signal, token: 1_000_001 });
    const run = await bulk.findByOrigin('test:all');
    t.match(run, { state: 'done', revoked: 39, skipped: 2, chunks: 5, total: 41 });
    t.ok(run?.publishedAt, 'the CRLs were published at the end');
    const { rows } = await chancery.db.query<{ serial: string; status: string; revocation_reason: number | null }>(
      'SELECT serial, status, revocation_reason FROM certificates WHERE serial = ANY($1::text[])',
      [serials],
    );
    const byStatus = (status: string): string[] => rows.filter((r) => r.status === status).map((r) => r.serial).sort();
    t.same(byStatus('valid'), shortLived.map((c) => c.serial).sort(), 'short-lived certificates left as they were');
    t.same(byStatus('revoked'), valid.map((c) => c.serial).sort());
    t.ok(rows.filter((r) => valid.slice(2).some((c) => c.serial === r.serial)).every((r) => r.revocation_reason === 1), 'with the run’s reason');
    const batches = await chancery.db.query<{ details: string }>(`SELECT details FROM audit_entries WHERE action = 'certificate.revoke-batch' ORDER BY id`);
    const revokedInBatches = batches.rows.flatMap((row) => (JSON.parse(row.details) as { revoked: string[] }).revoked);
    t.equal(batches.rows.length, 5, 'one audit entry per chunk');
    t.equal(new Set(revokedInBatches).size, revokedInBatches.length, 'no certificate in two chunks');
    t.same(revokedInBatches.sort(), valid.slice(2).map((c) => c.serial).sort(), 'every revoked certificate named once');
    for (const action of ['revocation.bulk-plan', 'revocation.bulk-finish']) {
      const found = await chancery.db.query(`SELECT 1 FROM audit_entries WHERE action = $1`, [action]);
      t.equal(found.rowCount, 1, `${action} recorded`);
    }
    const ocsp = await chancery.db.query<{ serial: string; status: string; signed: boolean }>(
      'SELECT serial, status, der IS NOT NULL AS signed FROM ocsp_responses WHERE serial = ANY($1::text[])',
      [valid.map((c) => c.serial)],
    );
    t.equal(ocsp.rows.filter((r) => r.status === 'revoked' && r.signed).length, 41, 'every OCSP response re-signed as revoked');
    // As a relying party reads them: openssl verifies each signature up to the root and reads the status, the
    // time and the reason, which must be the certificate's (every chunk after the first was signed ahead,
    // while the one before it was written).
    const chain = await writeTemp('chain.pem', toPem(chancery.hierarchy.intermediate.der));
    const root = await writeTemp('root.pem', toPem(chancery.hierarchy.root.der));
    const stored = await chancery.db.query<{ serial: string; der: Uint8Array; revoked_at: Date }>(
      'SELECT o.serial, o.der, c.revoked_at FROM ocsp_responses o JOIN certificates c ON c.serial = o.serial WHERE o.serial = ANY($1::text[])',
      [valid.slice(2).map((c) => c.serial)],
    );
    let verified = 0;
    for (const row of stored.rows) {
      const leaf = await writeTemp('leaf.pem', toPem(Buffer.from(valid.find((c) => c.serial === row.serial)!.der)));
      const response = await writeTemp('response.der', Buffer.from(row.der));
      const checked = await openssl(['ocsp', '-respin', response, '-issuer', chain, '-cert', leaf, '-CAfile', root, '-verify_other', chain, '-no_nonce', '-validity_period', '86400']);
      const time = /Revocation Time: (.+)/.exec(checked.stdout)?.[1];
      const ok =
        /Response verify OK/.test(checked.stdout + checked.stderr) &&
        /: revoked/.test(checked.stdout) &&
        /Reason: keyCompromise/.test(checked.stdout) &&
        time !== undefined &&
        Math.floor(new Date(time).getTime() / 1000) === Math.floor(new Date(row.revoked_at).getTime() / 1000);
      if (ok) verified += 1;
      else t.fail(`${row.serial}: ${checked.stdout}${checked.stderr}`);
    }
    t.equal(verified, 39, 'every re-signed response verifies and says revoked, with the certificate\'s time and reason');
    const listed = await crlSerials(chancery);
    t.ok(valid.every((c) => listed.includes(c.serial.replace(/^0+/, ''))), 'the CRL lists every revoked certificate');
    t.ok(shortLived.every((c) => !listed.includes(c.serial.replace(/^0+/, ''))), 'and no short-lived one');
    t.equal(listed.length, 41);
  });

  await t.test('ok/the job runs under its lease: runNow plans nothing new and finishes nothing twice', async (t) => {
    t.equal(await jobs.runNow('revocation.bulk'), false, 'not while another instance holds the lease');
    await leases.release('revocation.bulk', 'another-instance', other!.token);
    t.equal(await jobs.runNow('revocation.bulk'), true);
    const finished = await chancery.db.query(`SELECT 1 FROM audit_entries WHERE action = 'revocation.bulk-finish'`);
    t.equal(finished.rowCount, 1);
  });
}

await t.test('PGlite', (t) => suite(t, {}));
await t.test('PostgreSQL', async (t) => {
  const database = await freshPgDatabase(t);
  if (database) await suite(t, { CHANCERY_DATABASE_URL: database.url });
});
// The CA's keys in SoftHSM: each chunk's responses are signed as one batch on the key store's worker thread.
await t.test('PostgreSQL, keys in SoftHSM', async (t) => {
  const token = createSoftHsmToken('chancery-bulk');
  const database = await freshPgDatabase(t);
  if (token === undefined || database === undefined) return;
  t.teardown(() => token.cleanup());
  await suite(t, {
    CHANCERY_DATABASE_URL: database.url,
    CHANCERY_KEYS: 'pkcs11',
    CHANCERY_PKCS11_LIBRARY: token.library,
    CHANCERY_PKCS11_TOKEN_LABEL: token.tokenLabel,
    CHANCERY_PKCS11_PIN: token.pin,
  });
});
