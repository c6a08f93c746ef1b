import { createHash } from 'node:crypto';
import type { KeyAlgorithm, RsaScheme, SignatureAlgorithm } from '../../core/key-algorithm.js';
import type { Signer } from '../signer.js';
import type { SignPlan } from './mechanisms.js';
import { keyStoreError } from './pkcs11-error.js';
import type { PooledSession, SessionPool } from './session-pool.js';

/** Where a signer takes its session from: the store's current pool, which recovery may replace. */
export interface SessionSource {
  /** Throws CaError('keyStore') while the token is unavailable. */
  readonly pool: SessionPool;
  /** Told of every failed signature, so the store's health is probed before the token is trusted again. */
  signFailed(): void;
  /** Many signatures with one key off the event loop (the key store's BatchSigningWorker), each verified. */
  signBatch(request: { key: KeyBinding; keyAlgorithm: KeyAlgorithm; rsaScheme: RsaScheme; verifyKey: Uint8Array; tbs: readonly Uint8Array[] }): Promise<Uint8Array[]>;
}

/**
 * A key object on the token by name, shared by every signer of that key: recovery (a token removed and
 * restored, the library re-initialized) finds the key again and puts its new handle here.
 */
export interface KeyBinding {
  readonly name: string;
  handle: Buffer;
}

/**
 * A Signer over a private key object on the token. Holds the object handle (valid in every session of this
 * application, Base v2.40 §5.7) but never exposes it: only name, algorithms and the SPKI leave this class.
 */
export class Pkcs11Signer implements Signer {
  readonly name: string;
  readonly keyAlgorithm: KeyAlgorithm;
  readonly algorithm: SignatureAlgorithm;
  readonly publicKey: Uint8Array;
  readonly #sessions: SessionSource;
  readonly #plan: SignPlan;
  readonly #key: KeyBinding;

  constructor(init: {
    name: string;
    keyAlgorithm: KeyAlgorithm;
    publicKey: Uint8Array;
    plan: SignPlan;
    sessions: SessionSource;
    key: KeyBinding;
  }) {
    this.name = init.name;
    this.keyAlgorithm = init.keyAlgorithm;
    this.algorithm = init.plan.algorithm;
    this.publicKey = init.publicKey;
    this.#plan = init.plan;
    this.#sessions = init.sessions;
    this.#key = init.key;
  }

  async sign(tbs: Uint8Array): Promise<Uint8Array> {
    // Hash before taking a session: sessions are the scarce resource, hashing is not.
    const digest = createHash(this.#plan.hash).update(tbs).digest();
    const input = this.#plan.input(digest);
    try {
      const pool = this.#sessions.pool;
      return await pool.use((session) => this.#signOnce(pool, session, input));
    } catch (error) {
      this.#sessions.signFailed();
      throw keyStoreError(`PKCS#11 signing with key "${this.name}" failed`, error);
    }
  }

  /**
   * Signer.signMany: the batch on the key store's worker thread (batch-signing-worker.ts), which hashes, signs
   * and verifies each with `verifyKey`; one failure fails the batch.
   */
  async signMany(tbs: readonly Uint8Array[], verifyKey: Uint8Array): Promise<Uint8Array[]> {
    if (tbs.length === 0) return [];
    try {
      const rsaScheme: RsaScheme = this.algorithm === 'rsassa-pss-sha256' ? 'pss' : 'pkcs1';
      return await this.#sessions.signBatch({ key: this.#key, keyAlgorithm: this.keyAlgorithm, rsaScheme, verifyKey, tbs });
    } catch (error) {
      this.#sessions.signFailed();
      throw keyStoreError(`PKCS#11 batch signing with key "${this.name}" failed`, error);
    }
  }

  /**
   * C_SignInit then single-part C_Sign (Base v2.40 §5.11).
   *
   * C_Sign gets a callback, so pkcs11js runs it on a libuv threadpool thread and the event loop keeps going;
   * that is also what lets N sessions sign at once. C_SignInit has no asynchronous form in pkcs11js, so it runs
   * here, on the event loop. On SoftHSM it costs ~40 µs for a token key (it decrypts the stored key and builds the
   * OpenSSL key object), which makes it the serial part that caps throughput; moving it to worker_threads was
   * measured and gained nothing on a 2-core machine (postMessage costs about what it saves). An HSM whose
   * C_SignInit is a network round trip would stall the loop for that round trip per signature: measure with
   * `npm run bench:signer` (event-loop p99 column) before going to production on a new HSM model.
   *
   * C_Sign always ends the operation except on CKR_BUFFER_TOO_SMALL (ruled out by the pool's buffer size), so the
   * session comes back clean either way.
   */
  #signOnce(pool: SessionPool, session: PooledSession, input: Buffer): Promise<Uint8Array> {
    const lib = pool.lib;
    try {
      lib.C_SignInit(session.handle, this.#plan.mechanism, this.#key.handle);
    } catch (error) {
      return Promise.reject(keyStoreError(`PKCS#11 C_SignInit with key "${this.name}" failed`, error));
    }
    return new Promise<Uint8Array>((resolve, reject) => {
      try {
        // pkcs11js hands the threadpool raw pointers into `input` and `session.output` without holding a
        // reference to either, so both must stay reachable until the callback runs: session.output lives as long
        // as the pool, and `input` is pinned on the session, else a GC during C_Sign could free the digest the
        // token is still reading.
        session.pinned = input;
        // pkcs11js types promise a non-null error and data; at run time exactly one of them is null.
        lib.C_Sign(session.handle, input, session.output, (error: Error | null, raw: Buffer | null) => {
          session.pinned = undefined;
          if (error !== null || raw === null) {
            reject(keyStoreError(`PKCS#11 C_Sign with key "${this.name}" failed`, error));
            return;
          }
          // Still holding the session, so session.output cannot be overwritten before finish() copies it.
          try {
            resolve(this.#plan.finish(raw));
          } catch (finishError) {
            reject(keyStoreError(`PKCS#11 signature from key "${this.name}" is malformed`, finishError));
          }
        });
      } catch (error) {
        session.pinned = undefined;
        // pkcs11js rejected the arguments before calling the token. Only a programming error gets here (every
        // argument is built in this file); the next C_SignInit on this session would then say CKR_OPERATION_ACTIVE.
        reject(keyStoreError(`PKCS#11 C_Sign with key "${this.name}" failed`, error));
      }
    });
  }
}
