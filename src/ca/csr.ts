import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { CaError } from '../core/errors.js';
import type { Identifier } from '../core/identifier.js';
import { OID } from './oids.js';

/** What a PKCS#10 request (RFC 2986) asks for, after its self-signature has been checked. */
export interface ParsedCsr {
  /** SubjectPublicKeyInfo, DER. */
  publicKey: Buffer;
  /** SAN dNSName/iPAddress entries plus a subject CN not already among them, in request order. */
  identifiers: Identifier[];
}

/**
 * Parses and verifies a CSR. The self-signature proves possession of the key (RFC 8555 §7.4 relies on
 * it); a request for CA powers (basicConstraints cA=TRUE) is refused outright rather than silently
 * dropped, so a misconfigured client learns what it asked for.
 */
export async function parseCsr(der: Uint8Array): Promise<ParsedCsr> {
  let csr: pkijs.CertificationRequest;
  try {
    csr = pkijs.CertificationRequest.fromBER(new Uint8Array(der));
  } catch (cause) {
    throw new CaError('badCSR', 'CSR is not a DER PKCS#10 CertificationRequest', { cause });
  }
  let valid = false;
  try {
    valid = await csr.verify();
  } catch (cause) {
    throw new CaError('badCSR', 'CSR signature could not be checked: unsupported key or signature algorithm', { cause });
  }
  if (!valid) throw new CaError('badCSR', 'CSR signature is invalid');

  const identifiers: Identifier[] = [];
  const add = (id: Identifier): void => {
    if (!identifiers.some((seen) => seen.type === id.type && seen.value === id.value)) identifiers.push(id);
  };
  for (const extension of requestedExtensions(csr)) {
    if (extension.extnID === OID.basicConstraints) {
      const bc = extension.parsedValue as pkijs.BasicConstraints | undefined;
      if (bc?.cA) throw new CaError('badCSR', 'CSR requests a CA certificate (basicConstraints cA=TRUE); only end-entity certificates are issued');
    }
    if (extension.extnID === OID.subjectAltName) {
      const names = (extension.parsedValue as pkijs.AltName | undefined)?.altNames ?? [];
      for (const name of names) {
        if (name.type === 2) add({ type: 'dns', value: String(name.value).toLowerCase() });
        else if (name.type === 7) add({ type: 'ip', value: ipText((name.value as asn1js.OctetString).valueBlock.valueHexView) });
        else throw new CaError('badCSR', `CSR subjectAltName contains an unsupported name type [${name.type}]`);
      }
    }
  }
  for (const tv of csr.subject.typesAndValues) {
    if (tv.type === OID.commonName) {
      const cn = String(tv.value.valueBlock.value).toLowerCase();
      add(/^[0-9.]+$|:/.test(cn) ? { type: 'ip', value: cn } : { type: 'dns', value: cn });
    }
  }
  return { publicKey: Buffer.from(csr.subjectPublicKeyInfo.toSchema().toBER()), identifiers };
}

function requestedExtensions(csr: pkijs.CertificationRequest): pkijs.Extension[] {
  const attribute = csr.attributes?.find((a) => a.type === OID.extensionRequest);
  if (!attribute) return [];
  const [value] = attribute.values;
  try {
    return new pkijs.Extensions({ schema: value }).extensions;
  } catch (cause) {
    throw new CaError('badCSR', 'CSR extensionRequest attribute is malformed', { cause });
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
