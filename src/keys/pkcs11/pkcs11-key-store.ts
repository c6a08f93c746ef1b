import {
  KeyGenMechanism,
  KeyType,
  ObjectClass,
  type IKeyPair,
  type ITemplate,
  type Session,
  type SessionObject,
} from 'graphene-pk11';
import { CaError } from '../../core/errors.js';
import { rsaBits, type KeyAlgorithm, type RsaScheme } from '../../core/key-algorithm.js';
import type { KeySpec, KeyStore, KeyStoreHealth, LoadOptions } from '../signer.js';
import { BatchSigningWorker } from './batch-signing-worker.js';
import { signPlanFor } from './mechanisms.js';
import { ckrName, keyStoreError } from './pkcs11-error.js';
import { acquireModule, type ModuleLease, type TokenClaim } from './pkcs11-module.js';
import { Pkcs11Signer, type KeyBinding, type SessionSource } from './pkcs11-signer.js';
import { EC_CURVES, ecPublicKey, isEcAlgorithm, rsaPublicKey, type RebuiltPublicKey } from './public-key.js';
import { DEFAULT_SESSIONS, SessionPool, type SessionPoolStats } from './session-pool.js';

export interface Pkcs11KeyStoreOptions {
  /** Path of the vendor's PKCS#11 library, e.g. /usr/lib/softhsm/libsofthsm2.so. */
  library: string;
  /** CK_TOKEN_INFO.label of the token; slots are never addressed by number. */
  tokenLabel: string;
  /** User PIN. Used once for C_Login, never stored, logged or put in an error. */
  pin: string;
  /**
   * Logged-in sessions, i.e. the most HSM operations in flight at once. Default 4.
   *
   * Each in-flight C_Sign occupies one libuv threadpool thread, and that pool (UV_THREADPOOL_SIZE, default 4,
   * max 1024) is sized once when the process first uses it and is shared with fs, dns.lookup, zlib and async
   * node:crypto. Run the process with UV_THREADPOOL_SIZE >= sessions + 4 so signing neither caps below `sessions`
   * nor starves the rest of the process. It must be set in the environment at process start (library code
   * cannot set it reliably, so this store never does).
   */
  sessions?: number;
}

export interface Pkcs11KeyStoreStats extends SessionPoolStats {
  /** UV_THREADPOOL_SIZE as set in the environment (libuv's default 4 when unset): the ceiling on parallel C_Sign. */
  uvThreadpoolSize: number;
}

/** Security-relevant attributes of a stored private key (Base v2.40 §4.9, Table 37); none of them is secret. */
export interface Pkcs11KeyAttributes {
  keyAlgorithm: KeyAlgorithm;
  token: boolean;
  private: boolean;
  sensitive: boolean;
  alwaysSensitive: boolean;
  extractable: boolean;
  neverExtractable: boolean;
  sign: boolean;
}

/** PKCS#11 puts no limit on CKA_LABEL, but some HSMs do; 64 bytes is a conservative bound that names fit in. */
const MAX_KEY_NAME_BYTES = 64;
/** F4 = 65537: odd and within the 2^16+1 .. 2^256-1 range CA/B Baseline Requirements §6.1.6 asks for. */
const RSA_PUBLIC_EXPONENT = Buffer.from([0x01, 0x00, 0x01]);

/** Opens the token named by label, logs in a pool of sessions, and returns the store. */
export async function openPkcs11KeyStore(options: Pkcs11KeyStoreOptions): Promise<Pkcs11KeyStore> {
  const lease = acquireModule(options.library);
  let claim: TokenClaim | undefined;
  try {
    claim = lease.claimToken(options.tokenLabel);
    const sessions = options.sessions ?? DEFAULT_SESSIONS;
    const pool = SessionPool.open(claim.slot, options.tokenLabel, options.pin, sessions);
    return new Pkcs11KeyStore({ tokenLabel: options.tokenLabel, pool, claim, lease, pin: options.pin, sessions, batch: new BatchSigningWorker(options.library) });
  } catch (error) {
    claim?.release();
    lease.release();
    throw error;
  }
}

