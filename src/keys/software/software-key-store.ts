import {
  createPrivateKey,
  createPublicKey,
  generateKeyPair,
  sign as cryptoSign,
  constants,
  type KeyObject,
} from 'node:crypto';
import { promisify } from 'node:util';
import { CaError } from '../../core/errors.js';
import {
  hashFor,
  rsaBits,
  signatureAlgorithmFor,
  type KeyAlgorithm,
  type RsaScheme,
} from '../../core/key-algorithm.js';
import type { KeySpec, KeyStore, LoadOptions, Signer } from '../signer.js';
import type { KeyBlobStore } from './key-blob-store.js';
import type { Clock } from '../../core/clock.js';

const generateKeyPairAsync = promisify(generateKeyPair);

/**
 * The embedded default KeyStore: node:crypto keys, stored as encrypted PKCS#8 through a KeyBlobStore (the
 * database, so every instance sharing it shares the CA keys) and cached in memory as KeyObjects once
 * decrypted. The passphrase never leaves this object.
 */
export class SoftwareKeyStore implements KeyStore {
  readonly backend = 'software' as const;
  private readonly blobs: KeyBlobStore;
  private readonly passphrase: string;
  private readonly clock: Clock;
  private readonly cache = new Map<string, { key: KeyObject; algorithm: KeyAlgorithm }>();

  constructor(options: { blobs: KeyBlobStore; passphrase: string; clock: Clock }) {
    if (options.passphrase.length < 16) {
      throw new CaError('badConfig', 'CHANCERY_KEY_PASSPHRASE must be at least 16 characters');
    }
    this.blobs = options.blobs;
    this.passphrase = options.passphrase;
    this.clock = options.clock;
  }

  async create(name: string, spec: KeySpec): Promise<Signer> {
    if (this.cache.has(name) || (await this.blobs.getKeyBlob(name))) {
      throw new CaError('conflict', `a key named "${name}" already exists`);
    }
    const { privateKey } = await generate(spec.algorithm);
    const encryptedPkcs8 = privateKey.export({
      type: 'pkcs8',
      format: 'der',
      cipher: 'aes-256-cbc',
      passphrase: this.passphrase,
    });
    await this.blobs.putKeyBlob({
      name,
      algorithm: spec.algorithm,
      encryptedPkcs8: new Uint8Array(encryptedPkcs8),
      createdAt: this.clock.now(),
    });
    this.cache.set(name, { key: privateKey, algorithm: spec.algorithm });
    return softwareSigner(name, privateKey, spec.algorithm, spec.rsaScheme ?? 'pkcs1');
  }

  async load(name: string, options: LoadOptions = {}): Promise<Signer | undefined> {
    let entry = this.cache.get(name);
    if (!entry) {
      const blob = await this.blobs.getKeyBlob(name);
      if (!blob) return undefined;
      let key: KeyObject;
      try {
        key = createPrivateKey({
          key: Buffer.from(blob.encryptedPkcs8),
          format: 'der',
          type: 'pkcs8',
          passphrase: this.passphrase,
        });
      } catch (cause) {
        // The message names the key, never the passphrase.
        throw new CaError('keyStore', `cannot decrypt key "${name}": wrong CHANCERY_KEY_PASSPHRASE?`, { cause });
      }
      entry = { key, algorithm: blob.algorithm };
      this.cache.set(name, entry);
    }
    return softwareSigner(name, entry.key, entry.algorithm, options.rsaScheme ?? 'pkcs1');
  }

  async close(): Promise<void> {
    this.cache.clear();
  }
}

async function generate(algorithm: KeyAlgorithm): Promise<{ privateKey: KeyObject }> {
  const bits = rsaBits(algorithm);
  if (bits !== undefined) {
    return generateKeyPairAsync('rsa', { modulusLength: bits, publicExponent: 0x10001 });
  }
  const namedCurve = algorithm === 'ecdsa-p384' ? 'P-384' : 'P-256';
  return generateKeyPairAsync('ec', { namedCurve });
}

function softwareSigner(name: string, key: KeyObject, keyAlgorithm: KeyAlgorithm, rsaScheme: RsaScheme): Signer {
  const algorithm = signatureAlgorithmFor(keyAlgorithm, rsaScheme);
  const hash = hashFor(algorithm);
  const publicKey = new Uint8Array(createPublicKey(key).export({ type: 'spki', format: 'der' }));
  const isEc = keyAlgorithm.startsWith('ecdsa');
  const signOptions = isEc
    ? { key, dsaEncoding: 'der' as const }
    : rsaScheme === 'pss'
      ? { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 }
      : { key, padding: constants.RSA_PKCS1_PADDING };
  return {
    name,
    keyAlgorithm,
    algorithm,
    publicKey,
    // node:crypto's sync sign is ~50 µs for P-256; the callback form runs it in the threadpool, which
    // lets RSA-4096 signs overlap without stalling the event loop.
    sign: (tbs) =>
      new Promise((resolve, reject) => {
        cryptoSign(hash, tbs, signOptions, (error, signature) =>
          error ? reject(error) : resolve(new Uint8Array(signature)),
        );
      }),
  };
}
