import { isIP } from 'node:net';
import type { ChallengeType } from '../core/order.js';
import { checkDnsServers, failureOutcome, ValidationFailure, type ResolveAddress } from './attempt.js';
import type { Connector } from './dial.js';
import { createDns01Validator } from './dns01-validator.js';
import { createHttp01Validator } from './http01-validator.js';
import { createNetworkPolicy, type NetworkPolicy } from './network-policy.js';
import type { CaaChecker } from './caa.js';
import { createTlsAlpn01Validator } from './tls-alpn01-validator.js';
import type { ValidationOutcome, ValidationReach, ValidationRequest, Validator } from './validator.js';

export interface ValidationAuthorityOptions {
  /**
   * Finds the address of a DNS name for http-01 and tls-alpn-01 instead of DNS. For tests and pinned
   * set-ups; production leaves it unset and uses reach.dnsResolvers (or the system resolver).
   */
  resolveAddress?: ResolveAddress;
  /**
   * What http-01 and tls-alpn-01 may connect to (network-policy.ts). Without one, the default policy: the
   * always-denied ranges, loopback allowed, no listener of ours known.
   */
  policy?: NetworkPolicy;
  /** How connections are opened; tests inject one that counts attempts. */
  connector?: Connector;
  /**
   * CAA (RFC 8659, RFC 8657), checked for dns identifiers once the challenge passed (validation.caa.enabled);
   * its refusal fails the authorization with a `caa` problem.
   */
  caa?: CaaChecker;
}

/** RFC 8555 §8.1: a token is base64url; anything else must not reach a URL path. */
const TOKEN = /^[A-Za-z0-9_-]{1,256}$/;
/** Letters, digits, hyphens and underscores in dot-separated labels; the policy layer judges the rest. */
const DNS_NAME = /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*\.?$/;

/**
 * The validation authority: one Validator for the three challenge types. Each attempt is bounded by
 * reach.timeoutMs and never throws for network trouble; it returns { valid: false, problem, retryable }.
 * Requests that could never pass (wrong identifier for the type, bad token) are 'malformed' and not
 * retryable: the RA is expected to prevent them, and the VA refuses them rather than reaching out.
 *
 * Throws CaError('badConfig') at construction when reach.dnsResolvers cannot be used.
 */
export function createValidationAuthority(reach: ValidationReach, options: ValidationAuthorityOptions = {}): Validator {
  checkDnsServers(reach.dnsResolvers);
  const policy = options.policy ?? createNetworkPolicy();
  const shared = {
    timeoutMs: reach.timeoutMs,
    dnsResolvers: reach.dnsResolvers,
    policy,
    ...(options.resolveAddress ? { resolveAddress: options.resolveAddress } : {}),
    ...(options.connector ? { connector: options.connector } : {}),
  };
  const validators: Record<ChallengeType, Validator> = {
    'http-01': createHttp01Validator({ ...shared, port: reach.http01Port }),
    'dns-01': createDns01Validator({ timeoutMs: reach.timeoutMs, dnsResolvers: reach.dnsResolvers }),
    'tls-alpn-01': createTlsAlpn01Validator({ ...shared, port: reach.tlsAlpn01Port }),
  };
  return {
    async validate(request: ValidationRequest): Promise<ValidationOutcome> {
      try {
        checkRequest(request);
        // An ip identifier whose address the policy denies on every port is refused as an identifier, as
        // newOrder refuses it (an authorization may predate a stricter policy).
        const refused = policy.refusesIdentifier(request.identifier);
        if (refused !== undefined) throw new ValidationFailure('rejectedIdentifier', `the validation network policy refuses ${request.identifier.value}: ${refused}`, false);
      } catch (error) {
        return failureOutcome(error);
      }
      const validator = validators[request.type];
      const outcome = await validator.validate(request);
      if (!outcome.valid || options.caa === undefined || request.identifier.type !== 'dns') return outcome;
      const caa = await options.caa.check({
        name: request.identifier.value.replace(/^\*\./, ''),
        wildcard: request.wildcard === true || request.identifier.value.startsWith('*.'),
        method: request.type,
        ...(request.accountUri === undefined ? {} : { accountUri: request.accountUri }),
      });
      return caa.ok ? outcome : { valid: false, problem: caa.problem, retryable: caa.retryable };
    },
  };
}

function checkRequest(request: ValidationRequest): void {
  const malformed = (detail: string): ValidationFailure => new ValidationFailure('malformed', detail, false);
  const { type, identifier } = request;
  if (!Object.hasOwn({ 'http-01': 1, 'dns-01': 1, 'tls-alpn-01': 1 }, type)) {
    throw malformed(`unknown challenge type ${JSON.stringify(type)}`);
  }
  if (!TOKEN.test(request.token)) {
    throw malformed('the challenge token is not base64url');
  }
  if (identifier.type === 'ip') {
    if (isIP(identifier.value) === 0 || identifier.value.includes('%')) {
      throw malformed(`${JSON.stringify(identifier.value)} is not an IP address`);
    }
    // RFC 8738 §7: dns-01 MUST NOT be used for ip identifiers (there is no name to put a TXT record under).
    if (type === 'dns-01') {
      throw malformed(`dns-01 cannot validate the ip identifier ${identifier.value} (RFC 8738 §7)`);
    }
    return;
  }
  if (identifier.type !== 'dns') {
    throw malformed(`unsupported identifier type ${JSON.stringify(identifier.type)}`);
  }
  // RFC 8555 §7.1.3 / §8.3, RFC 8737 §3: a wildcard can be proven only over DNS, since neither an http
  // responder nor a TLS responder can speak for every name under the base.
  if (identifier.value.startsWith('*.') && type !== 'dns-01') {
    throw malformed(`${type} cannot validate the wildcard ${identifier.value}; use dns-01`);
  }
  // Names arrive as A-labels (RFC 8555 §7.1.4); anything else must not reach a URL, SNI or DNS query.
  if (!DNS_NAME.test(identifier.value.replace(/^\*\./, ''))) {
    throw malformed(`${JSON.stringify(identifier.value)} is not a DNS name`);
  }
}