/**
 * KeyStore over one PKCS#11 token (DESIGN.md rule 1). Keys are generated on the token and never leave it:
 * private keys are CKA_TOKEN, CKA_PRIVATE, CKA_SENSITIVE, not CKA_EXTRACTABLE and may only sign. Each key is a
 * private/public object pair sharing CKA_LABEL = CKA_ID = the key name; the public object is what load() reads
 * to rebuild the SubjectPublicKeyInfo.
 */
export class Pkcs11KeyStore implements KeyStore, SessionSource {
  readonly backend = 'pkcs11' as const;
  readonly tokenLabel: string;
  /** The logged-in sessions; undefined while the token is lost and recovery has not found it again. */
  #pool: SessionPool | undefined;
  #claim: TokenClaim | undefined;
  readonly #lease: ModuleLease;
  /**
   * The user PIN, kept in this object only to log in again when the token comes back after being lost (a
   * restart would read it from the configuration anyway). Never logged, never put in an error.
   */
  readonly #pin: string;
  readonly #sessions: number;
  /** Every key a signer was made for, by name: recovery finds each again and updates its handle in place. */
  readonly #keys = new Map<string, KeyBinding>();
  /** Names being created right now: the token enforces no label uniqueness, so this store does, in-process. */
  readonly #creating = new Set<string>();
  #signFailures = 0;
  /** Batches of signatures off the event loop (signBatch); stopped before the library is re-initialized or closed. */
  readonly #batch: BatchSigningWorker;
  #recovering: Promise<void> | undefined;
  #closed: Promise<void> | undefined;
  /** Why the token is unavailable, while #pool is undefined. */
  #lost: CaError | undefined;

  /** Use openPkcs11KeyStore(); this takes already-opened resources and owns them from here on. */
  constructor(init: { tokenLabel: string; pool: SessionPool; claim: TokenClaim; lease: ModuleLease; pin: string; sessions: number; batch: BatchSigningWorker }) {
    this.tokenLabel = init.tokenLabel;
    this.#pool = init.pool;
    this.#claim = init.claim;
    this.#lease = init.lease;
    this.#pin = init.pin;
    this.#sessions = init.sessions;
    this.#batch = init.batch;
  }

