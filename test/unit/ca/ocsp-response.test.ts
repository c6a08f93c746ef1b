import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as pkijs from 'pkijs';
import t from 'tap';
import { ocspNoCheck, prepareResponderCertificate, signResponderCertificate } from '../../../src/ca/ocsp-responder-certificate.js';
import {
  issuerCertIdHashes,
  ocspErrorResponse,
  prepareResponder,
  serialNumberOctets,
  signOcspResponse,
  type OcspResponseInput,
} from '../../../src/ca/ocsp-response.js';
import { parseCertificate } from '../../../src/ca/certificate-parser.js';
import { DAY, HOUR, systemClock } from '../../../src/core/clock.js';
import { toPem } from '../../../src/core/pem.js';
import { SoftwareKeyStore } from '../../../src/keys/software/software-key-store.js';
import type { Signer } from '../../../src/keys/signer.js';
import { expectCaError } from '../../helpers/expect-error.js';
import { MemoryKeyBlobs } from '../../helpers/memory-stores.js';
import { certificateText, openssl, requireOpenssl, writeTemp } from '../../helpers/openssl.js';
import { createTestCa } from '../../helpers/test-ca.js';

/** Delegated responder certificates and hand-encoded OCSP responses, judged by openssl and pkijs. */
requireOpenssl();

const keys = new SoftwareKeyStore({ blobs: new MemoryKeyBlobs(), passphrase: 'test-passphrase-0123456789', clock: systemClock });
const ca = await createTestCa(keys);
const intermediateSigner = (await keys.load(ca.intermediate.keyName))!;
const issuer = { id: ca.intermediate.id, certificateDer: ca.intermediate.der, signer: intermediateSigner };
const spki = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'der' });
const leaf = await ca.issuance.issueForKey(spki, [{ type: 'dns', value: 'leaf.example.internal' }]);
const leafPem = join(ca.dir, 'leaf.pem');
await writeFile(leafPem, toPem(leaf.der));

const now = new Date(Math.floor(Date.now() / 1000) * 1000);
const responderKey = await keys.create('ocsp-test-1', { algorithm: 'ecdsa-p256' });
const prepared = prepareResponderCertificate({
  issuer,
  responderPublicKey: responderKey.publicKey,
  subject: { organization: 'Chancery Test', commonName: 'OCSP Responder test 1' },
  notBefore: new Date(now.getTime() - HOUR),
  notAfter: new Date(now.getTime() + 7 * DAY),
});
const responderDer = await signResponderCertificate(intermediateSigner, prepared);
const responder = prepareResponder(responderKey, responderDer);
const hashes = issuerCertIdHashes(ca.intermediate.der);

function input(overrides: Partial<OcspResponseInput> = {}): OcspResponseInput {
  return {
    certId: { hashAlgorithm: 'sha1', issuerNameHash: hashes.sha1.nameHash, issuerKeyHash: hashes.sha1.keyHash, serialNumber: serialNumberOctets(leaf.serial) },
    status: { kind: 'good' },
    thisUpdate: now,
    nextUpdate: new Date(now.getTime() + 3 * DAY),
    producedAt: now,
    ...overrides,
  };
}

async function judge(der: Uint8Array, extra: string[] = []): Promise<{ stdout: string; stderr: string; code: number }> {
  const file = await writeTemp('resp.der', der);
  // openssl wants a digest option before -cert.
  return openssl(['ocsp', ...extra, '-respin', file, '-issuer', ca.chainPemPath, '-cert', leafPem, '-CAfile', ca.rootPemPath, '-no_nonce', '-resp_text']);
}

function basic(der: Uint8Array): pkijs.BasicOCSPResponse {
  const response = pkijs.OCSPResponse.fromBER(new Uint8Array(der));
  if (!response.responseBytes) throw new Error('no responseBytes');
  return pkijs.BasicOCSPResponse.fromBER(new Uint8Array(response.responseBytes.response.valueBlock.valueHexView));
}

