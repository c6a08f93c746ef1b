import { inspect } from 'node:util';
import { Module, ObjectClass, UserType, SessionFlag } from 'graphene-pk11';
import t from 'tap';
import { type CaError, isCaError } from '../../../src/core/errors.js';
import { openPkcs11KeyStore, type Pkcs11KeyStoreOptions } from '../../../src/keys/pkcs11/pkcs11-key-store.js';
import { signerSuite, verifySignature } from '../../helpers/signer-suite.js';
import { createSoftHsmToken } from '../../helpers/softhsm.js';

// One token for the whole file: SoftHSM reads SOFTHSM2_CONF once per C_Initialize, so the token must exist
// before the first store opens the library.
const token = createSoftHsmToken('chancery-it');

if (token === undefined) {
  t.skip('SoftHSM is not installed: PKCS#11 key store tests skipped (they fail under CI=true)', () => {});
} else {
  t.teardown(() => token.cleanup());
  const options: Pkcs11KeyStoreOptions = { library: token.library, tokenLabel: token.tokenLabel, pin: token.pin };

  signerSuite(t, 'softhsm', () => openPkcs11KeyStore({ ...options, sessions: 4 }));

  t.test('ok/pool-of-4/64-concurrent-signs-overlap', async (t) => {
    const store = await openPkcs11KeyStore({ ...options, sessions: 4 });
    t.teardown(() => store.close());
    const signer = await store.create('overlap-p256', { algorithm: 'ecdsa-p256' });
    const inputs = Array.from({ length: 64 }, (_, i) => Buffer.from(`overlap ${i}`));
    // Without CKF_OS_LOCKING_OK, or with two operations on one session, this is where SoftHSM crashes the
    // process or answers CKR_OPERATION_ACTIVE.
    const signatures = await Promise.all(inputs.map((input) => signer.sign(input)));
    t.ok(
      inputs.every((input, i) => verifySignature(signer.algorithm, signer.publicKey, input, signatures[i]!)),
      'all 64 verify',
    );
    const stats = store.stats();
    t.equal(stats.sessions, 4);
    t.ok(stats.maxInFlight > 1, `signs overlapped (maxInFlight ${stats.maxInFlight})`);
    t.ok(stats.maxInFlight <= 4, 'never more operations than sessions');
    t.equal(stats.inFlight, 0);
    t.equal(stats.queued, 0);
  });

  t.test('ok/private-key-is-not-extractable', async (t) => {
    const store = await openPkcs11KeyStore(options);
    t.teardown(() => store.close());
    try {
      await store.create('guarded-p256', { algorithm: 'ecdsa-p256' });
      await store.create('guarded-rsa', { algorithm: 'rsa-2048' });
      for (const name of ['guarded-p256', 'guarded-rsa']) {
        t.match(
          await store.describeKey(name),
          { token: true, private: true, sensitive: true, alwaysSensitive: true, extractable: false, neverExtractable: true, sign: true },
          `${name} attributes`,
        );
      }
      t.equal(await store.describeKey('no-such-key'), undefined);
    } finally {
      await store.close();
    }

    // Independent check through graphene, with the store closed (and the library finalized): ask the token for
    // the private value itself. PKCS#11 Base v2.40 §5.7 C_GetAttributeValue: sensitive or unextractable
    // attributes answer CKR_ATTRIBUTE_SENSITIVE.
    const module = Module.load(token.library, 'SoftHSM');
    module.initialize({ flags: 2 });
    try {
      const slots = module.getSlots(true);
      let slot;
      for (let i = 0; i < slots.length; i += 1) {
        if (slots.items(i).getToken().label === token.tokenLabel) slot = slots.items(i);
      }
      if (slot === undefined) return t.fail('token not found');
      const session = slot.open(SessionFlag.SERIAL_SESSION);
      session.login(token.pin, UserType.USER);
      for (const [name, secret] of [
        ['guarded-p256', 'value'],
        ['guarded-rsa', 'privateExponent'],
      ] as const) {
        const keys = session.find({ class: ObjectClass.PRIVATE_KEY, label: name });
        t.equal(keys.length, 1, `${name} found`);
        t.throws(() => keys.items(0).getAttribute({ [secret]: null }), /CKR_ATTRIBUTE_SENSITIVE/, `${name} ${secret} unreadable`);
      }
      session.logout();
      session.close();
    } finally {
      module.finalize();
    }
  });

  t.test('fail/unknown-token-label', async (t) => {
    const error = await openPkcs11KeyStore({ ...options, tokenLabel: 'no-such-token' }).then(
      () => undefined,
      (e: unknown) => e,
    );
    t.ok(isCaError(error, 'keyStore'), 'CaError keyStore');
    t.match((error as CaError).message, /"no-such-token"/, 'message names the label');
    t.match((error as CaError).message, new RegExp(token.tokenLabel), 'and lists the tokens that exist');
  });

  t.test('fail/wrong-pin', async (t) => {
    const wrongPin = token.pin === '11111111' ? '22222222' : '11111111';
    const error = await openPkcs11KeyStore({ ...options, pin: wrongPin }).then(
      () => undefined,
      (e: unknown) => e,
    );
    t.ok(isCaError(error, 'keyStore'), 'CaError keyStore');
    const text = `${(error as Error).message}\n${(error as Error).stack}\n${inspect(error, { depth: 10 })}`;
    t.match(text, /PKCS#11 login failed/);
    t.match(text, /CKR_PIN_INCORRECT/);
    t.notOk(text.includes(wrongPin), 'the PIN that was tried is nowhere in the error');
    t.notOk(text.includes(token.pin), 'nor the real PIN');

    // A failed login must leave nothing behind: the right PIN opens the token afterwards.
    const store = await openPkcs11KeyStore(options);
    await store.close();
  });

  t.test('fail/second-store-on-same-token', async (t) => {
    const first = await openPkcs11KeyStore(options);
    t.teardown(() => first.close());
    const error = await openPkcs11KeyStore(options).then(
      () => undefined,
      (e: unknown) => e,
    );
    t.ok(isCaError(error, 'keyStore'), 'refused: login state is shared per application and token');
    t.match((error as Error).message, /already open in this process/);
  });

  t.test('fail/closed-store', async (t) => {
    const store = await openPkcs11KeyStore(options);
    t.teardown(() => store.close()); // idempotent; frees the token even if an assertion below throws
    const signer = await store.create('closing-p256', { algorithm: 'ecdsa-p256' });
    // In-flight work finishes; work after close is refused.
    const pending = Promise.all(Array.from({ length: 16 }, (_, i) => signer.sign(Buffer.from([i]))));
    const closed = store.close();
    t.equal((await pending).length, 16, 'signs already queued complete');
    await closed;
    const error = await signer.sign(Buffer.from('late')).then(
      () => undefined,
      (e: unknown) => e,
    );
    t.ok(isCaError(error, 'keyStore'), 'sign after close is a keyStore error');
  });

  t.test('fail/bad-options', async (t) => {
    for (const sessions of [0, -1, 1.5, 1000]) {
      const error = await openPkcs11KeyStore({ ...options, sessions }).then(
        () => undefined,
        (e: unknown) => e,
      );
      t.ok(isCaError(error, 'badConfig'), `sessions ${sessions} rejected`);
    }
    const error = await openPkcs11KeyStore({ ...options, library: '/nonexistent/libpkcs11.so' }).then(
      () => undefined,
      (e: unknown) => e,
    );
    t.ok(isCaError(error, 'keyStore'), 'missing library is a keyStore error');
    t.match((error as Error).message, /\/nonexistent\/libpkcs11\.so/);
  });
}
