/**
 * OCSPRequest parsing (RFC 6960 §4.1.1) for the lightweight profile (RFC 5019 §2.1), with the small DER
 * reader rather than pkijs: the request sits on the hot path of every OCSP answer, and a request is a few
 * fixed levels deep.
 *
 *   OCSPRequest ::= SEQUENCE { tbsRequest TBSRequest, optionalSignature [0] EXPLICIT Signature OPTIONAL }
 *   TBSRequest  ::= SEQUENCE { version [0] EXPLICIT Version DEFAULT v1, requestorName [1] EXPLICIT GeneralName
 *                   OPTIONAL, requestList SEQUENCE OF Request, requestExtensions [2] EXPLICIT Extensions OPTIONAL }
 *   Request     ::= SEQUENCE { reqCert CertID, singleRequestExtensions [0] EXPLICIT Extensions OPTIONAL }
 *   CertID      ::= SEQUENCE { hashAlgorithm AlgorithmIdentifier, issuerNameHash OCTET STRING,
 *                   issuerKeyHash OCTET STRING, serialNumber CertificateSerialNumber }
 */
import { children, oidText, readTlv, type Tlv } from './der/der-reader.js';
import { TAG } from './der/der-writer.js';

/** CertID hash algorithms answered: SHA-1 (RFC 5019 §2.1.1: clients MUST use it, responders MUST accept it) and SHA-256. */
export type OcspHashAlgorithm = 'sha1' | 'sha256';

export interface OcspCertId {
  hashAlgorithm: OcspHashAlgorithm;
  issuerNameHash: Buffer;
  issuerKeyHash: Buffer;
  /** The serialNumber INTEGER's content octets as the client sent them (echoed in the response CertID). */
  serialNumber: Buffer;
  /** Lower-case hex without leading zero octets: the form IssuedCertificate.serial is stored in. */
  serial: string;
}

export interface OcspNonce {
  /** The extension's extnValue octets exactly as received: echoed unchanged (RFC 8954 §2.1). */
  extnValue: Buffer;
  /** Length of the nonce itself (the inner OCTET STRING's contents when the client wrapped it, as RFC 8954 asks). */
  length: number;
}

export type OcspRequestParse =
  | { ok: true; certId: OcspCertId; nonce?: OcspNonce }
  | { ok: false; status: 'malformedRequest' | 'unauthorized'; reason: string };

// Content octets of the OIDs compared here.
const SHA1 = Buffer.from('2b0e03021a', 'hex'); // 1.3.14.3.2.26
const SHA256 = Buffer.from('608648016503040201', 'hex'); // 2.16.840.1.101.3.4.2.1
const NONCE = Buffer.from('2b06010505073001 02'.replace(/\s/g, ''), 'hex'); // 1.3.6.1.5.5.7.48.1.2
const HASH_LENGTH: Record<OcspHashAlgorithm, number> = { sha1: 20, sha256: 32 };

/** A CertificateSerialNumber longer than this is not one Chancery (or RFC 5280 §4.1.2.2, 20 octets) issued. */
const MAX_SERIAL_OCTETS = 21;

class Malformed extends Error {}

function expect(der: Uint8Array, node: Tlv | undefined, tag: number, what: string): Tlv {
  if (node === undefined || node.tag !== tag) throw new Malformed(`${what}: expected tag 0x${tag.toString(16)}`);
  return node;
}

function value(der: Uint8Array, node: Tlv): Buffer {
  return Buffer.from(der.buffer, der.byteOffset + node.start, node.end - node.start);
}

function malformed(reason: string): OcspRequestParse {
  return { ok: false, status: 'malformedRequest', reason };
}

/**
 * Parses one OCSP request. Never throws: bad input is an answer (RFC 6960 §2.3 malformedRequest), an
 * unsupported CertID hash is `unauthorized` (RFC 6960 §2.3: "the server is not capable of responding
 * authoritatively", cf. RFC 5019 §2.2.3) — the request is well-formed, but without a hash we support we
 * cannot tell which issuer it names, so no signed answer can be authoritative; a client can retry with
 * SHA-1, which RFC 5019 §2.1.1 requires it to support.
 */
export function parseOcspRequest(input: Uint8Array): OcspRequestParse {
  try {
    return parse(input);
  } catch (error) {
    return malformed(error instanceof Error ? error.message : 'unparseable');
  }
}

