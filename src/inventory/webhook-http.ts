import { request as httpRequest, type IncomingMessage } from 'node:http';
import { checkServerIdentity, rootCertificates, connect as tlsConnect } from 'node:tls';
import { isIP } from 'node:net';
import type { Socket } from 'node:net';
import { CaError } from '../core/errors.js';

/**
 * An address the validation network policy has checked, and the only way to connect to it (va/dial.ts:
 * resolve, check, connect to the checked address — so a name that resolves elsewhere a moment later cannot
 * redirect the request, and no HTTP library resolves it again). Declared here, by its consumer.
 */
export interface CheckedTarget {
  address: string;
  port: number;
  open(): Socket;
}

export type WebhookDialer = (host: string, port: number, signal: AbortSignal, context: string) => Promise<CheckedTarget>;

/** One POST to a webhook: its HTTP status, or a thrown error saying why there is none. */
export type WebhookPost = (url: string, headers: Record<string, string>, body: string, signal: AbortSignal) => Promise<number>;

/**
 * POSTs over a connection the dialer opened to the checked address. HTTPS verifies the receiver's certificate
 * against the system's roots and this CA's own (internal receivers carry certificates from it), with the URL's
 * host name as SNI and the name checked; redirects are not followed (a 3xx is a failed attempt); at most 64 KiB
 * of the answer is read, then dropped.
 */
export function webhookPost(deps: { dial: WebhookDialer; trusted: () => string[] }): WebhookPost {
  return async (target, headers, body, signal) => {
    const url = new URL(target);
    const secure = url.protocol === 'https:';
    const host = url.hostname.replace(/^\[|\]$/g, '');
    const port = url.port === '' ? (secure ? 443 : 80) : Number(url.port);
    const checked = await deps.dial(host, port, signal, `webhook ${url.origin}`);
    return new Promise<number>((resolve, reject) => {
      const request = httpRequest(
        {
          host: checked.address,
          port: checked.port,
          method: 'POST',
          path: `${url.pathname}${url.search}`,
          headers: { ...headers, host: url.host, 'content-length': String(Buffer.byteLength(body)), connection: 'close' },
          signal,
          createConnection: () =>
            secure
              ? tlsConnect({
                  socket: checked.open(),
                  ca: [...rootCertificates, ...deps.trusted()],
                  rejectUnauthorized: true,
                  ...(isIP(host) === 0 ? { servername: host } : {}),
                  // The name in the URL, not the address connected to, is what the certificate must carry (an IP
                  // literal is matched against the certificate's IP addresses).
                  checkServerIdentity: (_name, certificate) => checkServerIdentity(host, certificate),
                })
              : checked.open(),
        },
        (response: IncomingMessage) => {
          let read = 0;
          response.on('data', (chunk: Buffer) => {
            read += chunk.length;
            if (read > 64 * 1024) response.destroy();
          });
          response.on('end', () => resolve(response.statusCode ?? 0));
          response.on('close', () => resolve(response.statusCode ?? 0));
          response.on('error', () => resolve(response.statusCode ?? 0));
        },
      );
      request.on('error', (error) => reject(new CaError('connection', `${url.origin}: ${error.message}`, { cause: error })));
      request.end(body);
    });
  };
}
