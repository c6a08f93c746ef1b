import { constants, createPublicKey, verify, type KeyObject, type VerifyKeyObjectInput } from 'node:crypto';
import { CaError } from '../core/errors.js';
import type { Identifier } from '../core/identifier.js';
import { TAG } from './der/der-writer.js';
import { children, oidText, readTlv, type Tlv } from './der/der-reader.js';
import { OID } from './oids.js';

/** What a PKCS#10 request (RFC 2986) asks for, after its self-signature has been checked. */
export interface ParsedCsr {
  /** SubjectPublicKeyInfo, DER (the request's own bytes). */
  publicKey: Buffer;
  /** The same key, already imported to check the signature (so the key policy need not import it again). */
  key: KeyObject;
  /** SAN dNSName/iPAddress entries plus a subject CN not already among them, in request order. */
  identifiers: Identifier[];
}

/**
 * Parses and verifies a CSR. The self-signature proves possession of the key (RFC 8555 §7.4 relies on
 * it); a request for CA powers (basicConstraints cA=TRUE) is refused outright rather than silently
 * dropped, so a misconfigured client learns what it asked for.
 *
 * Read by hand with the DER reader and checked with node:crypto, not pkijs: every finalize parses one,
 * and pkijs + its WebCrypto import cost ~1.6 ms of the server's ~9 ms per issuance (docs/benchmarks.md).
 * The input must be DER (RFC 8555 §7.4: "the DER format"): definite lengths, nothing after the request.
 */
export async function parseCsr(der: Uint8Array): Promise<ParsedCsr> {
  const bytes = Buffer.from(der.buffer, der.byteOffset, der.byteLength);
  const shape = readShape(bytes);
  const key = importKey(bytes, shape.spki);
  if (!checkSignature(bytes, shape, key)) throw new CaError('badCSR', 'CSR signature is invalid');

  const identifiers: Identifier[] = [];
  const add = (id: Identifier): void => {
    if (!identifiers.some((seen) => seen.type === id.type && seen.value === id.value)) identifiers.push(id);
  };
  for (const extension of requestedExtensions(bytes, shape.attributes)) {
    if (extension.id === OID.basicConstraints && isCa(extension.value)) {
      throw new CaError('badCSR', 'CSR requests a CA certificate (basicConstraints cA=TRUE); only end-entity certificates are issued');
    }
    if (extension.id === OID.subjectAltName) for (const name of altNames(extension.value)) add(name);
  }
  for (const cn of commonNames(bytes, shape.subject)) {
    const value = cn.toLowerCase();
    add(/^[0-9.]+$|:/.test(value) ? { type: 'ip', value } : { type: 'dns', value });
  }
  return { publicKey: Buffer.from(slice(bytes, shape.spki, true)), key, identifiers };
}

class Malformed extends Error {}

interface CsrShape {
  /** CertificationRequestInfo, with its tag and length: the signed bytes. */
  info: Tlv & { offset: number };
  subject: Tlv;
  spki: Tlv & { offset: number };
  attributes?: Tlv;
  algorithm: Tlv;
  signature: Tlv;
}

function expect(node: Tlv | undefined, tag: number, what: string): Tlv {
  if (node === undefined || node.tag !== tag) throw new Malformed(`${what} missing or not tagged 0x${tag.toString(16)}`);
  return node;
}

/** The content octets of `node`, or (whole) its tag, length and content. */
function slice(bytes: Buffer, node: Tlv & { offset?: number }, whole = false): Buffer {
  return bytes.subarray(whole ? node.offset! : node.start, node.end);
}

function withOffset(bytes: Buffer, offset: number, limit?: number): Tlv & { offset: number } {
  return { ...readTlv(bytes, offset, limit), offset };
}

