/**
 * Signer.signMany on SoftHSM (keys/pkcs11/batch-signing-worker.ts): a batch signed on the worker thread
 * verifies with the key's public key (node:crypto, and openssl for one of them); a wrong verification key
 * fails the whole batch and counts as a failed signature; the worker survives a recovery of the token (it
 * is stopped before the library is re-initialized, and the next batch signs with the key's new handle); the
 * store's close ends it.
 */
import { execFileSync } from 'node:child_process';
import { createPublicKey, generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { openPkcs11KeyStore, type Pkcs11KeyStoreOptions } from '../../../src/keys/pkcs11/pkcs11-key-store.js';
import { verifySignature } from '../../helpers/signer-suite.js';
import { createSoftHsmToken } from '../../helpers/softhsm.js';

const token = createSoftHsmToken('chancery-batch');

if (token === undefined) {
  t.skip('SoftHSM is not installed: PKCS#11 batch signing tests skipped (they fail under CI=true)', () => {});
} else {
  t.teardown(() => token.cleanup());
  const options: Pkcs11KeyStoreOptions = { library: token.library, tokenLabel: token.tokenLabel, pin: token.pin };
  const inputs = Array.from({ length: 200 }, (_, i) => Buffer.from(`batch item ${i}: ${'x'.repeat(i)}`));

  t.test('ok/a batch of P-256 and RSA signatures, each verifying with the public key', async (t) => {
    const store = await openPkcs11KeyStore(options);
    t.teardown(() => store.close());
    for (const algorithm of ['ecdsa-p256', 'rsa-2048'] as const) {
      const signer = await store.create(`batch-${algorithm}`, { algorithm });
      const signatures = await signer.signMany(inputs, signer.publicKey);
      t.equal(signatures.length, inputs.length, `${algorithm}: one signature per input`);
      t.ok(
        inputs.every((input, i) => verifySignature(signer.algorithm, signer.publicKey, input, signatures[i]!)),
        `${algorithm}: all ${inputs.length} verify`,
      );
      t.equal(new Set(signatures.map((s) => Buffer.from(s).toString('hex'))).size, inputs.length, `${algorithm}: every signature its own`);
      // An independent verifier: openssl with the SPKI as PEM.
      const dir = mkdtempSync(join(tmpdir(), 'chancery-batch-'));
      try {
        const pem = createPublicKey({ key: Buffer.from(signer.publicKey), format: 'der', type: 'spki' }).export({ type: 'spki', format: 'pem' });
        writeFileSync(join(dir, 'key.pem'), pem);
        writeFileSync(join(dir, 'data'), inputs[7]!);
        writeFileSync(join(dir, 'sig'), signatures[7]!);
        const out = execFileSync('openssl', ['dgst', '-sha256', '-verify', join(dir, 'key.pem'), '-signature', join(dir, 'sig'), join(dir, 'data')], { encoding: 'utf8' });
        t.match(out, /Verified OK/, `${algorithm}: openssl verifies one`);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }
    t.same(await (await store.load('batch-ecdsa-p256'))!.signMany([], (await store.load('batch-ecdsa-p256'))!.publicKey), [], 'an empty batch signs nothing');
  });

  t.test('fail/a key that does not match the verification key fails the whole batch', async (t) => {
    const store = await openPkcs11KeyStore(options);
    t.teardown(() => store.close());
    const signer = await store.create('batch-mismatch', { algorithm: 'ecdsa-p256' });
    const other = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'der' });
    const before = store.health.signFailures;
    await t.rejects(signer.signMany(inputs.slice(0, 5), other), { kind: 'keyStore', message: /batch signing with key "batch-mismatch" failed: signature 0 of the batch failed verification/ });
    t.equal(store.health.signFailures, before + 1, 'counted as a failed signature (the store is probed before it is trusted again)');
    const signatures = await signer.signMany(inputs.slice(0, 5), signer.publicKey);
    t.ok(signatures.every((s, i) => verifySignature(signer.algorithm, signer.publicKey, inputs[i]!, s)), 'the next batch signs again');
  });

  t.test('ok/a recovery re-initializing the library stops the worker first; the next batch signs with the new handle', async (t) => {
    const store = await openPkcs11KeyStore(options);
    t.teardown(() => store.close());
    const signer = await store.create('batch-recovery', { algorithm: 'ecdsa-p256' });
    await signer.signMany(inputs.slice(0, 10), signer.publicKey);
    // recover() tries new sessions first and re-initializes when that fails; both stop the worker. Run it
    // while a batch is in flight: the batch either completes or is rejected, never crashes the process.
    const inFlight = signer.signMany(inputs, signer.publicKey).then(
      (signatures) => signatures.length,
      () => 0,
    );
    await store.health.recover();
    t.ok((await inFlight) === 0 || (await inFlight) === inputs.length, 'the batch in flight ended one way or the other');
    const after = await signer.signMany(inputs.slice(0, 10), signer.publicKey);
    t.ok(after.every((s, i) => verifySignature(signer.algorithm, signer.publicKey, inputs[i]!, s)), 'signing in batches again after the recovery');
  });

  t.test('fail/a closed store signs no batch', async (t) => {
    const store = await openPkcs11KeyStore(options);
    const signer = await store.create('batch-closed', { algorithm: 'ecdsa-p256' });
    await signer.signMany(inputs.slice(0, 3), signer.publicKey);
    await store.close();
    await t.rejects(signer.signMany(inputs.slice(0, 3), signer.publicKey), { kind: 'keyStore', message: /key store is closed/ });
  });
}
