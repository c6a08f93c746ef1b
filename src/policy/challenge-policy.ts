import type { Identifier } from '../core/identifier.js';
import type { ChallengeType } from '../core/order.js';

/**
 * The challenge types offered for an identifier. RFC 8555 §7.1.4 / §8.4: a wildcard can only be proven by
 * dns-01 (control of the zone, not of one host); RFC 8738 §7: an IP address has no DNS zone to prove, so
 * never dns-01.
 */
export function challengeTypesFor(identifier: Identifier, wildcard: boolean): ChallengeType[] {
  if (wildcard) return ['dns-01'];
  if (identifier.type === 'ip') return ['http-01', 'tls-alpn-01'];
  return ['http-01', 'dns-01', 'tls-alpn-01'];
}
