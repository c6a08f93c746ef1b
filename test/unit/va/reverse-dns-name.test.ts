import t from 'tap';
import { ipAddressBytes, reverseDnsName } from '../../../src/va/reverse-dns-name.js';

/** RFC 8738 §6 reverse names for tls-alpn-01 SNI, and the address bytes an iPAddress SAN holds. */

const names: [string, string][] = [
  ['192.0.2.1', '1.2.0.192.in-addr.arpa'],
  ['127.0.0.1', '1.0.0.127.in-addr.arpa'],
  // IPv6 expectations checked against Python's ipaddress reverse_pointer: 32 nibbles, least significant first.
  ['2001:db8::567:89ab', 'b.a.9.8.7.6.5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa'],
  ['::1', `1.${'0.'.repeat(31)}ip6.arpa`],
  ['::ffff:192.0.2.1', '1.0.2.0.0.0.0.c.f.f.f.f.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa'],
];
for (const [ip, name] of names) {
  t.equal(reverseDnsName(ip), name, `ok/${ip}`);
}

t.equal(ipAddressBytes('10.1.2.3')?.toString('hex'), '0a010203', 'ok/IPv4 bytes');
t.equal(ipAddressBytes('2001:DB8::1')?.toString('hex'), '20010db8000000000000000000000001', 'ok/IPv6 bytes, upper case');
t.equal(ipAddressBytes('1:2:3:4:5:6:7:8')?.toString('hex'), '00010002000300040005000600070008', 'ok/IPv6 without compression');
t.equal(ipAddressBytes('1::')?.toString('hex'), '00010000000000000000000000000000', 'ok/IPv6 trailing ::');
t.equal(ipAddressBytes('::')?.toString('hex'), '0'.repeat(32), 'ok/unspecified address bytes');
t.equal(ipAddressBytes('fe80::1%eth0'), undefined, 'fail/zone id refused');
t.equal(ipAddressBytes('a.test'), undefined, 'fail/a name');
t.equal(ipAddressBytes('256.1.1.1'), undefined, 'fail/octet out of range');
t.throws(() => reverseDnsName('a.test'), TypeError, 'fail/reverse name of a non-address');
