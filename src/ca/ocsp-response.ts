/**
 * OCSPResponse / BasicOCSPResponse encoding (RFC 6960 §4.2.1, RFC 5019 §2.2), by hand with the DER writer:
 * a response is a few fixed fields around one SingleResponse, and building it as a pkijs tree would cost
 * more than signing it. Signing goes through the responder's Signer only (DESIGN.md rule 1) and every
 * signature is verified with the responder's public key before the response leaves (rule 2).
 *
 *   OCSPResponse      ::= SEQUENCE { responseStatus ENUMERATED, responseBytes [0] EXPLICIT ResponseBytes OPTIONAL }
 *   ResponseBytes     ::= SEQUENCE { responseType OID (id-pkix-ocsp-basic), response OCTET STRING }
 *   BasicOCSPResponse ::= SEQUENCE { tbsResponseData ResponseData, signatureAlgorithm AlgorithmIdentifier,
 *                         signature BIT STRING, certs [0] EXPLICIT SEQUENCE OF Certificate OPTIONAL }
 *   ResponseData      ::= SEQUENCE { version [0] EXPLICIT DEFAULT v1, responderID ResponderID,
 *                         producedAt GeneralizedTime, responses SEQUENCE OF SingleResponse,
 *                         responseExtensions [1] EXPLICIT Extensions OPTIONAL }
 *   SingleResponse    ::= SEQUENCE { certID CertID, certStatus CertStatus, thisUpdate GeneralizedTime,
 *                         nextUpdate [0] EXPLICIT GeneralizedTime OPTIONAL, singleExtensions [1] EXPLICIT OPTIONAL }
 */
import { createHash, createPublicKey, type KeyObject } from 'node:crypto';
import type { RevocationReason } from '../core/certificate.js';
import { CaError } from '../core/errors.js';
import type { Signer } from '../keys/signer.js';
import { signatureAlgorithmIdentifier } from './algorithm-identifier.js';
import { parseCertificate } from './certificate-parser.js';
import { children, readTlv } from './der/der-reader.js';
import {
  bitString,
  explicit,
  generalizedTime,
  implicitConstructed,
  nullValue,
  octetString,
  oid,
  sequence,
  tlv,
  TAG,
  unsignedInteger,
  type Der,
} from './der/der-writer.js';
import { parseOcspRequest, type OcspHashAlgorithm } from './ocsp-request.js';
import { OID } from './oids.js';
import { verifySignature } from '../core/signature-verifier.js';

export type { OcspHashAlgorithm } from './ocsp-request.js';

const OID_OCSP_BASIC = '1.3.6.1.5.5.7.48.1.1';
const OID_OCSP_NONCE = '1.3.6.1.5.5.7.48.1.2';

/** OCSPResponseStatus (RFC 6960 §4.2.1); 4 is unused. */
export const OCSP_RESPONSE_STATUS = {
  successful: 0,
  malformedRequest: 1,
  internalError: 2,
  tryLater: 3,
  sigRequired: 5,
  unauthorized: 6,
} as const;
export type OcspResponseStatus = keyof typeof OCSP_RESPONSE_STATUS;

/** AlgorithmIdentifier of the CertID hash, with NULL parameters as OpenSSL writes them. */
const HASH_ALGORITHM_DER: Record<OcspHashAlgorithm, Der> = {
  sha1: sequence(oid(OID.sha1), nullValue()),
  sha256: sequence(oid(OID.sha256), nullValue()),
};

const ERROR_RESPONSES = new Map<OcspResponseStatus, Der>();

/**
 * An unsuccessful OCSPResponse: only the status, no responseBytes, unsigned (RFC 6960 §2.3 — error
 * messages are not signed). The same bytes every time, so they are built once.
 */
export function ocspErrorResponse(status: Exclude<OcspResponseStatus, 'successful'>): Der {
  let der = ERROR_RESPONSES.get(status);
  if (der === undefined) {
    der = sequence(tlv(TAG.ENUMERATED, Buffer.from([OCSP_RESPONSE_STATUS[status]])));
    ERROR_RESPONSES.set(status, der);
  }
  return der;
}

/** The issuerNameHash and issuerKeyHash one issuer is known by, per supported CertID hash (RFC 6960 §4.1.1). */
export type IssuerCertIdHashes = Record<OcspHashAlgorithm, { nameHash: Buffer; keyHash: Buffer }>;

/**
 * CertID hashes of an issuer certificate: issuerNameHash over the DER of its subject (the issuer field of
 * the certificates it signs, which Chancery copies byte for byte), issuerKeyHash over the value of its
 * subjectPublicKey BIT STRING, excluding tag, length and unused-bits octet (RFC 6960 §4.1.1).
 */
