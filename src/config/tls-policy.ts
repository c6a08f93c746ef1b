import { CaError } from '../core/errors.js';

/**
 * The TLS policy of every HTTPS listener: TLS 1.3, and TLS 1.2 only with ECDHE key exchange and an AEAD
 * cipher (RFC 9325 §4.2, the "intermediate" profile of Mozilla's server guidelines). Node's default list
 * also offers TLS 1.2 suites with CBC and SHA-1 MACs (Lucky13-class padding oracles, RFC 9325 §4.2.1), CCM
 * and ARIA, and finite-field DHE; none of those are offered. Operators may narrow the list
 * (`tls.ciphers`), never widen it: every name must be one of these.
 */
export const TLS13_SUITES = ['TLS_AES_128_GCM_SHA256', 'TLS_AES_256_GCM_SHA384', 'TLS_CHACHA20_POLY1305_SHA256'] as const;
export const TLS12_SUITES = [
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
] as const;

export const TLS_VERSIONS = ['TLSv1.2', 'TLSv1.3'] as const;
export type TlsVersion = (typeof TLS_VERSIONS)[number];

export interface TlsPolicy {
  minVersion: TlsVersion;
  /** OpenSSL names joined by ':' (TLS 1.3 suites and TLS 1.2 ciphers in one list, as Node takes them). */
  ciphers: string;
}

/**
 * Refuses a cipher list that names anything outside the policy, or that leaves out every TLS 1.3 suite
 * (Node then turns TLS 1.3 off altogether), or that has no TLS 1.2 cipher while TLS 1.2 is allowed.
 */
export function checkTlsPolicy(policy: TlsPolicy): void {
  const names = policy.ciphers.split(':').map((name) => name.trim()).filter((name) => name !== '');
  const allowed: readonly string[] = [...TLS13_SUITES, ...TLS12_SUITES];
  const outside = names.filter((name) => !allowed.includes(name));
  const fail = (why: string): never => {
    throw new CaError('badConfig', `invalid setting tls.ciphers (CHANCERY_TLS_CIPHERS): ${why}; allowed: ${allowed.join(':')}`);
  };
  if (outside.length > 0) fail(`${outside.map((name) => `"${name}"`).join(', ')} ${outside.length === 1 ? 'is' : 'are'} not TLS 1.3 or TLS 1.2 ECDHE with AEAD`);
  if (!names.some((name) => (TLS13_SUITES as readonly string[]).includes(name))) fail('it must name at least one TLS 1.3 suite');
  if (policy.minVersion === 'TLSv1.2' && !names.some((name) => (TLS12_SUITES as readonly string[]).includes(name))) {
    fail('with tls.minVersion TLSv1.2 it must name at least one TLS 1.2 cipher (or set tls.minVersion to TLSv1.3)');
  }
}
