import type { KeyAlgorithm } from '../../core/key-algorithm.js';

/**
 * Where the software KeyStore keeps its encrypted PKCS#8 keys. Declared here, implemented by db/ (so every
 * instance sharing one database shares the CA keys), and by an in-memory map in tests.
 */
export interface KeyBlob {
  name: string;
  algorithm: KeyAlgorithm;
  /** PKCS#8 EncryptedPrivateKeyInfo, DER (PBES2, scrypt or PBKDF2 + AES-256-CBC as node:crypto writes it). */
  encryptedPkcs8: Uint8Array;
  createdAt: Date;
}

export interface KeyBlobStore {
  getKeyBlob(name: string): Promise<KeyBlob | undefined>;
  /** Throws CaError('conflict') if a blob of that name exists. */
  putKeyBlob(blob: KeyBlob): Promise<void>;
}
