import * as pkijs from 'pkijs';
import type * as asn1js from 'asn1js';
import { CaError } from '../core/errors.js';
import { formatCertId } from '../core/cert-id.js';
import { OID } from './oids.js';

/** The RFC 9773 certID of a DER certificate: its AKI keyIdentifier and serial content octets. */
export function certIdOf(der: Uint8Array): string {
  const cert = pkijs.Certificate.fromBER(new Uint8Array(der));
  const aki = cert.extensions?.find((e) => e.extnID === OID.authorityKeyIdentifier)?.parsedValue as
    | pkijs.AuthorityKeyIdentifier
    | undefined;
  const keyId = (aki?.keyIdentifier as asn1js.OctetString | undefined)?.valueBlock.valueHexView;
  if (!keyId) throw new CaError('malformed', 'certificate has no authorityKeyIdentifier keyIdentifier (RFC 9773 §4.1 needs one)');
  return formatCertId(keyId, cert.serialNumber.valueBlock.valueHexView);
}
