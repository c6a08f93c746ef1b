import { oid, printableString, sequence, set, utf8String, type Der } from './der/der-writer.js';
import { OID } from './oids.js';

export interface DistinguishedName {
  commonName?: string;
  organization?: string;
  organizationalUnit?: string;
  country?: string;
}

/**
 * Name ::= SEQUENCE OF RelativeDistinguishedName, one attribute per RDN, in C, O, OU, CN order. Strings
 * are UTF8String (RFC 5280 §4.1.2.6 requires it for new certificates), countryName PrintableString
 * (RFC 5280 Appendix A). An empty DistinguishedName encodes the empty SEQUENCE.
 */
export function encodeName(name: DistinguishedName): Der {
  const rdns: Der[] = [];
  const add = (type: string, value: Der): void => {
    rdns.push(set(sequence(oid(type), value)));
  };
  if (name.country) add(OID.countryName, printableString(name.country));
  if (name.organization) add(OID.organizationName, utf8String(name.organization));
  if (name.organizationalUnit) add(OID.organizationalUnitName, utf8String(name.organizationalUnit));
  if (name.commonName) add(OID.commonName, utf8String(name.commonName));
  return sequence(...rdns);
}
