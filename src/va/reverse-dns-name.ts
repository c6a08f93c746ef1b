import { ipBytes } from '../core/ip-network.js';

/**
 * The bytes of an IP address in network order: 4 for IPv4, 16 for IPv6. `undefined` when `value` is not a
 * plain address (zone ids such as "fe80::1%eth0" are refused: an ACME ip identifier names an address, RFC 8738 §3).
 *
 * These bytes are what an X.509 iPAddress GeneralName holds (RFC 5280 §4.2.1.6), so tls-alpn-01 compares
 * them instead of text forms, which differ in case and zero compression.
 */
export function ipAddressBytes(value: string): Buffer | undefined {
  const bytes = ipBytes(value);
  return bytes === undefined ? undefined : Buffer.from(bytes);
}

/**
 * The reverse-mapping DNS name of an IP address, which RFC 8738 §6 requires as the TLS SNI value when
 * tls-alpn-01 validates an ip identifier (an SNI host_name may not be an IP literal, RFC 6066 §3):
 * 192.0.2.1 -> "1.2.0.192.in-addr.arpa" (RFC 1034 §5.2.1), and for IPv6 the 32 nibbles in reverse order
 * under "ip6.arpa" (RFC 3596 §2.5).
 */
export function reverseDnsName(ip: string): string {
  const bytes = ipAddressBytes(ip);
  if (bytes === undefined) {
    throw new TypeError(`not an IP address: ${JSON.stringify(ip)}`);
  }
  if (bytes.length === 4) {
    return `${[...bytes].reverse().join('.')}.in-addr.arpa`;
  }
  const nibbles: string[] = [];
  for (const byte of bytes) {
    nibbles.push((byte >> 4).toString(16), (byte & 0x0f).toString(16));
  }
  return `${nibbles.reverse().join('.')}.ip6.arpa`;
}