await t.test('ok/responder certificate profile (RFC 6960 §4.2.2.2, CA/B BR 7.1.2.8)', async (t) => {
  const text = await certificateText(responderDer);
  t.match(text, /X509v3 Extended Key Usage: *\n *OCSP Signing\n/, 'EKU id-kp-OCSPSigning only');
  t.match(text, /OCSP No Check/, 'id-pkix-ocsp-nocheck');
  t.match(text, /X509v3 Key Usage: critical\n *Digital Signature\n/);
  t.match(text, /X509v3 Basic Constraints: critical\n *CA:FALSE/);
  t.match(text, /X509v3 Authority Key Identifier/);
  t.match(text, /X509v3 Subject Key Identifier/);
  t.notMatch(text, /Authority Information Access|CRL Distribution|Certificate Policies|Subject Alternative Name/);
  t.match(text, /Issuer: O ?= ?Chancery Test, CN ?= ?Chancery Test Intermediate CA/);
  const file = await writeTemp('responder.pem', toPem(responderDer));
  const verified = await openssl(['verify', '-CAfile', ca.rootPemPath, '-untrusted', ca.chainPemPath, '-purpose', 'ocsphelper', file]);
  t.equal(verified.code, 0, verified.stderr);
  t.equal(ocspNoCheck().toString('hex'), '300f06092b0601050507300105040205 00'.replace(/ /g, ''), 'NULL value, not critical');
});

await t.test('ok/responder notAfter never outlives the issuer', async (t) => {
  const far = prepareResponderCertificate({
    issuer,
    responderPublicKey: responderKey.publicKey,
    subject: { commonName: 'far' },
    notBefore: now,
    notAfter: new Date(now.getTime() + 100 * 365 * DAY),
  });
  t.same(far.notAfter, parseCertificate(ca.intermediate.der).notAfter);
});

await t.test('fail/responder certificate checks', async (t) => {
  const other = await keys.create('not-the-issuer', { algorithm: 'ecdsa-p256' });
  t.throws(
    () => prepareResponderCertificate({ issuer: { ...issuer, signer: other }, responderPublicKey: responderKey.publicKey, subject: {}, notBefore: now, notAfter: new Date(now.getTime() + DAY) }),
    { kind: 'caState', message: /does not match the certificate/ },
    'signer must match the issuer certificate',
  );
  t.throws(
    () => prepareResponderCertificate({ issuer, responderPublicKey: intermediateSigner.publicKey, subject: {}, notBefore: now, notAfter: new Date(now.getTime() + DAY) }),
    { kind: 'caState', message: /must not be the issuer key/ },
    'responder key must not be the issuer key',
  );
  t.throws(() => prepareResponder(other, responderDer), { kind: 'caState', message: /does not match/ }, 'responder key must match its certificate');
});

await t.test('ok/good response verifies with openssl through the delegated responder', async (t) => {
  const der = await signOcspResponse(responder, input());
  const { stdout, stderr, code } = await judge(der);
  t.equal(code, 0, stderr);
  t.match(stdout, new RegExp(`${leafPem}: good`));
  t.match(stderr, /Response verify OK/);
  const parsed = basic(der);
  t.equal(parsed.certs?.length, 1, 'responder certificate included');
  t.equal(parsed.tbsResponseData.responseExtensions, undefined, 'no nonce unless asked');
  t.equal(parsed.tbsResponseData.responses.length, 1, 'one SingleResponse (RFC 5019 §2.2.1)');
  t.match(stdout, /Responder Id: [0-9A-F]{40}\n/, 'ResponderID byKey (RFC 5019 §2.2.2)');
});

