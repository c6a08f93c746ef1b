import type { KeyAlgorithm } from './key-algorithm.js';

/**
 * An encrypted software key as stored (keys/software keeps them in the database, so every instance sharing
 * one database shares the CA keys). A core type so db/ can store it without importing keys/ (DESIGN.md).
 */
export interface KeyBlob {
  name: string;
  algorithm: KeyAlgorithm;
  /** PKCS#8 EncryptedPrivateKeyInfo, DER (PBES2, scrypt or PBKDF2 + AES-256-CBC as node:crypto writes it). */
  encryptedPkcs8: Uint8Array;
  createdAt: Date;
}
