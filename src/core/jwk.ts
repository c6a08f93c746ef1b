import { createPublicKey } from 'node:crypto';
import { CaError } from './errors.js';

/** The members that identify a public key (RFC 7638 §3.2), per key type. */
const IDENTIFYING: Record<string, string[]> = { EC: ['crv', 'kty', 'x', 'y'], RSA: ['e', 'kty', 'n'], OKP: ['crv', 'kty', 'x'] };

/** True when two JWKs are the same public key (compares only the identifying members). */
export function sameJwk(a: Record<string, unknown>, b: Record<string, unknown>): boolean {
  const members = IDENTIFYING[String(a.kty)];
  return members !== undefined && a.kty === b.kty && members.every((m) => typeof a[m] === 'string' && a[m] === b[m]);
}

/** SubjectPublicKeyInfo DER of a public JWK, to compare with certificate and CSR keys. */
export function jwkToSpki(jwk: Record<string, string>): Buffer {
  try {
    return createPublicKey({ key: jwk, format: 'jwk' }).export({ type: 'spki', format: 'der' });
  } catch (cause) {
    throw new CaError('badPublicKey', 'JWK is not a usable public key', { cause });
  }
}
