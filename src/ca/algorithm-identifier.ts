import type { SignatureAlgorithm } from '../core/key-algorithm.js';
import { explicit, integer, nullValue, oid, sequence, type Der } from './der/der-writer.js';
import { OID } from './oids.js';

/**
 * The DER AlgorithmIdentifier for each signature a Signer produces. ECDSA carries no parameters
 * (RFC 5758 §3.2); sha256WithRSAEncryption carries NULL (RFC 4055 §5); RSASSA-PSS carries explicit
 * SHA-256 / MGF1-SHA-256 / salt 32 parameters (RFC 4055 §3.1) — the trailer field keeps its default.
 */
export function signatureAlgorithmIdentifier(algorithm: SignatureAlgorithm): Der {
  switch (algorithm) {
    case 'ecdsa-with-SHA256':
      return sequence(oid(OID.ecdsaWithSHA256));
    case 'ecdsa-with-SHA384':
      return sequence(oid(OID.ecdsaWithSHA384));
    case 'sha256WithRSAEncryption':
      return sequence(oid(OID.sha256WithRSAEncryption), nullValue());
    case 'rsassa-pss-sha256': {
      const sha256 = sequence(oid(OID.sha256), nullValue());
      return sequence(
        oid(OID.rsassaPss),
        sequence(explicit(0, sha256), explicit(1, sequence(oid(OID.mgf1), sha256)), explicit(2, integer(32))),
      );
    }
  }
}
