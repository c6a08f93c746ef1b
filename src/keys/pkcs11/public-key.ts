import { createPublicKey } from 'node:crypto';
import type { KeyAlgorithm } from '../../core/key-algorithm.js';

/**
 * CKA_EC_PARAMS holds DER ECParameters; Chancery only uses the namedCurve choice (RFC 5480 §2.1.1.1), i.e. the
 * DER of the curve OID: secp256r1 = 1.2.840.10045.3.1.7, secp384r1 = 1.3.132.0.34.
 */
export const EC_CURVES = {
  'ecdsa-p256': { params: Buffer.from('06082a8648ce3d030107', 'hex'), jwkCurve: 'P-256', fieldBytes: 32 },
  'ecdsa-p384': { params: Buffer.from('06052b81040022', 'hex'), jwkCurve: 'P-384', fieldBytes: 48 },
} as const;

type EcAlgorithm = keyof typeof EC_CURVES;

export function isEcAlgorithm(key: KeyAlgorithm): key is EcAlgorithm {
  return key in EC_CURVES;
}

export interface RebuiltPublicKey {
  keyAlgorithm: KeyAlgorithm;
  /** SubjectPublicKeyInfo, DER. */
  spki: Uint8Array;
}

/**
 * SPKI from the public key object's CKA_EC_PARAMS and CKA_EC_POINT. The JWK route lets node:crypto do the
 * encoding, and it also checks that the point is on the curve.
 */
export function ecPublicKey(params: Buffer, point: Buffer): RebuiltPublicKey {
  const entry = (Object.entries(EC_CURVES) as [EcAlgorithm, (typeof EC_CURVES)[EcAlgorithm]][]).find(([, curve]) =>
    curve.params.equals(params),
  );
  if (entry === undefined) throw new Error(`unsupported CKA_EC_PARAMS ${params.toString('hex')}`);
  const [keyAlgorithm, curve] = entry;
  const q = uncompressedPoint(point, curve.fieldBytes);
  const x = q.subarray(1, 1 + curve.fieldBytes);
  const y = q.subarray(1 + curve.fieldBytes);
  const key = createPublicKey({
    key: { kty: 'EC', crv: curve.jwkCurve, x: x.toString('base64url'), y: y.toString('base64url') },
    format: 'jwk',
  });
  return { keyAlgorithm, spki: new Uint8Array(key.export({ type: 'spki', format: 'der' })) };
}

/**
 * CKA_EC_POINT is "DER-encoding of ANSI X9.62 ECPoint value Q" (Current Mechanisms v2.40 §2.3.3), i.e. an OCTET
 * STRING wrapping 04 || X || Y, which is what SoftHSM returns. Some tokens return the bare point; both are
 * told apart by length, since the bare uncompressed point also starts with 0x04.
 */
function uncompressedPoint(point: Buffer, fieldBytes: number): Buffer {
  const bare = 1 + 2 * fieldBytes;
  if (point.length === bare && point[0] === 0x04) return point;
  // OCTET STRING, short-form length (bare <= 97 < 128 for P-256/P-384).
  if (point.length === bare + 2 && point[0] === 0x04 && point[1] === bare && point[2] === 0x04) return point.subarray(2);
  throw new Error(`CKA_EC_POINT is not an uncompressed point of a ${fieldBytes * 8}-bit curve`);
}

/** SPKI from CKA_MODULUS and CKA_PUBLIC_EXPONENT (big-endian unsigned integers, Base v2.40 §3.1 Big integer). */
export function rsaPublicKey(modulus: Buffer, publicExponent: Buffer): RebuiltPublicKey {
  const n = stripLeadingZeros(modulus);
  const e = stripLeadingZeros(publicExponent);
  const bits = n.length * 8 - Math.clz32(n[0] ?? 0) + 24;
  const keyAlgorithm = bits === 2048 ? 'rsa-2048' : bits === 3072 ? 'rsa-3072' : bits === 4096 ? 'rsa-4096' : undefined;
  if (keyAlgorithm === undefined) throw new Error(`unsupported RSA modulus of ${bits} bits`);
  const key = createPublicKey({
    key: { kty: 'RSA', n: n.toString('base64url'), e: e.toString('base64url') },
    format: 'jwk',
  });
  return { keyAlgorithm, spki: new Uint8Array(key.export({ type: 'spki', format: 'der' })) };
}

function stripLeadingZeros(bytes: Buffer): Buffer {
  let start = 0;
  while (start < bytes.length - 1 && bytes[start] === 0) start += 1;
  return bytes.subarray(start);
}
