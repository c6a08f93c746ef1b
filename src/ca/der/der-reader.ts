/**
 * Just enough DER reading for hot paths: stepping over known structures (the subjectPublicKey inside an
 * SPKI for a key identifier) and the fixed-shape inputs read per request (OCSP requests, CSRs). Anything
 * read rarely (issuer certificates at start) is parsed with asn1js/pkijs.
 */
export interface Tlv {
  tag: number;
  /** Offset of the value's first octet. */
  start: number;
  /** Offset just past the value. */
  end: number;
}

export function readTlv(der: Uint8Array, offset: number): Tlv {
  if (offset + 2 > der.length) throw new Error('DER truncated');
  const tag = der[offset]!;
  let length = der[offset + 1]!;
  let start = offset + 2;
  if (length & 0x80) {
    const count = length & 0x7f;
    if (count === 0 || count > 4 || start + count > der.length) throw new Error('DER length unsupported');
    length = 0;
    for (let i = 0; i < count; i += 1) length = length * 256 + der[start + i]!;
    start += count;
  }
  const end = start + length;
  if (end > der.length) throw new Error('DER truncated');
  return { tag, start, end };
}

/** The children of a constructed TLV. */
export function children(der: Uint8Array, parent: Tlv): Tlv[] {
  const out: Tlv[] = [];
  for (let offset = parent.start; offset < parent.end; ) {
    const child = readTlv(der, offset);
    out.push(child);
    offset = child.end;
  }
  return out;
}

/** Dotted text of an OBJECT IDENTIFIER's content octets (X.690 §8.19), for comparisons and messages. */
export function oidText(content: Uint8Array): string {
  if (content.length === 0) return '(empty OID)';
  const arcs: number[] = [];
  let n = 0;
  for (const byte of content) {
    n = n * 128 + (byte & 0x7f);
    if ((byte & 0x80) === 0) {
      if (arcs.length === 0) arcs.push(n < 80 ? Math.floor(n / 40) : 2, n < 80 ? n % 40 : n - 80);
      else arcs.push(n);
      n = 0;
    }
  }
  return arcs.join('.');
}