function parse(der: Uint8Array): OcspRequestParse {
  if (der.length === 0) return malformed('empty request');
  const outer = expect(der, readTlv(der, 0), TAG.SEQUENCE, 'OCSPRequest');
  if (outer.end !== der.length) return malformed('trailing bytes after OCSPRequest');
  const [tbsNode, signature, extra] = children(der, outer);
  const tbs = expect(der, tbsNode, TAG.SEQUENCE, 'TBSRequest');
  // optionalSignature [0]: RFC 5019 §2.1.2 lets responders ignore request signatures; we do.
  if (signature !== undefined && signature.tag !== 0xa0) return malformed('unexpected element after TBSRequest');
  if (extra !== undefined) return malformed('unexpected element after optionalSignature');

  const parts = children(der, tbs);
  let index = 0;
  if (parts[index]?.tag === 0xa0) {
    // version [0] EXPLICIT INTEGER: only v1 (0) exists.
    const version = expect(der, children(der, parts[index]!)[0], TAG.INTEGER, 'version');
    if (version.end - version.start !== 1 || der[version.start] !== 0) return malformed('unsupported OCSPRequest version');
    index += 1;
  }
  if (parts[index]?.tag === 0xa1) index += 1; // requestorName: informational only.
  const list = expect(der, parts[index], TAG.SEQUENCE, 'requestList');
  index += 1;
  let extensions: Tlv | undefined;
  if (parts[index]?.tag === 0xa2) {
    extensions = expect(der, children(der, parts[index]!)[0], TAG.SEQUENCE, 'requestExtensions');
    index += 1;
  }
  if (index !== parts.length) return malformed('unexpected element in TBSRequest');

  const requests = children(der, list);
  if (requests.length === 0) return malformed('requestList is empty');
  // RFC 5019 §2.1.1: clients MUST include only one Request; the pre-signed responses answer one each.
  if (requests.length > 1) return malformed(`requestList has ${requests.length} requests; the lightweight profile allows one`);
  const request = expect(der, requests[0], TAG.SEQUENCE, 'Request');
  const [certIdNode, singleExtensions, more] = children(der, request);
  if (singleExtensions !== undefined && singleExtensions.tag !== 0xa0) return malformed('unexpected element in Request');
  if (more !== undefined) return malformed('unexpected element in Request');

  const [algorithmNode, nameHashNode, keyHashNode, serialNode, rest] = children(der, expect(der, certIdNode, TAG.SEQUENCE, 'CertID'));
  if (rest !== undefined) return malformed('unexpected element in CertID');
  const algorithm = expect(der, algorithmNode, TAG.SEQUENCE, 'hashAlgorithm');
  const [oidNode, parameters, extraParameter] = children(der, algorithm);
  const hashOid = value(der, expect(der, oidNode, TAG.OID, 'hashAlgorithm.algorithm'));
  // Parameters are absent or NULL for the SHA family (RFC 5754 §2: implementations MUST accept both).
  if (parameters !== undefined && (parameters.tag !== TAG.NULL || parameters.end !== parameters.start)) {
    return malformed('hashAlgorithm parameters must be absent or NULL');
  }
  if (extraParameter !== undefined) return malformed('unexpected element in hashAlgorithm');
  const issuerNameHash = value(der, expect(der, nameHashNode, TAG.OCTET_STRING, 'issuerNameHash'));
  const issuerKeyHash = value(der, expect(der, keyHashNode, TAG.OCTET_STRING, 'issuerKeyHash'));
  const serialNumber = value(der, expect(der, serialNode, TAG.INTEGER, 'serialNumber'));
  if (serialNumber.length === 0) return malformed('empty serialNumber');
  if (serialNumber.length > MAX_SERIAL_OCTETS) return malformed('serialNumber longer than 20 octets (RFC 5280 §4.1.2.2)');

  const nonce = extensions === undefined ? undefined : readExtensions(der, extensions);

  const hashAlgorithm = hashOid.equals(SHA1) ? 'sha1' : hashOid.equals(SHA256) ? 'sha256' : undefined;
  if (hashAlgorithm === undefined) {
    return { ok: false, status: 'unauthorized', reason: `CertID hash algorithm ${oidText(hashOid)} is not supported (use SHA-1 or SHA-256)` };
  }
  const length = HASH_LENGTH[hashAlgorithm];
  if (issuerNameHash.length !== length || issuerKeyHash.length !== length) {
    return malformed(`CertID hashes must be ${length} octets for ${hashAlgorithm}`);
  }
  let start = 0;
  while (start < serialNumber.length - 1 && serialNumber[start] === 0) start += 1;
  const certId: OcspCertId = {
    hashAlgorithm,
    issuerNameHash: Buffer.from(issuerNameHash),
    issuerKeyHash: Buffer.from(issuerKeyHash),
    serialNumber: Buffer.from(serialNumber),
    serial: serialNumber.subarray(start).toString('hex'),
  };
  return nonce === undefined ? { ok: true, certId } : { ok: true, certId, nonce };
}

/**
 * Extension ::= SEQUENCE { extnID OID, critical BOOLEAN DEFAULT FALSE, extnValue OCTET STRING }. Only the
 * nonce is read; an unknown critical extension cannot be honoured, so the request is refused (RFC 6960
 * §4.4: unrecognized extensions are ignored unless critical).
 */
function readExtensions(der: Uint8Array, list: Tlv): OcspNonce | undefined {
  let nonce: OcspNonce | undefined;
  for (const node of children(der, list)) {
    const [idNode, second, third, extra] = children(der, expect(der, node, TAG.SEQUENCE, 'Extension'));
    const id = value(der, expect(der, idNode, TAG.OID, 'extnID'));
    let critical = false;
    let valueNode = second;
    if (second?.tag === TAG.BOOLEAN) {
      if (second.end - second.start !== 1) throw new Malformed('bad BOOLEAN');
      critical = der[second.start] !== 0;
      valueNode = third;
    } else if (third !== undefined) {
      throw new Malformed('unexpected element in Extension');
    }
    if (extra !== undefined) throw new Malformed('unexpected element in Extension');
    const extnValue = value(der, expect(der, valueNode, TAG.OCTET_STRING, 'extnValue'));
    if (id.equals(NONCE)) {
      if (nonce !== undefined) throw new Malformed('two nonce extensions');
      nonce = { extnValue: Buffer.from(extnValue), length: nonceLength(extnValue) };
    } else if (critical) {
      throw new Malformed(`unsupported critical request extension ${oidText(id)}`);
    }
  }
  return nonce;
}

/**
 * RFC 8954 §2.1: extnValue holds the DER of Nonce ::= OCTET STRING (SIZE(1..32)). Some older clients put
 * the raw nonce in extnValue; then its whole length counts.
 */
function nonceLength(extnValue: Buffer): number {
  if (extnValue.length >= 2 && extnValue[0] === TAG.OCTET_STRING) {
    try {
      const inner = readTlv(extnValue, 0);
      if (inner.end === extnValue.length) return inner.end - inner.start;
    } catch {
      // not wrapped: fall through
    }
  }
  return extnValue.length;
}
