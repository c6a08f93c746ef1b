import type { KeyBlob } from '../../core/key-blob.js';

export type { KeyBlob };

/**
 * Where the software KeyStore keeps its encrypted PKCS#8 keys. Declared here, implemented by db/ (so every
 * instance sharing one database shares the CA keys), and by an in-memory map in tests.
 */
export interface KeyBlobStore {
  getKeyBlob(name: string): Promise<KeyBlob | undefined>;
  /** Throws CaError('conflict') if a blob of that name exists. */
  putKeyBlob(blob: KeyBlob): Promise<void>;
}
