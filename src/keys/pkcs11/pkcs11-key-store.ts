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
import { rsaBits, type KeyAlgorithm } from '../../core/key-algorithm.js';
import type { KeySpec, KeyStore, LoadOptions } from '../signer.js';
import { signPlanFor } from './mechanisms.js';
import { keyStoreError } from './pkcs11-error.js';
import { acquireModule, type ModuleLease, type TokenClaim } from './pkcs11-module.js';
import { Pkcs11Signer } from './pkcs11-signer.js';
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
    const pool = SessionPool.open(claim.slot, options.tokenLabel, options.pin, options.sessions ?? DEFAULT_SESSIONS);
    return new Pkcs11KeyStore({ tokenLabel: options.tokenLabel, pool, claim, lease });
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
export class Pkcs11KeyStore implements KeyStore {
  readonly backend = 'pkcs11' as const;
  readonly tokenLabel: string;
  readonly #pool: SessionPool;
  readonly #claim: TokenClaim;
  readonly #lease: ModuleLease;
  /** Names being created right now: the token enforces no label uniqueness, so this store does, in-process. */
  readonly #creating = new Set<string>();
  #closed: Promise<void> | undefined;

  /** Use openPkcs11KeyStore(); this takes already-opened resources and owns them from here on. */
  constructor(init: { tokenLabel: string; pool: SessionPool; claim: TokenClaim; lease: ModuleLease }) {
    this.tokenLabel = init.tokenLabel;
    this.#pool = init.pool;
    this.#claim = init.claim;
    this.#lease = init.lease;
  }

  async create(name: string, spec: KeySpec): Promise<Pkcs11Signer> {
    checkName(name);
    const plan = signPlanFor(spec.algorithm, spec.rsaScheme);
    if (this.#creating.has(name)) throw conflict(name);
    this.#creating.add(name);
    try {
      const created = await this.#pool.use(async ({ session }) => {
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
        pool: this.#pool,
        keyHandle: created.keyHandle,
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
      found = await this.#pool.use(async ({ session }) => {
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
      pool: this.#pool,
      keyHandle: found.keyHandle,
    });
  }

  /** The protection attributes of a stored private key, for audits and tests; undefined if there is no such key. */
  async describeKey(name: string): Promise<Pkcs11KeyAttributes | undefined> {
    checkName(name);
    try {
      return await this.#pool.use(async ({ session }) => {
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
    return { ...this.#pool.stats(), uvThreadpoolSize: Number.isInteger(configured) && configured > 0 ? configured : 4 };
  }

  /** Waits for running and queued operations, logs out, closes the sessions and finalizes the library if last. */
  close(): Promise<void> {
    this.#closed ??= this.#pool.close().finally(() => {
      this.#claim.release();
      this.#lease.release();
    });
    return this.#closed;
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
