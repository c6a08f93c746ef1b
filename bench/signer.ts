/**
 * Signer throughput: `npm run bench:signer` (node --import tsx bench/signer.ts).
 *
 *   UV_THREADPOOL_SIZE=8 npm run bench:signer -- --seconds 3 --ops 100000 --sessions 4 \
 *     --backends software,softhsm --algs ecdsa-p256,ecdsa-p384,rsa-2048 --concurrency 1,64
 *
 * Each (backend, algorithm, concurrency) cell runs until `--seconds` pass or `--ops` signatures complete,
 * whichever comes first, signing a 1 KiB input (about a TBSCertificate). Async signing runs on the libuv
 * threadpool, whose size is fixed when the process starts: set UV_THREADPOOL_SIZE in the environment, not here.
 * The event-loop delay p99 shows whether signing stalls the loop; CPU per signature (all threads of this
 * process) stays meaningful when other jobs share the machine and wall-clock rates swing. Figures only, no
 * assertions (DESIGN.md, Testing).
 */
import { randomBytes } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { systemClock } from '../src/core/clock.js';
import { CaError } from '../src/core/errors.js';
import { isKeyAlgorithm } from '../src/core/key-algorithm.js';
import { openPkcs11KeyStore, Pkcs11KeyStore } from '../src/keys/pkcs11/pkcs11-key-store.js';
import type { KeyBlob, KeyBlobStore } from '../src/keys/software/key-blob-store.js';
import { SoftwareKeyStore } from '../src/keys/software/software-key-store.js';
import type { KeyStore, Signer } from '../src/keys/signer.js';
import { createSoftHsmToken, type SoftHsmToken } from '../test/helpers/softhsm.js';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '3' },
    ops: { type: 'string', default: '100000' },
    sessions: { type: 'string', default: '4' },
    backends: { type: 'string', default: 'software,softhsm' },
    algs: { type: 'string', default: 'ecdsa-p256,ecdsa-p384,rsa-2048' },
    concurrency: { type: 'string', default: '1,64' },
  },
});

const seconds = Number(values.seconds);
const maxOps = Number(values.ops);
const sessions = Number(values.sessions);
const concurrencies = values.concurrency.split(',').map(Number);
const algorithms = values.algs.split(',').map((alg) => {
  if (!isKeyAlgorithm(alg)) throw new Error(`unknown algorithm ${alg}`);
  return alg;
});
const backends = values.backends.split(',');

class MemoryKeyBlobs implements KeyBlobStore {
  readonly #blobs = new Map<string, KeyBlob>();
  async getKeyBlob(name: string): Promise<KeyBlob | undefined> {
    return this.#blobs.get(name);
  }
  async putKeyBlob(blob: KeyBlob): Promise<void> {
    if (this.#blobs.has(blob.name)) throw new CaError('conflict', `key blob ${blob.name} exists`);
    this.#blobs.set(blob.name, blob);
  }
}

interface Cell {
  ops: number;
  seconds: number;
  loopP99Ms: number;
  /** Most HSM operations seen in flight at once during this cell (pkcs11 only). */
  peakInFlight: number | undefined;
  /** Process CPU (user + system, all threads) per signature: stable even when other jobs share the machine. */
  cpuMicrosPerOp: number;
}

async function measure(signer: Signer, concurrency: number, input: Uint8Array, inFlight?: () => number): Promise<Cell> {
  const loop = monitorEventLoopDelay({ resolution: 1 });
  let started = 0;
  let done = 0;
  let peak = 0;
  const start = performance.now();
  const deadline = start + seconds * 1000;
  const worker = async (): Promise<void> => {
    while (started < maxOps && performance.now() < deadline) {
      started += 1;
      const signing = signer.sign(input);
      if (inFlight !== undefined && (started & 15) === 0) peak = Math.max(peak, inFlight());
      await signing;
      done += 1;
    }
  };
  loop.enable();
  const cpuBefore = process.cpuUsage();
  await Promise.all(Array.from({ length: concurrency }, worker));
  const cpu = process.cpuUsage(cpuBefore);
  loop.disable();
  return {
    cpuMicrosPerOp: (cpu.user + cpu.system) / Math.max(done, 1),
    ops: done,
    seconds: (performance.now() - start) / 1000,
    loopP99Ms: loop.percentile(99) / 1e6,
    peakInFlight: inFlight === undefined ? undefined : peak,
  };
}

async function benchStore(backend: string, store: KeyStore): Promise<void> {
  const input = randomBytes(1024);
  for (const algorithm of algorithms) {
    const signer = await store.create(`bench-${algorithm}-${randomBytes(4).toString('hex')}`, { algorithm });
    for (let i = 0; i < 200; i += 1) await signer.sign(input); // warm-up: JIT, session caches
    for (const concurrency of concurrencies) {
      const probe = store instanceof Pkcs11KeyStore ? () => store.stats().inFlight : undefined;
      const cell = await measure(signer, concurrency, input, probe);
      const rate = Math.round(cell.ops / cell.seconds);
      const extra = cell.peakInFlight === undefined ? '' : `, sessions busy <= ${cell.peakInFlight}`;
      console.log(
        `${backend.padEnd(8)} ${algorithm.padEnd(10)} c=${String(concurrency).padEnd(3)} ` +
          `${String(rate).padStart(7)} sig/s  (${cell.ops} in ${cell.seconds.toFixed(2)} s, ` +
          `${cell.cpuMicrosPerOp.toFixed(0)} µs CPU/sig, loop p99 ${cell.loopP99Ms.toFixed(1)} ms${extra})`,
      );
    }
  }
}

async function main(): Promise<void> {
  console.log(
    `node ${process.version}, ${availableParallelism()} CPUs, UV_THREADPOOL_SIZE=${process.env.UV_THREADPOOL_SIZE ?? '(unset: 4)'}, ` +
      `pkcs11 sessions=${sessions}, bound ${seconds} s or ${maxOps} ops per cell, 1 KiB input`,
  );
  for (const backend of backends) {
    if (backend === 'software') {
      const store = new SoftwareKeyStore({
        blobs: new MemoryKeyBlobs(),
        passphrase: randomBytes(24).toString('hex'),
        clock: systemClock,
      });
      try {
        await benchStore('software', store);
      } finally {
        await store.close();
      }
    } else if (backend === 'softhsm') {
      let token: SoftHsmToken | undefined;
      try {
        token = createSoftHsmToken('chancery-bench');
      } catch (error) {
        console.log(`softhsm  skipped: ${(error as Error).message}`);
        continue;
      }
      if (token === undefined) {
        console.log('softhsm  skipped: SoftHSM not installed');
        continue;
      }
      try {
        const store = await openPkcs11KeyStore({
          library: token.library,
          tokenLabel: token.tokenLabel,
          pin: token.pin,
          sessions,
        });
        try {
          await benchStore('softhsm', store);
        } finally {
          await store.close();
        }
      } finally {
        token.cleanup();
      }
    } else {
      throw new Error(`unknown backend ${backend} (software, softhsm)`);
    }
  }
}

await main();
