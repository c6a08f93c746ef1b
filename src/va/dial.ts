import { connect as netConnect, type Socket } from 'node:net';
import { hostForUrl, ValidationFailure, type AddressResolver } from './attempt.js';
import type { NetworkPolicy } from './network-policy.js';

/**
 * Opens TCP connections for validation. It is given an IP literal the network policy has just allowed and
 * must connect to exactly that address: never resolve a name, never try another address. Tests inject one
 * that counts attempts.
 */
export interface Connector {
  connect(target: { address: string; port: number }): Socket;
}

/** The production connector: net.connect to an IP literal (Node performs no lookup for a literal). */
export const tcpConnector: Connector = {
  connect: ({ address, port }) => netConnect({ host: address, port }),
};

/** An address that passed the policy, and the only way to connect to it. */
export interface CheckedTarget {
  address: string;
  port: number;
  /** Connects to `address`:`port` (the checked pair) through the connector. */
  open(): Socket;
}

/**
 * Resolves `host`, keeps the first address the policy allows on `port`, and hands back a connection to that
 * address alone. Resolution happens here once per hop and the connection goes to the IP that was checked, so
 * a DNS answer that changes between check and connect (DNS rebinding) cannot redirect it, and no HTTP or TLS
 * library resolves the name a second time. When every address is denied, the attempt fails before any packet
 * is sent to the target, naming the rule that denied each address.
 */
export type Dialer = (host: string, port: number, signal: AbortSignal, context: string) => Promise<CheckedTarget>;

export function createDialer(deps: { resolve: AddressResolver; policy: NetworkPolicy; connector: Connector }): Dialer {
  const { resolve, policy, connector } = deps;
  return async (host, port, signal, context) => {
    const denials = new Map<string, string>();
    const accept = (address: string): boolean => {
      const why = policy.denies(address, port);
      if (why !== undefined) denials.set(address, why);
      return why === undefined;
    };
    const found = await resolve(host, signal, accept);
    const chosen = found.find((address) => !denials.has(address) && accept(address));
    if (chosen === undefined) {
      const reasons = [...new Set(found)].map((address) => denials.get(address) ?? policy.denies(address, port) ?? address);
      const subject = found.length === 1 && found[0] === host ? `${hostForUrl(host)}:${port}` : `any address of ${host} on port ${port}`;
      // Not retryable: the policy is fixed for this process, and the answer that led here is what a later
      // attempt would most likely see again.
      throw new ValidationFailure('connection', `${context}: the validation network policy refuses to connect to ${subject}: ${reasons.join('; ')}`, false);
    }
    const open = (): Socket => {
      try {
        return connector.connect({ address: chosen, port });
      } catch (error) {
        // net.connect reports trouble as events; a throw here (bad arguments, a test's connector) must still
        // end as a failed attempt, not escape the VA.
        throw new ValidationFailure('connection', `${context}: could not connect to ${hostForUrl(chosen)}:${port}`, true, error);
      }
    };
    return { address: chosen, port, open };
  };
}