export function issuerCertIdHashes(issuerCertificateDer: Uint8Array): IssuerCertIdHashes {
  const parsed = parseCertificate(issuerCertificateDer);
  const key = publicKeyBits(parsed.spki);
  const hashes = (algorithm: OcspHashAlgorithm) => ({
    nameHash: createHash(algorithm).update(parsed.subjectDer).digest(),
    keyHash: createHash(algorithm).update(key).digest(),
  });
  return { sha1: hashes('sha1'), sha256: hashes('sha256') };
}

function publicKeyBits(spki: Uint8Array): Buffer {
  const [, bits] = children(spki, readTlv(spki, 0));
  if (!bits || bits.tag !== TAG.BIT_STRING) throw new CaError('badPublicKey', 'SubjectPublicKeyInfo has no subjectPublicKey');
  return Buffer.from(spki.subarray(bits.start + 1, bits.end));
}

/**
 * A delegated responder ready to sign: its Signer plus everything about it that is the same in every
 * response, encoded once.
 */
export interface OcspResponderMaterial {
  signer: Signer;
  certificateDer: Buffer;
  notBefore: Date;
  notAfter: Date;
  /** ResponderID byKey [2] (RFC 6960 §4.2.2.3: SHA-1 of the responder's public key bits; RFC 5019 §2.2.2 prefers byKey). */
  responderIdDer: Der;
  signatureAlgorithmDer: Der;
  /** certs [0]: the responder certificate, so clients can check the delegation (RFC 6960 §4.2.2.2). */
  certsDer: Der;
  verifyKey: KeyObject;
  /** The responder certificate's SubjectPublicKeyInfo (DER): what a batch's signatures are verified with. */
  verifySpki: Buffer;
}

export function prepareResponder(signer: Signer, certificateDer: Uint8Array): OcspResponderMaterial {
  const parsed = parseCertificate(certificateDer);
  if (!parsed.spki.equals(Buffer.from(signer.publicKey))) {
    throw new CaError('caState', `key "${signer.name}" does not match its OCSP responder certificate`);
  }
  const keyHash = createHash('sha1').update(publicKeyBits(parsed.spki)).digest();
  return {
    signer,
    certificateDer: Buffer.from(certificateDer),
    notBefore: parsed.notBefore,
    notAfter: parsed.notAfter,
    responderIdDer: explicit(2, octetString(keyHash)),
    signatureAlgorithmDer: signatureAlgorithmIdentifier(signer.algorithm),
    certsDer: explicit(0, sequence(Buffer.from(certificateDer))),
    verifyKey: createPublicKey({ key: parsed.spki, format: 'der', type: 'spki' }),
    verifySpki: parsed.spki,
  };
}

export type OcspCertStatus =
  | { kind: 'good' }
  | { kind: 'revoked'; revokedAt: Date; reason?: RevocationReason; invalidityDate?: Date }
  | { kind: 'unknown' };

export interface OcspResponseInput {
  certId: {
    hashAlgorithm: OcspHashAlgorithm;
    issuerNameHash: Uint8Array;
    issuerKeyHash: Uint8Array;
    /** serialNumber INTEGER content octets; see serialNumberOctets() for a stored serial. */
    serialNumber: Uint8Array;
  };
  status: OcspCertStatus;
  thisUpdate: Date;
  nextUpdate?: Date;
  producedAt: Date;
  /** A request's nonce extnValue, echoed (RFC 8954 §2.1). */
  nonce?: Uint8Array;
}

/** The INTEGER content octets of a stored serial (lower-case hex magnitude), as in the certificate. */
export function serialNumberOctets(serialHex: string): Buffer {
  if (!/^[0-9a-f]+$/.test(serialHex) || serialHex.length % 2 !== 0) throw new CaError('serverInternal', `bad serial "${serialHex}"`);
  const der = unsignedInteger(Buffer.from(serialHex, 'hex'));
  const node = readTlv(der, 0);
  return der.subarray(node.start, node.end);
}

/** The DER of one CertID (RFC 6960 §4.1.1). */
export function certIdDer(certId: OcspResponseInput['certId']): Der {
  return sequence(
    HASH_ALGORITHM_DER[certId.hashAlgorithm],
    octetString(certId.issuerNameHash),
    octetString(certId.issuerKeyHash),
    tlv(TAG.INTEGER, certId.serialNumber),
  );
}

function certStatusDer(status: OcspCertStatus): Der {
  switch (status.kind) {
    case 'good':
      return Buffer.from([0x80, 0x00]); // good [0] IMPLICIT NULL
    case 'unknown':
      return Buffer.from([0x82, 0x00]); // unknown [2] IMPLICIT UnknownInfo (NULL)
    case 'revoked': {
      // RevokedInfo ::= SEQUENCE { revocationTime GeneralizedTime, revocationReason [0] EXPLICIT CRLReason OPTIONAL }.
      // Reason unspecified (0) is left out, as in the CRL entry (RFC 5280 §5.3.1: "SHOULD be absent"), so
      // OCSP and CRL agree (CA/B BR 7.3: the reasons MUST match).
      const reason =
        status.reason === undefined || status.reason === 0 ? [] : [explicit(0, tlv(TAG.ENUMERATED, Buffer.from([status.reason])))];
      return implicitConstructed(1, generalizedTime(status.revokedAt), ...reason);
    }
  }
}

