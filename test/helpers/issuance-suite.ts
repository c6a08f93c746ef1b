import type { Test } from 'tap';
import type { KeyStore } from '../../src/keys/signer.js';
import { certificateText, makeCsr, openssl, requireOpenssl, writeTemp } from './openssl.js';
import { createTestCa, TEST_PUBLIC_URL } from './test-ca.js';
import { toPem } from '../../src/core/pem.js';

/**
 * Leaf issuance judged by openssl: the chain verifies from root.pem through chain.pem, and x509 -text
 * shows the SAN, EKU, AIA and CRL DP the CA was configured with. Shared by the software and SoftHSM runs.
 */
export async function issuanceSuite(t: Test, openStore: () => Promise<KeyStore>): Promise<void> {
  requireOpenssl();
  const keys = await openStore();
  t.teardown(() => keys.close());
  const ca = await createTestCa(keys);

  await t.test('ok/leaf from a CSR verifies and shows SAN, EKU, AIA, CRL DP', async (t) => {
    const csr = await makeCsr({ keyType: 'ec-p256', subject: '/CN=web.example.internal', sans: ['DNS:web.example.internal', 'DNS:api.example.internal', 'IP:10.0.0.7', 'IP:2001:db8::1'] });
    const cert = await ca.issuance.issueFromCsr(csr.der);
    const leaf = await writeTemp('leaf.pem', toPem(cert.der));
    const verify = await openssl(['verify', '-CAfile', ca.rootPemPath, '-untrusted', ca.chainPemPath, leaf]);
    t.equal(verify.code, 0, `openssl verify: ${verify.stdout}${verify.stderr}`);
    t.match(verify.stdout, /: OK/);

    const text = await certificateText(cert.der);
    t.match(text, /DNS:web\.example\.internal, DNS:api\.example\.internal, IP Address:10\.0\.0\.7, IP Address:2001:DB8:0:0:0:0:0:1/);
    t.match(text, /X509v3 Extended Key Usage:\s*\n\s*TLS Web Server Authentication\s*\n/);
    t.match(text, new RegExp(`OCSP - URI:${TEST_PUBLIC_URL}/ocsp`));
    t.match(text, new RegExp(`CA Issuers - URI:${TEST_PUBLIC_URL}/ca/${ca.intermediate.id}\\.der`));
    t.match(text, new RegExp(`X509v3 CRL Distribution Points:\\s*\\n\\s*Full Name:\\s*\\n\\s*URI:${TEST_PUBLIC_URL}/crl/${ca.intermediate.id}/0\\.crl`));
    t.match(text, /X509v3 Basic Constraints: critical\s*\n\s*CA:FALSE/);
    t.match(text, /X509v3 Key Usage: critical\s*\n\s*Digital Signature\n/);
    t.match(text, /Subject: CN\s*=\s*web\.example\.internal/);
    t.match(text, /X509v3 Subject Key Identifier/);
    t.match(text, /X509v3 Authority Key Identifier/);
    t.ok(ca.store.certificates.has(cert.serial), 'stored after signing');
    t.ok(cert.serial.length >= 16, 'serial has at least 64 bits');
    t.equal(cert.notAfter.getTime() - cert.notBefore.getTime(), 30 * 86_400_000 - 1000, 'default 30-day validity, inclusive');
  });

  await t.test('ok/RSA subscriber key gets keyEncipherment too', async (t) => {
    const csr = await makeCsr({ keyType: 'rsa-2048', sans: ['DNS:rsa.example.internal'] });
    const cert = await ca.issuance.issueFromCsr(csr.der);
    t.match(await certificateText(cert.der), /Key Usage: critical\s*\n\s*Digital Signature, Key Encipherment/);
  });

  await t.test('ok/a name longer than 64 characters gives an empty subject and a critical SAN', async (t) => {
    const long = `${'a'.repeat(60)}.example.internal`;
    const csr = await makeCsr({ keyType: 'ec-p256', sans: [`DNS:${long}`] });
    const cert = await ca.issuance.issueFromCsr(csr.der);
    const text = await certificateText(cert.der);
    t.match(text, /Subject: \n|Subject:\s*$/m);
    t.match(text, /X509v3 Subject Alternative Name: critical/);
    const leaf = await writeTemp('leaf.pem', toPem(cert.der));
    t.equal((await openssl(['verify', '-CAfile', ca.rootPemPath, '-untrusted', ca.chainPemPath, leaf])).code, 0);
  });

  await t.test('ok/root and intermediate are what openssl expects of a CA', async (t) => {
    const root = await certificateText(ca.root.der);
    t.match(root, /CA:TRUE/);
    t.match(root, /Certificate Sign, CRL Sign/);
    const intermediate = await certificateText(ca.intermediate.der);
    t.match(intermediate, /CA:TRUE, pathlen:0/);
    t.match(intermediate, new RegExp(`URI:${TEST_PUBLIC_URL}/crl/root\\.crl`));
    const chain = await openssl(['verify', '-CAfile', ca.rootPemPath, ca.chainPemPath]);
    t.equal(chain.code, 0, chain.stderr);
  });
}
