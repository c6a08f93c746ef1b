import { createHash, createPublicKey, verify as verifySignature, constants } from 'node:crypto';
import type { AuditEntry } from '../core/audit.js';
import { hashFor, type SignatureAlgorithm } from '../core/key-algorithm.js';

/**
 * The hash chain's arithmetic, shared by the sealer and by verification (and reproducible by anyone with
 * the export): what exactly is hashed, and what exactly a checkpoint signs.
 */

/** prev_hash of the first position. */
export const ZERO_HASH = '00'.repeat(32);

/**
 * The bytes an entry contributes at chain position `seq`: a JSON array (one fixed order, no key sorting
 * questions) of the position and every stored field, times as ISO 8601 in UTC, absent fields as null,
 * details as the exact JSON text stored. The position is inside so that two entries swapped keep no
 * valid hash even if their contents were equal.
 */
export function canonicalEntry(seq: number, entry: AuditEntry): string {
  return JSON.stringify([
    'chancery-audit-entry-v1',
    seq,
    entry.id,
    entry.at.toISOString(),
    entry.actor,
    entry.action,
    entry.subject,
    entry.outcome,
    entry.requestId ?? null,
    entry.group ?? null,
    entry.details ?? null,
  ]);
}

/** hash(seq) = SHA-256(hash(seq - 1) || canonicalEntry(seq)), hex; hash(0) = ZERO_HASH. */
export function entryHash(prevHash: string, seq: number, entry: AuditEntry): string {
  return createHash('sha256').update(Buffer.from(prevHash, 'hex')).update(canonicalEntry(seq, entry), 'utf8').digest('hex');
}

/** The bytes a checkpoint's signature covers: the head (position and hash) and when it was signed. */
export function checkpointPayload(checkpoint: { seq: number; hash: string; at: Date }): Buffer {
  return Buffer.from(`chancery-audit-checkpoint-v1\n${checkpoint.seq}\n${checkpoint.hash}\n${checkpoint.at.toISOString()}\n`, 'utf8');
}

/**
 * Checks a checkpoint signature made by a Signer (ECDSA as a DER Ecdsa-Sig-Value, RSA as the raw block;
 * keys/signer.ts) against that key's SubjectPublicKeyInfo. The public key is taken from the KeyStore by the
 * caller, never from the database row or the file being checked.
 */
export function checkpointSignatureValid(
  checkpoint: { seq: number; hash: string; at: Date; signature: string },
  key: { publicKey: Uint8Array; algorithm: SignatureAlgorithm },
): boolean {
  const publicKey = createPublicKey({ key: Buffer.from(key.publicKey), format: 'der', type: 'spki' });
  const signature = Buffer.from(checkpoint.signature, 'hex');
  const payload = checkpointPayload(checkpoint);
  const hash = hashFor(key.algorithm);
  try {
    if (key.algorithm === 'rsassa-pss-sha256') {
      return verifySignature(hash, payload, { key: publicKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 }, signature);
    }
    if (key.algorithm === 'sha256WithRSAEncryption') return verifySignature(hash, payload, publicKey, signature);
    return verifySignature(hash, payload, { key: publicKey, dsaEncoding: 'der' }, signature);
  } catch {
    // A signature that does not even parse is simply not valid.
    return false;
  }
}