/** The ResponseData to be signed (exported for tests that need the exact signed bytes). */
export function responseDataDer(responder: OcspResponderMaterial, input: OcspResponseInput): Der {
  // RFC 6960 §4.4.5: CRL entry extensions may be singleExtensions; the invalidity date (RFC 5280 §5.3.2,
  // GeneralizedTime, non-critical) is carried as in the certificate's CRL entry, so OCSP and CRL agree.
  const invalidityDate = input.status.kind === 'revoked' ? input.status.invalidityDate : undefined;
  const singleExtensions =
    invalidityDate === undefined ? [] : [explicit(1, sequence(sequence(oid(OID.invalidityDate), octetString(generalizedTime(invalidityDate)))))];
  const single = sequence(
    certIdDer(input.certId),
    certStatusDer(input.status),
    generalizedTime(input.thisUpdate),
    ...(input.nextUpdate === undefined ? [] : [explicit(0, generalizedTime(input.nextUpdate))]),
    ...singleExtensions,
  );
  const extensions =
    input.nonce === undefined ? [] : [explicit(1, sequence(sequence(oid(OID_OCSP_NONCE), octetString(input.nonce))))];
  return sequence(responder.responderIdDer, generalizedTime(input.producedAt), sequence(single), ...extensions);
}

/**
 * Builds, signs and verifies one successful OCSPResponse. nextUpdate must not outlive the responder
 * certificate: a client checks the signature with a certificate that must still be valid then.
 */
export async function signOcspResponse(responder: OcspResponderMaterial, input: OcspResponseInput): Promise<Der> {
  const tbs = checkedResponseData(responder, input);
  const signature = await responder.signer.sign(tbs);
  if (!verifySignature(responder.signer.algorithm, responder.verifyKey, tbs, signature)) {
    throw new CaError('keyStore', `OCSP signature by key "${responder.signer.name}" failed verification with the responder public key`);
  }
  return successfulResponse(responder, tbs, signature);
}

/**
 * Many responses of one responder (a bulk revocation's): built, then signed as one batch where the signer
 * can (Signer.signMany: a PKCS#11 key signs off the event loop, each signature verified there with the
 * responder certificate's key, as signOcspResponse verifies it here), else one by one. Fails as a whole.
 */
export async function signOcspResponses(responder: OcspResponderMaterial, inputs: readonly OcspResponseInput[]): Promise<Der[]> {
  if (responder.signer.signMany === undefined) return Promise.all(inputs.map((input) => signOcspResponse(responder, input)));
  const tbs = inputs.map((input) => checkedResponseData(responder, input));
  const signatures = await responder.signer.signMany(tbs, responder.verifySpki);
  if (signatures.length !== tbs.length) throw new CaError('keyStore', `key "${responder.signer.name}" returned ${signatures.length} signatures for ${tbs.length} responses`);
  return tbs.map((data, i) => successfulResponse(responder, data, signatures[i]!));
}

/** The ResponseData of `input`, after the checks every response passes. */
function checkedResponseData(responder: OcspResponderMaterial, input: OcspResponseInput): Der {
  if (input.nextUpdate !== undefined && input.nextUpdate.getTime() < input.thisUpdate.getTime()) {
    throw new CaError('serverInternal', 'OCSP nextUpdate is before thisUpdate');
  }
  if (input.producedAt.getTime() >= responder.notAfter.getTime() || input.producedAt.getTime() < responder.notBefore.getTime()) {
    throw new CaError('caState', `OCSP responder certificate of key "${responder.signer.name}" is not valid at ${input.producedAt.toISOString()}`);
  }
  if (input.nonce !== undefined && input.nonce.length === 0) throw new CaError('serverInternal', 'empty OCSP nonce extnValue');
  return responseDataDer(responder, input);
}

/** OCSPResponse { successful, BasicOCSPResponse { tbs, signature, certs } } (RFC 6960 §4.2.1). */
function successfulResponse(responder: OcspResponderMaterial, tbs: Der, signature: Uint8Array): Der {
  const basic = sequence(tbs, responder.signatureAlgorithmDer, bitString(signature), responder.certsDer);
  return sequence(
    tlv(TAG.ENUMERATED, Buffer.from([OCSP_RESPONSE_STATUS.successful])),
    explicit(0, sequence(oid(OID_OCSP_BASIC), octetString(basic))),
  );
}

/**
 * The parts of ca/ that OCSP in revocation/ uses, as one object the composition root passes in (like
 * caCertificateFactory), so revocation/ depends on the shape and not on the encoders.
 */
export const ocspCodec = {
  parseOcspRequest,
  issuerCertIdHashes,
  prepareResponder,
  signOcspResponse,
  signOcspResponses,
  ocspErrorResponse,
  serialNumberOctets,
};
export type OcspCodec = typeof ocspCodec;