/** CertificationRequest ::= SEQUENCE { CertificationRequestInfo, AlgorithmIdentifier, BIT STRING }. */
function readShape(bytes: Buffer): CsrShape {
  try {
    if (bytes.length === 0) throw new Malformed('empty');
    const outer = expect(readTlv(bytes, 0), TAG.SEQUENCE, 'CertificationRequest');
    if (outer.end !== bytes.length) throw new Malformed('trailing bytes after CertificationRequest');
    const info = withOffset(bytes, outer.start, outer.end);
    expect(info, TAG.SEQUENCE, 'certificationRequestInfo');
    const [algorithm, signature, extra] = children(bytes, { tag: outer.tag, start: info.end, end: outer.end });
    expect(algorithm, TAG.SEQUENCE, 'signatureAlgorithm');
    expect(signature, TAG.BIT_STRING, 'signature');
    if (extra !== undefined) throw new Malformed('unexpected element after the signature');

    // CertificationRequestInfo ::= SEQUENCE { version INTEGER { v1(0) }, subject Name, subjectPKInfo, attributes [0] }
    const version = expect(readTlv(bytes, info.start, info.end), TAG.INTEGER, 'version');
    if (version.end - version.start !== 1 || bytes[version.start] !== 0) throw new Malformed('version is not v1 (0)');
    const subject = expect(readTlv(bytes, version.end, info.end), TAG.SEQUENCE, 'subject');
    const spki = withOffset(bytes, subject.end, info.end);
    expect(spki, TAG.SEQUENCE, 'subjectPKInfo');
    let attributes: Tlv | undefined;
    if (spki.end < info.end) {
      attributes = expect(readTlv(bytes, spki.end, info.end), 0xa0, 'attributes');
      if (attributes.end !== info.end) throw new Malformed('unexpected element after attributes');
    }
    return { info, subject, spki, attributes, algorithm: algorithm!, signature: signature! };
  } catch (cause) {
    throw new CaError('badCSR', 'CSR is not a DER PKCS#10 CertificationRequest', { cause });
  }
}

function importKey(bytes: Buffer, spki: Tlv & { offset: number }): KeyObject {
  try {
    const jwk = ecJwk(bytes, spki);
    return jwk === undefined
      ? createPublicKey({ key: slice(bytes, spki, true), format: 'der', type: 'spki' })
      : createPublicKey({ key: jwk, format: 'jwk' });
  } catch (cause) {
    throw new CaError('badCSR', 'CSR signature could not be checked: unsupported key or signature algorithm', { cause });
  }
}

// Named curves by their OID, with their coordinate size (RFC 5480 §2.1.1.1).
const EC_CURVES: Record<string, { crv: 'P-256' | 'P-384'; size: number }> = {
  [OID.secp256r1]: { crv: 'P-256', size: 32 },
  [OID.secp384r1]: { crv: 'P-384', size: 48 },
};

/**
 * An uncompressed P-256/P-384 SubjectPublicKeyInfo as a JWK. Importing coordinates skips OpenSSL 3's SPKI
 * decoder lookup: 66 µs instead of 104 µs here, on every finalize. The point is still checked to lie on
 * the curve by the import. Anything else (RSA, compressed points, other curves) returns undefined and is
 * imported from the DER as is.
 */
function ecJwk(bytes: Buffer, spki: Tlv): { kty: 'EC'; crv: string; x: string; y: string } | undefined {
  const [algorithm, subjectPublicKey] = children(bytes, spki);
  if (algorithm?.tag !== TAG.SEQUENCE || subjectPublicKey?.tag !== TAG.BIT_STRING) return undefined;
  const [keyType, parameters] = children(bytes, algorithm);
  if (keyType?.tag !== TAG.OID || parameters?.tag !== TAG.OID || oidText(slice(bytes, keyType)) !== OID.ecPublicKey) return undefined;
  const curve = EC_CURVES[oidText(slice(bytes, parameters))];
  const point = slice(bytes, subjectPublicKey); // unused-bits octet, then the point
  if (curve === undefined || point.length !== 2 + 2 * curve.size || point[0] !== 0 || point[1] !== 0x04) return undefined;
  return {
    kty: 'EC',
    crv: curve.crv,
    x: point.subarray(2, 2 + curve.size).toString('base64url'),
    y: point.subarray(2 + curve.size).toString('base64url'),
  };
}

