import { createHash } from 'node:crypto';
import type * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { CaError } from '../core/errors.js';
import { OID } from './oids.js';
import { children, readTlv } from './der/der-reader.js';

/** What Chancery reads back from a certificate it holds (issuer certificates, stored leaves). */
export interface CertificateEssentials {
  serialHex: string;
  /** The subject Name exactly as encoded, to be copied byte for byte into issued certificates' issuer. */
  subjectDer: Buffer;
  subjectText: string;
  /** SubjectPublicKeyInfo, DER. */
  spki: Buffer;
  notBefore: Date;
  notAfter: Date;
  subjectKeyId?: Buffer;
  isCa: boolean;
}

export function parseCertificate(der: Uint8Array): CertificateEssentials {
  let cert: pkijs.Certificate;
  try {
    cert = pkijs.Certificate.fromBER(new Uint8Array(der));
  } catch (cause) {
    throw new CaError('malformed', 'not a DER X.509 certificate', { cause });
  }
  const skiExt = cert.extensions?.find((e) => e.extnID === OID.subjectKeyIdentifier);
  const bc = cert.extensions?.find((e) => e.extnID === OID.basicConstraints)?.parsedValue as
    | pkijs.BasicConstraints
    | undefined;
  return {
    serialHex: Buffer.from(cert.serialNumber.valueBlock.valueHexView).toString('hex'),
    subjectDer: Buffer.from(cert.subject.valueBeforeDecode),
    subjectText: cert.subject.typesAndValues.map((tv) => `${shortName(tv.type)}=${tv.value.valueBlock.value}`).join(', '),
    spki: Buffer.from(cert.subjectPublicKeyInfo.toSchema().toBER()),
    notBefore: cert.notBefore.value,
    notAfter: cert.notAfter.value,
    subjectKeyId: skiExt
      ? Buffer.from((skiExt.parsedValue as asn1js.OctetString).valueBlock.valueHexView)
      : undefined,
    isCa: bc?.cA === true,
  };
}

/**
 * Key identifier per RFC 5280 §4.2.1.2 method (1): SHA-1 of the subjectPublicKey BIT STRING contents
 * (excluding tag, length and unused-bits octet). SHA-1 here is an identifier, not a security function.
 */
export function keyIdentifier(spki: Uint8Array): Buffer {
  // SubjectPublicKeyInfo ::= SEQUENCE { algorithm AlgorithmIdentifier, subjectPublicKey BIT STRING }
  const [, bits] = children(spki, readTlv(spki, 0));
  if (!bits || bits.tag !== 0x03) throw new CaError('badPublicKey', 'SubjectPublicKeyInfo has no subjectPublicKey');
  return createHash('sha1').update(spki.subarray(bits.start + 1, bits.end)).digest();
}

function shortName(type: string): string {
  const names: Record<string, string> = {
    [OID.commonName]: 'CN',
    [OID.organizationName]: 'O',
    [OID.organizationalUnitName]: 'OU',
    [OID.countryName]: 'C',
  };
  return names[type] ?? type;
}
