import { createHash } from 'node:crypto';
import { ValidationFailure, dnsFailure, makeDnsResolver, quote, runAttempt } from './attempt.js';
import { createDnsResolverPool } from './dns-resolver-pool.js';
import type { ValidationOutcome, ValidationRequest, Validator } from './validator.js';

export interface Dns01Options {
  /** CHANCERY_DNS_RESOLVERS as host:port (IPv6 as [addr]:port); empty means the system's resolvers. */
  dnsResolvers: string[];
  timeoutMs: number;
}

/** RFC 8555 §8.4: the TXT record holds base64url(SHA-256(key authorization)), without padding. */
export function dns01Digest(keyAuthorization: string): string {
  return createHash('sha256').update(keyAuthorization, 'utf8').digest('base64url');
}

/** How many of the values found are quoted back in a mismatch problem. */
const QUOTED_VALUES = 3;

/**
 * dns-01 (RFC 8555 §8.4): look up TXT at "_acme-challenge.<name>" and look for the expected digest among
 * the values. A wildcard authorization is proven at the base name (RFC 8555 §7.1.3, §8.4), which is what
 * the RA passes; a stray "*." is stripped all the same. CNAMEs are followed by the resolver, which lets
 * clients delegate the record to another zone.
 */
export function createDns01Validator(options: Dns01Options): Validator {
  const resolvers = createDnsResolverPool(() => makeDnsResolver(options.dnsResolvers, options.timeoutMs));
  return {
    validate: (request: ValidationRequest): Promise<ValidationOutcome> =>
      runAttempt(options.timeoutMs, async (signal) => {
        const base = request.identifier.value.replace(/^\*\./, '').replace(/\.$/, '');
        const name = `_acme-challenge.${base}`;
        const expected = dns01Digest(request.keyAuthorization);
        // A resolver of this attempt's own (DnsResolverPool), so cancelling on the deadline cannot touch
        // another attempt's queries.
        const records = await resolvers.use(signal, async (resolver) => {
          try {
            return await resolver.resolveTxt(name);
          } catch (error) {
            // NXDOMAIN and NODATA are retryable: the client may have just published the record.
            throw dnsFailure(error, `TXT ${name}`, `no TXT record found at ${name}`, options.timeoutMs);
          }
        });
        // A TXT record is a list of <=255-byte strings; a value longer than that spans several, joined
        // without separators (RFC 7208 §3.3 practice, which ACME clients follow for long values).
        const values = records.map((strings) => strings.join(''));
        if (values.length === 0) {
          throw new ValidationFailure('dns', `no TXT record found at ${name}`, true);
        }
        if (values.includes(expected)) {
          return { valid: true, detail: `TXT record at ${name} holds the expected digest` };
        }
        const shown = values.slice(0, QUOTED_VALUES).map((value) => quote(value)).join(', ');
        const more = values.length > QUOTED_VALUES ? ` and ${values.length - QUOTED_VALUES} more` : '';
        throw new ValidationFailure(
          'incorrectResponse',
          `TXT record at ${name} does not hold the expected value ${quote(expected)}: found ${shown}${more}`,
          false,
        );
      }),
  };
}
