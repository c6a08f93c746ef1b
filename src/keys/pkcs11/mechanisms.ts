import { MechanismEnum, RsaMgf, RsaPssParams } from 'graphene-pk11';
import {
  hashFor,
  rsaBits,
  signatureAlgorithmFor,
  type HashName,
  type KeyAlgorithm,
  type RsaScheme,
  type SignatureAlgorithm,
} from '../../core/key-algorithm.js';
import { ecdsaRawToDer } from '../signature-format.js';
import type { Pkcs11Lib } from './session-pool.js';

export type Pkcs11Mechanism = Parameters<Pkcs11Lib['C_SignInit']>[1];

/**
 * How one key signs. We never rely on the token's hash-and-sign mechanisms (SoftHSM has no CKM_ECDSA_SHA256, and
 * hashing in Node keeps the bytes crossing into the HSM small and fixed-size): Node hashes the TBS, the token
 * performs only the private-key operation on the digest, and `finish` shapes the result for X.509.
 * The mechanism object is built once per plan and reused on every call.
 */
export interface SignPlan {
  readonly algorithm: SignatureAlgorithm;
  readonly hash: HashName;
  readonly mechanism: Pkcs11Mechanism;
  /** The exact input C_Sign gets, from the digest of the TBS. */
  input(digest: Buffer): Buffer;
  /** Copies C_Sign's output (a view on the session's scratch buffer) into the X.509 signature value. */
  finish(raw: Buffer): Uint8Array;
}

/**
 * DER prefix of DigestInfo { AlgorithmIdentifier { id-sha256, NULL }, OCTET STRING (32 bytes) } from RFC 8017
 * §9.2 note 1. CKM_RSA_PKCS applies only the EMSA-PKCS1-v1_5 block-type-01 padding to what it is given (PKCS#11
 * Current Mechanisms v2.40 §2.1.6), so the caller supplies the DigestInfo encoding (RFC 8017 §9.2 step 2).
 */
const SHA256_DIGEST_INFO_PREFIX = Buffer.from('3031300d060960864801650304020105000420', 'hex');

const ECDSA_MECHANISM: Pkcs11Mechanism = { mechanism: MechanismEnum.ECDSA };
const RSA_PKCS_MECHANISM: Pkcs11Mechanism = { mechanism: MechanismEnum.RSA_PKCS };
/**
 * CKM_RSA_PKCS_PSS takes the message hash as input and CK_RSA_PKCS_PSS_PARAMS naming that hash, the MGF and the
 * salt length (Current Mechanisms v2.40 §2.1.9–2.1.10). SHA-256 / MGF1-SHA-256 / 32-byte salt is the profile
 * RFC 4055 §3.1 recommends and the one Chancery's 'rsassa-pss-sha256' AlgorithmIdentifier states.
 */
const RSA_PSS_MECHANISM: Pkcs11Mechanism = {
  mechanism: MechanismEnum.RSA_PKCS_PSS,
  parameter: new RsaPssParams(MechanismEnum.SHA256, RsaMgf.MGF1_SHA256, 32).toCKI(),
};

const EC_FIELD_BYTES: Partial<Record<KeyAlgorithm, number>> = { 'ecdsa-p256': 32, 'ecdsa-p384': 48 };

export function signPlanFor(key: KeyAlgorithm, rsaScheme: RsaScheme = 'pkcs1'): SignPlan {
  const algorithm = signatureAlgorithmFor(key, rsaScheme);
  const hash = hashFor(algorithm);
  const fieldBytes = EC_FIELD_BYTES[key];
  if (fieldBytes !== undefined) {
    return {
      algorithm,
      hash,
      mechanism: ECDSA_MECHANISM,
      input: (digest) => digest,
      // CKM_ECDSA returns r || s, each exactly the size of the curve order (Current Mechanisms v2.40 §2.3.1);
      // X.509 wants Ecdsa-Sig-Value (RFC 3279 §2.2.3). ecdsaRawToDer allocates fresh arrays, so this copies.
      finish: (raw) => {
        if (raw.length !== fieldBytes * 2) throw new Error(`CKM_ECDSA returned ${raw.length} bytes, expected ${fieldBytes * 2}`);
        return ecdsaRawToDer(raw);
      },
    };
  }
  const bits = rsaBits(key);
  if (bits === undefined) throw new Error(`no PKCS#11 signing plan for ${key}`);
  const modulusBytes = bits / 8;
  // RSASSA signatures are exactly k = modulus-length bytes (RFC 8017 §8.1.1 step 3, §8.2.1 step 3), which is
  // also what an X.509 signatureValue BIT STRING carries.
  const finish = (raw: Buffer): Uint8Array => {
    if (raw.length !== modulusBytes) throw new Error(`RSA signature of ${raw.length} bytes, expected ${modulusBytes}`);
    return new Uint8Array(raw);
  };
  if (rsaScheme === 'pss') return { algorithm, hash, mechanism: RSA_PSS_MECHANISM, input: (digest) => digest, finish };
  return {
    algorithm,
    hash,
    mechanism: RSA_PKCS_MECHANISM,
    input: (digest) => Buffer.concat([SHA256_DIGEST_INFO_PREFIX, digest], SHA256_DIGEST_INFO_PREFIX.length + digest.length),
    finish,
  };
}