// Signature algorithms a CSR may be signed with (RFC 5758 §3.2, RFC 4055 §5, RFC 8410 §3). SHA-1 is not
// among them: no supported client still signs requests with it.
const HASH_OIDS: Record<string, 'sha256' | 'sha384' | 'sha512'> = {
  [OID.sha256]: 'sha256',
  [OID.sha384]: 'sha384',
  [OID.sha512]: 'sha512',
};
const SIGNATURES: Record<string, { hash: 'sha256' | 'sha384' | 'sha512' | null; family: 'ec' | 'rsa' | 'ed25519' }> = {
  [OID.ecdsaWithSHA256]: { hash: 'sha256', family: 'ec' },
  [OID.ecdsaWithSHA384]: { hash: 'sha384', family: 'ec' },
  [OID.ecdsaWithSHA512]: { hash: 'sha512', family: 'ec' },
  [OID.sha256WithRSAEncryption]: { hash: 'sha256', family: 'rsa' },
  [OID.sha384WithRSAEncryption]: { hash: 'sha384', family: 'rsa' },
  [OID.sha512WithRSAEncryption]: { hash: 'sha512', family: 'rsa' },
  [OID.ed25519]: { hash: null, family: 'ed25519' },
};

function unsupported(what: string): CaError {
  return new CaError('badCSR', `CSR signature could not be checked: unsupported key or signature algorithm (${what})`);
}

function checkSignature(bytes: Buffer, shape: CsrShape, key: KeyObject): boolean {
  let method: { hash: string | null; options: Omit<VerifyKeyObjectInput, 'key'> };
  try {
    method = signatureMethod(bytes, shape.algorithm, key);
  } catch (cause) {
    // A CaError says what is unsupported; anything else is the DER reader refusing the AlgorithmIdentifier.
    if (cause instanceof CaError) throw cause;
    throw new CaError('badCSR', 'CSR signatureAlgorithm is malformed', { cause });
  }
  const bitString = slice(bytes, shape.signature);
  if (bitString.length < 1 || bitString[0] !== 0) throw new CaError('badCSR', 'CSR signature BIT STRING has unused bits');
  try {
    return verify(method.hash, slice(bytes, shape.info, true), { key, ...method.options }, bitString.subarray(1));
  } catch {
    return false; // e.g. an ECDSA signature that is not a DER Ecdsa-Sig-Value
  }
}

/** How to verify the request's signature: the hash and node:crypto options its AlgorithmIdentifier asks for, with this key. */
function signatureMethod(bytes: Buffer, algorithmId: Tlv, key: KeyObject): { hash: string | null; options: Omit<VerifyKeyObjectInput, 'key'> } {
  const [oidNode, params] = children(bytes, algorithmId);
  const oid = oidText(slice(bytes, expectOr(oidNode, TAG.OID, 'signatureAlgorithm.algorithm')));
  if (oid === OID.rsassaPss) {
    if (key.asymmetricKeyType !== 'rsa' && key.asymmetricKeyType !== 'rsa-pss') throw unsupported(`RSASSA-PSS with a ${String(key.asymmetricKeyType)} key`);
    const pss = pssParameters(bytes, params);
    return { hash: pss.hash, options: { padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: pss.saltLength } };
  }
  const algorithm = SIGNATURES[oid];
  if (algorithm === undefined) throw unsupported(oid);
  const keyFamily = key.asymmetricKeyType === 'rsa-pss' ? 'rsa' : key.asymmetricKeyType;
  if (keyFamily !== algorithm.family) throw unsupported(`${oid} with a ${String(key.asymmetricKeyType)} key`);
  if (algorithm.family === 'ec') return { hash: algorithm.hash, options: { dsaEncoding: 'der' } };
  if (algorithm.family === 'rsa') return { hash: algorithm.hash, options: { padding: constants.RSA_PKCS1_PADDING } };
  return { hash: null, options: {} };
}

function expectOr(node: Tlv | undefined, tag: number, what: string): Tlv {
  try {
    return expect(node, tag, what);
  } catch (cause) {
    throw new CaError('badCSR', `CSR ${what} is malformed`, { cause });
  }
}

/**
 * RSASSA-PSS-params (RFC 4055 §3.1): hashAlgorithm [0], maskGenAlgorithm [1], saltLength [2], trailerField
 * [3], each with a default (SHA-1, MGF1-SHA-1, 20, 1). Only SHA-2 with MGF1 over the same hash is accepted.
 */
