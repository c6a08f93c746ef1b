import type { promises as dnsPromises } from 'node:dns';

/**
 * node:dns Resolvers for validation attempts, each lent to one attempt at a time.
 *
 * Why lend and not share: an attempt cancels its queries when its deadline passes (Resolver.cancel ends
 * every query of that resolver), and the queries of one attempt should leave from a socket no other query
 * uses. c-ares closes a resolver's UDP socket as soon as none of its queries is outstanding, so a resolver
 * taken idle sends its first query from a new socket on a new random source port (RFC 5452 §4.5), used by
 * that attempt alone — what a new resolver per attempt gave. test/unit/va/dns-resolver-pool.test.ts checks
 * that property of c-ares, since this relies on it.
 *
 * Why lend and not create per attempt: creating a resolver makes c-ares read its system configuration
 * (resolv.conf, nsswitch.conf, host.conf, ...) — about twenty system calls and 50 µs each time, the largest
 * share of a validation's system calls under load (docs/benchmarks.md, "Lending DNS resolvers").
 */
export interface DnsResolverPool {
  /**
   * Runs `work` with a resolver of its own. The signal's abort cancels the resolver's queries; a resolver
   * whose attempt was aborted is dropped rather than lent again.
   */
  use<T>(signal: AbortSignal, work: (resolver: dnsPromises.Resolver) => Promise<T>): Promise<T>;
}

/** Idle resolvers kept for reuse; beyond this (a burst of concurrent attempts) they are left to the GC. */
const MAX_IDLE = 64;

export function createDnsResolverPool(create: () => dnsPromises.Resolver): DnsResolverPool {
  const idle: dnsPromises.Resolver[] = [];
  return {
    async use(signal, work) {
      const resolver = idle.pop() ?? create();
      const cancel = (): void => resolver.cancel();
      signal.addEventListener('abort', cancel, { once: true });
      try {
        return await work(resolver);
      } finally {
        signal.removeEventListener('abort', cancel);
        // `work` awaited each query it made, so none is outstanding now; after an abort, cancel() may have
        // raced a query still being sent, so that resolver is not trusted to be idle.
        if (!signal.aborted && idle.length < MAX_IDLE) idle.push(resolver);
      }
    },
  };
}
