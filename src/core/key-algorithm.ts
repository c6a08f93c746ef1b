/** Key types Chancery creates for CAs and accepts from subscribers. */
export type KeyAlgorithm = 'ecdsa-p256' | 'ecdsa-p384' | 'rsa-2048' | 'rsa-3072' | 'rsa-4096';

export const KEY_ALGORITHMS: readonly KeyAlgorithm[] = ['ecdsa-p256', 'ecdsa-p384', 'rsa-2048', 'rsa-3072', 'rsa-4096'];

/** RSA signature padding: PKCS#1 v1.5 (RFC 8017 §8.2) or PSS with SHA-256/MGF1-SHA-256/salt 32 (RFC 4055). */
export type RsaScheme = 'pkcs1' | 'pss';

/**
 * The signature a Signer produces, named by what goes into an X.509 AlgorithmIdentifier.
 * ECDSA keys hash with the digest matching their curve (CABF BR 7.1.3.2: P-256/SHA-256, P-384/SHA-384).
 */
export type SignatureAlgorithm =
  | 'ecdsa-with-SHA256'
  | 'ecdsa-with-SHA384'
  | 'sha256WithRSAEncryption'
  | 'rsassa-pss-sha256';

export type HashName = 'sha256' | 'sha384';

export function isKeyAlgorithm(value: string): value is KeyAlgorithm {
  return (KEY_ALGORITHMS as readonly string[]).includes(value);
}

export function signatureAlgorithmFor(key: KeyAlgorithm, rsaScheme: RsaScheme = 'pkcs1'): SignatureAlgorithm {
  if (key === 'ecdsa-p256') return 'ecdsa-with-SHA256';
  if (key === 'ecdsa-p384') return 'ecdsa-with-SHA384';
  return rsaScheme === 'pss' ? 'rsassa-pss-sha256' : 'sha256WithRSAEncryption';
}

export function hashFor(signature: SignatureAlgorithm): HashName {
  return signature === 'ecdsa-with-SHA384' ? 'sha384' : 'sha256';
}

export function rsaBits(key: KeyAlgorithm): number | undefined {
  const match = /^rsa-(\d+)$/.exec(key);
  return match ? Number(match[1]) : undefined;
}
