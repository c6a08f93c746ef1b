/**
 * A minimal DER writer (ITU-T X.690 §8, §10). Chancery builds TBSCertificates and CRLs from pre-encoded
 * parts joined per call, because building them as pkijs object trees costs ~1.2 ms a certificate here and
 * the issuance target is well under that (see docs/benchmarks.md). Parsing stays with pkijs/asn1js.
 */
export type Der = Buffer;

export const TAG = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  ENUMERATED: 0x0a,
  UTF8_STRING: 0x0c,
  PRINTABLE_STRING: 0x13,
  IA5_STRING: 0x16,
  UTC_TIME: 0x17,
  GENERALIZED_TIME: 0x18,
  SEQUENCE: 0x30,
  SET: 0x31,
} as const;

/** DER length octets (X.690 §8.1.3: definite form, minimal). */
export function lengthOctets(length: number): Buffer {
  if (length < 0x80) return Buffer.from([length]);
  const bytes: number[] = [];
  for (let n = length; n > 0; n = Math.floor(n / 256)) bytes.unshift(n & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

export function tlv(tag: number, ...parts: Uint8Array[]): Der {
  let length = 0;
  for (const part of parts) length += part.length;
  const header = lengthOctets(length);
  const out = Buffer.allocUnsafe(1 + header.length + length);
  out[0] = tag;
  header.copy(out, 1);
  let offset = 1 + header.length;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

export const sequence = (...parts: Uint8Array[]): Der => tlv(TAG.SEQUENCE, ...parts);
export const set = (...parts: Uint8Array[]): Der => tlv(TAG.SET, ...parts);
export const octetString = (bytes: Uint8Array): Der => tlv(TAG.OCTET_STRING, bytes);
export const booleanTrue = (): Der => Buffer.from([TAG.BOOLEAN, 1, 0xff]);
export const nullValue = (): Der => Buffer.from([TAG.NULL, 0]);

/** [n] EXPLICIT — constructed context tag around a complete encoding. */
export const explicit = (n: number, ...parts: Uint8Array[]): Der => tlv(0xa0 | n, ...parts);
/** [n] IMPLICIT on a primitive value (e.g. GeneralName dNSName [2], keyIdentifier [0]). */
export const implicitPrimitive = (n: number, bytes: Uint8Array): Der => tlv(0x80 | n, bytes);
/** [n] IMPLICIT on a constructed value (e.g. DistributionPointName fullName [0]). */
export const implicitConstructed = (n: number, ...parts: Uint8Array[]): Der => tlv(0xa0 | n, ...parts);

/** BIT STRING with no unused bits (signatures, public keys). */
export const bitString = (bytes: Uint8Array): Der => tlv(TAG.BIT_STRING, Buffer.from([0]), bytes);

/**
 * A named-bit-list BIT STRING (X.690 §11.2.2: trailing zero bits removed), e.g. KeyUsage. Bit 0 is the
 * most significant bit of the first octet.
 */
export function namedBits(bits: readonly number[]): Der {
  if (bits.length === 0) return tlv(TAG.BIT_STRING, Buffer.from([0]));
  const highest = Math.max(...bits);
  const bytes = Buffer.alloc(Math.floor(highest / 8) + 1);
  for (const bit of bits) bytes[Math.floor(bit / 8)]! |= 0x80 >> bit % 8;
  const unused = 7 - (highest % 8);
  return tlv(TAG.BIT_STRING, Buffer.from([unused]), bytes);
}

/** INTEGER from a small non-negative number. */
export function integer(value: number): Der {
  if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`INTEGER ${value} out of range`);
  const bytes: number[] = [];
  let n = value;
  do {
    bytes.unshift(n & 0xff);
    n = Math.floor(n / 256);
  } while (n > 0);
  if (bytes[0]! & 0x80) bytes.unshift(0);
  return tlv(TAG.INTEGER, Buffer.from(bytes));
}

/** INTEGER from big-endian unsigned magnitude bytes (serial numbers): minimal, positive. */
export function unsignedInteger(magnitude: Uint8Array): Der {
  let start = 0;
  while (start < magnitude.length - 1 && magnitude[start] === 0) start += 1;
  const trimmed = magnitude.subarray(start);
  return trimmed[0]! & 0x80 ? tlv(TAG.INTEGER, Buffer.from([0]), trimmed) : tlv(TAG.INTEGER, trimmed);
}

export function oid(dotted: string): Der {
  const arcs = dotted.split('.').map(Number);
  if (arcs.length < 2 || arcs.some((a) => !Number.isSafeInteger(a) || a < 0)) throw new Error(`bad OID ${dotted}`);
  const body: number[] = [];
  const push = (value: number): void => {
    const chunk = [value & 0x7f];
    for (let n = Math.floor(value / 128); n > 0; n = Math.floor(n / 128)) chunk.unshift(0x80 | (n & 0x7f));
    body.push(...chunk);
  };
  push(arcs[0]! * 40 + arcs[1]!);
  for (const arc of arcs.slice(2)) push(arc);
  return tlv(TAG.OID, Buffer.from(body));
}

export const utf8String = (text: string): Der => tlv(TAG.UTF8_STRING, Buffer.from(text, 'utf8'));
export const printableString = (text: string): Der => tlv(TAG.PRINTABLE_STRING, Buffer.from(text, 'latin1'));
export const ia5String = (text: string): Der => tlv(TAG.IA5_STRING, Buffer.from(text, 'latin1'));

/**
 * RFC 5280 §4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050; both in UTC with seconds, no
 * fractional seconds.
 */
export function time(date: Date): Der {
  const iso = date.toISOString(); // YYYY-MM-DDTHH:MM:SS.sssZ
  const digits = iso.slice(0, 19).replace(/[-T:]/g, '') + 'Z';
  const year = date.getUTCFullYear();
  return year < 2050 && year >= 1950
    ? tlv(TAG.UTC_TIME, Buffer.from(digits.slice(2), 'latin1'))
    : tlv(TAG.GENERALIZED_TIME, Buffer.from(digits, 'latin1'));
}

export const generalizedTime = (date: Date): Der =>
  tlv(TAG.GENERALIZED_TIME, Buffer.from(date.toISOString().slice(0, 19).replace(/[-T:]/g, '') + 'Z', 'latin1'));
