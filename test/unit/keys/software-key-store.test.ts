import t from 'tap';
import { systemClock } from '../../../src/core/clock.js';
import { SoftwareKeyStore } from '../../../src/keys/software/software-key-store.js';
import { expectCaError } from '../../helpers/expect-error.js';
import { MemoryKeyBlobs } from '../../helpers/memory-stores.js';
import { signerSuite } from '../../helpers/signer-suite.js';

/** The shared Signer suite against the software KeyStore, plus what is particular to it. */
const blobs = new MemoryKeyBlobs();
const passphrase = 'software-suite-passphrase-0123';
signerSuite(t, 'software', async () => new SoftwareKeyStore({ blobs, passphrase, clock: systemClock }));

t.test('ok/keys are stored encrypted and load in another store instance with the passphrase', async (t) => {
  const store = new SoftwareKeyStore({ blobs, passphrase, clock: systemClock });
  const signer = await store.create('shared-key', { algorithm: 'ecdsa-p256' });
  const blob = blobs.blobs.get('shared-key')!;
  t.notOk(Buffer.from(blob.encryptedPkcs8).includes(Buffer.from('BEGIN')), 'DER, not PEM');
  const other = new SoftwareKeyStore({ blobs, passphrase, clock: systemClock });
  const loaded = await other.load('shared-key');
  t.same(Buffer.from(loaded!.publicKey), Buffer.from(signer.publicKey));
});

t.test('fail/wrong passphrase names the key and not the passphrase', async (t) => {
  const store = new SoftwareKeyStore({ blobs, passphrase: 'a-different-passphrase-9876', clock: systemClock });
  const error = await expectCaError(t, store.load('shared-key'), 'keyStore', /cannot decrypt key "shared-key"/);
  t.notMatch(error?.detail ?? '', /different-passphrase/);
});

t.test('fail/short passphrase is refused', async (t) => {
  t.throws(() => new SoftwareKeyStore({ blobs, passphrase: 'short', clock: systemClock }), { kind: 'badConfig', message: /at least 16 characters/ });
});
