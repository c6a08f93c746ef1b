import { constants, createPublicKey, randomBytes, verify, type KeyObject } from 'node:crypto';
import type { Test } from 'tap';
import { isCaError } from '../../src/core/errors.js';
import type { KeyAlgorithm, RsaScheme, SignatureAlgorithm } from '../../src/core/key-algorithm.js';
import { ecdsaDerToRaw, ecdsaRawToDer } from '../../src/keys/signature-format.js';
import type { KeySpec, KeyStore, Signer } from '../../src/keys/signer.js';

interface SuiteCase {
  label: string;
  spec: KeySpec;
  algorithm: SignatureAlgorithm;
  /** Full create -> sign -> verify -> load -> conflict cycle; false = one create + sign (slow RSA keygen). */
  full: boolean;
}

const CASES: readonly SuiteCase[] = [
  { label: 'ecdsa-p256', spec: { algorithm: 'ecdsa-p256' }, algorithm: 'ecdsa-with-SHA256', full: true },
  { label: 'ecdsa-p384', spec: { algorithm: 'ecdsa-p384' }, algorithm: 'ecdsa-with-SHA384', full: true },
  { label: 'rsa-2048-pkcs1', spec: { algorithm: 'rsa-2048', rsaScheme: 'pkcs1' }, algorithm: 'sha256WithRSAEncryption', full: true },
  { label: 'rsa-2048-pss', spec: { algorithm: 'rsa-2048', rsaScheme: 'pss' }, algorithm: 'rsassa-pss-sha256', full: true },
  { label: 'rsa-3072', spec: { algorithm: 'rsa-3072' }, algorithm: 'sha256WithRSAEncryption', full: false },
  { label: 'rsa-4096', spec: { algorithm: 'rsa-4096' }, algorithm: 'sha256WithRSAEncryption', full: false },
];

/**
 * The one Signer suite every KeyStore backend must pass (DESIGN.md, Testing). Signatures are checked by
 * node:crypto against the SPKI the signer reports, never by the backend itself.
 */
export function signerSuite(t: Test, name: string, openStore: () => Promise<KeyStore>): void {
  t.test(`${name}: shared Signer suite`, async (t) => {
    const store = await openStore();
    t.teardown(() => store.close());
    // Unique per run, so a backend that persists keys (a reused token, a database) can run the suite again.
    const run = randomBytes(4).toString('hex');
    const keyName = (label: string): string => `suite-${label}-${run}`;
    const message = Buffer.from('Chancery signer suite: stand-in for a DER TBSCertificate');
    const tampered = Buffer.from(message);
    tampered[tampered.length - 1]! ^= 0x01;
    const signers = new Map<string, Signer>();

    for (const c of CASES) {
      t.test(`ok/${c.label}/create-sign-verify`, async (t) => {
        const signer = await store.create(keyName(c.label), c.spec);
        signers.set(c.label, signer);
        t.equal(signer.name, keyName(c.label));
        t.equal(signer.keyAlgorithm, c.spec.algorithm);
        t.equal(signer.algorithm, c.algorithm);
        checkSpki(t, signer.publicKey, c.spec.algorithm);

        const signature = await signer.sign(message);
        t.ok(signature instanceof Uint8Array, 'signature is bytes');
        t.ok(verifySignature(signer.algorithm, signer.publicKey, message, signature), 'signature verifies');
        t.notOk(verifySignature(signer.algorithm, signer.publicKey, tampered, signature), 'tampered message fails');
        await checkEncoding(t, signer, signature, message);
      });
      if (!c.full) continue;

      t.test(`ok/${c.label}/load`, async (t) => {
        const created = signers.get(c.label);
        if (created === undefined) return t.fail('create failed, nothing to load');
        const loaded = await store.load(keyName(c.label), { rsaScheme: c.spec.rsaScheme });
        if (loaded === undefined) return t.fail('load returned undefined');
        t.equal(loaded.name, created.name);
        t.equal(loaded.keyAlgorithm, created.keyAlgorithm);
        t.equal(loaded.algorithm, created.algorithm);
        t.same(Buffer.from(loaded.publicKey), Buffer.from(created.publicKey), 'same SPKI');
        const signature = await loaded.sign(message);
        t.ok(verifySignature(created.algorithm, created.publicKey, message, signature), 'loaded signer verifies');
        t.notOk(verifySignature(created.algorithm, created.publicKey, tampered, signature), 'tampered message fails');
      });

      t.test(`fail/${c.label}/create-existing`, async (t) => {
        await rejectsWithKind(t, store.create(keyName(c.label), c.spec), 'conflict');
      });
    }

    t.test('ok/rsa-2048/load-with-other-scheme', async (t) => {
      // The scheme is a property of the signer, not the key: the pkcs1 key can be loaded for PSS.
      const created = signers.get('rsa-2048-pkcs1');
      if (created === undefined) return t.fail('create failed');
      const pss = await store.load(created.name, { rsaScheme: 'pss' });
      if (pss === undefined) return t.fail('load returned undefined');
      t.equal(pss.algorithm, 'rsassa-pss-sha256');
      const signature = await pss.sign(message);
      t.ok(verifySignature('rsassa-pss-sha256', created.publicKey, message, signature), 'PSS signature verifies');
    });

    t.test('ok/ecdsa-p256/empty-and-large-input', async (t) => {
      const signer = signers.get('ecdsa-p256');
      if (signer === undefined) return t.fail('create failed');
      for (const input of [new Uint8Array(0), randomBytes(1 << 20)]) {
        const signature = await signer.sign(input);
        t.ok(verifySignature(signer.algorithm, signer.publicKey, input, signature), `${input.length} bytes verify`);
      }
    });

    t.test('ok/ecdsa-p256/64-concurrent-signs', async (t) => {
      const signer = signers.get('ecdsa-p256');
      if (signer === undefined) return t.fail('create failed');
      const inputs = Array.from({ length: 64 }, (_, i) => Buffer.from(`concurrent message ${i}`));
      const signatures = await Promise.all(inputs.map((input) => signer.sign(input)));
      const bad = inputs.filter((input, i) => !verifySignature(signer.algorithm, signer.publicKey, input, signatures[i]!));
      t.equal(bad.length, 0, 'all 64 signatures verify against their own message');
      // A signature must belong to its own message: catches buffers shared between concurrent operations.
      t.notOk(verifySignature(signer.algorithm, signer.publicKey, inputs[1]!, signatures[0]!), 'no cross-talk');
    });

    t.test('fail/load-unknown', async (t) => {
      t.equal(await store.load(keyName('never-created')), undefined);
    });
  });
}

