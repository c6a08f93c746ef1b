import { generateNonce, type NonceStore } from '../../src/acme/nonce-store.js';

/**
 * In-memory NonceStore for unit tests of the wire layer. Production uses the database-backed store so nonces
 * work across processes (DESIGN.md rule 7); this one is per process and bounded: when full, the oldest nonce is
 * forgotten (a client holding it gets badNonce and retries, RFC 8555 §6.5).
 */
export class MemoryNonceStore implements NonceStore {
  private readonly live = new Set<string>();
  /** Every nonce ever issued, so tests can tell "replayed" from "never issued". */
  readonly issued: string[] = [];

  constructor(private readonly capacity = 10_000) {}

  async issue(): Promise<string> {
    const nonce = generateNonce();
    this.live.add(nonce);
    this.issued.push(nonce);
    if (this.live.size > this.capacity) {
      const oldest = this.live.values().next().value;
      if (oldest !== undefined) this.live.delete(oldest);
    }
    return nonce;
  }

  async consume(nonce: string): Promise<boolean> {
    return this.live.delete(nonce);
  }

  get size(): number {
    return this.live.size;
  }
}
