import t from 'tap';
import { systemClock } from '../../../src/core/clock.js';
import type { CaErrorKind } from '../../../src/core/errors.js';
import { expectCaError } from '../../helpers/expect-error.js';
import { SoftwareKeyStore } from '../../../src/keys/software/software-key-store.js';
import { MemoryKeyBlobs } from '../../helpers/memory-stores.js';
import { makeCsr, requireOpenssl } from '../../helpers/openssl.js';
import { createTestCa } from '../../helpers/test-ca.js';

/** Each bad request gets a precise CaError and leaves nothing stored: no serial reserved, no certificate. */
requireOpenssl();
const keys = new SoftwareKeyStore({ blobs: new MemoryKeyBlobs(), passphrase: 'test-passphrase-0123456789', clock: systemClock });
const ca = await createTestCa(keys);

function corruptSignature(der: Buffer): Buffer {
  const copy = Buffer.from(der);
  copy[copy.length - 5] = copy[copy.length - 5]! ^ 0xff; // inside the signature BIT STRING
  return copy;
}

const cases: { name: string; csr: () => Promise<Buffer>; kind: CaErrorKind | CaErrorKind[]; detail: RegExp }[] = [
  {
    name: 'fail/CSR with a bad signature',
    csr: async () => corruptSignature((await makeCsr({ keyType: 'ec-p256', sans: ['DNS:a.example.internal'] })).der),
    kind: 'badCSR',
    detail: /signature is invalid/,
  },
  {
    name: 'fail/RSA CSR with a bad signature',
    csr: async () => corruptSignature((await makeCsr({ keyType: 'rsa-2048', sans: ['DNS:a.example.internal'] })).der),
    kind: 'badCSR',
    detail: /signature is invalid/,
  },
  {
    name: 'fail/RSA key under 2048 bits',
    csr: async () => (await makeCsr({ keyType: 'rsa-1024', sans: ['DNS:a.example.internal'] })).der,
    kind: 'badPublicKey',
    detail: /RSA key of 1024 bits is too small: at least 2048/,
  },
  {
    name: 'fail/CSR asking for CA:TRUE',
    csr: async () =>
      (await makeCsr({ keyType: 'ec-p256', sans: ['DNS:a.example.internal'], extra: ['-addext', 'basicConstraints=critical,CA:TRUE'] })).der,
    kind: 'badCSR',
    detail: /basicConstraints cA=TRUE/,
  },
  {
    name: 'fail/not DER at all',
    csr: async () => Buffer.from('this is not a certificate request'),
    kind: 'badCSR',
    detail: /not a DER PKCS#10/,
  },
  {
    name: 'fail/CSR for an invalid DNS name',
    csr: async () => (await makeCsr({ keyType: 'ec-p256', sans: ['DNS:bad_name.example.internal'] })).der,
    kind: 'rejectedIdentifier',
    detail: /invalid label "bad_name"/,
  },
  {
    name: 'fail/CSR without any name',
    csr: async () => (await makeCsr({ keyType: 'ec-p256' })).der,
    kind: 'malformed',
    detail: /at least one identifier/,
  },
  {
    name: 'fail/Ed25519 subscriber key',
    csr: async () => (await makeCsr({ keyType: 'ed25519', sans: ['DNS:a.example.internal'] })).der,
    kind: ['badCSR', 'badPublicKey'],
    detail: /ed25519 keys are not accepted|could not be checked/,
  },
];

for (const c of cases) {
  await t.test(c.name, async (t) => {
    const csr = await c.csr();
    await expectCaError(t, ca.issuance.issueFromCsr(csr), c.kind, c.detail);
    t.equal(ca.store.serials.size, 0, 'no serial reserved');
    t.equal(ca.store.certificates.size, 0, 'no certificate stored');
  });
}

await t.test('fail/CSR names differ from the expected identifiers', async (t) => {
  const { der } = await makeCsr({ keyType: 'ec-p256', sans: ['DNS:a.example.internal', 'DNS:b.example.internal'] });
  await expectCaError(t, ca.issuance.issueFromCsr(der, { expectedIdentifiers: [{ type: 'dns', value: 'a.example.internal' }] }), 'badCSR', /not in the order: dns:b\.example\.internal/);
  t.equal(ca.store.serials.size, 0);
});

await t.test('fail/the subscriber key is the forbidden (account) key', async (t) => {
  const { der } = await makeCsr({ keyType: 'ec-p256', sans: ['DNS:a.example.internal'] });
  const { parseCsr } = await import('../../../src/ca/csr.js');
  const parsed = await parseCsr(der);
  await expectCaError(t, ca.issuance.issueFromCsr(der, { forbiddenKeys: [parsed.publicKey] }), 'badCSR', /differ from the account key/);
  t.equal(ca.store.serials.size, 0);
});

await t.test('fail/validity longer than the profile allows', async (t) => {
  const { der } = await makeCsr({ keyType: 'ec-p256', sans: ['DNS:a.example.internal'] });
  const now = Date.now();
  await expectCaError(t, ca.issuance.issueFromCsr(der, { notBefore: new Date(now), notAfter: new Date(now + 90 * 86_400_000) }), 'malformed', /exceeds the profile "tls-server" validity of 30 days/);
  t.equal(ca.store.serials.size, 0);
});

t.teardown(() => keys.close());