export function verifySignature(
  algorithm: SignatureAlgorithm,
  spki: Uint8Array,
  data: Uint8Array,
  signature: Uint8Array,
): boolean {
  const key = spkiKey(spki);
  switch (algorithm) {
    case 'ecdsa-with-SHA256':
      return verify('sha256', data, { key, dsaEncoding: 'der' }, signature);
    case 'ecdsa-with-SHA384':
      return verify('sha384', data, { key, dsaEncoding: 'der' }, signature);
    case 'sha256WithRSAEncryption':
      return verify('sha256', data, { key, padding: constants.RSA_PKCS1_PADDING }, signature);
    case 'rsassa-pss-sha256':
      return verify('sha256', data, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 }, signature);
  }
}

function spkiKey(spki: Uint8Array): KeyObject {
  return createPublicKey({ key: Buffer.from(spki), format: 'der', type: 'spki' });
}

function checkSpki(t: Test, spki: Uint8Array, algorithm: KeyAlgorithm): void {
  const key = spkiKey(spki);
  const details = key.asymmetricKeyDetails ?? {};
  if (algorithm === 'ecdsa-p256' || algorithm === 'ecdsa-p384') {
    t.equal(key.asymmetricKeyType, 'ec');
    t.equal(details.namedCurve, algorithm === 'ecdsa-p256' ? 'prime256v1' : 'secp384r1');
  } else {
    t.equal(key.asymmetricKeyType, 'rsa', 'rsaEncryption SPKI');
    t.equal(details.modulusLength, Number(algorithm.slice(4)));
    t.equal(details.publicExponent, 65537n);
  }
}

/** Checks the wire form X.509 needs, beyond "node:crypto accepts it". */
async function checkEncoding(t: Test, signer: Signer, signature: Uint8Array, message: Uint8Array): Promise<void> {
  const scheme: RsaScheme | undefined =
    signer.algorithm === 'rsassa-pss-sha256' ? 'pss' : signer.algorithm === 'sha256WithRSAEncryption' ? 'pkcs1' : undefined;
  if (scheme === undefined) {
    // RFC 3279 §2.2.3 Ecdsa-Sig-Value in canonical DER: raw -> DER round-trips to the same bytes.
    const size = signer.algorithm === 'ecdsa-with-SHA384' ? 48 : 32;
    t.same(Buffer.from(ecdsaRawToDer(ecdsaDerToRaw(signature, size))), Buffer.from(signature), 'minimal DER');
    return;
  }
  const modulusBytes = Number(signer.keyAlgorithm.slice(4)) / 8;
  t.equal(signature.length, modulusBytes, 'RSA signature is modulus-sized');
  const again = await signer.sign(message);
  if (scheme === 'pkcs1') {
    // RSASSA-PKCS1-v1_5 is deterministic (RFC 8017 §8.2.1): same key and message give the same bytes.
    t.same(Buffer.from(again), Buffer.from(signature), 'PKCS#1 v1.5 is deterministic');
    t.notOk(verifySignature('rsassa-pss-sha256', signer.publicKey, message, signature), 'not a PSS signature');
  } else {
    // RSASSA-PSS has a random salt (RFC 8017 §9.1.1 step 4): signing twice differs, and both verify.
    t.notSame(Buffer.from(again), Buffer.from(signature), 'PSS is randomized');
    t.ok(verifySignature('rsassa-pss-sha256', signer.publicKey, message, again), 'second PSS signature verifies');
    t.notOk(verifySignature('sha256WithRSAEncryption', signer.publicKey, message, signature), 'not a PKCS#1 v1.5 signature');
  }
}

async function rejectsWithKind(t: Test, promise: Promise<unknown>, kind: 'conflict'): Promise<void> {
  try {
    await promise;
    t.fail(`expected CaError('${kind}')`);
  } catch (error) {
    t.ok(isCaError(error, kind), `CaError kind ${kind}`);
  }
}
