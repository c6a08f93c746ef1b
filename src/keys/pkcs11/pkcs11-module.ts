import { realpathSync } from 'node:fs';
import { Module, type Slot } from 'graphene-pk11';
import { CaError } from '../../core/errors.js';
import { keyStoreError } from './pkcs11-error.js';

/**
 * CK_C_INITIALIZE_ARGS.flags bit CKF_OS_LOCKING_OK (PKCS#11 Base v2.40 §3.6, §5.4 C_Initialize): "the library may
 * use the native operating system threading model for locking". Without it (and without mutex callbacks) the
 * library is entitled to assume it is never entered from two threads at once. SoftHSM 2.6 takes it at its word:
 * initialized without the flag, four sessions signing on libuv threadpool threads abort the process with glibc
 * heap-corruption errors or SIGSEGV within a second (measured).
 */
export const CKF_OS_LOCKING_OK = 2;

/** CK_TOKEN_INFO.label is 32 bytes, blank padded (PKCS#11 Base v2.40 §3.2); a longer label can never match. */
const MAX_TOKEN_LABEL_BYTES = 32;

/**
 * One process has one instance of a given PKCS#11 library: dlopen() of the same path returns the same code and
 * state, and C_Finalize from any caller finalizes it for everyone (Base v2.40 §5.4). So modules are reference
 * counted per library path, and finalized only when the last key store using them closes.
 *
 * A token is claimed by at most one key store per process because login state belongs to the application, not
 * to a session (Base v2.40 §5.6 C_Login/C_Logout: logging in or out on one session does it for every session the
 * application has with that token). Two stores on one token would log each other out, and the second C_Login
 * would answer CKR_USER_ALREADY_LOGGED_IN without ever checking its PIN.
 */
interface LoadedModule {
  readonly module: Module;
  refs: number;
  readonly claimedSlots: Set<string>;
}

const loaded = new Map<string, LoadedModule>();

export interface TokenClaim {
  readonly slot: Slot;
  release(): void;
}

export interface ModuleLease {
  readonly module: Module;
  /** Finds the token BY LABEL (slot ids are not stable: SoftHSM derives them from random serials) and reserves it. */
  claimToken(tokenLabel: string): TokenClaim;
  /**
   * C_Finalize then C_Initialize (Base v2.40 §5.4): the library forgets every session and object handle and
   * reads its tokens again. The way back after a token was removed and restored (SoftHSM keeps answering
   * CKR_OBJECT_HANDLE_INVALID / CKR_GENERAL_ERROR for it until then). Every key store of this process on the
   * library loses its sessions; the caller must have no operation running on it.
   */
  reinitialize(): void;
  /** Drops this reference; the last one finalizes the library. Idempotent. */
  release(): void;
}

export function acquireModule(library: string): ModuleLease {
  // Keyed by real path: two spellings of one .so (a symlink, a relative path) are still one library instance.
  const key = realPathOrSelf(library);
  let entry = loaded.get(key);
  if (entry === undefined) {
    entry = { module: loadAndInitialize(library), refs: 0, claimedSlots: new Set() };
    loaded.set(key, entry);
  }
  entry.refs += 1;
  const current = entry;
  let released = false;
  return {
    module: current.module,
    claimToken: (tokenLabel) => claimToken(current, library, tokenLabel),
    reinitialize: () => {
      try {
        current.module.finalize();
      } catch {
        // CKR_CRYPTOKI_NOT_INITIALIZED (a previous attempt stopped half way): initialize below is what matters.
      }
      try {
        current.module.initialize({ flags: CKF_OS_LOCKING_OK });
      } catch (error) {
        throw keyStoreError(`C_Initialize of PKCS#11 library "${library}" failed`, error);
      }
    },
    release: () => {
      if (released) return;
      released = true;
      current.refs -= 1;
      if (current.refs > 0) return;
      loaded.delete(key);
      try {
        current.module.finalize();
      } catch {
        // Finalizing is best effort at shutdown; a library that refuses has nothing left for us to release.
      }
      try {
        current.module.close();
      } catch {
        // Same: dlclose failures leave nothing actionable.
      }
    },
  };
}

function realPathOrSelf(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return path; // Missing file: Module.load below reports it with the path the operator configured.
  }
}

function loadAndInitialize(library: string): Module {
  let module: Module;
  try {
    module = Module.load(library, 'chancery');
  } catch (error) {
    throw new CaError('keyStore', `cannot load PKCS#11 library "${library}"`, { cause: error });
  }
  try {
    // graphene tolerates CKR_CRYPTOKI_ALREADY_INITIALIZED, which happens if something else in the process
    // (outside this registry) initialized the same library first.
    module.initialize({ flags: CKF_OS_LOCKING_OK });
  } catch (error) {
    try {
      module.close();
    } catch {
      // The initialize error is the one worth reporting.
    }
    throw keyStoreError(`C_Initialize of PKCS#11 library "${library}" failed`, error);
  }
  return module;
}

function claimToken(entry: LoadedModule, library: string, tokenLabel: string): TokenClaim {
  if (tokenLabel === '' || Buffer.byteLength(tokenLabel, 'utf8') > MAX_TOKEN_LABEL_BYTES) {
    throw new CaError('badConfig', `PKCS#11 token label must be 1 to ${MAX_TOKEN_LABEL_BYTES} bytes, got "${tokenLabel}"`);
  }
  const matches: Slot[] = [];
  const seen: string[] = [];
  try {
    const slots = entry.module.getSlots(true);
    for (let i = 0; i < slots.length; i += 1) {
      const slot = slots.items(i);
      const label = slot.getToken().label; // graphene strips the blank padding
      if (label !== '') seen.push(label);
      if (label === tokenLabel) matches.push(slot);
    }
  } catch (error) {
    throw keyStoreError(`listing PKCS#11 tokens of "${library}" failed`, error);
  }
  const slot = matches[0];
  if (slot === undefined) {
    const available = seen.length === 0 ? 'no initialized tokens' : `tokens: ${seen.map((l) => `"${l}"`).join(', ')}`;
    throw new CaError('keyStore', `PKCS#11 token "${tokenLabel}" not found in "${library}" (${available})`);
  }
  if (matches.length > 1) {
    throw new CaError('keyStore', `PKCS#11 token label "${tokenLabel}" is ambiguous: ${matches.length} tokens carry it`);
  }
  const key = slot.handle.toString('hex');
  if (entry.claimedSlots.has(key)) {
    throw new CaError(
      'keyStore',
      `PKCS#11 token "${tokenLabel}" is already open in this process; share one Pkcs11KeyStore per token`,
    );
  }
  entry.claimedSlots.add(key);
  let released = false;
  return {
    slot,
    release: () => {
      if (released) return;
      released = true;
      entry.claimedSlots.delete(key);
    },
  };
}

