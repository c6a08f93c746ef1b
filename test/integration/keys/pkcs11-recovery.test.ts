import t from 'tap';
import { FakeClock, SECOND } from '../../../src/core/clock.js';
import { isCaError } from '../../../src/core/errors.js';
import { openPkcs11KeyStore, type Pkcs11KeyStore } from '../../../src/keys/pkcs11/pkcs11-key-store.js';
import { SignerHealth } from '../../../src/keys/signer-health.js';
import { CKR_FAULTS, Pkcs11Faults } from '../../helpers/pkcs11-faults.js';
import { verifySignature } from '../../helpers/signer-suite.js';
import { createSoftHsmToken } from '../../helpers/softhsm.js';

/**
 * Losing the HSM is survivable: each CKR_* code SoftHSM (and HSMs generally) answer when a token, its
 * sessions or its key handles go away is injected through a fault-injecting wrapper around the real SoftHSM
 * module (test/helpers/pkcs11-faults.ts). For each: a signature fails with the code; SignerHealth's next check
 * probes without signing, fails, recovers the store (new sessions, keys found again, C_Finalize/C_Initialize
 * when the device needs it) and reports it healthy; the same signer then signs again — no restart, no new
 * store. Device-level codes stay unhealthy (with the code as the reason) until the token is back.
 */
const token = createSoftHsmToken('chancery-recovery');
if (token === undefined) {
  t.plan(0, 'SoftHSM is not installed');
} else {
  t.teardown(() => token.cleanup());
  // Installed before the store opens the library, so every session and call goes through it.
  const faults = Pkcs11Faults.install(token.library);
  const store: Pkcs11KeyStore = await openPkcs11KeyStore({ library: token.library, tokenLabel: token.tokenLabel, pin: token.pin, sessions: 2 });
  t.teardown(async () => {
    faults.disarm();
    await store.close();
    faults.release();
  });
  const clock = new FakeClock();
  const health = new SignerHealth({ health: store.health, clock, cacheMs: 5 * SECOND });
  const data = Buffer.from('tbs stand-in');

  await t.test('ok/healthy: probed once per cache period, never by signing', async (t) => {
    await store.create('cache-key', { algorithm: 'ecdsa-p256' });
    const signs = faults.count('C_Sign');
    const probes = faults.count('C_GetSessionInfo');
    t.same(await health.check(), { ok: true });
    t.same(await health.check(), { ok: true });
    clock.advance(4 * SECOND);
    t.same(await health.check(), { ok: true });
    t.equal(faults.count('C_GetSessionInfo') - probes, 1, 'one probe within the period');
    clock.advance(2 * SECOND);
    await health.check();
    t.equal(faults.count('C_GetSessionInfo') - probes, 2, 'the next period probes again');
    t.equal(faults.count('C_Sign'), signs, 'a probe never signs');
  });

  for (const [code, kind] of Object.entries(CKR_FAULTS)) {
    await t.test(`ok/${code}: the signature fails, the next check recovers the store, the signer signs again`, async (t) => {
      const signer = await store.create(`key-${code.toLowerCase().slice(4, 30)}`, { algorithm: 'ecdsa-p256' });
      t.ok(verifySignature(signer.algorithm, signer.publicKey, data, await signer.sign(data)), 'signs before');
      clock.advance(10 * SECOND);
      t.same(await health.check(), { ok: true });
      const finalizes = faults.count('C_Finalize');

      faults.arm(code);
      const failed = await signer.sign(data).then(
        () => undefined,
        (error: unknown) => error,
      );
      t.ok(isCaError(failed, 'keyStore'), 'a keyStore error');
      t.match((failed as Error).message, code, 'naming the code');

      // No clock advance: the failed signature makes the next check probe at once.
      const after = await health.check();
      if (kind === 'device') {
        t.equal(after.ok, false, 'the device is still away: unavailable');
        t.match(after.reason, new RegExp(`${code}|not present`), `reason: ${after.reason}`);
        t.equal(isCaError(await signer.sign(data).catch((e: unknown) => e), 'keyStore'), true, 'still cannot sign');
        clock.advance(1 * SECOND);
        t.same(await health.check(), after, 'cached within the period');

        faults.restore();
        clock.advance(5 * SECOND);
        t.same(await health.check(), { ok: true }, 'back once the token is');
        t.ok(faults.count('C_Finalize') > finalizes, 'the library was finalized and initialized again');
      } else {
        t.same(after, { ok: true }, 'recovered in the same check');
        t.equal(faults.count('C_Finalize'), finalizes, `no C_Finalize needed for ${kind}`);
      }
      // The dropped sessions stay dead (the fault keeps failing them); the store no longer uses them.
      if (kind !== 'sessions') t.notOk(faults.armed, 'the fault was cleared by what recovery did');
      const signature = await signer.sign(data);
      t.ok(verifySignature(signer.algorithm, signer.publicKey, data, signature), 'the same signer signs again');
      t.equal(store.stats().sessions, 2, 'a full pool again');
      faults.disarm();
    });
  }

  await t.test('ok/every loaded key is found again after a re-initialize', async (t) => {
    const a = await store.create('reload-a', { algorithm: 'ecdsa-p256' });
    const b = await store.create('reload-b', { algorithm: 'rsa-2048' });
    const loaded = await store.load('reload-a');
    faults.arm('CKR_DEVICE_REMOVED');
    faults.restore();
    await a.sign(data).catch(() => undefined);
    t.same(await health.check(), { ok: true });
    for (const signer of [a, b, loaded!]) {
      t.ok(verifySignature(signer.algorithm, signer.publicKey, data, await signer.sign(data)), `${signer.name} signs`);
    }
  });
}
