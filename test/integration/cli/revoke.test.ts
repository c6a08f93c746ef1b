import { generateKeyPairSync } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { toPem } from '../../../src/core/pem.js';
import { CrlRepository } from '../../../src/db/repositories/crl-repository.js';
import { OcspResponseRepository } from '../../../src/db/repositories/ocsp-repository.js';
import { openDatabase } from '../../../src/db/open-database.js';
import { CertificateRepository } from '../../../src/db/repositories/certificate-repository.js';
import { runCli } from '../../helpers/chancery-process.js';
import { openssl, requireOpenssl } from '../../helpers/openssl.js';
import { composeForTest } from '../../helpers/runtime.js';

/**
 * `chancery revoke` as an operator runs it, in its own process on the installation's data directory: bad
 * arguments are refused by name and change nothing; a revocation re-signs the OCSP response and regenerates
 * the CRL before the command returns, each with the reason and the invalidity date (RFC 5280 §5.3.2,
 * RFC 6960 §4.4.5) — read back by openssl.
 */
requireOpenssl();

const PASSPHRASE = 'test-passphrase-0123456789';
const { chancery, config } = await composeForTest({ env: { CHANCERY_KEY_PASSPHRASE: PASSPHRASE }, listen: false });
const { hierarchy } = chancery;
const { issuance } = chancery.services;
const spki = (): Uint8Array => generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'der' });
const leaf = await issuance.issueForKey(spki(), [{ type: 'dns', value: 'leaf.example.internal' }]);
const other = await issuance.issueForKey(spki(), [{ type: 'dns', value: 'other.example.internal' }]);
const intermediateId = hierarchy.intermediate.id;
const files = {
  root: join(config.dataDir, 'root-test.pem'),
  chain: join(config.dataDir, 'chain-test.pem'),
  leaf: join(config.dataDir, 'leaf-test.pem'),
  crl: join(config.dataDir, 'crl-test.der'),
  ocsp: join(config.dataDir, 'ocsp-test.der'),
};
await writeFile(files.root, toPem(hierarchy.root.der));
await writeFile(files.chain, toPem(hierarchy.intermediate.der));
await writeFile(files.leaf, toPem(leaf.der));
// The CLI is another process on the same PGlite data directory: this one lets go of it first.
await chancery.close();

const env = { CHANCERY_DATA_DIR: config.dataDir, CHANCERY_KEY_PASSPHRASE: PASSPHRASE, CHANCERY_LOG_LEVEL: 'warn' };
const revoke = (args: string[]): ReturnType<typeof runCli> => runCli(['revoke', ...args], env);

/** The certificate rows and the latest CRL of the intermediate, read in this process between CLI runs. */
async function stored(serial: string): Promise<{ status: string | undefined; invalidityDate: Date | undefined; crl: Uint8Array | undefined; ocsp: Uint8Array | undefined }> {
  const reader = await openDatabase({ url: config.database.url, dataDir: config.dataDir });
  try {
    const certificate = await new CertificateRepository(reader).findBySerial(serial);
    const crl = await new CrlRepository(reader).latest(intermediateId, certificate?.crlShard ?? 0);
    const ocsp = await new OcspResponseRepository(reader).find(serial);
    return { status: certificate?.status, invalidityDate: certificate?.invalidityDate, crl: crl?.der, ocsp: ocsp?.der };
  } finally {
    await reader.close();
  }
}

await t.test('fail/bad arguments are refused by name and revoke nothing', async (t) => {
  const cases: [string, string[], RegExp][] = [
    ['no serial', ['--reason', 'keyCompromise'], /usage: chancery revoke --serial HEX/],
    ['serial not hex', ['--serial', 'zz:01'], /--serial "zz:01" is not a hexadecimal serial number/],
    ['unknown reason', ['--serial', leaf.serial, '--reason', 'stolen'], /unknown --reason "stolen"/],
    ['invalidity date not a date', ['--serial', leaf.serial, '--reason', 'keyCompromise', '--invalidity-date', 'yesterday'], /--invalidity-date "yesterday" is not an ISO 8601 date/],
    ['invalidity date that does not exist', ['--serial', leaf.serial, '--invalidity-date', '2026-02-30'], /--invalidity-date "2026-02-30" is not an ISO 8601 date/],
    ['invalidity date without a time zone', ['--serial', leaf.serial, '--invalidity-date', '2026-02-01T10:00:00'], /--invalidity-date "2026-02-01T10:00:00"/],
    ['invalidity date in the future', ['--serial', leaf.serial, '--invalidity-date', '2999-01-01T00:00:00Z'], /invalidity date 2999-01-01T00:00:00\.000Z is after the revocation time/],
    ['unknown serial', ['--serial', '0badc0ffee'], /no certificate with serial 0badc0ffee/],
  ];
  for (const [name, args, message] of cases) {
    const result = await revoke(args);
    t.equal(result.code, 1, `${name}: exit 1`);
    t.match(result.stderr, message, `${name}: says why`);
  }
  const after = await stored(leaf.serial);
  t.equal(after.status, 'valid', 'the certificate is still valid');
  t.equal(after.invalidityDate, undefined);
});

