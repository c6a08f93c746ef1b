import type { KeyAlgorithm, RsaScheme, SignatureAlgorithm } from '../core/key-algorithm.js';

/**
 * The only way any code touches a CA key (DESIGN.md rule 1). `sign` takes the exact DER bytes to be signed
 * (a TBSCertificate, TBSCertList or ResponseData), hashes them itself and returns the signature value ready
 * for an X.509 BIT STRING: ECDSA as a DER Ecdsa-Sig-Value (RFC 3279 §2.2.3), RSA as the raw modulus-size
 * block. No PIN, handle or private key object leaves keys/.
 */
export interface Signer {
  readonly name: string;
  readonly keyAlgorithm: KeyAlgorithm;
  readonly algorithm: SignatureAlgorithm;
  /** SubjectPublicKeyInfo, DER. */
  readonly publicKey: Uint8Array;
  sign(tbs: Uint8Array): Promise<Uint8Array>;
  /**
   * Optional: many signatures at once, for bulk work (a bulk revocation's OCSP responses), where a device
   * can sign off the event loop (PKCS#11: pkcs11/batch-signing-worker.ts). Each signature is verified with
   * `verifyKey` (a SubjectPublicKeyInfo, DER) before any is returned; one that fails fails the batch.
   */
  signMany?(tbs: readonly Uint8Array[], verifyKey: Uint8Array): Promise<Uint8Array[]>;
}

export interface KeySpec {
  algorithm: KeyAlgorithm;
  /** RSA only; default pkcs1. */
  rsaScheme?: RsaScheme;
}

export interface LoadOptions {
  rsaScheme?: RsaScheme;
}

/**
 * How a key store whose keys live in a device (an HSM) is checked and brought back without signing anything
 * (SignerHealth drives it). A software store has no device to lose and offers none.
 */
export interface KeyStoreHealth {
  /**
   * Checks the sessions, the token and every loaded key's handle, without signing; throws CaError('keyStore')
   * naming what failed.
   */
  probe(): Promise<void>;
  /** Re-opens sessions and finds the loaded keys again (re-initializing the device library if it must). */
  recover(): Promise<void>;
  /** Signatures that failed so far: a change since the last probe means the device may be gone. */
  readonly signFailures: number;
}

/** Creates and loads named keys. Names are the stable handle stored with issuer records. */
export interface KeyStore {
  readonly backend: 'software' | 'pkcs11';
  /** Present when the keys live in a device that can be lost and found again (PKCS#11). */
  readonly health?: KeyStoreHealth;
  /** Generates a new key. Throws CaError('conflict') if the name is taken. */
  create(name: string, spec: KeySpec): Promise<Signer>;
  /** Loads an existing key, or undefined if there is none of that name. */
  load(name: string, options?: LoadOptions): Promise<Signer | undefined>;
  close(): Promise<void>;
}
