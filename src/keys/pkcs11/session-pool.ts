import { SessionFlag, UserType, type Module, type Session, type Slot } from 'graphene-pk11';
import { CaError } from '../../core/errors.js';
import { ckrName, keyStoreError } from './pkcs11-error.js';

/** The raw pkcs11js binding under graphene; the signer calls it directly to reuse mechanism objects and buffers. */
export type Pkcs11Lib = Module['lib'];

/**
 * Largest signature any KeyAlgorithm produces is RSA-4096 (512 bytes). The buffer is twice that because a C_Sign
 * answering CKR_BUFFER_TOO_SMALL does NOT end the signing operation (Base v2.40 §5.2, §5.11 C_Sign), which would
 * leave the session stuck with an active operation; a comfortably large buffer makes that impossible.
 */
const SIGNATURE_BUFFER_BYTES = 1024;

export const DEFAULT_SESSIONS = 4;
const MAX_SESSIONS = 256;

export interface PooledSession {
  readonly session: Session;
  /** CK_SESSION_HANDLE, for direct pkcs11js calls. */
  readonly handle: Buffer;
  /** Scratch output for C_Sign; owned by whoever holds the lease, so copy out of it before releasing. */
  readonly output: Buffer;
  /** Input of the native call in flight, held here so GC cannot free memory the threadpool is reading. */
  pinned: Buffer | undefined;
}

/** Honest instrumentation (no secrets): lets tests prove operations overlapped and operators see queueing. */
export interface SessionPoolStats {
  /** Sessions in the pool. */
  sessions: number;
  /** Operations running right now (each holds one session). */
  inFlight: number;
  /** Highest inFlight observed since the pool opened. */
  maxInFlight: number;
  /** Callers waiting for a free session. */
  queued: number;
  /** Operations completed (successfully or not) since the pool opened. */
  completed: number;
}

type Waiter = (session: PooledSession) => void;

/** Array-backed FIFO: shift() on a long array is O(n); a moving head keeps a 10k-deep queue O(1) per op. */
class Fifo<T> {
  #items: (T | undefined)[] = [];
  #head = 0;

  get length(): number {
    return this.#items.length - this.#head;
  }

  push(item: T): void {
    this.#items.push(item);
  }

  shift(): T | undefined {
    if (this.#head >= this.#items.length) return undefined;
    const item = this.#items[this.#head];
    this.#items[this.#head] = undefined;
    this.#head += 1;
    if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
    return item;
  }
}

/**
 * N logged-in sessions with one token. A PKCS#11 session runs at most one cryptographic operation at a time
 * (Base v2.40 §5.11: C_SignInit on a session with an active signing operation fails with CKR_OPERATION_ACTIVE),
 * so each operation leases a whole session and callers beyond N wait their turn in FIFO order. Sessions are the
 * unit of HSM parallelism: signatures on different sessions run concurrently on libuv threadpool threads.
 */
export class SessionPool {
  readonly lib: Pkcs11Lib;
  readonly #all: readonly PooledSession[];
  readonly #idle: PooledSession[];
  readonly #waiters = new Fifo<Waiter>();
  #inFlight = 0;
  #maxInFlight = 0;
  #completed = 0;
  #closing = false;
  #closed: Promise<void> | undefined;
  #drained: (() => void) | undefined;

  private constructor(lib: Pkcs11Lib, sessions: PooledSession[]) {
    this.lib = lib;
    this.#all = sessions;
    this.#idle = [...sessions];
  }

