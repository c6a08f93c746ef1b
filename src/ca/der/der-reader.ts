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

/**
 * The TLV at `offset`, which must end by `limit` (its parent's end; the input's end by default). DER only
 * (X.690 §10.1): a definite length in its shortest form, and low tag numbers (every structure read here
 * uses tags below 31). Anything else throws, so BER or a crafted length cannot make two parsers see two
 * different structures in the same bytes.
 */
export function readTlv(der: Uint8Array, offset: number, limit: number = der.length): Tlv {
  if (offset + 2 > limit) throw new Error('DER truncated');
  const tag = der[offset]!;
  if ((tag & 0x1f) === 0x1f) throw new Error('DER high tag numbers unsupported');
  let length = der[offset + 1]!;
  let start = offset + 2;
  if (length & 0x80) {
    const count = length & 0x7f;
    if (count === 0 || count > 4 || start + count > limit) throw new Error('DER length unsupported');
    if (der[start] === 0) throw new Error('DER length not minimal');
    length = 0;
    for (let i = 0; i < count; i += 1) length = length * 256 + der[start + i]!;
    if (length < 0x80) throw new Error('DER length not minimal');
    start += count;
  }
  const end = start + length;
  if (end > limit) throw new Error('DER truncated');
  return { tag, start, end };
}

/** The children of a constructed TLV; a child running past its parent's end throws. */
export function children(der: Uint8Array, parent: Tlv): Tlv[] {
  const out: Tlv[] = [];
  for (let offset = parent.start; offset < parent.end; ) {
    const child = readTlv(der, offset, parent.end);
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
