import { promises as dnsPromises } from 'node:dns';
import { isIP } from 'node:net';
import { CaError, type CaErrorKind } from '../core/errors.js';
import { createDnsResolverPool } from './dns-resolver-pool.js';
import type { ValidationOutcome } from './validator.js';

/**
 * Plumbing shared by the three challenge validators: a failed attempt as a CaError that also says whether
 * a later attempt may pass, one deadline per attempt, name resolution, and classification of socket errors.
 */

/** A failed validation attempt. It is a CaError (DESIGN.md rule 3) that also carries `retryable`. */
export class ValidationFailure extends CaError {
  readonly retryable: boolean;

  constructor(kind: CaErrorKind, detail: string, retryable: boolean, cause?: unknown) {
    super(kind, detail, cause === undefined ? {} : { cause });
    this.name = 'ValidationFailure';
    this.retryable = retryable;
  }
}

/** Turns what an attempt threw into an outcome; errors that are neither ours nor CaErrors are bugs and rethrown. */
export function failureOutcome(error: unknown): ValidationOutcome {
  if (error instanceof ValidationFailure) {
    return { valid: false, problem: { kind: error.kind, detail: error.detail }, retryable: error.retryable };
  }
  if (error instanceof CaError) {
    return { valid: false, problem: { kind: error.kind, detail: error.detail }, retryable: false };
  }
  throw error;
}

/**
 * Runs `attempt` under one deadline: the signal aborts after `timeoutMs`, and the attempt's sockets and
 * queries listen to it. A timer bounds the attempt rather than a clock reading, so no wall-clock time is
 * read here (DESIGN.md rule 4). Whatever the attempt throws becomes a failed outcome.
 */
export async function runAttempt(timeoutMs: number, attempt: (signal: AbortSignal) => Promise<ValidationOutcome>): Promise<ValidationOutcome> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  try {
    return await attempt(controller.signal);
  } catch (error) {
    if (controller.signal.aborted && !(error instanceof ValidationFailure)) {
      return failureOutcome(timedOut(timeoutMs));
    }
    return failureOutcome(error);
  } finally {
    clearTimeout(timer);
  }
}

export function timedOut(timeoutMs: number, what = 'validation'): ValidationFailure {
  return new ValidationFailure('connection', `${what} timed out after ${timeoutMs} ms`, true);
}

