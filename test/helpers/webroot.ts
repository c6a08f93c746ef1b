import { readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { join } from 'node:path';
import type { Test } from 'tap';

export interface Webroot {
  port: number;
  /** The directory served; clients write http-01 answers under <dir>/.well-known/acme-challenge/. */
  dir: string;
  /** Every path requested (the validator did come, or did not). */
  requests: string[];
  close(): Promise<void>;
}

/**
 * A plain HTTP server on 127.0.0.1:<port> serving /.well-known/acme-challenge/<token> from files under
 * `dir` (RFC 8555 §8.3), the web server that file-writing clients (dehydrated's WELLKNOWN, uacme's hook)
 * expect to exist; 404 for anything else. Closed at t's teardown.
 */
export async function startWebroot(port: number, dir: string, t?: Test): Promise<Webroot> {
  const requests: string[] = [];
  const server = createServer((request, response) => {
    const path = request.url ?? '';
    requests.push(path);
    // The token alphabet is base64url (§8.1): nothing here can climb out of the directory.
    const match = /^\/\.well-known\/acme-challenge\/([A-Za-z0-9_-]+)$/.exec(path);
    if (!match) {
      response.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
      return;
    }
    readFile(join(dir, '.well-known', 'acme-challenge', match[1]!)).then(
      (body) => response.writeHead(200, { 'content-type': 'application/octet-stream' }).end(body),
      () => response.writeHead(404, { 'content-type': 'text/plain' }).end('no such token'),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  const webroot: Webroot = {
    port,
    dir,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  t?.teardown(() => webroot.close());
  return webroot;
}
