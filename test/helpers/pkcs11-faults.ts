import { acquireModule, type ModuleLease } from '../../src/keys/pkcs11/pkcs11-module.js';
import type { Pkcs11Lib } from '../../src/keys/pkcs11/session-pool.js';

/**
 * A fault-injecting wrapper around a PKCS#11 module (the pkcs11js binding of a real SoftHSM): each C_*
 * function of the loaded library is replaced on the instance by one that throws a chosen CKR_* code — the
 * way pkcs11js reports a failed call, an Error whose message is the code — while the fault is armed, and
 * calls the real function otherwise. Every key store of the process on that library shares the instance
 * (pkcs11-module.ts), so install it before the store opens.
 *
 * How a fault behaves, and what clears it, follows what HSMs do with each code:
 * - 'sessions': CKR_SESSION_HANDLE_INVALID — the sessions open when it was armed are dead (the HSM dropped
 *   them); sessions opened afterwards work.
 * - 'handles': CKR_OBJECT_HANDLE_INVALID, CKR_KEY_HANDLE_INVALID — the object handles held when it was armed
 *   are stale; finding the objects again (C_FindObjectsInit) gives working ones.
 * - 'device': CKR_TOKEN_NOT_PRESENT, CKR_DEVICE_REMOVED, CKR_DEVICE_ERROR, CKR_GENERAL_ERROR — every call
 *   fails (C_Initialize and C_Finalize aside) until the token is back (restore()) and the library has been
 *   finalized and initialized again: SoftHSM forgets a removed token until then.
 */
export type FaultKind = 'sessions' | 'handles' | 'device';

export const CKR_FAULTS: Readonly<Record<string, FaultKind>> = {
  CKR_SESSION_HANDLE_INVALID: 'sessions',
  CKR_OBJECT_HANDLE_INVALID: 'handles',
  CKR_KEY_HANDLE_INVALID: 'handles',
  CKR_TOKEN_NOT_PRESENT: 'device',
  CKR_DEVICE_REMOVED: 'device',
  CKR_DEVICE_ERROR: 'device',
  CKR_GENERAL_ERROR: 'device',
};

/** Functions that take no session handle first (Base v2.40 §5.4-§5.6): general, slot and token management. */
const NO_SESSION = new Set([
  'C_Initialize',
  'C_Finalize',
  'C_GetInfo',
  'C_GetSlotList',
  'C_GetSlotInfo',
  'C_GetTokenInfo',
  'C_GetMechanismList',
  'C_GetMechanismInfo',
  'C_InitToken',
  'C_OpenSession',
  'C_CloseAllSessions',
  'C_WaitForSlotEvent',
]);

/** Functions that take an object handle, and where: the ones a signer and a probe use. */
const OBJECT_ARGUMENT: Readonly<Record<string, number>> = { C_SignInit: 2, C_GetAttributeValue: 1 };

interface Armed {
  code: string;
  kind: FaultKind;
  sessions: Set<string>;
  /** 'device': the token is back (restore()); the fault clears at the next C_Initialize. */
  restored: boolean;
}

export class Pkcs11Faults {
  /** Calls per function name since install, faulted or not. */
  readonly calls = new Map<string, number>();
  /** Calls that were answered with the armed code. */
  faulted = 0;
  #armed: Armed | undefined;
  readonly #open = new Set<string>();
  readonly #lease: ModuleLease;

  /** The instance's own C_* properties before install (pkcs11js puts its error-wrapping ones there). */
  readonly #own = new Map<string, unknown>();

  private constructor(lease: ModuleLease) {
    this.#lease = lease;
    const lib = lease.module.lib as unknown as Record<string, unknown>;
    const names = new Set<string>();
    for (let o: object | null = lib; o !== null && o !== Object.prototype; o = Object.getPrototypeOf(o) as object | null) {
      for (const name of Object.getOwnPropertyNames(o)) if (/^C_[A-Za-z]+$/.test(name)) names.add(name);
    }
    for (const name of names) {
      const real = lib[name];
      if (typeof real !== 'function') continue;
      if (Object.hasOwn(lib, name)) this.#own.set(name, real);
      const faults = this;
      lib[name] = function (this: unknown, ...args: unknown[]): unknown {
        faults.calls.set(name, (faults.calls.get(name) ?? 0) + 1);
        faults.#before(name, args);
        const result = (real as (...a: unknown[]) => unknown).apply(this, args);
        if (name === 'C_OpenSession' && Buffer.isBuffer(result)) faults.#open.add(result.toString('hex'));
        return result;
      };
    }
  }

  /** Loads (or shares) the library and wraps it; release() at the end of the test. */
  static install(library: string): Pkcs11Faults {
    return new Pkcs11Faults(acquireModule(library));
  }

  count(name: string): number {
    return this.calls.get(name) ?? 0;
  }

  /** From now on, calls fail with `code` as CKR_FAULTS says. */
  arm(code: string): void {
    const kind = CKR_FAULTS[code];
    if (kind === undefined) throw new Error(`no fault model for ${code}`);
    this.#armed = { code, kind, sessions: new Set(this.#open), restored: false };
  }

  /** 'device': the token is back; the next C_Initialize clears the fault. */
  restore(): void {
    if (this.#armed !== undefined) this.#armed.restored = true;
  }

  get armed(): boolean {
    return this.#armed !== undefined;
  }

  disarm(): void {
    this.#armed = undefined;
  }

  /** Puts the library's functions back as they were and drops the module reference. */
  release(): void {
    const lib = this.#lease.module.lib as unknown as Record<string, unknown>;
    for (const name of Object.keys(lib)) {
      if (!name.startsWith('C_')) continue;
      if (this.#own.has(name)) lib[name] = this.#own.get(name);
      else delete lib[name];
    }
    this.#lease.release();
  }

  #before(name: string, args: unknown[]): void {
    const armed = this.#armed;
    if (armed === undefined) return;
    const fail = (): never => {
      this.faulted += 1;
      throw new Error(armed.code);
    };
    switch (armed.kind) {
      case 'sessions':
        if (!NO_SESSION.has(name) && Buffer.isBuffer(args[0]) && armed.sessions.has(args[0].toString('hex'))) fail();
        return;
      case 'handles':
        if (name === 'C_FindObjectsInit') {
          this.#armed = undefined;
          return;
        }
        if (OBJECT_ARGUMENT[name] !== undefined) fail();
        return;
      case 'device':
        if (name === 'C_Initialize' && armed.restored) {
          this.#armed = undefined;
          return;
        }
        if (name === 'C_Initialize' || name === 'C_Finalize') return;
        fail();
    }
  }
}
