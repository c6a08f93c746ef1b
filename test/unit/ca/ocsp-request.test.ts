import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import t, { type Test as Tap } from 'tap';
import { parseOcspRequest } from '../../../src/ca/ocsp-request.js';
import { issuerCertIdHashes } from '../../../src/ca/ocsp-response.js';
import { booleanTrue, explicit, integer, nullValue, octetString, oid, sequence, tlv, TAG, type Der } from '../../../src/ca/der/der-writer.js';
import { systemClock } from '../../../src/core/clock.js';
import { toPem } from '../../../src/core/pem.js';
import { SoftwareKeyStore } from '../../../src/keys/software/software-key-store.js';
import { MemoryKeyBlobs } from '../../helpers/memory-stores.js';
import { openssl, requireOpenssl } from '../../helpers/openssl.js';
import { createTestCa } from '../../helpers/test-ca.js';

/** OCSPRequest parsing (RFC 6960 §4.1.1, RFC 5019 §2.1): requests made by openssl, and hand-made bad ones. */
requireOpenssl();

const keys = new SoftwareKeyStore({ blobs: new MemoryKeyBlobs(), passphrase: 'test-passphrase-0123456789', clock: systemClock });
const ca = await createTestCa(keys);
const spki = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'der' });
const leaf = await ca.issuance.issueForKey(spki, [{ type: 'dns', value: 'leaf.example.internal' }]);
const leafPem = join(ca.dir, 'leaf.pem');
await writeFile(leafPem, toPem(leaf.der));
const hashes = issuerCertIdHashes(ca.intermediate.der);

async function opensslRequest(extra: string[]): Promise<Buffer> {
  const out = join(ca.dir, `req-${randomBytes(4).toString('hex')}.der`);
  // openssl wants the digest before -cert.
  const { code, stderr } = await openssl(['ocsp', ...extra, '-issuer', ca.chainPemPath, '-cert', leafPem, '-reqout', out]);
  if (code !== 0) throw new Error(`openssl ocsp -reqout failed: ${stderr}`);
  return readFile(out);
}

const SHA1 = '1.3.14.3.2.26';
const SHA256 = '2.16.840.1.101.3.4.2.1';
const SHA512 = '2.16.840.1.101.3.4.2.3';
const NONCE = '1.3.6.1.5.5.7.48.1.2';

function certId(options: { hash?: string; nameHash?: Buffer; keyHash?: Buffer; serial?: Buffer; params?: Der[] } = {}): Der {
  return sequence(
    sequence(oid(options.hash ?? SHA1), ...(options.params ?? [nullValue()])),
    octetString(options.nameHash ?? hashes.sha1.nameHash),
    octetString(options.keyHash ?? hashes.sha1.keyHash),
    tlv(TAG.INTEGER, options.serial ?? Buffer.from(leaf.serial, 'hex')),
  );
}

function request(options: { certIds?: Der[]; extensions?: Der[]; version?: Der } = {}): Buffer {
  const list = sequence(...(options.certIds ?? [certId()]).map((id) => sequence(id)));
  return sequence(
    sequence(
      ...(options.version ? [explicit(0, options.version)] : []),
      list,
      ...(options.extensions ? [explicit(2, sequence(...options.extensions))] : []),
    ),
  );
}

const nonceExtension = (nonce: Buffer, wrap = true): Der => sequence(oid(NONCE), octetString(wrap ? octetString(nonce) : nonce));

await t.test('ok/openssl request with a nonce (openssl adds one by default)', async (t) => {
  const parsed = parseOcspRequest(await opensslRequest([]));
  if (!parsed.ok) throw new Error(parsed.reason);
  t.equal(parsed.certId.hashAlgorithm, 'sha1');
  t.equal(parsed.certId.serial, leaf.serial);
  t.same(parsed.certId.issuerNameHash, hashes.sha1.nameHash, 'issuerNameHash = SHA-1 of the intermediate subject');
  t.same(parsed.certId.issuerKeyHash, hashes.sha1.keyHash, 'issuerKeyHash = SHA-1 of the intermediate key bits');
  t.equal(parsed.nonce?.length, 16, 'openssl nonces are 16 octets, wrapped in an OCTET STRING');
  t.equal(parsed.nonce?.extnValue[0], 0x04);
});

await t.test('ok/openssl request without a nonce, SHA-256 CertID', async (t) => {
  const parsed = parseOcspRequest(await opensslRequest(['-no_nonce', '-sha256']));
  if (!parsed.ok) throw new Error(parsed.reason);
  t.equal(parsed.certId.hashAlgorithm, 'sha256');
  t.same(parsed.certId.issuerNameHash, hashes.sha256.nameHash);
  t.same(parsed.certId.issuerKeyHash, hashes.sha256.keyHash);
  t.equal(parsed.nonce, undefined);
});

