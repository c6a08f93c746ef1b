/**
 * PKCS#11 CKM_ECDSA returns r||s, each left-padded to the curve size (PKCS#11 v2.40 §2.3.1); X.509 wants
 * the DER Ecdsa-Sig-Value SEQUENCE { r INTEGER, s INTEGER } (RFC 3279 §2.2.3). Written by hand: two
 * INTEGERs are simpler than pulling asn1js into the signing hot path.
 */
export function ecdsaRawToDer(raw: Uint8Array): Uint8Array {
  if (raw.length === 0 || raw.length % 2 !== 0) throw new Error(`ECDSA signature of odd length ${raw.length}`);
  const half = raw.length / 2;
  const r = derUnsignedInteger(raw.subarray(0, half));
  const s = derUnsignedInteger(raw.subarray(half));
  const body = new Uint8Array(r.length + s.length);
  body.set(r, 0);
  body.set(s, r.length);
  return concatTlv(0x30, body);
}

/** The inverse, for verifying in tests and for signers that must hand back raw form. */
export function ecdsaDerToRaw(der: Uint8Array, size: number): Uint8Array {
  if (der[0] !== 0x30) throw new Error('ECDSA signature is not a SEQUENCE');
  let offset = der[1]! & 0x80 ? 2 + (der[1]! & 0x7f) : 2;
  const out = new Uint8Array(size * 2);
  for (let i = 0; i < 2; i += 1) {
    if (der[offset] !== 0x02) throw new Error('ECDSA signature component is not an INTEGER');
    const len = der[offset + 1]!;
    let value = der.subarray(offset + 2, offset + 2 + len);
    while (value.length > size && value[0] === 0) value = value.subarray(1);
    out.set(value, i * size + (size - value.length));
    offset += 2 + len;
  }
  return out;
}

function derUnsignedInteger(bytes: Uint8Array): Uint8Array {
  let start = 0;
  while (start < bytes.length - 1 && bytes[start] === 0) start += 1;
  const trimmed = bytes.subarray(start);
  const pad = trimmed[0]! & 0x80 ? 1 : 0;
  const body = new Uint8Array(trimmed.length + pad);
  body.set(trimmed, pad);
  return concatTlv(0x02, body);
}

function concatTlv(tag: number, body: Uint8Array): Uint8Array {
  const len = body.length;
  const header = len < 0x80 ? [tag, len] : len < 0x100 ? [tag, 0x81, len] : [tag, 0x82, len >> 8, len & 0xff];
  const out = new Uint8Array(header.length + len);
  out.set(header, 0);
  out.set(body, header.length);
  return out;
}
