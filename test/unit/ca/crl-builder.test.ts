import t from 'tap';
import * as pkijs from 'pkijs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CrlBuilder, type CrlEntry, type CrlEntryColumns, type CrlRequest } from '../../../src/ca/crl-builder.js';
import { RevokedCertificatesEncoder } from '../../../src/ca/crl-entries.js';
import { buildIssuerContext } from '../../../src/ca/issuer-context.js';
import { DAY, HOUR, systemClock } from '../../../src/core/clock.js';
import { toPem } from '../../../src/core/pem.js';
import { publicUrls } from '../../../src/core/url-scheme.js';
import { SoftwareKeyStore } from '../../../src/keys/software/software-key-store.js';
import type { Signer } from '../../../src/keys/signer.js';
import { expectCaError } from '../../helpers/expect-error.js';
import { MemoryKeyBlobs } from '../../helpers/memory-stores.js';
import { makeCsr, openssl, requireOpenssl, writeTemp } from '../../helpers/openssl.js';
import { createTestCa, TEST_PUBLIC_URL } from '../../helpers/test-ca.js';

requireOpenssl();

const keys = new SoftwareKeyStore({ blobs: new MemoryKeyBlobs(), passphrase: 'test-passphrase-0123456789', clock: systemClock });
t.teardown(() => keys.close());
const ca = await createTestCa(keys);
const urls = publicUrls(TEST_PUBLIC_URL);

async function contextFor(record: typeof ca.root) {
  const signer = await keys.load(record.keyName);
  if (!signer) throw new Error(`no key ${record.keyName}`);
  return buildIssuerContext({ id: record.id, certificateDer: record.der, signer, urls, crlShards: 1 });
}
const intermediateContext = await contextFor(ca.intermediate);
const rootContext = await contextFor(ca.root);
const intermediateCrls = new CrlBuilder(intermediateContext);
const rootCrls = new CrlBuilder(rootContext);

// Both CA certificates: `openssl crl -verify` looks the issuer up by name in -CAfile.
const bothPem = join(ca.dir, 'both.pem');
await writeFile(bothPem, toPem(ca.root.der) + toPem(ca.intermediate.der));

const thisUpdate = new Date('2026-03-01T12:00:00Z');
const leafRequest = (number: number, extra: Partial<CrlRequest> = {}): CrlRequest => ({
  number,
  thisUpdate,
  nextUpdate: new Date(thisUpdate.getTime() + DAY),
  distributionPoint: urls.crl(ca.intermediate.id, 0),
  scope: 'userCerts',
  ...extra,
});

async function crlText(der: Uint8Array, verify = true): Promise<{ text: string; stderr: string; code: number }> {
  const file = await writeTemp('crl.der', der);
  const args = ['crl', '-inform', 'DER', '-in', file, '-noout', '-text'];
  if (verify) args.push('-CAfile', bothPem, '-verify');
  const { stdout, stderr, code } = await openssl(args);
  return { text: stdout, stderr, code };
}

