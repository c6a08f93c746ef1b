import t from 'tap';
import { systemClock } from '../../../src/core/clock.js';
import { SoftwareKeyStore } from '../../../src/keys/software/software-key-store.js';
import { issuanceSuite } from '../../helpers/issuance-suite.js';
import { MemoryKeyBlobs } from '../../helpers/memory-stores.js';

await issuanceSuite(t, async () => new SoftwareKeyStore({ blobs: new MemoryKeyBlobs(), passphrase: 'test-passphrase-0123456789', clock: systemClock }));
