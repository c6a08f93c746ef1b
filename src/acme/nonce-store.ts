import { randomBytes } from 'node:crypto';

/**
 * Anti-replay nonces (RFC 8555 §6.5). Every POST must carry a nonce this server issued and that has not been
 * used; each is good exactly once. The composition root backs this with the database (DESIGN.md rule 7) so a
 * nonce issued by one `chancery serve` process is accepted by another behind the same load balancer.
 */
export interface NonceStore {
  /** A fresh nonce for a Replay-Nonce header. Use generateNonce() for the value. */
  issue(): Promise<string>;
  /**
   * Marks the nonce used. True exactly once for a nonce issue() returned (and has not expired); false for
   * unknown, expired or already used ones. Implementations must make this atomic across processes
   * (e.g. DELETE ... RETURNING) so two racing requests cannot both succeed with one nonce.
   */
  consume(nonce: string): Promise<boolean>;
}

/**
 * 128 bits from the CSPRNG, base64url without padding (RFC 8555 §6.5.1 requires base64url; the entropy makes
 * nonces unguessable, so a stored nonce can only be used by someone who received it).
 */
export function generateNonce(): string {
  return randomBytes(16).toString('base64url');
}

/**
 * RFC 8555 §6.5.1: the nonce value is base64url (no padding). A JWS whose nonce is not is `malformed`; one that
 * is well formed but unknown is `badNonce`. The length bound keeps junk out of the store lookup.
 */
export function isWellFormedNonce(value: string): boolean {
  return /^[A-Za-z0-9_-]{1,128}$/.test(value);
}