await t.test('ok/entries with reasons and invalidity dates, verified by openssl', async (t) => {
  const entries: CrlEntry[] = [
    { serial: '7f01020304050607080910111213141f', revokedAt: new Date('2026-02-01T10:20:30.999Z'), reason: 1, invalidityDate: new Date('2026-01-30T00:00:00Z') },
    { serial: '0a0b', revokedAt: new Date('2026-02-02T00:00:00Z'), reason: 0 }, // unspecified: no reasonCode
    { serial: 'ff', revokedAt: new Date('2026-02-03T00:00:00Z'), reason: 4 }, // top bit set: needs a 00 octet
    { serial: '000abc', revokedAt: new Date('2026-02-04T00:00:00Z'), reason: 5 }, // leading zeros trimmed
    { serial: 'abc', revokedAt: new Date('2051-06-01T00:00:00Z'), reason: 9 }, // odd length; 2050+: GeneralizedTime
  ];
  const crl = await intermediateCrls.build(leafRequest(7), [entries.slice(0, 2), entries.slice(2)]);
  t.equal(crl.entries, 5);
  const { text, stderr, code } = await crlText(crl.der);
  t.equal(code, 0, stderr);
  t.match(stderr, /verify OK/);
  t.match(text, /Version 2 \(0x1\)/);
  t.match(text, /Last Update: Mar  1 12:00:00 2026 GMT/);
  t.match(text, /Next Update: Mar  2 12:00:00 2026 GMT/);
  t.match(text, /X509v3 CRL Number:\s*\n\s*7\n/);
  t.match(text, /X509v3 Authority Key Identifier:\s*\n\s*(keyid:)?[0-9A-F:]+/);
  t.match(text, new RegExp(`X509v3 Issuing Distribution Point: critical\\s*\\n\\s*Full Name:\\s*\\n\\s*URI:${TEST_PUBLIC_URL}/crl/${ca.intermediate.id}/0\\.crl\\s*Only User Certificates`));
  t.match(text, /Serial Number: 7F01020304050607080910111213141F\s*\n\s*Revocation Date: Feb  1 10:20:30 2026 GMT\s*\n\s*CRL entry extensions:\s*\n\s*X509v3 CRL Reason Code:\s*\n\s*Key Compromise\s*\n\s*Invalidity Date:\s*\n\s*Jan 30 00:00:00 2026 GMT/);
  t.match(text, /Serial Number: 0A0B\s*\n\s*Revocation Date: Feb  2 00:00:00 2026 GMT\s*\n\s*Serial Number: FF/, 'unspecified reason: no entry extensions');
  t.match(text, /Serial Number: FF\s*\n\s*Revocation Date: Feb  3 00:00:00 2026 GMT\s*\n\s*CRL entry extensions:\s*\n\s*X509v3 CRL Reason Code:\s*\n\s*Superseded/);
  t.match(text, /Serial Number: 0ABC\s*\n\s*Revocation Date: Feb  4 00:00:00 2026 GMT\s*\n\s*CRL entry extensions:\s*\n\s*X509v3 CRL Reason Code:\s*\n\s*Cessation Of Operation/);
  t.match(text, /Serial Number: 0ABC\s*\n\s*Revocation Date: Jun  1 00:00:00 2051 GMT\s*\n\s*CRL entry extensions:\s*\n\s*X509v3 CRL Reason Code:\s*\n\s*Privilege Withdrawn/);
  t.match(text, /Signature Algorithm: ecdsa-with-SHA256/);

  // An independent structural reading: pkijs agrees on the serials' DER.
  const parsed = pkijs.CertificateRevocationList.fromBER(new Uint8Array(crl.der));
  const serials = (parsed.revokedCertificates ?? []).map((r) => Buffer.from(r.userCertificate.valueBlock.valueHexView).toString('hex'));
  t.same(serials, ['7f01020304050607080910111213141f', '0a0b', '00ff', '0abc', '0abc']);
  t.equal(parsed.version, 1);
});

await t.test('ok/an empty CRL has no revokedCertificates field (RFC 5280 §5.1.2.6)', async (t) => {
  const crl = await intermediateCrls.build(leafRequest(1), []);
  t.equal(crl.entries, 0);
  const { text, code, stderr } = await crlText(crl.der);
  t.equal(code, 0, stderr);
  t.match(text, /No Revoked Certificates\./);
  const parsed = pkijs.CertificateRevocationList.fromBER(new Uint8Array(crl.der));
  t.equal(parsed.revokedCertificates, undefined);
});

await t.test('ok/root CRL: signed by the root, only CA certificates', async (t) => {
  const crl = await rootCrls.build(
    { number: 3, thisUpdate, nextUpdate: new Date(thisUpdate.getTime() + 7 * DAY), distributionPoint: undefined, scope: 'caCerts' },
    [],
  );
  const { text, code, stderr } = await crlText(crl.der);
  t.equal(code, 0, stderr);
  t.match(text, /Issuer: .*Root CA/);
  t.match(text, /Signature Algorithm: ecdsa-with-SHA384/);
  t.match(text, /X509v3 Issuing Distribution Point: critical\s*Only CA Certificates/);
  t.notMatch(text, /Full Name/);
});

