import { createPublicKey, verify } from 'node:crypto';
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
  if (!(await selfSignatureValid(csr))) throw new CaError('badCSR', 'CSR signature is invalid');

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

/**
 * Hash of the parameterless signature algorithms every ACME client uses (ecdsa-with-SHA*, RFC 5758 §3.2;
 * sha*WithRSAEncryption, RFC 4055 §5). They are checked with node:crypto directly: pkijs's verify goes
 * through WebCrypto, a thread-pool hand-off per CSR that showed in the finalize profile (issue #3). Other
 * algorithms (RSASSA-PSS with its parameters, ...) keep pkijs's check.
 */
const DIRECT_SIGNATURES: Record<string, string> = {
  '1.2.840.10045.4.3.2': 'sha256',
  '1.2.840.10045.4.3.3': 'sha384',
  '1.2.840.10045.4.3.4': 'sha512',
  '1.2.840.113549.1.1.11': 'sha256',
  '1.2.840.113549.1.1.12': 'sha384',
  '1.2.840.113549.1.1.13': 'sha512',
};

async function selfSignatureValid(csr: pkijs.CertificationRequest): Promise<boolean> {
  const hash = DIRECT_SIGNATURES[csr.signatureAlgorithm.algorithmId];
  try {
    if (hash === undefined) return await csr.verify();
    const key = createPublicKey({ key: Buffer.from(csr.subjectPublicKeyInfo.toSchema().toBER()), format: 'der', type: 'spki' });
    const ecdsa = csr.signatureAlgorithm.algorithmId.startsWith('1.2.840.10045.');
    if (ecdsa !== (key.asymmetricKeyType === 'ec')) return false; // algorithm does not fit the key
    // X.509 ECDSA signatures are DER Ecdsa-Sig-Value (RFC 3279 §2.2.3), node:crypto's default encoding.
    return verify(hash, csr.tbsView, key, csr.signatureValue.valueBlock.valueHexView);
  } catch (cause) {
    throw new CaError('badCSR', 'CSR signature could not be checked: unsupported key or signature algorithm', { cause });
  }
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
