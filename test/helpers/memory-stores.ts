import type { IssuedCertificate, IssuerRecord } from '../../src/core/certificate.js';
import { CaError } from '../../src/core/errors.js';
import type { KeyBlob, KeyBlobStore } from '../../src/keys/software/key-blob-store.js';

/** In-memory stand-ins for the database-backed stores, for unit tests of the layers above db/. */
export class MemoryKeyBlobs implements KeyBlobStore {
  readonly blobs = new Map<string, KeyBlob>();
  async getKeyBlob(name: string): Promise<KeyBlob | undefined> {
    return this.blobs.get(name);
  }
  async putKeyBlob(blob: KeyBlob): Promise<void> {
    if (this.blobs.has(blob.name)) throw new CaError('conflict', `key blob ${blob.name} exists`);
    this.blobs.set(blob.name, blob);
  }
}

export class MemoryCertificateStore {
  readonly serials = new Set<string>();
  readonly certificates = new Map<string, IssuedCertificate>();
  async reserveSerial(serial: string): Promise<void> {
    if (this.serials.has(serial)) throw new CaError('conflict', `serial ${serial} reused`);
    this.serials.add(serial);
  }
  async insertCertificate(certificate: IssuedCertificate): Promise<void> {
    if (!this.serials.has(certificate.serial)) throw new CaError('caState', 'serial not reserved');
    this.certificates.set(certificate.serial, certificate);
  }
}

export class MemoryIssuers {
  readonly records: IssuerRecord[] = [];
  async findRoot(): Promise<IssuerRecord | undefined> {
    return this.records.find((r) => r.role === 'root');
  }
  async saveAll(records: IssuerRecord[]): Promise<void> {
    this.records.push(...records);
  }
}
