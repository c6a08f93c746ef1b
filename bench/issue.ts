/**
 * npm run bench:issue — leaf certificates built + signed + verified per second by the CA core
 * (LeafCertificateBuilder.prepare + sign: TBS from pre-encoded issuer parts, signature through the
 * Signer, verification with the issuer key), for the software key store and SoftHSM, at concurrency 64.
 * Each certificate has its own serial and names; subscriber keys come from a pre-generated pool so key
 * generation is not what is measured. Bounded by count and time.
 *
 *   BENCH_SECONDS (default 5)  BENCH_MAX (default 50000)  BENCH_CONCURRENCY (default 64)
 */
import { generateKeyPairSync } from 'node:crypto';
import { availableParallelism, cpus } from 'node:os';
import { systemClock } from '../src/core/clock.js';
import type { KeyStore } from '../src/keys/signer.js';
import { openPkcs11KeyStore } from '../src/keys/pkcs11/pkcs11-key-store.js';
import { SoftwareKeyStore } from '../src/keys/software/software-key-store.js';
import { createSoftHsmToken } from '../test/helpers/softhsm.js';
import { MemoryKeyBlobs } from '../test/helpers/memory-stores.js';
import { createTestCa } from '../test/helpers/test-ca.js';
import { DEFAULT_PROFILE } from '../src/core/profile.js';
import { validityWindow } from '../src/policy/validity.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const MAX = Number(process.env.BENCH_MAX ?? 50_000);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 64);

const subscriberKeys = Array.from({ length: 64 }, () =>
  new Uint8Array(generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'der' })),
);

async function run(label: string, keys: KeyStore): Promise<void> {
  const ca = await createTestCa(keys);
  const { builder } = ca;
  let issued = 0;
  let started = 0;
  const deadline = performance.now() + SECONDS * 1000;
  const t0 = performance.now();
  const worker = async (): Promise<void> => {
    while (started < MAX && performance.now() < deadline) {
      const n = started++;
      const prepared = builder.prepare(
        {
          publicKey: subscriberKeys[n % subscriberKeys.length]!,
          keyFamily: 'ec',
          identifiers: [{ type: 'dns', value: `host-${n}.bench.example.internal` }],
          ...validityWindow(DEFAULT_PROFILE, {}, systemClock.now()),
        },
        systemClock.now(),
      );
      await builder.sign(prepared);
      issued += 1;
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  const seconds = (performance.now() - t0) / 1000;
  console.log(`${label.padEnd(28)} concurrency ${CONCURRENCY}: ${issued} certificates in ${seconds.toFixed(2)} s = ${Math.round(issued / seconds)} certificates/s`);
  await keys.close();
}

console.log(`bench:issue — ${cpus()[0]?.model ?? 'cpu'} x${availableParallelism()}, node ${process.version}, UV_THREADPOOL_SIZE=${process.env.UV_THREADPOOL_SIZE ?? '4 (default)'}`);
console.log('intermediate ECDSA P-256 (ecdsa-with-SHA256), subscriber keys ECDSA P-256, one DNS name each');

const token = createSoftHsmToken('chancery-bench-issue');
await run('software (node:crypto)', new SoftwareKeyStore({ blobs: new MemoryKeyBlobs(), passphrase: 'bench-passphrase-0123456789', clock: systemClock }));
if (token) {
  try {
    await run('SoftHSM (PKCS#11)', await openPkcs11KeyStore({ library: token.library, tokenLabel: token.tokenLabel, pin: token.pin, sessions: Number(process.env.CHANCERY_PKCS11_SESSIONS ?? 4) }));
  } finally {
    token.cleanup();
  }
}
