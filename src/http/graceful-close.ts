import type { Server } from 'node:http';
import type { FastifyInstance } from 'fastify';
import type { Logger } from '../core/logger.js';

/** How often connections that went idle while draining are closed (see closeGracefully). */
const IDLE_SWEEP_MS = 100;

/**
 * Stops the listeners the way a load balancer expects (docs/security.md "HTTP limits", README "Stopping"):
 * no new connection is accepted from the first moment, every request already received runs to its end and
 * its response is sent whole, and the connections close as they fall idle. A request still running after
 * `graceMs` is cut (its connection destroyed), so a stuck client cannot hold the process past the grace.
 *
 * Fastify's close() stops accepting and closes the connections idle at that moment; a kept-alive connection
 * whose response was still being written would stay open until its client hung up (Fastify's keep-alive
 * timeout is 72 s), so those are closed as soon as they are idle too. Requests that arrive on a connection
 * that is still open are served with `Connection: close` (return503OnClosing is off: listener-limits.ts).
 */
export async function closeGracefully(apps: readonly FastifyInstance[], graceMs: number, logger: Logger): Promise<void> {
  const servers = apps.map((app) => app.server as unknown as Server);
  const closing = Promise.all(apps.map((app) => app.close()));
  const sweep = setInterval(() => servers.forEach((server) => server.closeIdleConnections()), IDLE_SWEEP_MS);
  const deadline = setTimeout(() => {
    logger.warn({ graceMs }, 'requests still running at the end of the shutdown grace period: closing their connections');
    servers.forEach((server) => server.closeAllConnections());
  }, graceMs);
  try {
    await closing;
  } finally {
    clearInterval(sweep);
    clearTimeout(deadline);
  }
}
