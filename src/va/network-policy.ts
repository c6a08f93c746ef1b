import { CaError } from '../core/errors.js';
import type { Identifier } from '../core/identifier.js';
import { formatIp, inNetwork, ipAddress16, isMappedIpv4, mapIpv4, networkWithin, parseIpNetwork, type IpNetwork } from '../core/ip-network.js';

/**
 * The validation network policy: which (address, port) pairs http-01 and tls-alpn-01 may connect to, on the
 * first request and on every redirect hop, and which ip identifiers may be ordered at all. RFC 8555 §10.2
 * warns that validation requests can be aimed at the CA's own network ("server-side request forgery"); a
 * private CA sits inside that network, so what it may reach is decided here, once, before any connect.
 *
 * Precedence, first match decides:
 *   1. always denied, whatever the settings: ALWAYS_DENIED below (link-local and the cloud metadata services,
 *      "this network", unspecified, multicast, broadcast) and the (address, port) pairs this process's own
 *      listeners bind (a listener on 0.0.0.0, :: or a host name counts as every local address on its port);
 *   2. validation.denyNetworks;
 *   3. loopback (127.0.0.0/8, ::1) when validation.allowLoopback is false;
 *   4. when validation.allowNetworks is non-empty it is an allow-list: an address outside it is denied
 *      (loopback too: it then needs both allowLoopback and a place in the list);
 *   5. otherwise allowed: public addresses, the private ranges (10/8, 172.16/12, 192.168/16, fc00::/7: the
 *      internal hosts a private CA certifies), and loopback while allowLoopback is true.
 * An IPv6 address that embeds an IPv4 one (IPv4-mapped ::ffff:0:0/96, IPv4-compatible ::/96, NAT64
 * 64:ff9b::/96 (RFC 6052), 6to4 2002::/16 (RFC 3056)) is judged as its IPv4 address, and is also denied when
 * its own IPv6 form falls under rule 1 or 2: the packets may end up at the IPv4 host, so neither form may
 * slip past the other's rule.
 *
 * Pure: the settings are parsed once; each check is a few byte comparisons, no I/O.
 */
export interface NetworkPolicy {
  /** Why validation may not connect to `address` (an IP literal) on `port`; undefined when it may. */
  denies(address: string, port: number): string | undefined;
  /**
   * Why an identifier can never be validated under this policy (an ip identifier whose address is denied on
   * every port); undefined when it can, and always for DNS names (their addresses are judged at validation).
   */
  refusesIdentifier(identifier: Identifier): string | undefined;
}

/** A listener's bind address as configured (host may be an IP literal, 0.0.0.0 / ::, or a name). */
export interface ListenerAddress {
  /** Which listener, for the message: "ACME", "public", "admin". */
  name: string;
  host: string;
  port: number;
}

export interface NetworkPolicySettings {
  /** validation.allowNetworks (CIDR); non-empty makes it an allow-list (rule 4). */
  allowNetworks?: readonly string[];
  /** validation.denyNetworks (CIDR). */
  denyNetworks?: readonly string[];
  /** validation.allowLoopback; default true so one machine can run client and CA. */
  allowLoopback?: boolean;
  /** This process's listeners, read at each check (a listener on port 0 learns its port when it listens). */
  ownListeners?: () => readonly ListenerAddress[];
  /** This machine's interface addresses, read only when a wildcard listener's port is being checked. */
  localAddresses?: () => readonly string[];
}

/** Ranges no setting widens, and why each is denied. */
export const ALWAYS_DENIED: readonly { cidr: string; why: string }[] = [
  { cidr: '0.0.0.0/8', why: '"this network" (RFC 791); 0.0.0.0 reaches the local host' },
  { cidr: '169.254.0.0/16', why: 'IPv4 link-local (RFC 3927), where cloud metadata services answer (169.254.169.254)' },
  { cidr: '100.100.100.200/32', why: 'the Alibaba Cloud metadata service' },
  { cidr: '224.0.0.0/4', why: 'IPv4 multicast (RFC 5771)' },
  { cidr: '255.255.255.255/32', why: 'the limited broadcast address (RFC 919)' },
  { cidr: '::/128', why: 'the IPv6 unspecified address (RFC 4291 §2.5.2)' },
  { cidr: 'fe80::/10', why: 'IPv6 link-local (RFC 4291 §2.5.6), where cloud metadata services answer' },
  { cidr: 'fd00:ec2::254/128', why: 'the AWS EC2 instance metadata service over IPv6' },
  { cidr: 'ff00::/8', why: 'IPv6 multicast (RFC 4291 §2.7)' },
];

const LOOPBACK: readonly IpNetwork[] = ['127.0.0.0/8', '::1/128'].map(network);

const alwaysDenied = ALWAYS_DENIED.map(({ cidr, why }) => ({ net: network(cidr), why }));

function network(cidr: string): IpNetwork {
  const parsed = parseIpNetwork(cidr);
  if ('error' in parsed) throw new Error(parsed.error);
  return parsed;
}

/**
 * Builds the policy. Throws CaError('badConfig') naming the setting when a list entry is not a CIDR network
 * (the configuration loader checks the same, so this guards other callers), or when an allowNetworks entry
 * lies wholly inside an always-denied range: the operator asked for something no setting grants, and
 * silently ignoring it would leave them believing it works.
 */