await t.test('ok/revoked with reason, revoked unspecified, unknown', async (t) => {
  const revokedAt = new Date(now.getTime() - 60_000);
  const revoked = await judge(await signOcspResponse(responder, input({ status: { kind: 'revoked', revokedAt, reason: 1 } })));
  t.match(revoked.stdout, /: revoked/);
  t.match(revoked.stdout, /Reason: keyCompromise/);
  t.match(revoked.stdout, new RegExp(`Revocation Time: ${opensslTime(revokedAt)}`));
  t.match(revoked.stderr, /Response verify OK/);
  t.notMatch(revoked.stdout, /Invalidity Date/, 'no invalidity date unless one was given');

  // RFC 6960 §4.4.5: the CRL entry's invalidity date (RFC 5280 §5.3.2) as a singleExtension.
  const invalidityDate = new Date('2026-01-15T08:30:00Z');
  const compromised = await judge(await signOcspResponse(responder, input({ status: { kind: 'revoked', revokedAt, reason: 1, invalidityDate } })));
  t.match(compromised.stdout, /: revoked/);
  t.match(compromised.stdout, /Invalidity Date:\s*\n?\s*Jan 15 08:30:00 2026 GMT/, 'openssl reads the invalidity date');
  t.match(compromised.stderr, /Response verify OK/);

  const unspecifiedDer = await signOcspResponse(responder, input({ status: { kind: 'revoked', revokedAt, reason: 0 } }));
  const unspecified = await judge(unspecifiedDer);
  t.match(unspecified.stdout, /: revoked/);
  t.notMatch(unspecified.stdout, /Reason:/, 'reason unspecified is left out, as in the CRL (RFC 5280 §5.3.1)');

  const unknown = await judge(await signOcspResponse(responder, input({ status: { kind: 'unknown' } })));
  t.match(unknown.stdout, /: unknown/);
  t.match(unknown.stderr, /Response verify OK/);
});

await t.test('ok/SHA-256 CertID and the nonce echoed byte for byte', async (t) => {
  const nonce = Buffer.concat([Buffer.from([0x04, 0x20]), randomBytes(32)]);
  const der = await signOcspResponse(
    responder,
    input({ certId: { hashAlgorithm: 'sha256', issuerNameHash: hashes.sha256.nameHash, issuerKeyHash: hashes.sha256.keyHash, serialNumber: serialNumberOctets(leaf.serial) }, nonce }),
  );
  const extensions = basic(der).tbsResponseData.responseExtensions ?? [];
  t.equal(extensions.length, 1);
  t.equal(extensions[0]!.extnID, '1.3.6.1.5.5.7.48.1.2');
  t.same(Buffer.from(extensions[0]!.extnValue.valueBlock.valueHexView), nonce);
  const { stdout, stderr } = await judge(der, ['-sha256']);
  t.match(stdout, /Hash Algorithm: sha256/);
  t.match(stdout, /: good/, 'openssl matches the SHA-256 CertID');
  t.match(stderr, /Response verify OK/);
});

await t.test('fail/signing checks (rule 2)', async (t) => {
  const liar: Signer = { name: responderKey.name, algorithm: responderKey.algorithm, keyAlgorithm: responderKey.keyAlgorithm, publicKey: responderKey.publicKey, sign: async () => randomBytes(70) };
  await expectCaError(t, signOcspResponse({ ...responder, signer: liar }, input()), 'keyStore', /failed verification/);
  await expectCaError(t, signOcspResponse(responder, input({ producedAt: new Date(now.getTime() + 30 * DAY) })), 'caState', /not valid/);
  await expectCaError(t, signOcspResponse(responder, input({ nextUpdate: new Date(now.getTime() - DAY) })), 'serverInternal', /nextUpdate is before thisUpdate/);
});

await t.test('ok/unsigned error responses and serial octets', async (t) => {
  t.equal(ocspErrorResponse('malformedRequest').toString('hex'), '30030a0101');
  t.equal(ocspErrorResponse('internalError').toString('hex'), '30030a0102');
  t.equal(ocspErrorResponse('tryLater').toString('hex'), '30030a0103');
  t.equal(ocspErrorResponse('unauthorized').toString('hex'), '30030a0106');
  t.equal(serialNumberOctets('80').toString('hex'), '0080', 'a positive INTEGER keeps its sign octet');
  t.equal(serialNumberOctets('7f01').toString('hex'), '7f01');
  t.throws(() => serialNumberOctets('xyz'));
});

/** "Nov  4 08:56:05 2026 GMT", as openssl prints ASN.1 times. */
function opensslTime(date: Date): string {
  const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${months[date.getUTCMonth()]} ${String(date.getUTCDate()).padStart(2, ' ')} ${pad(date.getUTCHours())}:${pad(date.getUTCMinutes())}:${pad(date.getUTCSeconds())} ${date.getUTCFullYear()} GMT`;
}
