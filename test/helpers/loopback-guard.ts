import net from 'node:net';

/**
 * A safety net for tests that name non-loopback addresses (169.254.169.254, 10.x, ...): while installed, any
 * TCP connect this process starts towards an address outside loopback throws before a socket is opened, and
 * is recorded so the test can fail on it. Tests must prove refusal through the VA's injected connector; this
 * only guarantees that a regression (or the code before a fix) cannot send a packet off the machine.
 */
export interface LoopbackGuard {
  /** Every refused target, as host:port. */
  readonly refused: string[];
  uninstall(): void;
}

const LOOPBACK = new net.BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6');

/** Node's own BlockList decides (it matches IPv4-mapped IPv6 against IPv4 rules), not the code under test. */
export function isLoopbackHost(host: string): boolean {
  if (host === 'localhost') return true;
  const family = net.isIP(host);
  if (family === 0) return false;
  return LOOPBACK.check(host, family === 4 ? 'ipv4' : 'ipv6');
}

export function installLoopbackGuard(): LoopbackGuard {
  const refused: string[] = [];
  const original = net.Socket.prototype.connect;
  // Node passes connect() either its own arguments or one array of them (net.connect's normalized form).
  net.Socket.prototype.connect = function guardedConnect(this: net.Socket, ...args: unknown[]) {
    const first = Array.isArray(args[0]) ? (args[0] as unknown[])[0] : args[0];
    const options = (typeof first === 'object' && first !== null ? first : { port: first, host: args[1] }) as { host?: unknown; port?: unknown; path?: unknown };
    // A Unix socket has a path and no host; http passes its request options through, whose `path` is the
    // URL path, so a host, when given, is always checked.
    const unixSocket = typeof options.host !== 'string' && typeof options.path === 'string';
    if (!unixSocket) {
      const host = typeof options.host === 'string' ? options.host : 'localhost';
      if (!isLoopbackHost(host)) {
        refused.push(`${host}:${String(options.port)}`);
        throw new Error(`loopback guard: this test may not connect to ${host}`);
      }
    }
    return (original as (...a: unknown[]) => net.Socket).apply(this, args);
  } as typeof net.Socket.prototype.connect;
  return {
    refused,
    uninstall() {
      net.Socket.prototype.connect = original;
    },
  };
}