  /**
   * Opens `size` R/W sessions (R/W because C_GenerateKeyPair of token objects needs one, Base v2.40 §5.6) and logs
   * the user in once: login state is per application and token, so the other sessions are logged in with it.
   * The PIN is used here and not kept.
   */
  static open(slot: Slot, tokenLabel: string, pin: string, size: number = DEFAULT_SESSIONS): SessionPool {
    if (!Number.isInteger(size) || size < 1 || size > MAX_SESSIONS) {
      throw new CaError('badConfig', `PKCS#11 session pool size must be an integer from 1 to ${MAX_SESSIONS}, got ${size}`);
    }
    const opened: Session[] = [];
    const closeAll = (): void => {
      for (const session of opened) {
        try {
          session.close();
        } catch {
          // Already failing; the first error is the useful one.
        }
      }
    };
    try {
      for (let i = 0; i < size; i += 1) opened.push(slot.open(SessionFlag.SERIAL_SESSION | SessionFlag.RW_SESSION));
    } catch (error) {
      closeAll();
      throw keyStoreError(`opening PKCS#11 sessions on token "${tokenLabel}" failed`, error);
    }
    const first = opened[0]!;
    try {
      first.login(pin, UserType.USER);
    } catch (error) {
      const code = ckrName(error);
      // Another part of this process (outside our registry) already logged in: every session is usable.
      if (code !== 'CKR_USER_ALREADY_LOGGED_IN') {
        closeAll();
        // No cause attached: the detail names the CKR_* code, and nothing derived from the login call leaves here.
        throw new CaError('keyStore', `PKCS#11 login failed for token "${tokenLabel}": ${code ?? 'unexpected error'}`);
      }
    }
    const pooled = opened.map(
      (session): PooledSession => ({
        session,
        handle: session.handle,
        output: Buffer.alloc(SIGNATURE_BUFFER_BYTES),
        pinned: undefined,
      }),
    );
    return new SessionPool(first.lib, pooled);
  }

  /** Runs `operation` with exclusive use of one session; queues FIFO when all are busy. */
  use<T>(operation: (session: PooledSession) => Promise<T>): Promise<T> {
    if (this.#closing) return Promise.reject(new CaError('keyStore', 'PKCS#11 key store is closed'));
    const idle = this.#idle.pop();
    if (idle !== undefined) return this.#run(idle, operation);
    return new Promise<T>((resolve, reject) => {
      this.#waiters.push((session) => {
        this.#run(session, operation).then(resolve, reject);
      });
    });
  }

  /** Operations running or queued right now. */
  get busy(): boolean {
    return this.#inFlight > 0 || this.#waiters.length > 0;
  }

  stats(): SessionPoolStats {
    return {
      sessions: this.#all.length,
      inFlight: this.#inFlight,
      maxInFlight: this.#maxInFlight,
      queued: this.#waiters.length,
      completed: this.#completed,
    };
  }

  /**
   * Stops taking new operations, lets running and queued ones finish, then logs out and closes every session
   * (closing the last session would also return the token to the public state, Base v2.40 §5.6 C_CloseSession).
   * `logout: false` when a newer pool on the same token replaces this one: login state belongs to the
   * application, not the session (§5.6 C_Logout), so logging out here would log the new pool out too.
   */
  close(options: { logout?: boolean } = {}): Promise<void> {
    if (this.#closed !== undefined) return this.#closed;
    this.#closing = true;
    this.#closed = (async () => {
      if (this.#inFlight > 0 || this.#waiters.length > 0) {
        await new Promise<void>((resolve) => {
          this.#drained = resolve;
        });
      }
      const first = this.#all[0];
      try {
        if (options.logout !== false) first?.session.logout();
      } catch {
        // CKR_USER_NOT_LOGGED_IN and friends: nothing to undo.
      }
      for (const { session } of this.#all) {
        try {
          session.close();
        } catch {
          // A session the token already dropped needs no closing.
        }
      }
    })();
    return this.#closed;
  }

  async #run<T>(session: PooledSession, operation: (session: PooledSession) => Promise<T>): Promise<T> {
    this.#inFlight += 1;
    if (this.#inFlight > this.#maxInFlight) this.#maxInFlight = this.#inFlight;
    try {
      return await operation(session);
    } finally {
      this.#inFlight -= 1;
      this.#completed += 1;
      this.#release(session);
    }
  }

  #release(session: PooledSession): void {
    const next = this.#waiters.shift();
    if (next !== undefined) {
      next(session);
      return;
    }
    this.#idle.push(session);
    if (this.#drained !== undefined && this.#inFlight === 0) {
      const drained = this.#drained;
      this.#drained = undefined;
      drained();
    }
  }
}