function pssParameters(bytes: Buffer, params: Tlv | undefined): { hash: 'sha256' | 'sha384' | 'sha512'; saltLength: number } {
  if (params === undefined || params.tag !== TAG.SEQUENCE) throw unsupported('RSASSA-PSS without parameters (SHA-1)');
  let hash: string | undefined;
  let mgfHash: string | undefined;
  let saltLength = 20;
  for (const field of children(bytes, params)) {
    const inner = children(bytes, field)[0];
    if (field.tag === 0xa0) hash = algorithmHash(bytes, inner);
    else if (field.tag === 0xa1) {
      const [mgfOid, mgfParams] = children(bytes, expectOr(inner, TAG.SEQUENCE, 'RSASSA-PSS maskGenAlgorithm'));
      if (oidText(slice(bytes, expectOr(mgfOid, TAG.OID, 'RSASSA-PSS maskGenAlgorithm'))) !== OID.mgf1) throw unsupported('RSASSA-PSS mask generation other than MGF1');
      mgfHash = algorithmHash(bytes, mgfParams);
    } else if (field.tag === 0xa2) saltLength = smallInteger(bytes, expectOr(inner, TAG.INTEGER, 'RSASSA-PSS saltLength'));
    else if (field.tag === 0xa3) {
      if (smallInteger(bytes, expectOr(inner, TAG.INTEGER, 'RSASSA-PSS trailerField')) !== 1) throw unsupported('RSASSA-PSS trailerField other than 1');
    } else throw new CaError('badCSR', 'CSR RSASSA-PSS parameters are malformed');
  }
  const digest = hash === undefined ? undefined : HASH_OIDS[hash];
  if (digest === undefined) throw unsupported(`RSASSA-PSS with hash ${hash ?? '1.3.14.3.2.26 (SHA-1, the default)'}`);
  if (mgfHash !== hash) throw unsupported('RSASSA-PSS whose MGF1 hash differs from its message hash');
  return { hash: digest, saltLength };
}

function algorithmHash(bytes: Buffer, node: Tlv | undefined): string {
  const [oid] = children(bytes, expectOr(node, TAG.SEQUENCE, 'RSASSA-PSS hash algorithm'));
  return oidText(slice(bytes, expectOr(oid, TAG.OID, 'RSASSA-PSS hash algorithm')));
}

function smallInteger(bytes: Buffer, node: Tlv): number {
  const value = slice(bytes, node);
  if (value.length === 0 || value.length > 4 || (value[0]! & 0x80) !== 0) throw new CaError('badCSR', 'CSR RSASSA-PSS parameter is out of range');
  return value.readUIntBE(0, value.length);
}

/** The extensions of the extensionRequest attribute (PKCS#9, RFC 2985 §5.4.2), if there is one. */
function requestedExtensions(bytes: Buffer, attributes: Tlv | undefined): { id: string; value: Buffer }[] {
  if (attributes === undefined) return [];
  try {
    for (const attribute of children(bytes, attributes)) {
      // Attribute ::= SEQUENCE { type OID, values SET OF ANY }
      const [type, values] = children(bytes, expect(attribute, TAG.SEQUENCE, 'attribute'));
      if (oidText(slice(bytes, expect(type, TAG.OID, 'attribute type'))) !== OID.extensionRequest) continue;
      const [extensions] = children(bytes, expect(values, TAG.SET, 'attribute values'));
      return children(bytes, expect(extensions, TAG.SEQUENCE, 'Extensions')).map((extension) => {
        // Extension ::= SEQUENCE { extnID OID, critical BOOLEAN DEFAULT FALSE, extnValue OCTET STRING }
        const parts = children(bytes, expect(extension, TAG.SEQUENCE, 'Extension'));
        const id = oidText(slice(bytes, expect(parts[0], TAG.OID, 'extnID')));
        const valueNode = parts[1]?.tag === TAG.BOOLEAN ? parts[2] : parts[1];
        return { id, value: slice(bytes, expect(valueNode, TAG.OCTET_STRING, 'extnValue')) };
      });
    }
    return [];
  } catch (cause) {
    throw new CaError('badCSR', 'CSR extensionRequest attribute is malformed', { cause });
  }
}

