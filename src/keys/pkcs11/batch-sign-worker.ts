/**
 * The worker thread of BatchSigningWorker (batch-signing-worker.ts): signs batches of TBS bytes with a key the
 * main thread's key store has already found, on a session of its own, and verifies every signature before
 * answering. Runs pkcs11js synchronously: this thread has nothing else to do, and C_SignInit, which pkcs11js
 * only offers synchronously, is what kept the main thread busy (~40-140 µs a signature on SoftHSM).
 *
 * The library is the process's one instance (dlopen of the same path; PKCS#11 Base v2.40 §5.4): C_Initialize
 * here answers CKR_CRYPTOKI_ALREADY_INITIALIZED, which is expected, and this thread never calls C_Finalize.
 * Login belongs to the application (§5.6): a session opened here is already a user session, so no PIN
 * comes here. Object handles are valid in every session of the application (§5.7): the key is the main
 * thread's handle, sent with each batch (recovery may have changed it). The key store stops this worker
 * before it re-initializes the library.
 */
import { createHash, createPublicKey, type KeyObject } from 'node:crypto';
import { parentPort, workerData } from 'node:worker_threads';
import { PKCS11 } from 'pkcs11js';
import type { KeyAlgorithm, RsaScheme } from '../../core/key-algorithm.js';
import { verifySignature } from '../../core/signature-verifier.js';
import { signPlanFor, type SignPlan } from './mechanisms.js';
// As the main thread initializes the library (should this thread be first, which the key store prevents).
import { CKF_OS_LOCKING_OK } from './pkcs11-module.js';

/** A batch to sign (BatchSigningWorker.sign). */
export interface BatchRequest {
  id: number;
  slot: Uint8Array;
  key: Uint8Array;
  keyAlgorithm: KeyAlgorithm;
  rsaScheme: RsaScheme | undefined;
  /** SubjectPublicKeyInfo (DER) every signature must verify with. */
  verifyKey: Uint8Array;
  tbs: Uint8Array[];
}

export type BatchReply = { id: number; signatures: Uint8Array[] } | { id: number; error: string };

/** CK_RV of C_Initialize when the process already initialized the library (Base v2.40 Table 1). */
const CKR_CRYPTOKI_ALREADY_INITIALIZED = 0x191;
/** CKF_SERIAL_SESSION (Base v2.40 §5.6: always set). */
const CKF_SERIAL_SESSION = 4;

const library = new PKCS11();
library.load((workerData as { library: string }).library);
try {
  library.C_Initialize({ flags: CKF_OS_LOCKING_OK });
} catch (error) {
  if ((error as { code?: number }).code !== CKR_CRYPTOKI_ALREADY_INITIALIZED) throw error;
}

let session: { slot: Buffer; handle: Buffer } | undefined;
const plans = new Map<string, SignPlan>();
const verifyKeys = new Map<string, KeyObject>();
/** Room for the largest signature (RSA-4096: 512 bytes). */
const output = Buffer.alloc(1024);

function sessionOn(slot: Buffer): Buffer {
  if (session !== undefined && session.slot.equals(slot)) return session.handle;
  if (session !== undefined) closeSession();
  session = { slot, handle: library.C_OpenSession(slot, CKF_SERIAL_SESSION) };
  return session.handle;
}

function closeSession(): void {
  if (session === undefined) return;
  try {
    library.C_CloseSession(session.handle);
  } catch {
    // already invalid (the token went away): nothing to release
  }
  session = undefined;
}

function sign(request: BatchRequest): Uint8Array[] {
  const handle = sessionOn(Buffer.from(request.slot));
  const planKey = `${request.keyAlgorithm}/${request.rsaScheme ?? ''}`;
  let plan = plans.get(planKey);
  if (plan === undefined) plans.set(planKey, (plan = signPlanFor(request.keyAlgorithm, request.rsaScheme)));
  const spki = Buffer.from(request.verifyKey);
  const spkiKey = spki.toString('base64');
  let verifyKey = verifyKeys.get(spkiKey);
  if (verifyKey === undefined) verifyKeys.set(spkiKey, (verifyKey = createPublicKey({ key: spki, format: 'der', type: 'spki' })));
  const key = Buffer.from(request.key);
  return request.tbs.map((tbs, i) => {
    const input = plan.input(createHash(plan.hash).update(tbs).digest());
    library.C_SignInit(handle, plan.mechanism, key);
    const signature = plan.finish(library.C_Sign(handle, input, output));
    // As every signature of the CA (ca/ocsp-response.ts): a fault in the device must not reach a relying party.
    if (!verifySignature(plan.algorithm, verifyKey, tbs, signature)) throw new Error(`signature ${i} of the batch failed verification with the given public key`);
    return signature;
  });
}

parentPort!.on('message', (request: BatchRequest) => {
  let reply: BatchReply;
  try {
    reply = { id: request.id, signatures: sign(request) };
  } catch (error) {
    // A failed operation may leave the session unusable (or the token gone): the next batch opens a new one.
    closeSession();
    const code = (error as { code?: number }).code;
    reply = { id: request.id, error: `${error instanceof Error ? error.message : String(error)}${code === undefined ? '' : ` (CK_RV 0x${code.toString(16)})`}` };
  }
  parentPort!.postMessage(reply);
});
