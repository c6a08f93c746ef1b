import { constants, verify, type KeyObject } from 'node:crypto';
import { hashFor, type SignatureAlgorithm } from './key-algorithm.js';

/** Verifies an X.509-ready signature value (ECDSA DER, RSA raw) over `data` with node:crypto. */
export function verifySignature(
  algorithm: SignatureAlgorithm,
  key: KeyObject,
  data: Uint8Array,
  signature: Uint8Array,
): boolean {
  const hash = hashFor(algorithm);
  switch (algorithm) {
    case 'ecdsa-with-SHA256':
    case 'ecdsa-with-SHA384':
      return verify(hash, data, { key, dsaEncoding: 'der' }, signature);
    case 'sha256WithRSAEncryption':
      return verify(hash, data, { key, padding: constants.RSA_PKCS1_PADDING }, signature);
    case 'rsassa-pss-sha256':
      return verify(hash, data, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 }, signature);
  }
}
