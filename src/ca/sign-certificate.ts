import { CaError } from '../core/errors.js';
import type { Signer } from '../keys/signer.js';
import type { KeyObject } from 'node:crypto';
import { bitString, sequence, type Der } from './der/der-writer.js';
import { verifySignature } from '../core/signature-verifier.js';

/**
 * Signs exactly the TBS that was checked and verifies the result with the issuer's public key before
 * anyone sees it (DESIGN.md rule 2): a signer returning garbage, a wrong key on the token or a broken
 * r||s conversion stops here instead of reaching a relying party.
 *
 * Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue BIT STRING } (RFC 5280 §4.1).
 * The same outer shape serves CertificateList (§5.1), so CRLs reuse it.
 */
export async function signAndVerify(
  signer: Signer,
  verifyKey: KeyObject,
  signatureAlgorithmDer: Der,
  tbs: Der,
): Promise<Der> {
  const signature = await signer.sign(tbs);
  if (!verifySignature(signer.algorithm, verifyKey, tbs, signature)) {
    throw new CaError('keyStore', `signature by key "${signer.name}" failed verification with the issuer public key`);
  }
  return sequence(tbs, signatureAlgorithmDer, bitString(signature));
}