await t.test('ok/hand-made variants', async (t) => {
  const cases: [string, Buffer, (t: Tap, parsed: ReturnType<typeof parseOcspRequest>) => void][] = [
    ['ok/absent hash parameters', request({ certIds: [certId({ params: [] })] }), (t, p) => t.ok(p.ok)],
    ['ok/explicit version v1', request({ version: integer(0) }), (t, p) => t.ok(p.ok)],
    [
      'ok/leading zero octet in the serial is normalised',
      request({ certIds: [certId({ serial: Buffer.concat([Buffer.from([0]), Buffer.from(leaf.serial, 'hex')]) })] }),
      (t, p) => t.equal(p.ok && p.certId.serial, leaf.serial),
    ],
    ['ok/raw (unwrapped) 8-octet nonce', request({ extensions: [nonceExtension(randomBytes(8), false)] }), (t, p) => t.equal(p.ok && p.nonce?.length, 8)],
    ['ok/32-octet nonce', request({ extensions: [nonceExtension(randomBytes(32))] }), (t, p) => t.equal(p.ok && p.nonce?.length, 32)],
    ['ok/33-octet nonce is parsed; the source decides', request({ extensions: [nonceExtension(randomBytes(33))] }), (t, p) => t.equal(p.ok && p.nonce?.length, 33)],
    ['ok/empty nonce is parsed; the source decides', request({ extensions: [nonceExtension(Buffer.alloc(0))] }), (t, p) => t.equal(p.ok && p.nonce?.length, 0)],
    [
      'ok/unknown non-critical extension is ignored',
      request({ extensions: [sequence(oid('1.3.6.1.5.5.7.48.1.4'), octetString(sequence(oid('1.3.6.1.5.5.7.48.1.1'))))] }),
      (t, p) => t.ok(p.ok),
    ],
  ];
  for (const [name, der, check] of cases) {
    t.test(name, async (t) => check(t, parseOcspRequest(der)));
  }
});

await t.test('fail/malformed and unsupported requests', async (t) => {
  const valid = request();
  const two = request({ certIds: [certId(), certId({ serial: Buffer.from('01', 'hex') })] });
  const cases: [string, Uint8Array, 'malformedRequest' | 'unauthorized'][] = [
    ['fail/empty', Buffer.alloc(0), 'malformedRequest'],
    ['fail/garbage', Buffer.from('hello, this is not DER'), 'malformedRequest'],
    ['fail/truncated DER', valid.subarray(0, valid.length - 5), 'malformedRequest'],
    ['fail/one byte', Buffer.from([0x30]), 'malformedRequest'],
    ['fail/trailing bytes', Buffer.concat([valid, Buffer.from([0])]), 'malformedRequest'],
    ['fail/indefinite length', Buffer.from([0x30, 0x80, 0x00, 0x00]), 'malformedRequest'],
    ['fail/huge declared length', Buffer.from([0x30, 0x84, 0x7f, 0xff, 0xff, 0xff, 0x00]), 'malformedRequest'],
    ['fail/not a SEQUENCE', Buffer.from([0x04, 0x00]), 'malformedRequest'],
    ['fail/two requests (RFC 5019 §2.1.1: only one)', two, 'malformedRequest'],
    ['fail/no request', request({ certIds: [] }), 'malformedRequest'],
    ['fail/SHA-512 CertID', request({ certIds: [certId({ hash: SHA512, nameHash: randomBytes(64), keyHash: randomBytes(64) })] }), 'unauthorized'],
    ['fail/SHA-1 OID with SHA-256-sized hashes', request({ certIds: [certId({ nameHash: randomBytes(32), keyHash: randomBytes(32) })] }), 'malformedRequest'],
    ['fail/SHA-256 OID with SHA-1-sized hashes', request({ certIds: [certId({ hash: SHA256 })] }), 'malformedRequest'],
    ['fail/hash parameters not NULL', request({ certIds: [certId({ params: [integer(1)] })] }), 'malformedRequest'],
    ['fail/empty serial', request({ certIds: [certId({ serial: Buffer.alloc(0) })] }), 'malformedRequest'],
    ['fail/serial of 40 octets', request({ certIds: [certId({ serial: randomBytes(40) })] }), 'malformedRequest'],
    ['fail/version 2', request({ version: integer(1) }), 'malformedRequest'],
    ['fail/two nonces', request({ extensions: [nonceExtension(randomBytes(16)), nonceExtension(randomBytes(16))] }), 'malformedRequest'],
    [
      'fail/unknown critical extension',
      request({ extensions: [sequence(oid('1.2.3.4'), booleanTrue(), octetString(nullValue()))] }),
      'malformedRequest',
    ],
  ];
  for (const [name, der, status] of cases) {
    t.test(name, async (t) => {
      const parsed = parseOcspRequest(der);
      t.equal(parsed.ok, false);
      if (!parsed.ok) {
        t.equal(parsed.status, status);
        t.type(parsed.reason, 'string');
      }
    });
  }
});

await t.test('fail/random bytes never throw', async (t) => {
  const valid = request({ extensions: [nonceExtension(randomBytes(16))] });
  let failures = 0;
  for (let i = 0; i < 2000; i += 1) {
    const mutated = Buffer.from(valid);
    mutated[Math.floor(Math.random() * mutated.length)] = Math.floor(Math.random() * 256);
    const cut = mutated.subarray(0, Math.floor(Math.random() * (mutated.length + 1)));
    const parsed = parseOcspRequest(i % 2 === 0 ? mutated : cut);
    if (!parsed.ok) failures += 1;
  }
  t.ok(failures > 0, 'mutations are refused, not thrown');
});
