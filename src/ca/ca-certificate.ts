import type { PublicUrls } from '../core/url-scheme.js';
import type { Signer } from '../keys/signer.js';
import { createPublicKey } from 'node:crypto';
import { signatureAlgorithmIdentifier } from './algorithm-identifier.js';
import { keyIdentifier } from './certificate-parser.js';
import { explicit, integer, sequence, time, unsignedInteger, type Der } from './der/der-writer.js';
import {
  authorityInfoAccess,
  authorityKeyIdentifier,
  basicConstraints,
  crlDistributionPoints,
  keyIdentifierExtension,
  keyUsage,
  KEY_USAGE,
} from './extensions.js';
import { encodeName, type DistinguishedName } from './name.js';
import { randomSerial } from './serial.js';
import { signAndVerify } from './sign-certificate.js';

export interface CaCertificateRequest {
  subject: DistinguishedName;
  /** The subject's key (what the certificate certifies). */
  subjectKey: Signer;
  notBefore: Date;
  notAfter: Date;
  /** basicConstraints pathLenConstraint; undefined = unlimited (roots). */
  pathLen?: number;
}

/**
 * Self-signed root (RFC 5280 §4.1, CABF BR 7.1.2.1): basicConstraints cA critical, keyUsage keyCertSign
 * + cRLSign critical, SKI; AKI = SKI is allowed and helps path builders.
 */
export function buildRootCertificate(request: CaCertificateRequest): Promise<Der> {
  const subject = encodeName(request.subject);
  const keyId = keyIdentifier(request.subjectKey.publicKey);
  const signer = request.subjectKey;
  const algorithmDer = signatureAlgorithmIdentifier(signer.algorithm);
  const tbs = caTbs(request, subject, subject, algorithmDer, [
    basicConstraints(true, request.pathLen),
    keyUsage([KEY_USAGE.keyCertSign, KEY_USAGE.cRLSign]),
    keyIdentifierExtension(keyId),
    authorityKeyIdentifier(keyId),
  ]);
  return signAndVerify(signer, createPublicKey({ key: Buffer.from(signer.publicKey), format: 'der', type: 'spki' }), algorithmDer, tbs);
}

/**
 * Issuing intermediate (CABF BR 7.1.2.2-style): pathLen 0 so it can only issue end-entity certificates,
 * keyUsage digitalSignature (RFC 6960 direct OCSP signing stays possible) + keyCertSign + cRLSign, AKI of
 * the root, AIA caIssuers and a CRL DP pointing at the root's CRL, so `openssl verify -crl_check_all`
 * can find it. No EKU: an EKU here would constrain the delegated OCSP responder certificate too.
 */
export function buildIntermediateCertificate(
  request: CaCertificateRequest & { issuer: { id: string; subjectDer: Buffer; keyId: Buffer; signer: Signer }; urls: PublicUrls },
): Promise<Der> {
  const issuerSigner = request.issuer.signer;
  const algorithmDer = signatureAlgorithmIdentifier(issuerSigner.algorithm);
  const tbs = caTbs(request, request.issuer.subjectDer, encodeName(request.subject), algorithmDer, [
    basicConstraints(true, request.pathLen ?? 0),
    keyUsage([KEY_USAGE.digitalSignature, KEY_USAGE.keyCertSign, KEY_USAGE.cRLSign]),
    keyIdentifierExtension(keyIdentifier(request.subjectKey.publicKey)),
    authorityKeyIdentifier(request.issuer.keyId),
    authorityInfoAccess(undefined, request.urls.caIssuer(request.issuer.id)),
    crlDistributionPoints(request.urls.rootCrl()),
  ]);
  const verifyKey = createPublicKey({ key: Buffer.from(issuerSigner.publicKey), format: 'der', type: 'spki' });
  return signAndVerify(issuerSigner, verifyKey, algorithmDer, tbs);
}

function caTbs(request: CaCertificateRequest, issuerName: Der, subjectName: Der, algorithmDer: Der, extensions: Der[]): Der {
  return sequence(
    explicit(0, integer(2)),
    unsignedInteger(randomSerial()),
    algorithmDer,
    issuerName,
    sequence(time(request.notBefore), time(request.notAfter)),
    subjectName,
    Buffer.from(request.subjectKey.publicKey),
    explicit(3, sequence(...extensions)),
  );
}