  /** Many signatures with one key on the batch worker (SessionSource), each verified with `verifyKey`. */
  signBatch(request: { key: KeyBinding; keyAlgorithm: KeyAlgorithm; rsaScheme: RsaScheme; verifyKey: Uint8Array; tbs: readonly Uint8Array[] }): Promise<Uint8Array[]> {
    void this.pool; // throws while the token is lost or the store closed
    const slot = this.#claim?.slot;
    if (slot === undefined) return Promise.reject(new CaError('keyStore', `PKCS#11 token "${this.tokenLabel}" is not claimed`));
    return this.#batch.sign({
      slot: slot.handle,
      key: request.key.handle,
      keyAlgorithm: request.keyAlgorithm,
      rsaScheme: request.rsaScheme,
      verifyKey: request.verifyKey,
      tbs: [...request.tbs],
    });
  }

  /** The current session pool (SessionSource): signers ask for it at each signature, so recovery can swap it. */
  get pool(): SessionPool {
    if (this.#closed !== undefined) throw new CaError('keyStore', 'PKCS#11 key store is closed');
    if (this.#pool === undefined) throw this.#lost ?? new CaError('keyStore', `PKCS#11 token "${this.tokenLabel}" is not available`);
    return this.#pool;
  }

  /** A signature failed (SessionSource): SignerHealth probes before trusting the token again. */
  signFailed(): void {
    this.#signFailures += 1;
  }

  readonly health: KeyStoreHealth = ((store: Pkcs11KeyStore): KeyStoreHealth => ({
    probe: () => store.#probe(),
    recover: () => store.#recover(),
    get signFailures(): number {
      return store.#signFailures;
    },
  }))(this);

  async create(name: string, spec: KeySpec): Promise<Pkcs11Signer> {
    checkName(name);
    const plan = signPlanFor(spec.algorithm, spec.rsaScheme);
    if (this.#creating.has(name)) throw conflict(name);
    this.#creating.add(name);
    try {
      const created = await this.pool.use(async ({ session }) => {
        if (findByLabel(session, name, undefined).length > 0) throw conflict(name);
        const keys = await generateKeyPair(session, name, spec.algorithm);
        return { keyHandle: keys.privateKey.handle, rebuilt: readPublicKey(keys.publicKey, spec.algorithm) };
      });
      if (created.rebuilt.keyAlgorithm !== spec.algorithm) {
        throw new CaError('keyStore', `token generated a ${created.rebuilt.keyAlgorithm} key for "${name}", asked for ${spec.algorithm}`);
      }
      return new Pkcs11Signer({
        name,
        keyAlgorithm: spec.algorithm,
        publicKey: created.rebuilt.spki,
        plan,
        sessions: this,
        key: this.#bind(name, created.keyHandle),
      });
    } catch (error) {
      throw keyStoreError(`PKCS#11 key generation for "${name}" failed`, error);
    } finally {
      this.#creating.delete(name);
    }
  }

  async load(name: string, options: LoadOptions = {}): Promise<Pkcs11Signer | undefined> {
    checkName(name);
    let found: { keyHandle: Buffer; rebuilt: RebuiltPublicKey } | undefined;
    try {
      found = await this.pool.use(async ({ session }) => {
        const key = findKey(session, name);
        return key === undefined ? undefined : { keyHandle: key.privateKey.handle, rebuilt: key.rebuilt };
      });
    } catch (error) {
      throw keyStoreError(`loading PKCS#11 key "${name}" failed`, error);
    }
    if (found === undefined) return undefined;
    return new Pkcs11Signer({
      name,
      keyAlgorithm: found.rebuilt.keyAlgorithm,
      publicKey: found.rebuilt.spki,
      plan: signPlanFor(found.rebuilt.keyAlgorithm, options.rsaScheme),
      sessions: this,
      key: this.#bind(name, found.keyHandle),
    });
  }

  /** The protection attributes of a stored private key, for audits and tests; undefined if there is no such key. */
  async describeKey(name: string): Promise<Pkcs11KeyAttributes | undefined> {
    checkName(name);
    try {
      return await this.pool.use(async ({ session }) => {
        const key = findKey(session, name);
        if (key === undefined) return undefined;
        const attrs = key.privateKey.getAttribute({
          token: null,
          private: null,
          sensitive: null,
          alwaysSensitive: null,
          extractable: null,
          neverExtractable: null,
          sign: null,
        }) as Omit<Pkcs11KeyAttributes, 'keyAlgorithm'>;
        return {
          keyAlgorithm: key.rebuilt.keyAlgorithm,
          token: attrs.token,
          private: attrs.private,
          sensitive: attrs.sensitive,
          alwaysSensitive: attrs.alwaysSensitive,
          extractable: attrs.extractable,
          neverExtractable: attrs.neverExtractable,
          sign: attrs.sign,
        };
      });
    } catch (error) {
      throw keyStoreError(`reading attributes of PKCS#11 key "${name}" failed`, error);
    }
  }

  stats(): Pkcs11KeyStoreStats {
    const configured = Number(process.env.UV_THREADPOOL_SIZE);
    const pool = this.#pool?.stats() ?? { sessions: 0, inFlight: 0, maxInFlight: 0, queued: 0, completed: 0 };
    return { ...pool, uvThreadpoolSize: Number.isInteger(configured) && configured > 0 ? configured : 4 };
  }

  /** Waits for running and queued operations, logs out, closes the sessions and finalizes the library if last. */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      await this.#recovering?.catch(() => undefined);
      try {
        await this.#batch.stop();
        await this.#pool?.close();
      } finally {
        this.#claim?.release();
        this.#lease.release();
      }
    })();
    return this.#closed;
  }

  /** The binding of `name`, shared by every signer of that key, its handle set to `handle` (the newest find). */
  #bind(name: string, handle: Buffer): KeyBinding {
    let binding = this.#keys.get(name);
    if (binding === undefined) {
      binding = { name, handle };
      this.#keys.set(name, binding);
    } else {
      binding.handle = handle;
    }
    return binding;
  }

  /**
   * Without signing (a CA key's signature is a certificate or CRL): C_GetSessionInfo on a session, C_GetTokenInfo
   * on the slot, and C_GetAttributeValue(CKA_CLASS) on every loaded key's handle (Base v2.40 §5.6, §5.5, §5.7).
   * With the token removed SoftHSM answers the last with CKR_OBJECT_HANDLE_INVALID and the token info with
   * CKR_GENERAL_ERROR; an HSM that dropped its sessions answers CKR_SESSION_HANDLE_INVALID; one gone from
   * the bus CKR_DEVICE_REMOVED or CKR_TOKEN_NOT_PRESENT.
   */
  async #probe(): Promise<void> {
    const pool = this.pool;
    const slot = this.#claim?.slot;
    try {
      await pool.use(async ({ handle }) => {
        pool.lib.C_GetSessionInfo(handle);
        if (slot !== undefined) pool.lib.C_GetTokenInfo(slot.handle);
        for (const key of this.#keys.values()) pool.lib.C_GetAttributeValue(handle, key.handle, [{ type: CKA_CLASS }]);
      });
    } catch (error) {
      throw this.#unavailable('probe', error);
    }
  }

  /**
   * Brings the token back without a restart: new sessions on the same slot and every loaded key found again by
   * label (its object handle may have changed); if that is not enough, C_Finalize and C_Initialize the library
   * (SoftHSM forgets a token that was removed until then) and find the token again by label. One recovery at a
   * time; signatures in flight on the old sessions end first (a C_Finalize under a running C_Sign is undefined
   * behaviour, Base v2.40 §5.4), for at most RECOVERY_DRAIN_MS.
   */
  #recover(): Promise<void> {
    if (this.#closed !== undefined) return Promise.reject(new CaError('keyStore', 'PKCS#11 key store is closed'));
    this.#recovering ??= (async () => {
      try {
        try {
          await this.#reopen(false);
        } catch {
          await this.#reopen(true);
        }
        this.#lost = undefined;
      } catch (error) {
        this.#lost = this.#unavailable('recovery', error);
        throw this.#lost;
      }
    })().finally(() => {
      this.#recovering = undefined;
    });
    return this.#recovering;
  }

  async #reopen(reinitialize: boolean): Promise<void> {
    const old = this.#pool;
    // Its session may be gone with the token, and nothing may run on the library across C_Finalize.
    await this.#batch.stop();
    if (reinitialize) {
      // Nothing may run on the library across C_Finalize: retire the sessions first.
      this.#pool = undefined;
      if (old !== undefined && !(await closedWithin(old, { logout: false }, RECOVERY_DRAIN_MS))) {
        throw new CaError('keyStore', `PKCS#11 operations still running on token "${this.tokenLabel}"; not re-initializing under them`);
      }
      this.#claim?.release();
      this.#claim = undefined;
      this.#lease.reinitialize();
      try {
        this.#claim = this.#lease.claimToken(this.tokenLabel);
      } catch (error) {
        // The detail would list the library's tokens; what matters (and may reach /readyz) is that ours is gone.
        throw new CaError('keyStore', 'the token is not present', { cause: error });
      }
    }
    const claim = this.#claim;
    if (claim === undefined) throw new CaError('keyStore', `PKCS#11 token "${this.tokenLabel}" is not claimed`);
    const pool = SessionPool.open(claim.slot, this.tokenLabel, this.#pin, this.#sessions);
    let handles: Map<string, Buffer>;
    try {
      handles = await pool.use(async ({ session }) => {
        const found = new Map<string, Buffer>();
        for (const name of this.#keys.keys()) {
          const key = findKey(session, name);
          if (key === undefined) throw new CaError('keyStore', `PKCS#11 key "${name}" is not on token "${this.tokenLabel}"`);
          found.set(name, key.privateKey.handle);
        }
        return found;
      });
    } catch (error) {
      await pool.close({ logout: false }).catch(() => undefined);
      throw error;
    }
    for (const [name, handle] of handles) this.#bind(name, handle);
    this.#pool = pool;
    // The old sessions are not logged out: login belongs to the application and token (Base v2.40 §5.6), and
    // the new sessions share it. They close once their operations end.
    if (!reinitialize && old !== undefined) void old.close({ logout: false }).catch(() => undefined);
  }

  /** A CaError('keyStore') that names the token and the CKR_* code only: it may end up in /readyz. */
  #unavailable(step: 'probe' | 'recovery', error: unknown): CaError {
    const code = ckrName(error) ?? ckrName((error as { cause?: unknown } | undefined)?.cause);
    const reason = code ?? (error instanceof CaError ? error.detail : 'unexpected error');
    return new CaError('keyStore', `PKCS#11 token "${this.tokenLabel}" ${step} failed: ${reason}`, { cause: error });
  }
}

