import { chmod, unlink } from 'node:fs/promises';
import { connect } from 'node:net';
import { adminSocketPath } from '../compose-admin.js';
import { CaError } from '../core/errors.js';

export { adminSocketPath };

/**
 * Whether a Chancery process serves the admin socket of this data directory: a connection succeeds. This,
 * not the database lock, tells the CLI to go through the server: it works for PostgreSQL as for PGlite,
 * and a socket file left by a process that died refuses connections.
 */
export function socketServed(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ path });
    const done = (served: boolean): void => {
      socket.destroy();
      resolve(served);
    };
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
    socket.setTimeout(2000, () => done(false));
  });
}

/** What the socket app needs of a Fastify instance (cli/ never imports http/ or fastify). */
interface Listenable {
  listen(options: { path: string }): Promise<string>;
}

/**
 * Serves the admin API on the data directory's Unix socket, mode 0600: the file mode is the
 * authentication (the data directory is 0700 besides, so there is no moment in which another user could
 * connect before the chmod). A socket file no process serves is a leftover and is replaced; one that is
 * served belongs to another Chancery on this data directory, and this one refuses to start.
 */
export async function listenAdminSocket(app: Listenable, dataDir: string): Promise<string> {
  const path = adminSocketPath(dataDir);
  if (Buffer.byteLength(path) > 100) throw new CaError('badConfig', `the admin socket path ${path} is too long for a Unix socket (at most 100 bytes): use a shorter CHANCERY_DATA_DIR`);
  if (await socketServed(path)) throw new CaError('caState', `another Chancery process serves ${path}: stop it first`);
  await unlink(path).catch((error: NodeJS.ErrnoException) => {
    if (error.code !== 'ENOENT') throw error;
  });
  await app.listen({ path });
  await chmod(path, 0o600);
  return path;
}