await t.test('ok/openssl verify -crl_check_all: revoked leaf rejected, good leaf accepted', async (t) => {
  const revokedCsr = await makeCsr({ keyType: 'ec-p256', sans: ['DNS:revoked.example.internal'] });
  const goodCsr = await makeCsr({ keyType: 'ec-p256', sans: ['DNS:good.example.internal'] });
  const revoked = await ca.issuance.issueFromCsr(revokedCsr.der);
  const good = await ca.issuance.issueFromCsr(goodCsr.der);
  const now = systemClock.now();
  const window = { thisUpdate: new Date(now.getTime() - HOUR), nextUpdate: new Date(now.getTime() + DAY) };
  const leafCrl = await intermediateCrls.build(leafRequest(2, window), [[{ serial: revoked.serial, revokedAt: now, reason: 1 }]]);
  const rootCrl = await rootCrls.build({ number: 1, ...window, distributionPoint: undefined, scope: 'caCerts' }, []);
  const leafCrlPem = await writeTemp('leaf-crl.pem', toPem(leafCrl.der, 'X509 CRL'));
  const rootCrlPem = await writeTemp('root-crl.pem', toPem(rootCrl.der, 'X509 CRL'));
  const verify = async (der: Uint8Array) =>
    openssl([
      'verify', '-crl_check_all', '-CRLfile', leafCrlPem, '-CRLfile', rootCrlPem,
      '-CAfile', ca.rootPemPath, '-untrusted', ca.chainPemPath, await writeTemp('leaf.pem', toPem(der)),
    ]);
  const bad = await verify(revoked.der);
  t.not(bad.code, 0);
  t.match(bad.stdout + bad.stderr, /certificate revoked/);
  const ok = await verify(good.der);
  t.equal(ok.code, 0, ok.stdout + ok.stderr);
  t.match(ok.stdout, /: OK/);
});

await t.test('ok/2,500 entries (beyond asn1js defaults) parse and verify', async (t) => {
  const entries: CrlEntry[] = [];
  for (let i = 0; i < 2500; i += 1) {
    entries.push({
      serial: `4${i.toString(16).padStart(31, '0')}`,
      revokedAt: new Date(thisUpdate.getTime() - i * 1000),
      reason: ([0, 1, 3, 4, 5] as const)[i % 5]!,
      invalidityDate: i % 5 === 1 ? new Date(thisUpdate.getTime() - DAY) : undefined,
    });
  }
  async function* pages() {
    for (let i = 0; i < entries.length; i += 1000) yield entries.slice(i, i + 1000);
  }
  const crl = await intermediateCrls.build(leafRequest(9), pages());
  t.equal(crl.entries, 2500);
  const { text, code, stderr } = await crlText(crl.der);
  t.equal(code, 0, stderr);
  t.equal(text.match(/Serial Number:/g)?.length, 2500);
  t.equal(text.match(/Key Compromise/g)?.length, 500);
});

await t.test('ok/CRLs around the 65,536-octet length boundary', async (t) => {
  // Entries of 49 octets (16-octet serial, reasonCode): walk n across the point where the CertificateList's
  // length octets grow from 2 to 3, which the in-place assembly cannot predict before signing.
  const entry = (i: number): CrlEntry => ({ serial: `4${i.toString(16).padStart(31, '0')}`, revokedAt: thisUpdate, reason: 4 });
  const sizes = new Set<number>();
  for (let n = 1310; n <= 1345; n += 1) {
    const crl = await intermediateCrls.build(leafRequest(n), [Array.from({ length: n }, (_, i) => entry(i))]);
    sizes.add(crl.der.length);
    const { code, stderr } = await crlText(crl.der);
    if (code !== 0) t.fail(`${n} entries (${crl.der.length} octets): ${stderr}`);
  }
  t.ok([...sizes].some((size) => size < 65_536 + 4) && [...sizes].some((size) => size > 65_536 + 4), `sizes ${Math.min(...sizes)}..${Math.max(...sizes)} cross the boundary`);
});