/** Rejects as soon as `signal` aborts, so work that cannot be cancelled (dns.lookup) still ends on time. */
export function raceAbort<T>(signal: AbortSignal, work: Promise<T>, onAbort: () => Error): Promise<T> {
  if (signal.aborted) {
    work.catch(() => undefined);
    return Promise.reject(onAbort());
  }
  return new Promise<T>((resolve, reject) => {
    const abort = (): void => reject(onAbort());
    signal.addEventListener('abort', abort, { once: true });
    work.then(
      (value) => {
        signal.removeEventListener('abort', abort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', abort);
        reject(error instanceof Error ? error : new Error(String(error)));
      },
    );
  });
}

/** Quotes untrusted text for a problem detail: JSON-escaped and cut to `max` characters. */
export function quote(text: string, max = 64): string {
  return text.length > max ? `${JSON.stringify(text.slice(0, max))}...` : JSON.stringify(text);
}

/** Host as written in a URL authority or Host header: IPv6 literals in brackets (RFC 3986 §3.2.2). */
export function hostForUrl(host: string): string {
  return isIP(host) === 6 ? `[${host}]` : host;
}

/**
 * Finds the addresses of a name (an IP literal stands for itself). `accept` is asked about each address
 * found; resolution stops after the first family (A, then AAAA) that yields an accepted address, so a name
 * whose A record is acceptable costs one query. Returns every address found, accepted or not, so a caller
 * can say why none was usable. The signal bounds the lookup.
 */
export type AddressResolver = (name: string, signal: AbortSignal, accept: (address: string) => boolean) => Promise<string[]>;

/** Caller-supplied resolution (tests, or an operator who pins names); errors are reported as 'dns' problems. */
export type ResolveAddress = (name: string) => Promise<string | readonly string[]>;

function errorCode(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** RFC 6761 §6.3: "localhost" and names under it are loopback; they are never sent to a DNS server. */
function isLocalhostName(name: string): boolean {
  return name === 'localhost' || name.endsWith('.localhost');
}

/** A node:dns/promises Resolver pointed at the configured servers (CHANCERY_DNS_RESOLVERS, host:port). */
export function makeDnsResolver(servers: string[], timeoutMs: number): dnsPromises.Resolver {
  // c-ares doubles its timeout on each try; two tries within the attempt's budget, and the attempt's
  // deadline cancels whatever is still outstanding.
  const resolver = new dnsPromises.Resolver({ timeout: Math.max(50, Math.floor(timeoutMs / 3)), tries: 2 });
  if (servers.length > 0) {
    resolver.setServers(servers);
  }
  return resolver;
}

/** Checks the configured resolver list once, at construction, so a bad setting fails start-up and not each attempt. */
export function checkDnsServers(servers: string[]): void {
  try {
    new dnsPromises.Resolver().setServers(servers);
  } catch (error) {
    throw new CaError('badConfig', `dnsResolvers: ${String((error as Error).message)} (expected host:port, IPv6 as [addr]:port)`, { cause: error });
  }
}

/**
 * Maps a resolver error code to a 'dns' failure. `query` names what was asked ("TXT _acme-challenge.x"),
 * `missing` is the detail when the answer is empty. Every DNS failure is retryable: records may still propagate.
 */
export function dnsFailure(error: unknown, query: string, missing: string, timeoutMs: number): ValidationFailure {
  const code = errorCode(error);
  switch (code) {
    case 'ENOTFOUND':
    case 'ENODATA':
      return new ValidationFailure('dns', missing, true, error);
    case 'ETIMEOUT':
    case 'ECANCELLED':
      return new ValidationFailure('dns', `DNS query for ${query} timed out after ${timeoutMs} ms`, true, error);
    case 'ESERVFAIL':
      return new ValidationFailure('dns', `DNS server failure (SERVFAIL) for ${query}`, true, error);
    case 'EREFUSED':
      return new ValidationFailure('dns', `DNS query for ${query} was refused`, true, error);
    case 'ECONNREFUSED':
      return new ValidationFailure('dns', `could not reach a DNS server to ask for ${query}`, true, error);
    default:
      return new ValidationFailure('dns', `DNS query for ${query} failed${code ? ` (${code})` : ''}`, true, error);
  }
}

/**
 * How http-01 and tls-alpn-01 find the addresses of a DNS name: a caller's `resolveAddress` when given (tests
 * use it to reach 127.0.0.1 without a DNS server); else the configured resolvers, the same ones dns-01 asks,
 * so all three challenges see one view of DNS; else the system's getaddrinfo (which honours /etc/hosts).
 * With explicit resolvers, A is asked before AAAA, and AAAA only when no A record was accepted.
 */
export function createAddressResolver(options: { dnsResolvers?: string[]; timeoutMs: number; resolveAddress?: ResolveAddress }): AddressResolver {
  const { dnsResolvers = [], timeoutMs, resolveAddress } = options;
  const resolvers = createDnsResolverPool(() => makeDnsResolver(dnsResolvers, timeoutMs));
  return async (name, signal, accept) => {
    if (isIP(name) !== 0) {
      return [name];
    }
    const query = `the address of ${name}`;
    const missing = `no A or AAAA record for ${name}`;
    const nonEmpty = (addresses: readonly string[]): string[] => {
      if (addresses.length === 0) throw dnsFailure({ code: 'ENODATA' }, query, missing, timeoutMs);
      return [...addresses];
    };
    if (resolveAddress) {
      try {
        const found = await raceAbort(signal, resolveAddress(name), () => dnsFailure({ code: 'ETIMEOUT' }, query, missing, timeoutMs));
        return nonEmpty(typeof found === 'string' ? [found] : found);
      } catch (error) {
        if (error instanceof ValidationFailure) throw error;
        throw dnsFailure(error, query, missing, timeoutMs);
      }
    }
    if (isLocalhostName(name)) {
      return ['127.0.0.1'];
    }
    if (dnsResolvers.length === 0) {
      try {
        const found = await raceAbort(signal, dnsPromises.lookup(name, { all: true }), () => dnsFailure({ code: 'ETIMEOUT' }, query, missing, timeoutMs));
        return nonEmpty(found.map((entry) => entry.address));
      } catch (error) {
        if (error instanceof ValidationFailure) throw error;
        throw dnsFailure(error, query, missing, timeoutMs);
      }
    }
    return resolvers.use(signal, async (resolver) => {
      const found: string[] = [];
      for (const family of ['A', 'AAAA'] as const) {
        try {
          const addresses = family === 'A' ? await resolver.resolve4(name) : await resolver.resolve6(name);
          found.push(...addresses);
          if (addresses.some(accept)) return found;
        } catch (error) {
          const code = errorCode(error);
          // NXDOMAIN answers for every type; NODATA for A may still have AAAA. Once A gave addresses (none
          // accepted), a failed AAAA query leaves those for the caller to explain.
          if (family === 'AAAA' && found.length > 0) return found;
          if (code !== 'ENODATA' || family === 'AAAA') throw dnsFailure(error, query, missing, timeoutMs);
        }
      }
      return nonEmpty(found);
    });
  };
}

/**
 * Classifies a socket-level error from connecting to a validation target. Connection refused, resets,
 * unreachable networks and timeouts are transient (the client's responder may not be up yet); TLS
 * handshake failures and malformed HTTP are not.
 */
export function socketFailure(error: unknown, target: string, timeoutMs: number): ValidationFailure {
  if (error instanceof ValidationFailure) return error;
  const code = errorCode(error) ?? '';
  const message = error instanceof Error ? error.message : String(error);
  switch (code) {
    case 'ECONNREFUSED':
      return new ValidationFailure('connection', `connection refused by ${target}`, true, error);
    case 'ECONNRESET':
    case 'EPIPE':
      return new ValidationFailure('connection', `connection to ${target} was reset`, true, error);
    case 'ETIMEDOUT':
    case 'ABORT_ERR':
      return new ValidationFailure('connection', `connection to ${target} timed out after ${timeoutMs} ms`, true, error);
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
    case 'EADDRNOTAVAIL':
      return new ValidationFailure('connection', `${target} is unreachable (${code})`, true, error);
    default:
      break;
  }
  if (code.startsWith('ERR_SSL') || code.startsWith('ERR_TLS') || /SSL|TLS|alert/i.test(message)) {
    // OpenSSL errors carry a short `reason` ("tlsv1 alert no application protocol"); the message adds
    // library internals that mean nothing to a client.
    const reason = (error as { reason?: unknown }).reason;
    return new ValidationFailure('tls', `TLS handshake with ${target} failed: ${typeof reason === 'string' ? reason : message}`, false, error);
  }
  if (code.startsWith('HPE_')) {
    return new ValidationFailure('connection', `${target} sent a malformed HTTP response (${code})`, false, error);
  }
  return new ValidationFailure('connection', `could not connect to ${target}${code ? ` (${code})` : ''}: ${message}`, true, error);
}
