import { isIPv4, isIPv6 } from 'node:net';

/**
 * IP addresses and CIDR networks as bytes, for the rules that decide which addresses may be contacted or
 * certified. The configuration loader checks CIDR settings with this and the VA's network policy matches
 * with it, so both read a CIDR the same way.
 */

/**
 * The bytes of an IP address in network order: 4 for IPv4, 16 for IPv6. `undefined` when `text` is not a
 * plain address: zone ids ("fe80::1%eth0") are refused, and IPv4 must be dotted-quad (no octal or hex forms).
 */
export function ipBytes(text: string): Uint8Array | undefined {
  if (isIPv4(text)) {
    return Uint8Array.from(text.split('.').map((octet) => Number(octet)));
  }
  if (!isIPv6(text) || text.includes('%')) {
    return undefined;
  }
  let rest = text;
  // An embedded IPv4 tail ("::ffff:192.0.2.1") stands for the last two 16-bit groups.
  let tail: number[] = [];
  const lastColon = rest.lastIndexOf(':');
  const last = rest.slice(lastColon + 1);
  if (last.includes('.')) {
    const octets = last.split('.').map((octet) => Number(octet));
    tail = [((octets[0] ?? 0) << 8) | (octets[1] ?? 0), ((octets[2] ?? 0) << 8) | (octets[3] ?? 0)];
    rest = rest.slice(0, lastColon + 1) + '0';
  }
  const parseGroups = (part: string): number[] => (part === '' ? [] : part.split(':').map((group) => parseInt(group, 16)));
  const doubleColon = rest.indexOf('::');
  let groups: number[];
  if (doubleColon >= 0) {
    const head = parseGroups(rest.slice(0, doubleColon));
    const after = parseGroups(rest.slice(doubleColon + 2));
    const wanted = 8 - (tail.length > 0 ? after.length - 1 + tail.length : after.length) - head.length;
    groups = [...head, ...new Array<number>(wanted).fill(0), ...after];
  } else {
    groups = parseGroups(rest);
  }
  if (tail.length > 0) {
    groups = [...groups.slice(0, groups.length - 1), ...tail];
  }
  if (groups.length !== 8) {
    return undefined;
  }
  const bytes = new Uint8Array(16);
  groups.forEach((group, i) => {
    bytes[i * 2] = group >> 8;
    bytes[i * 2 + 1] = group & 0xff;
  });
  return bytes;
}

/**
 * An address in one 16-byte space: IPv6 as is, IPv4 as its IPv4-mapped form ::ffff:a.b.c.d (RFC 4291
 * §2.5.5.2). "10.0.0.1" and "::ffff:10.0.0.1" are then the same bytes, and one prefix test covers both.
 */
export function ipAddress16(text: string): Uint8Array | undefined {
  const bytes = ipBytes(text);
  return bytes?.length === 4 ? mapIpv4(bytes) : bytes;
}

/** The IPv4-mapped IPv6 form of 4 IPv4 bytes. */
export function mapIpv4(ipv4: Uint8Array): Uint8Array {
  const out = new Uint8Array(16);
  out[10] = 0xff;
  out[11] = 0xff;
  out.set(ipv4.subarray(0, 4), 12);
  return out;
}

/** True when 16 address bytes are IPv4-mapped (::ffff:0:0/96), i.e. an IPv4 address. */
export function isMappedIpv4(bytes: Uint8Array): boolean {
  for (let i = 0; i < 10; i += 1) if (bytes[i] !== 0) return false;
  return bytes[10] === 0xff && bytes[11] === 0xff;
}

/** Text form of 16 address bytes: dotted-quad for IPv4-mapped ones, RFC 5952 text otherwise. */
export function formatIp(bytes: Uint8Array): string {
  if (isMappedIpv4(bytes)) return [...bytes.subarray(12)].join('.');
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i] ?? 0) << 8) | (bytes[i + 1] ?? 0));
  // RFC 5952 §4.2: the longest run of two or more zero groups becomes "::" (the first such run on a tie).
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i += 1;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j += 1;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = groups.map((group) => group.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLength).join(':')}`;
}

/** A CIDR network in the 16-byte space of ipAddress16: an IPv4 /n is stored as its mapped /(96+n). */
export interface IpNetwork {
  readonly base: Uint8Array;
  readonly prefix: number;
  /** As an operator would write it: 10.0.0.0/8, fd00::/8. */
  readonly text: string;
}

/**
 * Parses "address/prefix" (an address alone is a /32 or /128). Returns why it is not a network instead of
 * throwing, so each caller can name its own setting. Host bits set ("10.0.0.1/8") are refused: the writer
 * probably meant a different network than the one it denotes, and a rule that decides what may be reached
 * must not guess.
 */
export function parseIpNetwork(text: string): IpNetwork | { error: string } {
  const trimmed = text.trim();
  const slash = trimmed.indexOf('/');
  const addressText = slash < 0 ? trimmed : trimmed.slice(0, slash);
  const bytes = ipBytes(addressText);
  if (bytes === undefined) return { error: `"${trimmed}" is not an IPv4 or IPv6 address or CIDR network` };
  const width = bytes.length * 8;
  let prefix = width;
  if (slash >= 0) {
    const prefixText = trimmed.slice(slash + 1);
    if (!/^\d{1,3}$/.test(prefixText) || Number(prefixText) > width) {
      return { error: `"${trimmed}" has an invalid prefix length (0-${width} for ${bytes.length === 4 ? 'IPv4' : 'IPv6'})` };
    }
    prefix = Number(prefixText);
  }
  const base = bytes.length === 4 ? mapIpv4(bytes) : bytes;
  const prefix16 = bytes.length === 4 ? prefix + 96 : prefix;
  const masked = maskTo(base, prefix16);
  if (!sameBytes(masked, base)) {
    const suggestion = `${formatIp(masked)}/${prefix}`;
    return { error: `"${trimmed}" has host bits set; did you mean ${suggestion}?` };
  }
  return { base, prefix: prefix16, text: `${addressText}/${prefix}` };
}

/** True when 16 address bytes lie inside `network`. */
export function inNetwork(network: IpNetwork, address: Uint8Array): boolean {
  const { base, prefix } = network;
  const whole = prefix >> 3;
  for (let i = 0; i < whole; i += 1) if (base[i] !== address[i]) return false;
  const bits = prefix & 7;
  if (bits === 0) return true;
  const mask = (0xff << (8 - bits)) & 0xff;
  return ((base[whole] ?? 0) & mask) === ((address[whole] ?? 0) & mask);
}

/** True when every address of `inner` lies inside `outer`. */
export function networkWithin(inner: IpNetwork, outer: IpNetwork): boolean {
  return inner.prefix >= outer.prefix && inNetwork(outer, inner.base);
}

function maskTo(bytes: Uint8Array, prefix: number): Uint8Array {
  const out = new Uint8Array(16);
  for (let i = 0; i < 16; i += 1) {
    const keep = Math.max(0, Math.min(8, prefix - i * 8));
    out[i] = (bytes[i] ?? 0) & ((0xff << (8 - keep)) & 0xff);
  }
  return out;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i += 1) if (a[i] !== b[i]) return false;
  return true;
}
