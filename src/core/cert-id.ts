import { CaError } from './errors.js';

/**
 * RFC 9773 §4.1 certificate identifier: base64url(AKI keyIdentifier) "." base64url(serial content
 * octets), where the serial octets are the DER INTEGER's content — so a serial with its top bit set keeps
 * the leading 0x00 ("AIdlQyE" in the RFC's example). Pure string/bytes work shared by ca/ (from a
 * certificate) and ra/ (from a stored serial).
 */
export function formatCertId(authorityKeyId: Uint8Array, serialContentOctets: Uint8Array): string {
  return `${Buffer.from(authorityKeyId).toString('base64url')}.${Buffer.from(serialContentOctets).toString('base64url')}`;
}

/** Content octets of the DER INTEGER for a positive serial given as hex magnitude. */
export function serialContentOctets(serialHex: string): Buffer {
  const magnitude = Buffer.from(serialHex.length % 2 ? `0${serialHex}` : serialHex, 'hex');
  return magnitude[0]! & 0x80 ? Buffer.concat([Buffer.from([0]), magnitude]) : magnitude;
}

export interface ParsedCertId {
  authorityKeyId: Buffer;
  /** Lower-case hex magnitude, as Chancery stores serials. */
  serialHex: string;
}

export function parseCertId(certId: string): ParsedCertId {
  const match = /^([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)$/.exec(certId);
  if (!match) throw new CaError('malformed', `"${certId.slice(0, 80)}" is not an RFC 9773 certID (base64url(AKI).base64url(serial))`);
  const authorityKeyId = Buffer.from(match[1]!, 'base64url');
  const serial = Buffer.from(match[2]!, 'base64url');
  if (authorityKeyId.length === 0 || serial.length === 0 || serial.length > 21) {
    throw new CaError('malformed', `certID "${certId.slice(0, 80)}" has an empty key identifier or a bad serial`);
  }
  // A positive DER INTEGER keeps a leading zero only when the next octet has its top bit set.
  if (serial[0]! & 0x80 || (serial[0] === 0 && serial.length > 1 && !(serial[1]! & 0x80))) {
    throw new CaError('malformed', `certID "${certId.slice(0, 80)}" serial is not the content of a positive DER INTEGER`);
  }
  let start = 0;
  while (start < serial.length - 1 && serial[start] === 0) start += 1;
  return { authorityKeyId, serialHex: serial.subarray(start).toString('hex') };
}