await t.test('ok/revoked with reason and invalidity date: CRL entry and OCSP response say so', async (t) => {
  const result = await revoke(['--serial', leaf.serial.toUpperCase(), '--reason', 'keyCompromise', '--invalidity-date', '2026-01-15T08:30:00Z']);
  t.equal(result.code, 0, result.stderr);
  t.match(result.stdout, new RegExp(`Revoked ${leaf.serial} \\(keyCompromise\\) at \\S+, invalid since 2026-01-15T08:30:00\\.000Z; OCSP re-signed, CRL regenerated`));

  const after = await stored(leaf.serial);
  t.equal(after.status, 'revoked');
  t.same(after.invalidityDate, new Date('2026-01-15T08:30:00Z'));

  if (after.crl === undefined) throw new Error('no CRL stored');
  await writeFile(files.crl, after.crl);
  const crl = await openssl(['crl', '-inform', 'DER', '-in', files.crl, '-noout', '-text', '-CAfile', files.chain]);
  t.equal(crl.code, 0, crl.stderr);
  t.match(crl.stderr + crl.stdout, /verify OK/, 'the CRL verifies against the intermediate');
  const entry = crl.stdout.split(/Serial Number: /i).find((part) => part.toLowerCase().startsWith(leaf.serial));
  t.ok(entry, 'the CRL lists the certificate');
  t.match(entry, /Key Compromise/, 'with its reason');
  t.match(entry, /Invalidity Date:\s*\n?\s*Jan 15 08:30:00 2026 GMT/, 'and its invalidity date');

  if (after.ocsp === undefined) throw new Error('no OCSP response stored');
  await writeFile(files.ocsp, after.ocsp);
  const ocsp = await openssl(['ocsp', '-respin', files.ocsp, '-issuer', files.chain, '-cert', files.leaf, '-CAfile', files.root, '-no_nonce']);
  t.equal(ocsp.code, 0, ocsp.stderr);
  t.match(ocsp.stdout, /: revoked/, 'the OCSP response says revoked');
  t.match(ocsp.stdout, /Reason: keyCompromise/);
  const text = await openssl(['ocsp', '-respin', files.ocsp, '-resp_text', '-noverify']);
  t.match(text.stdout, /Invalidity Date:\s*\n?\s*Jan 15 08:30:00 2026 GMT/, 'and carries the invalidity date, as the CRL entry does');
});

await t.test('ok/without an invalidity date the entry has none; a second revoke is alreadyRevoked', async (t) => {
  const result = await revoke(['--serial', other.serial, '--reason', 'superseded']);
  t.equal(result.code, 0, result.stderr);
  t.notMatch(result.stdout, /invalid since/);
  const after = await stored(other.serial);
  t.equal(after.invalidityDate, undefined);
  if (after.crl === undefined) throw new Error('no CRL stored');
  await writeFile(files.crl, after.crl);
  const crl = await openssl(['crl', '-inform', 'DER', '-in', files.crl, '-noout', '-text']);
  const entry = crl.stdout.split(/Serial Number: /i).find((part) => part.toLowerCase().startsWith(other.serial));
  t.match(entry, /Superseded/);
  t.notMatch(entry, /Invalidity Date/);

  const again = await revoke(['--serial', other.serial, '--reason', 'keyCompromise']);
  t.equal(again.code, 1);
  t.match(again.stderr, new RegExp(`certificate ${other.serial} was already revoked`));
});
