import { isIPv4 } from 'node:net';
import type { Identifier } from '../core/identifier.js';
import type { ExtendedKeyUsage } from '../core/profile.js';
import {
  booleanTrue,
  ia5String,
  implicitConstructed,
  implicitPrimitive,
  integer,
  namedBits,
  nullValue,
  octetString,
  oid,
  sequence,
  type Der,
} from './der/der-writer.js';
import { OID } from './oids.js';

/** Extension ::= SEQUENCE { extnID, critical BOOLEAN DEFAULT FALSE, extnValue OCTET STRING } (RFC 5280 §4.1). */
export function extension(id: string, critical: boolean, value: Der): Der {
  return critical ? sequence(oid(id), booleanTrue(), octetString(value)) : sequence(oid(id), octetString(value));
}

/** RFC 5280 §4.2.1.9. Critical in every certificate Chancery issues. */
export function basicConstraints(ca: boolean, pathLen?: number): Der {
  if (!ca) return extension(OID.basicConstraints, true, sequence());
  return extension(
    OID.basicConstraints,
    true,
    pathLen === undefined ? sequence(booleanTrue()) : sequence(booleanTrue(), integer(pathLen)),
  );
}

/** KeyUsage bits (RFC 5280 §4.2.1.3). */
export const KEY_USAGE = { digitalSignature: 0, keyEncipherment: 2, keyCertSign: 5, cRLSign: 6 } as const;

export function keyUsage(bits: readonly number[]): Der {
  return extension(OID.keyUsage, true, namedBits(bits));
}

const EKU_OID: Record<ExtendedKeyUsage | 'ocspSigning', string> = {
  serverAuth: OID.serverAuth,
  clientAuth: OID.clientAuth,
  ocspSigning: OID.ocspSigning,
};

export function extendedKeyUsage(usages: readonly (ExtendedKeyUsage | 'ocspSigning')[]): Der {
  return extension(OID.extKeyUsage, false, sequence(...usages.map((u) => oid(EKU_OID[u]))));
}

export function keyIdentifierExtension(keyId: Uint8Array): Der {
  return extension(OID.subjectKeyIdentifier, false, octetString(keyId));
}

/** AuthorityKeyIdentifier with keyIdentifier [0] only (RFC 5280 §4.2.1.1, CABF BR 7.1.2.11.1). */
export function authorityKeyIdentifier(keyId: Uint8Array): Der {
  return extension(OID.authorityKeyIdentifier, false, sequence(implicitPrimitive(0, keyId)));
}

/**
 * SubjectAltName (RFC 5280 §4.2.1.6): dNSName [2] IA5String, iPAddress [7] OCTET STRING of 4 or 16 bytes.
 * Critical when the subject is empty (§4.2.1.6: "the subjectAltName extension MUST be critical").
 */
export function subjectAltName(identifiers: readonly Identifier[], critical: boolean): Der {
  const names = identifiers.map((id) =>
    id.type === 'dns' ? implicitPrimitive(2, Buffer.from(id.value, 'latin1')) : implicitPrimitive(7, ipBytes(id.value)),
  );
  return extension(OID.subjectAltName, critical, sequence(...names));
}

/** AIA (RFC 5280 §4.2.2.1): OCSP responder and caIssuers, each a URI GeneralName [6]. */
export function authorityInfoAccess(ocspUrl: string | undefined, caIssuersUrl: string | undefined): Der {
  const entries: Der[] = [];
  if (ocspUrl) entries.push(sequence(oid(OID.ocsp), implicitPrimitive(6, Buffer.from(ocspUrl, 'latin1'))));
  if (caIssuersUrl) entries.push(sequence(oid(OID.caIssuers), implicitPrimitive(6, Buffer.from(caIssuersUrl, 'latin1'))));
  return extension(OID.authorityInfoAccess, false, sequence(...entries));
}

/**
 * noRevAvail (RFC 9608 §2): the issuer publishes no revocation information for this certificate. Its value
 * is NULL; §2 requires it non-critical in end-entity certificates, alongside no CRL DP and no OCSP URL.
 */
export function noRevAvail(): Der {
  return extension(OID.noRevAvail, false, nullValue());
}

/**
 * CRLDistributionPoints (RFC 5280 §4.2.1.13) with one DistributionPoint whose fullName [0] is one URI
 * [6]. The same DistributionPointName is repeated in the CRL's Issuing Distribution Point (§5.2.5).
 */
export function crlDistributionPoints(url: string): Der {
  return extension(OID.crlDistributionPoints, false, sequence(sequence(distributionPointName(url))));
}

/** DistributionPoint.distributionPoint [0] { fullName [0] { URI [6] } }. */
export function distributionPointName(url: string): Der {
  return implicitConstructed(0, implicitConstructed(0, implicitPrimitive(6, Buffer.from(url, 'latin1'))));
}

/** iPAddress bytes: 4 for IPv4, 16 for IPv6 (RFC 5280 §4.2.1.6). The caller has validated the text. */
export function ipBytes(text: string): Buffer {
  if (isIPv4(text)) return Buffer.from(text.split('.').map(Number));
  const [head = '', tail = ''] = text.includes('::') ? text.split('::') : [text, ''];
  const parse = (part: string): number[] => (part ? part.split(':') : []).flatMap(expandIpv6Group);
  const left = parse(head);
  const right = parse(tail);
  const bytes = [...left, ...new Array<number>(16 - left.length - right.length).fill(0), ...right];
  return Buffer.from(bytes);
}

function expandIpv6Group(group: string): number[] {
  if (group.includes('.')) return group.split('.').map(Number); // embedded IPv4 (::ffff:1.2.3.4)
  const value = parseInt(group, 16);
  return [value >> 8, value & 0xff];
}