export function createNetworkPolicy(settings: NetworkPolicySettings = {}): NetworkPolicy {
  const allow = parseList(settings.allowNetworks ?? [], 'validation.allowNetworks');
  const deny = parseList(settings.denyNetworks ?? [], 'validation.denyNetworks');
  for (const net of allow) {
    const covering = alwaysDenied.find((d) => networkWithin(net, d.net));
    if (covering) {
      throw new CaError('badConfig', `invalid setting validation.allowNetworks: ${net.text} lies inside ${covering.net.text} (${covering.why}), which is always denied; no setting widens it`);
    }
  }
  const allowLoopback = settings.allowLoopback ?? true;
  const ownListeners = settings.ownListeners ?? ((): readonly ListenerAddress[] => []);
  const localAddresses = settings.localAddresses ?? ((): readonly string[] => []);

  /** Rules 1 (ranges) to 4 for an address on no particular port. */
  function judgeAddress(bytes: Uint8Array, shown: string): string | undefined {
    const embedded = embeddedIpv4(bytes);
    const forms = embedded ? [bytes, embedded] : [bytes];
    const judged = embedded ?? bytes;
    const what = embedded && formatIp(embedded) !== shown ? `${shown} (IPv4 ${formatIp(embedded)})` : shown;
    for (const form of forms) {
      const hit = alwaysDenied.find((d) => inNetwork(d.net, form));
      if (hit) return `${what} is always denied: ${hit.net.text} is ${hit.why}`;
    }
    for (const form of forms) {
      const hit = deny.find((net) => inNetwork(net, form));
      if (hit) return `${what} is denied by validation.denyNetworks (${hit.text})`;
    }
    const loopback = LOOPBACK.some((net) => inNetwork(net, judged));
    if (loopback && !allowLoopback) return `${what} is loopback and validation.allowLoopback is false`;
    if (allow.length > 0 && !allow.some((net) => inNetwork(net, judged))) {
      return `${what} is outside validation.allowNetworks (${allow.map((net) => net.text).join(', ')})`;
    }
    return undefined;
  }

  /** Rule 1's second half: a listener of this process bound to (address, port). */
  function ownListener(bytes: Uint8Array, port: number): string | undefined {
    const judged = embeddedIpv4(bytes) ?? bytes;
    for (const listener of ownListeners()) {
      if (listener.port !== port) continue;
      const bound = ipAddress16(listener.host.replace(/^\[|\]$/g, ''));
      // A wildcard bind (0.0.0.0, ::), or a name (resolved by the listener, not here), accepts on every
      // local address; :: also accepts IPv4 on a dual-stack host.
      const everyLocal = bound === undefined || isUnspecified(bound);
      const hit = everyLocal ? isLocal(judged) : sameBytes(embeddedIpv4(bound) ?? bound, judged);
      if (hit) {
        return `${formatIp(bytes)} port ${port} is Chancery's own ${listener.name} listener (bound to ${listener.host}:${listener.port}), which is always denied`;
      }
    }
    return undefined;
  }

  function isLocal(judged: Uint8Array): boolean {
    if (LOOPBACK.some((net) => inNetwork(net, judged))) return true;
    for (const text of localAddresses()) {
      const local = ipAddress16(text);
      if (local && sameBytes(local, judged)) return true;
    }
    return false;
  }

  return {
    denies(address, port) {
      const bytes = ipAddress16(address);
      if (bytes === undefined) return `${JSON.stringify(address)} is not an IP address`;
      return judgeAddress(bytes, address) ?? ownListener(bytes, port);
    },
    refusesIdentifier(identifier) {
      if (identifier.type !== 'ip') return undefined;
      const bytes = ipAddress16(identifier.value);
      // Syntax is the identifier policy's to judge; this one speaks only of addresses.
      if (bytes === undefined) return undefined;
      return judgeAddress(bytes, identifier.value);
    },
  };
}

function parseList(entries: readonly string[], key: string): IpNetwork[] {
  return entries.map((entry) => {
    const parsed = parseIpNetwork(entry);
    if ('error' in parsed) throw new CaError('badConfig', `invalid setting ${key}: ${parsed.error}`);
    return parsed;
  });
}

/**
 * The IPv4 address an IPv6 address stands for, as 16 mapped bytes, or undefined. IPv4 addresses themselves
 * (mapped) are returned as they are. ::1 and :: are IPv6's own loopback and unspecified addresses, not the
 * IPv4-compatible forms of 0.0.0.1 and 0.0.0.0.
 */
export function embeddedIpv4(bytes: Uint8Array): Uint8Array | undefined {
  if (isMappedIpv4(bytes)) return bytes;
  const zeroUpTo = (end: number, from = 0): boolean => {
    for (let i = from; i < end; i += 1) if (bytes[i] !== 0) return false;
    return true;
  };
  // IPv4-compatible ::a.b.c.d (RFC 4291 §2.5.5.1), other than :: and ::1.
  if (zeroUpTo(12) && !(zeroUpTo(15) && (bytes[15] === 0 || bytes[15] === 1))) return mapIpv4(bytes.subarray(12, 16));
  // NAT64 well-known prefix 64:ff9b::/96 (RFC 6052 §2.1).
  if (bytes[0] === 0x00 && bytes[1] === 0x64 && bytes[2] === 0xff && bytes[3] === 0x9b && zeroUpTo(12, 4)) return mapIpv4(bytes.subarray(12, 16));
  // 6to4 2002:a.b.c.d::/48 (RFC 3056 §2).
  if (bytes[0] === 0x20 && bytes[1] === 0x02) return mapIpv4(bytes.subarray(2, 6));
  return undefined;
}

/** :: or 0.0.0.0 (as its mapped form). */
function isUnspecified(bytes: Uint8Array): boolean {
  for (let i = 12; i < 16; i += 1) if (bytes[i] !== 0) return false;
  return isMappedIpv4(bytes) || bytes.every((b) => b === 0);
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i += 1) if (a[i] !== b[i]) return false;
  return true;
}
