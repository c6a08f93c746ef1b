import t from 'tap';
import { createPublicKey } from 'node:crypto';
import { parseCsr } from '../../../src/ca/csr.js';
import { expectCaError } from '../../helpers/expect-error.js';
import { makeCsr, requireOpenssl } from '../../helpers/openssl.js';

/** The hand-written PKCS#10 reader against requests made by openssl, the independent encoder. */
requireOpenssl();

function corruptSignature(der: Buffer): Buffer {
  const copy = Buffer.from(der);
  copy[copy.length - 5] = copy[copy.length - 5]! ^ 0xff; // inside the signature BIT STRING
  return copy;
}

await t.test('reads the names and key of EC, RSA and RSA-PSS requests', async (t) => {
  const requests = [
    { what: 'P-256 / ecdsa-with-SHA256', csr: await makeCsr({ keyType: 'ec-p256', subject: '/CN=Web.Example.Internal', sans: ['DNS:web.example.internal', 'DNS:API.example.internal', 'IP:10.0.0.7', 'IP:2001:db8::1'] }) },
    { what: 'P-384 / ecdsa-with-SHA384', csr: await makeCsr({ keyType: 'ec-p384', subject: '/CN=Web.Example.Internal', sans: ['DNS:web.example.internal', 'DNS:API.example.internal', 'IP:10.0.0.7', 'IP:2001:db8::1'], extra: ['-sha384'] }) },
    { what: 'RSA-2048 / sha256WithRSAEncryption', csr: await makeCsr({ keyType: 'rsa-2048', subject: '/CN=Web.Example.Internal', sans: ['DNS:web.example.internal', 'DNS:API.example.internal', 'IP:10.0.0.7', 'IP:2001:db8::1'] }) },
    {
      what: 'RSA-2048 / RSASSA-PSS SHA-256',
      csr: await makeCsr({
        keyType: 'rsa-2048',
        subject: '/CN=Web.Example.Internal',
        sans: ['DNS:web.example.internal', 'DNS:API.example.internal', 'IP:10.0.0.7', 'IP:2001:db8::1'],
        extra: ['-sigopt', 'rsa_padding_mode:pss', '-sigopt', 'rsa_pss_saltlen:32'],
      }),
    },
  ];
  for (const { what, csr } of requests) {
    const parsed = await parseCsr(csr.der);
    t.same(
      parsed.identifiers,
      [
        { type: 'dns', value: 'web.example.internal' },
        { type: 'dns', value: 'api.example.internal' },
        { type: 'ip', value: '10.0.0.7' },
        { type: 'ip', value: '2001:db8::1' },
      ],
      `${what}: SAN entries lower-cased in order, the CN already among them not repeated`,
    );
    const expected = createPublicKey(csr.keyPem).export({ type: 'spki', format: 'der' });
    t.ok(parsed.publicKey.equals(expected), `${what}: the SubjectPublicKeyInfo is the request's key`);
    t.ok(parsed.key.equals(createPublicKey(csr.keyPem)), `${what}: the imported key is that key`);
  }
});

await t.test('a CN not among the SANs is added after them; a CN-only request names the CN', async (t) => {
  const both = await parseCsr((await makeCsr({ keyType: 'ec-p256', subject: '/O=Acme/CN=Only.Example.Internal', sans: ['DNS:a.example.internal'] })).der);
  t.same(both.identifiers, [
    { type: 'dns', value: 'a.example.internal' },
    { type: 'dns', value: 'only.example.internal' },
  ]);
  const cnOnly = await parseCsr((await makeCsr({ keyType: 'ec-p256', subject: '/CN=192.0.2.9' })).der);
  t.same(cnOnly.identifiers, [{ type: 'ip', value: '192.0.2.9' }], 'an address in the CN is an ip identifier');
  const none = await parseCsr((await makeCsr({ keyType: 'ec-p256' })).der);
  t.same(none.identifiers, [], 'no names at all: nothing (the identifier policy refuses it)');
});

await t.test('bad requests are badCSR with the reason', async (t) => {
  const ec = (await makeCsr({ keyType: 'ec-p256', sans: ['DNS:a.example.internal'] })).der;
  const pss = (await makeCsr({ keyType: 'rsa-2048', sans: ['DNS:a.example.internal'], extra: ['-sigopt', 'rsa_padding_mode:pss'] })).der;
  await expectCaError(t, parseCsr(corruptSignature(ec)), 'badCSR', /signature is invalid/);
  await expectCaError(t, parseCsr(corruptSignature(pss)), 'badCSR', /signature is invalid/);
  await expectCaError(t, parseCsr(Buffer.concat([ec, Buffer.from([0])])), 'badCSR', /not a DER PKCS#10/);
  await expectCaError(t, parseCsr(ec.subarray(0, ec.length - 1)), 'badCSR', /not a DER PKCS#10/);
  await expectCaError(t, parseCsr(Buffer.alloc(0)), 'badCSR', /not a DER PKCS#10/);
  // BER's indefinite length is not DER.
  const indefinite = Buffer.from([0x30, 0x80, ...ec.subarray(2), 0, 0]);
  await expectCaError(t, parseCsr(indefinite), 'badCSR', /not a DER PKCS#10/);
  const sha1 = (await makeCsr({ keyType: 'ec-p256', sans: ['DNS:a.example.internal'], extra: ['-sha1'] })).der;
  await expectCaError(t, parseCsr(sha1), 'badCSR', /unsupported key or signature algorithm \(1\.2\.840\.10045\.4\.1\)/);
  const email = (await makeCsr({ keyType: 'ec-p256', sans: ['DNS:a.example.internal', 'email:ops@example.internal'] })).der;
  await expectCaError(t, parseCsr(email), 'badCSR', /unsupported name type \[1\]/);
  const ca = (await makeCsr({ keyType: 'ec-p256', sans: ['DNS:a.example.internal'], extra: ['-addext', 'basicConstraints=critical,CA:TRUE'] })).der;
  await expectCaError(t, parseCsr(ca), 'badCSR', /basicConstraints cA=TRUE/);
  // An AlgorithmIdentifier the DER reader cannot read (a 5-octet length) is the client's error, not ours.
  const algorithmId = Buffer.from('300a06082a8648ce3d040302', 'hex'); // ecdsa-with-SHA256
  const badAlgorithm = Buffer.from(ec);
  badAlgorithm[badAlgorithm.lastIndexOf(algorithmId) + 3] = 0x85;
  await expectCaError(t, parseCsr(badAlgorithm), 'badCSR', /signatureAlgorithm is malformed/);
  // A P-256 point moved off the curve is refused when the key is imported, before any signature check.
  const p256 = await makeCsr({ keyType: 'ec-p256', sans: ['DNS:a.example.internal'] });
  const point = createPublicKey(p256.keyPem).export({ format: 'der', type: 'spki' }).subarray(-65);
  const offCurve = Buffer.from(p256.der);
  const at = offCurve.indexOf(point);
  offCurve[at + 64] = offCurve[at + 64]! ^ 0x01;
  await expectCaError(t, parseCsr(offCurve), 'badCSR', /could not be checked/);
  const notCa = (await makeCsr({ keyType: 'ec-p256', sans: ['DNS:a.example.internal'], extra: ['-addext', 'basicConstraints=critical,CA:FALSE'] })).der;
  t.same((await parseCsr(notCa)).identifiers, [{ type: 'dns', value: 'a.example.internal' }], 'CA:FALSE is fine');
});
