import { createPublicKey, type KeyObject } from 'node:crypto';
import { CaError } from '../core/errors.js';
import type { KeyAlgorithm } from '../core/key-algorithm.js';

/**
 * One key check for every public key Chancery is asked to trust or certify: CSR subject keys now, ACME
 * account (JWS) keys later (DESIGN.md policy/). CABF BR 6.1.5: RSA moduli of at least 2048 bits and a
 * multiple of 8; ECDSA on P-256 or P-384. RSA above 8192 bits is refused to bound verification cost.
 */
export interface KeyPolicy {
  minRsaBits: number;
  maxRsaBits: number;
  allowedCurves: readonly ('P-256' | 'P-384')[];
}

export const DEFAULT_KEY_POLICY: KeyPolicy = { minRsaBits: 2048, maxRsaBits: 8192, allowedCurves: ['P-256', 'P-384'] };

export interface CheckedKey {
  key: KeyObject;
  /** The subscriber key's family, e.g. for choosing keyUsage bits. */
  family: 'rsa' | 'ec';
  /** When it is one of the sizes Chancery itself generates; informative only. */
  algorithm?: KeyAlgorithm;
}

/** `imported`: the same SubjectPublicKeyInfo already imported by the caller (e.g. to check a CSR's signature). */
export function checkPublicKey(spki: Uint8Array, policy: KeyPolicy = DEFAULT_KEY_POLICY, imported?: KeyObject): CheckedKey {
  let key: KeyObject;
  try {
    key = imported ?? createPublicKey({ key: Buffer.from(spki), format: 'der', type: 'spki' });
  } catch (cause) {
    throw new CaError('badPublicKey', 'public key is not a valid SubjectPublicKeyInfo', { cause });
  }
  const details = key.asymmetricKeyDetails ?? {};
  if (key.asymmetricKeyType === 'rsa') {
    const bits = details.modulusLength ?? 0;
    if (bits < policy.minRsaBits) {
      throw new CaError('badPublicKey', `RSA key of ${bits} bits is too small: at least ${policy.minRsaBits} bits are required`);
    }
    if (bits > policy.maxRsaBits || bits % 8 !== 0) {
      throw new CaError('badPublicKey', `RSA key of ${bits} bits is not allowed: use 2048, 3072 or 4096 bits`);
    }
    const algorithm = ([2048, 3072, 4096] as const).includes(bits as 2048) ? (`rsa-${bits}` as KeyAlgorithm) : undefined;
    return { key, family: 'rsa', algorithm };
  }
  if (key.asymmetricKeyType === 'ec') {
    const curve = details.namedCurve === 'prime256v1' ? 'P-256' : details.namedCurve === 'secp384r1' ? 'P-384' : undefined;
    if (!curve || !policy.allowedCurves.includes(curve)) {
      throw new CaError('badPublicKey', `ECDSA curve ${details.namedCurve ?? 'unknown'} is not allowed: use ${policy.allowedCurves.join(' or ')}`);
    }
    return { key, family: 'ec', algorithm: curve === 'P-256' ? 'ecdsa-p256' : 'ecdsa-p384' };
  }
  throw new CaError('badPublicKey', `${key.asymmetricKeyType ?? 'unknown'} keys are not accepted: use RSA or ECDSA P-256/P-384`);
}
