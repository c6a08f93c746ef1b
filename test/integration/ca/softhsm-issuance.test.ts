import t from 'tap';
import { openPkcs11KeyStore } from '../../../src/keys/pkcs11/pkcs11-key-store.js';
import { issuanceSuite } from '../../helpers/issuance-suite.js';
import { createSoftHsmToken } from '../../helpers/softhsm.js';

/** The openssl-judged issuance suite with root, intermediate and every signature made inside SoftHSM. */
const token = createSoftHsmToken('chancery-issuance');
if (!token) {
  t.plan(0, 'SoftHSM is not installed');
} else {
  t.teardown(() => token.cleanup());
  await issuanceSuite(t, () => openPkcs11KeyStore({ library: token.library, tokenLabel: token.tokenLabel, pin: token.pin, sessions: 4 }));
}