/** BasicConstraints ::= SEQUENCE { cA BOOLEAN DEFAULT FALSE, pathLenConstraint INTEGER OPTIONAL }. */
function isCa(value: Buffer): boolean {
  try {
    const sequence = expect(readTlv(value, 0), TAG.SEQUENCE, 'BasicConstraints');
    if (sequence.end !== value.length) throw new Malformed('trailing bytes after BasicConstraints');
    const [first] = children(value, sequence);
    return first?.tag === TAG.BOOLEAN && first.end - first.start === 1 && value[first.start] !== 0;
  } catch (cause) {
    throw new CaError('badCSR', 'CSR basicConstraints extension is malformed', { cause });
  }
}

/** GeneralNames of subjectAltName: dNSName [2] and iPAddress [7]; any other kind is refused by number. */
function altNames(value: Buffer): Identifier[] {
  let names: Tlv[];
  try {
    const sequence = expect(readTlv(value, 0), TAG.SEQUENCE, 'GeneralNames');
    if (sequence.end !== value.length) throw new Malformed('trailing bytes after GeneralNames');
    names = children(value, sequence);
  } catch (cause) {
    throw new CaError('badCSR', 'CSR subjectAltName extension is malformed', { cause });
  }
  return names.map((name) => {
    const content = value.subarray(name.start, name.end);
    if (name.tag === 0x82) return { type: 'dns', value: content.toString('latin1').toLowerCase() };
    if (name.tag === 0x87) return { type: 'ip', value: ipText(content) };
    throw new CaError('badCSR', `CSR subjectAltName contains an unsupported name type [${name.tag & 0x1f}]`);
  });
}

/** The subject's commonName values, in order (Name ::= SEQUENCE OF SET OF AttributeTypeAndValue). */
function commonNames(bytes: Buffer, subject: Tlv): string[] {
  const names: string[] = [];
  try {
    for (const rdn of children(bytes, subject)) {
      for (const atv of children(bytes, expect(rdn, TAG.SET, 'RelativeDistinguishedName'))) {
        const [type, value] = children(bytes, expect(atv, TAG.SEQUENCE, 'AttributeTypeAndValue'));
        if (oidText(slice(bytes, expect(type, TAG.OID, 'attribute type'))) !== OID.commonName || value === undefined) continue;
        names.push(directoryString(value.tag, slice(bytes, value)));
      }
    }
  } catch (cause) {
    if (cause instanceof CaError) throw cause;
    throw new CaError('badCSR', 'CSR subject is malformed', { cause });
  }
  return names;
}

/** DirectoryString (RFC 5280 §4.1.2.4) and the IA5String some clients use for a CN. */
function directoryString(tag: number, content: Buffer): string {
  switch (tag) {
    case TAG.UTF8_STRING:
      return content.toString('utf8');
    case TAG.PRINTABLE_STRING:
    case TAG.IA5_STRING:
    case 0x14: // TeletexString, read as Latin-1
      return content.toString('latin1');
    case 0x1e: // BMPString: UTF-16BE
      return Buffer.from(content).swap16().toString('utf16le');
    default:
      throw new CaError('badCSR', `CSR subject commonName has an unsupported string type (tag 0x${tag.toString(16)})`);
  }
}

function ipText(bytes: Uint8Array): string {
  if (bytes.length === 4) return Array.from(bytes).join('.');
  if (bytes.length === 16) {
    const groups: string[] = [];
    for (let i = 0; i < 16; i += 2) groups.push(((bytes[i]! << 8) | bytes[i + 1]!).toString(16));
    // Canonical text form (RFC 5952 §4.2): compress the longest run of zero groups.
    const joined = groups.join(':');
    const runs = [...joined.matchAll(/(?:^|:)0(?::0)+(?::|$)/g)];
    const longest = runs.sort((a, b) => b[0].length - a[0].length)[0];
    return longest ? joined.replace(longest[0], '::') : joined;
  }
  throw new CaError('badCSR', `CSR iPAddress of ${bytes.length} octets is neither IPv4 nor IPv6`);
}
