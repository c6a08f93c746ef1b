import { createPublicKey, type KeyObject } from 'node:crypto';
import { CaError } from '../core/errors.js';
import type { KeyAlgorithm } from '../core/key-algorithm.js';
import type { KeyFacts } from '../core/key-facts.js';

export type { KeyFacts };

/**
 * One key check for every public key Chancery is asked to trust or certify, in two settings: ACME account
 * (JWS) keys and CSR subject keys (DESIGN.md policy/). CABF BR 6.1.5: RSA moduli of at least 2048 bits and
 * a multiple of 8; ECDSA on P-256 or P-384. RSA above 8192 bits is refused to bound verification cost.
 * Ed25519 is accepted for account keys (RFC 8555 §6.2 SHOULD accept EdDSA), not for certificates: the
 * relying parties a private CA serves (TLS stacks, browsers) do not verify Ed25519 chains.
 */
export interface KeyPolicy {
  /** How the checked keys are named in refusals ("account keys", "certificate keys"). */
  what: string;
  minRsaBits: number;
  maxRsaBits: number;
  allowedCurves: readonly ('P-256' | 'P-384')[];
  allowEd25519: boolean;
}

export const CSR_KEY_POLICY: KeyPolicy = { what: 'certificate keys', minRsaBits: 2048, maxRsaBits: 8192, allowedCurves: ['P-256', 'P-384'], allowEd25519: false };
export const ACCOUNT_KEY_POLICY: KeyPolicy = { ...CSR_KEY_POLICY, what: 'account keys', allowEd25519: true };
/** The policy certificate keys get when none is configured. */
export const DEFAULT_KEY_POLICY = CSR_KEY_POLICY;

/** Throws `badPublicKey` naming the limit when the key is outside the policy; `where` prefixes curve refusals. */
export function checkKeyFacts(facts: KeyFacts, policy: KeyPolicy, where = 'the key'): void {
  switch (facts.family) {
    case 'rsa': {
      const { bits, publicExponent } = facts;
      if (bits < policy.minRsaBits) {
        throw new CaError('badPublicKey', `RSA key of ${bits} bits is too small: at least ${policy.minRsaBits} bits are required`);
      }
      if (bits > policy.maxRsaBits || bits % 8 !== 0) {
        throw new CaError('badPublicKey', `RSA key of ${bits} bits is not allowed: use 2048, 3072 or 4096 bits`);
      }
      // An even exponent (or 1) is not an RSA key anyone can sign with; 2^32 or more is never legitimate.
      if (publicExponent <= 1n || publicExponent % 2n === 0n || publicExponent >= 2n ** 32n) {
        throw new CaError('badPublicKey', 'RSA public exponent is not acceptable: use 65537');
      }
      return;
    }
    case 'ec':
      if (!(policy.allowedCurves as readonly string[]).includes(facts.curve)) {
        throw new CaError('badPublicKey', `${where} is on curve ${facts.curve}; ${policy.what} must use ${policy.allowedCurves.join(' or ')}`);
      }
      return;
    case 'ed25519':
      if (!policy.allowEd25519) {
        throw new CaError('badPublicKey', `ed25519 keys are not accepted for ${policy.what}: use RSA or ECDSA ${policy.allowedCurves.join('/')}`);
      }
      return;
    default:
      throw new CaError('badPublicKey', `${facts.type} keys are not accepted for ${policy.what}: use RSA or ECDSA ${policy.allowedCurves.join('/')}`);
  }
}

export interface CheckedKey {
  key: KeyObject;
  /** The subscriber key's family, e.g. for choosing keyUsage bits. */
  family: 'rsa' | 'ec';
  /** When it is one of the sizes Chancery itself generates; informative only. */
  algorithm?: KeyAlgorithm;
}

const NODE_CURVES: Record<string, string> = { prime256v1: 'P-256', secp384r1: 'P-384', secp521r1: 'P-521' };

/** The facts of an imported public key. */
export function keyFactsOf(key: KeyObject): KeyFacts {
  const details = key.asymmetricKeyDetails ?? {};
  switch (key.asymmetricKeyType) {
    case 'rsa':
      return { family: 'rsa', bits: details.modulusLength ?? 0, publicExponent: details.publicExponent ?? 0n };
    case 'ec':
      return { family: 'ec', curve: NODE_CURVES[details.namedCurve ?? ''] ?? details.namedCurve ?? 'unknown' };
    case 'ed25519':
      return { family: 'ed25519' };
    default:
      return { family: 'other', type: key.asymmetricKeyType ?? 'unknown' };
  }
}

/** A subject key (SPKI DER) under `policy`. `imported`: the same SPKI already imported by the caller (e.g. to check a CSR's signature). */
export function checkPublicKey(spki: Uint8Array, policy: KeyPolicy = CSR_KEY_POLICY, imported?: KeyObject): CheckedKey {
  let key: KeyObject;
  try {
    key = imported ?? createPublicKey({ key: Buffer.from(spki), format: 'der', type: 'spki' });
  } catch (cause) {
    throw new CaError('badPublicKey', 'public key is not a valid SubjectPublicKeyInfo', { cause });
  }
  const facts = keyFactsOf(key);
  checkKeyFacts(facts, policy, 'the certificate key');
  if (facts.family === 'rsa') {
    const algorithm = ([2048, 3072, 4096] as const).includes(facts.bits as 2048) ? (`rsa-${facts.bits}` as KeyAlgorithm) : undefined;
    return { key, family: 'rsa', algorithm };
  }
  if (facts.family === 'ec') return { key, family: 'ec', algorithm: facts.curve === 'P-256' ? 'ecdsa-p256' : 'ecdsa-p384' };
  // Only reachable with a policy that admits Ed25519 for certificates, which none does today.
  throw new CaError('badPublicKey', `${facts.family} keys cannot be certified`);
}
