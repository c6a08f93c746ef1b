import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { BatchReply, BatchRequest } from './batch-sign-worker.js';

/**
 * Batches of signatures made off the event loop, on one worker thread (batch-sign-worker.ts) started at the
 * first batch. Made for the many OCSP responses of a bulk revocation: signed one by one on the event loop,
 * each cost C_SignInit there (pkcs11js has no asynchronous form) and a verification, ~250 µs of main-thread
 * time a response on SoftHSM, which the ACME requests served meanwhile waited behind (bench:revoke). A batch
 * is one message each way, so the thread hop costs nothing per signature, which is why one-off signatures
 * stay on the session pool (pkcs11-signer.ts).
 *
 * A batch that fails is rejected whole and closes the worker's session (the next batch opens another); a
 * worker that dies is replaced at the next batch; the key store stops it before anything re-initializes or
 * finalizes the library.
 */
export class BatchSigningWorker {
  #worker: Worker | undefined;
  #next = 0;
  readonly #pending = new Map<number, { resolve: (signatures: Uint8Array[]) => void; reject: (error: Error) => void }>();

  constructor(private readonly library: string) {}

  sign(request: Omit<BatchRequest, 'id'>): Promise<Uint8Array[]> {
    const worker = this.#started();
    const id = this.#next++;
    return new Promise<Uint8Array[]>((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      worker.postMessage({ ...request, id } satisfies BatchRequest);
    });
  }

  /** Ends the worker; batches in flight are rejected. The next sign() starts a new one. */
  async stop(): Promise<void> {
    const worker = this.#worker;
    if (worker === undefined) return;
    this.#worker = undefined;
    this.#failAll(new Error('the batch signing worker was stopped'));
    await worker.terminate();
  }

  #started(): Worker {
    if (this.#worker !== undefined) return this.#worker;
    const file = workerFile();
    const worker = file.pathname.endsWith('.ts')
      ? // The sources run through tsx (tests), whose loader a worker thread does not inherit: register it first.
        new Worker(`import('tsx/esm/api').then((tsx) => { tsx.register(); return import(${JSON.stringify(file.href)}); });`, { eval: true, workerData: { library: this.library } })
      : new Worker(file, { workerData: { library: this.library } });
    worker.unref();
    worker.on('message', (reply: BatchReply) => {
      const waiting = this.#pending.get(reply.id);
      if (waiting === undefined) return;
      this.#pending.delete(reply.id);
      if ('error' in reply) waiting.reject(new Error(reply.error));
      else waiting.resolve(reply.signatures);
    });
    const gone = (error: Error): void => {
      if (this.#worker !== worker) return;
      this.#worker = undefined;
      this.#failAll(error);
    };
    worker.on('error', gone);
    worker.on('exit', (code) => gone(new Error(`the batch signing worker exited (code ${code})`)));
    this.#worker = worker;
    return worker;
  }

  #failAll(error: Error): void {
    for (const waiting of this.#pending.values()) waiting.reject(error);
    this.#pending.clear();
  }
}

/** The worker's module: the compiled .js next to this file, or the .ts source when run through tsx (tests). */
function workerFile(): URL {
  const compiled = new URL('./batch-sign-worker.js', import.meta.url);
  return existsSync(fileURLToPath(compiled)) ? compiled : new URL('./batch-sign-worker.ts', import.meta.url);
}
