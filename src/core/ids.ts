import { randomBuffer } from './random-pool.js';

/**
 * Opaque resource ids (accounts, orders, authorizations, challenges): 128 random bits, base64url, so
 * URLs are unguessable and never reveal counts. Challenge tokens use the same form (RFC 8555 §8.1 asks
 * for at least 128 bits of entropy).
 */
export function newId(bytes = 16): string {
  return randomBuffer(bytes).toString('base64url');
}