await t.test('ok/objects and column pages encode alike; growing the buffer changes no byte', async (t) => {
  const entries: CrlEntry[] = Array.from({ length: 3000 }, (_, i) => ({
    serial: (i * 7919 + 1).toString(16),
    revokedAt: new Date(Date.UTC(2026, 0, 1) + i * 3_600_000 + (i % 1000)),
    reason: ([0, 1, 3, 4, 5, 8, 9, 10, 2, 6] as const)[i % 10]!,
    invalidityDate: i % 3 === 0 ? new Date(Date.UTC(2049, 11, 31, 23, 59, 59) + i * 1000) : undefined,
  }));
  const columns: CrlEntryColumns = {
    count: entries.length,
    serials: Buffer.concat(entries.map((e) => Buffer.from(e.serial.length % 2 ? `0${e.serial}` : e.serial, 'hex'))),
    serialLengths: Uint16Array.from(entries, (e) => Math.ceil(e.serial.length / 2)),
    revokedAt: Float64Array.from(entries, (e) => Math.floor(e.revokedAt.getTime() / 1000)),
    reasons: Uint16Array.from(entries, (e) => e.reason),
    invalidityDates: Float64Array.from(entries, (e) => (e.invalidityDate ? Math.floor(e.invalidityDate.getTime() / 1000) : Number.NaN)),
  };
  const bytes = (encoded: ReturnType<RevokedCertificatesEncoder['finish']>) => encoded.buffer.subarray(encoded.start, encoded.end);
  const grown = new RevokedCertificatesEncoder({ front: 17, tail: 5 }); // sized for ~1k entries: grows
  for (const entry of entries) grown.add(entry);
  const sized = new RevokedCertificatesEncoder({ front: 17, tail: 5, expectedEntries: 3000 });
  sized.addColumns(columns);
  const a = grown.finish();
  const b = sized.finish();
  t.equal(a.count, 3000);
  t.equal(a.start, 17);
  t.ok(a.buffer.length >= a.end + 5, 'tail room kept');
  t.same(bytes(a), bytes(b));
  // And openssl reads them: GeneralizedTime from 2050 on, in entries and in invalidity dates alike.
  const crl = await intermediateCrls.build(leafRequest(11), [columns]);
  const { text, code, stderr } = await crlText(crl.der);
  t.equal(code, 0, stderr);
  t.equal(text.match(/Serial Number:/g)?.length, 3000);
  t.match(text, /Invalidity Date:\s*\n\s*Jan  1 00:00:\d\d 2050 GMT/);
  t.notMatch(text, /Remove From CRL|Unspecified/, 'removeFromCRL and unspecified carry no reasonCode');
});

await t.test('fail/bad input never reaches the signer', async (t) => {
  const cases: [string, CrlRequest, CrlEntry[]][] = [
    ['fail/number 0', leafRequest(0), []],
    ['fail/nextUpdate not after thisUpdate', leafRequest(1, { nextUpdate: thisUpdate }), []],
    ['fail/distribution point not http', leafRequest(1, { distributionPoint: 'ldap://x' }), []],
    ['fail/end-entity CRL without distribution point', leafRequest(1, { distributionPoint: undefined }), []],
    ['fail/serial not hex', leafRequest(1), [{ serial: 'zz', revokedAt: thisUpdate, reason: 1 }]],
    ['fail/serial empty', leafRequest(1), [{ serial: '', revokedAt: thisUpdate, reason: 1 }]],
    ['fail/invalid date', leafRequest(1), [{ serial: '01', revokedAt: new Date(Number.NaN), reason: 1 }]],
  ];
  let signed = 0;
  const counting: Signer = { ...intermediateContext.signer, sign: (tbs) => ((signed += 1), intermediateContext.signer.sign(tbs)) };
  const builder = new CrlBuilder({ ...intermediateContext, signer: counting });
  for (const [name, request, entries] of cases) {
    await t.test(name, (t) => expectCaError(t, builder.build(request, [entries]), 'serverInternal', /./));
  }
  t.equal(signed, 0);
});

await t.test('fail/a signer returning a bad signature is caught by verification (rule 2)', async (t) => {
  const broken: Signer = { ...intermediateContext.signer, sign: async () => new Uint8Array([0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01]) };
  await expectCaError(t, new CrlBuilder({ ...intermediateContext, signer: broken }).build(leafRequest(1), []), 'keyStore', /failed verification/);
});
