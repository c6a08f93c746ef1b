/**
 * Delegated OCSP responder certificates (RFC 6960 §4.2.2.2, CA/B BR 7.1.2.8): issued by the intermediate's
 * key to a responder key of its own, so the intermediate's key signs one certificate every few days instead
 * of every OCSP response.
 */
import { createPublicKey } from 'node:crypto';
import { CaError } from '../core/errors.js';
import type { Signer } from '../keys/signer.js';
import { signatureAlgorithmIdentifier } from './algorithm-identifier.js';
import { keyIdentifier, parseCertificate } from './certificate-parser.js';
import { explicit, integer, nullValue, sequence, time, unsignedInteger, type Der } from './der/der-writer.js';
import {
  authorityKeyIdentifier,
  basicConstraints,
  extendedKeyUsage,
  extension,
  keyIdentifierExtension,
  keyUsage,
  KEY_USAGE,
} from './extensions.js';
import { encodeName, type DistinguishedName } from './name.js';
import { OID } from './oids.js';
import { randomSerial, serialHex } from './serial.js';
import { signAndVerify } from './sign-certificate.js';

/**
 * id-pkix-ocsp-nocheck (RFC 6960 §4.2.2.2.1): clients need not check the responder certificate's own
 * revocation status. Value NULL, non-critical (BR 7.1.2.8.6). This is why the certificate must be
 * short-lived: a compromised responder key is trusted until its certificate expires.
 */
export function ocspNoCheck(): Der {
  return extension(OID.ocspNoCheck, false, nullValue());
}

export interface ResponderCertificateRequest {
  issuer: { id: string; certificateDer: Uint8Array; signer: Signer };
  /** SubjectPublicKeyInfo DER of the responder key. */
  responderPublicKey: Uint8Array;
  subject: DistinguishedName;
  notBefore: Date;
  notAfter: Date;
}

export interface PreparedResponderCertificate {
  issuerId: string;
  serial: string;
  tbs: Der;
  notBefore: Date;
  notAfter: Date;
}

/**
 * Builds and checks the TBSCertificate (rule 2: the serial is then reserved by the caller, and sign()
 * signs exactly this TBS). Extensions per BR 7.1.2.8.2: AKI, EKU id-kp-OCSPSigning only, ocsp-nocheck,
 * keyUsage digitalSignature (critical), basicConstraints cA=FALSE (critical), SKI; no AIA, no CRL DP,
 * no certificatePolicies, no SAN.
 */
export function prepareResponderCertificate(request: ResponderCertificateRequest): PreparedResponderCertificate {
  const issuer = parseCertificate(request.issuer.certificateDer);
  if (!issuer.isCa) throw new CaError('caState', `issuer ${request.issuer.id} is not a CA certificate`);
  if (!issuer.spki.equals(Buffer.from(request.issuer.signer.publicKey))) {
    throw new CaError('caState', `key "${request.issuer.signer.name}" does not match the certificate of issuer ${request.issuer.id}`);
  }
  if (Buffer.from(request.responderPublicKey).equals(issuer.spki)) {
    throw new CaError('caState', 'the OCSP responder key must not be the issuer key');
  }
  if (request.notAfter.getTime() <= request.notBefore.getTime()) throw new CaError('serverInternal', 'responder notAfter must follow notBefore');
  // RFC 5280 §6.1.3: a certificate outliving its issuer is not valid past the issuer's notAfter anyway.
  const notAfter = request.notAfter.getTime() > issuer.notAfter.getTime() ? issuer.notAfter : request.notAfter;
  const issuerKeyId = issuer.subjectKeyId ?? keyIdentifier(issuer.spki);
  const spki = Buffer.from(request.responderPublicKey);
  const serialBytes = randomSerial();
  const tbs = sequence(
    explicit(0, integer(2)), // v3
    unsignedInteger(serialBytes),
    signatureAlgorithmIdentifier(request.issuer.signer.algorithm),
    issuer.subjectDer,
    sequence(time(request.notBefore), time(notAfter)),
    encodeName(request.subject),
    spki,
    explicit(
      3,
      sequence(
        keyUsage([KEY_USAGE.digitalSignature]),
        extendedKeyUsage(['ocspSigning']),
        basicConstraints(false),
        ocspNoCheck(),
        keyIdentifierExtension(keyIdentifier(spki)),
        authorityKeyIdentifier(issuerKeyId),
      ),
    ),
  );
  return { issuerId: request.issuer.id, serial: serialHex(serialBytes), tbs, notBefore: request.notBefore, notAfter };
}

/** Signs the prepared TBS with the issuer's Signer and verifies it with the issuer's public key (rule 2). */
export function signResponderCertificate(issuerSigner: Signer, prepared: PreparedResponderCertificate): Promise<Der> {
  const verifyKey = createPublicKey({ key: Buffer.from(issuerSigner.publicKey), format: 'der', type: 'spki' });
  return signAndVerify(issuerSigner, verifyKey, signatureAlgorithmIdentifier(issuerSigner.algorithm), prepared.tbs);
}

/** The responder-certificate half of ca/ as revocation/ sees it (passed in by the composition root). */
export const ocspResponderCertificateFactory = {
  prepare: prepareResponderCertificate,
  sign: signResponderCertificate,
};
export type OcspResponderCertificateFactory = typeof ocspResponderCertificateFactory;