/** How long recovery waits for operations in flight on the old sessions before it gives up on a re-initialize. */
const RECOVERY_DRAIN_MS = 5_000;

/** CKA_CLASS (Base v2.40 §4.2): an attribute every object has and any session may read. */
const CKA_CLASS = 0x0;

async function closedWithin(pool: SessionPool, options: { logout: boolean }, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([pool.close(options).then(() => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function checkName(name: string): void {
  if (typeof name !== 'string' || name === '' || Buffer.byteLength(name, 'utf8') > MAX_KEY_NAME_BYTES) {
    throw new CaError('malformed', `key name must be 1 to ${MAX_KEY_NAME_BYTES} bytes`);
  }
}

function conflict(name: string): CaError {
  return new CaError('conflict', `a key named "${name}" already exists on the token`);
}

function ambiguous(name: string, count: number, kind: 'private' | 'public'): CaError {
  return new CaError('keyStore', `PKCS#11 key "${name}" is ambiguous: ${count} ${kind} key objects carry that label`);
}

/** Token objects with CKA_LABEL = name (of one class, or any). Only token objects: session objects die with us. */
function findByLabel(session: Session, name: string, objectClass: ObjectClass | undefined): SessionObject[] {
  const template: ITemplate = { label: name, token: true };
  if (objectClass !== undefined) template.class = objectClass;
  const found = session.find(template);
  const objects: SessionObject[] = [];
  for (let i = 0; i < found.length; i += 1) objects.push(found.items(i));
  return objects;
}

/**
 * The private key object labelled `name` and its rebuilt SPKI, or undefined if the token has no such key.
 * The SPKI comes from the public key object; failing that, an RSA private key object carries CKA_MODULUS and
 * CKA_PUBLIC_EXPONENT, readable even when sensitive (Current Mechanisms v2.40 §2.1.3), so a key imported
 * without its public half still loads. An EC private key has no CKA_EC_POINT (§2.3.4), so there the public
 * object is required.
 */
function findKey(session: Session, name: string): { privateKey: SessionObject; rebuilt: RebuiltPublicKey } | undefined {
  const privateKeys = findByLabel(session, name, ObjectClass.PRIVATE_KEY);
  if (privateKeys.length > 1) throw ambiguous(name, privateKeys.length, 'private');
  const privateKey = privateKeys[0];
  if (privateKey === undefined) return undefined;
  const publicKeys = findByLabel(session, name, ObjectClass.PUBLIC_KEY);
  if (publicKeys.length > 1) throw ambiguous(name, publicKeys.length, 'public');
  const publicKey = publicKeys[0];
  const { keyType } = privateKey.getAttribute({ keyType: null }) as { keyType: number };
  let rebuilt: RebuiltPublicKey;
  if (keyType === KeyType.EC) {
    if (publicKey === undefined) throw new CaError('keyStore', `PKCS#11 EC key "${name}" has no public key object`);
    rebuilt = readPublicKey(publicKey, 'ecdsa-p256');
  } else if (keyType === KeyType.RSA) {
    rebuilt = readPublicKey(publicKey ?? privateKey, 'rsa-2048');
  } else {
    throw new CaError('keyStore', `PKCS#11 key "${name}" has unsupported CKA_KEY_TYPE ${keyType}`);
  }
  return { privateKey, rebuilt };
}

/**
 * C_GenerateKeyPair on the token (Base v2.40 §5.14; EC: Current Mechanisms v2.40 §2.3.5, RSA: §2.1.4), run
 * with a callback so pkcs11js does it on the threadpool: RSA-4096 generation takes seconds and must not stall
 * the event loop.
 */
function generateKeyPair(session: Session, name: string, algorithm: KeyAlgorithm): Promise<IKeyPair> {
  const id = Buffer.from(name, 'utf8');
  const publicTemplate: ITemplate = {
    class: ObjectClass.PUBLIC_KEY,
    token: true,
    private: false,
    label: name,
    id,
    verify: true,
    encrypt: false,
    wrap: false,
  };
  // Private key protections (Base v2.40 §4.9): CKA_SENSITIVE and !CKA_EXTRACTABLE at generation make the token
  // set CKA_ALWAYS_SENSITIVE and CKA_NEVER_EXTRACTABLE, the attestable "born on the token, never left" pair.
  // Only CKA_SIGN is granted: a CA key that can also decrypt or unwrap would be an oracle.
  const privateTemplate: ITemplate = {
    class: ObjectClass.PRIVATE_KEY,
    token: true,
    private: true,
    sensitive: true,
    extractable: false,
    sign: true,
    decrypt: false,
    unwrap: false,
    derive: false,
    label: name,
    id,
  };
  let mechanism: KeyGenMechanism;
  if (isEcAlgorithm(algorithm)) {
    mechanism = KeyGenMechanism.EC;
    publicTemplate.keyType = KeyType.EC;
    privateTemplate.keyType = KeyType.EC;
    publicTemplate.paramsEC = EC_CURVES[algorithm].params;
  } else {
    const bits = rsaBits(algorithm);
    if (bits === undefined) throw new CaError('keyStore', `unsupported key algorithm ${algorithm}`);
    mechanism = KeyGenMechanism.RSA;
    publicTemplate.keyType = KeyType.RSA;
    privateTemplate.keyType = KeyType.RSA;
    publicTemplate.modulusBits = bits;
    publicTemplate.publicExponent = RSA_PUBLIC_EXPONENT;
  }
  return new Promise<IKeyPair>((resolve, reject) => {
    session.generateKeyPair(mechanism, publicTemplate, privateTemplate, (error, keys) => {
      if (error !== null || keys === null) reject(error ?? new Error('C_GenerateKeyPair returned no keys'));
      else resolve(keys);
    });
  });
}

/**
 * Attribute types read by number (Base v2.40 §4.8, Current Mechanisms v2.40 §2.1.2, §2.3.3). graphene's named
 * lookup cannot be used for EC: CKA_EC_PARAMS and the older CKA_ECDSA_PARAMS are one number with two names, and
 * graphene hands the value back under the other one.
 */
const CKA_MODULUS = 0x120;
const CKA_PUBLIC_EXPONENT = 0x122;
const CKA_EC_PARAMS = 0x180;
const CKA_EC_POINT = 0x181;

/** Rebuilds the SPKI from a key object's public attributes; `family` only chooses EC or RSA attributes. */
function readPublicKey(object: SessionObject, family: KeyAlgorithm): RebuiltPublicKey {
  if (isEcAlgorithm(family)) return ecPublicKey(object.getAttribute(CKA_EC_PARAMS), object.getAttribute(CKA_EC_POINT));
  return rsaPublicKey(object.getAttribute(CKA_MODULUS), object.getAttribute(CKA_PUBLIC_EXPONENT));
}
