import type { SecureContextOptions, Server as TlsServer } from 'node:tls';
import type { FastifyInstance } from 'fastify';
import type { TlsPolicy } from '../config/tls-policy.js';

/** A listener's key and certificate chain (PEM). */
export interface TlsMaterial {
  key: string;
  cert: string;
}

/** What an HTTPS listener is created with: its key and chain, and the TLS policy (config/tls-policy.ts). */
export type TlsServerOptions = TlsMaterial & Required<Pick<SecureContextOptions, 'minVersion' | 'ciphers' | 'honorCipherOrder'>>;

/**
 * The key and chain under the TLS policy. honorCipherOrder: the server's order (AES-GCM with ECDSA first)
 * decides, not a client that lists weaker suites first.
 */
export function tlsServerOptions(policy: TlsPolicy, material: TlsMaterial): TlsServerOptions {
  return { key: material.key, cert: material.cert, minVersion: policy.minVersion, ciphers: policy.ciphers, honorCipherOrder: true };
}

/**
 * Installs a renewed key and chain on a listening HTTPS app. setSecureContext() builds a whole new context
 * from what it is given (an option left out falls back to Node's default: TLS 1.2 CBC and CCM suites
 * again), so the policy goes with every renewal.
 */
export function renewTls(app: FastifyInstance, policy: TlsPolicy, material: TlsMaterial): void {
  (app.server as unknown as TlsServer).setSecureContext(tlsServerOptions(policy, material));
}
