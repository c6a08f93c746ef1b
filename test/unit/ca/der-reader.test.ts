import t from 'tap';
import { children, readTlv } from '../../../src/ca/der/der-reader.js';

/** The hot-path DER reader (CSRs, OCSP requests): DER only, and no child may leave its parent. */

const bytes = (hex: string): Buffer => Buffer.from(hex.replace(/\s+/g, ''), 'hex');

t.test('reads nested TLVs in short and long length forms', async (t) => {
  // SEQUENCE { INTEGER 5, OCTET STRING (130 octets) }
  const der = Buffer.concat([bytes('30 81 88 02 01 05 04 81 82'), Buffer.alloc(130, 0xab)]);
  const outer = readTlv(der, 0);
  t.same(outer, { tag: 0x30, start: 3, end: der.length });
  const [integer, octets, none] = children(der, outer);
  t.same(integer, { tag: 0x02, start: 5, end: 6 });
  t.same(octets, { tag: 0x04, start: 9, end: 139 });
  t.equal(none, undefined);
});

t.test('a child that runs past its parent is refused, even when the input goes on', async (t) => {
  // SEQUENCE (3 octets) { OCTET STRING claiming 4 octets } followed by more bytes: the child would end
  // inside the next sibling.
  const der = bytes('30 03 04 04 aa bb 05 00');
  const outer = readTlv(der, 0);
  t.throws(() => children(der, outer), /DER truncated/);
  t.throws(() => readTlv(der, 2, outer.end), /DER truncated/, 'readTlv with the parent as limit');
});

t.test('BER and malformed lengths are refused', async (t) => {
  t.throws(() => readTlv(bytes('30 80 02 01 05 00 00'), 0), /DER length unsupported/, 'indefinite length');
  t.throws(() => readTlv(bytes('04 81 05 aa bb cc dd ee'), 0), /not minimal/, 'long form for a length under 128');
  t.throws(() => readTlv(Buffer.concat([bytes('04 82 00 85'), Buffer.alloc(0x85)]), 0), /not minimal/, 'leading zero length octet');
  t.throws(() => readTlv(bytes('04 85 00 00 00 00 01 aa'), 0), /DER length unsupported/, 'five length octets');
  t.throws(() => readTlv(bytes('04 05 aa'), 0), /DER truncated/, 'length beyond the input');
  t.throws(() => readTlv(bytes('04'), 0), /DER truncated/, 'no length octet');
  t.throws(() => readTlv(bytes('9f 81 01 01 00'), 0), /high tag numbers/, 'high-tag-number form');
});
