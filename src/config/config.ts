import type { KeyAlgorithm, RsaScheme } from '../core/key-algorithm.js';
import type { TlsPolicy } from './tls-policy.js';
import type { ExtendedKeyUsage, ProfileId } from '../core/profile.js';

/** The typed configuration every other layer receives (validated; paths absolute). */
export interface Config {
  dataDir: string;
  database: { url: string };
  keys: {
    backend: 'software' | 'pkcs11';
    /** Secret: never logged. Empty = generated into <dataDir>/keys/passphrase. */
    passphrase: string;
    pkcs11: {
      library: string;
      tokenLabel: string;
      /** Secret: never logged. */
      pin: string;
      pinFile: string;
      sessions: number;
    };
    /** How long a signer health check (/readyz, finalize) is reused before the HSM is probed again. */
    healthCacheSeconds: number;
  };
  ca: {
    organization: string;
    rootAlgorithm: KeyAlgorithm;
    intermediateAlgorithm: KeyAlgorithm;
    rsaScheme: RsaScheme;
    rootValidityDays: number;
    intermediateValidityDays: number;
  };
  issuance: { validityDays: number; crlShards: number };
  public: { url: string; listen: ListenAddress };
  acme: {
    /** External base URL clients use (CHANCERY_ACME_URL); empty = derived from listen + tls at start. */
    url: string;
    listen: ListenAddress;
    tls: boolean;
    eabRequired: boolean;
    termsOfService: string;
    website: string;
    /** Comma-separated CAA issuer domain names for the directory meta. */
    caaIdentities: string;
    orderLifetimeHours: number;
    authorizationReuseDays: number;
    /** An order processing longer than this was left by a finalize that died: the orders.recover job ends it. */
    processingTimeoutSeconds: number;
  };
  validation: {
    http01Port: number;
    tlsAlpn01Port: number;
    /** host:port list; empty = the system resolvers. */
    dnsResolvers: string[];
    timeoutSeconds: number;
    maxAttempts: number;
    /** CIDR networks (validated); the validation network policy (va/network-policy.ts) gives their meaning. */
    allowNetworks: string[];
    denyNetworks: string[];
    /** Whether validation may connect to 127.0.0.0/8 and ::1 (the quick start); false in production. */
    allowLoopback: boolean;
    /** CAA (RFC 8659, RFC 8657) against acme.caaIdentities; re-checked at finalize for older validations. */
    caa: { enabled: boolean; recheckHours: number };
  };
  /**
   * The certificate profile registry (draft-ietf-acme-profiles): fixed ids, settings per id. validity
   * undefined = issuance.validityDays.
   */
  profiles: { default: ProfileId } & Record<ProfileId, { validity: number | undefined; ekus: ExtendedKeyUsage[]; description: string }>;
  /** nextUpdate - thisUpdate of every CRL; CRLs are regenerated at half of it and on each revocation. */
  crl: { nextUpdateHours: number; cacheMaxAgeSeconds: number };
  ocsp: {
    /** RFC 8954 nonces: ignore (RFC 5019 responders; the pre-signed cache serves) or sign live and echo. */
    nonce: 'ignore' | 'sign';
    validityHours: number;
    responderValidityDays: number;
  };
  /**
   * ACME Renewal Information (RFC 9773): the Retry-After of every renewalInfo answer (§4.3) — how often
   * clients ask, and so the longest they take to see an incident.
   */
  ari: { retryAfterSeconds: number };
  /**
   * Bulk revocation (src/revocation/bulk-revoker.ts): certificates per chunk (one transaction, one OCSP batch,
   * one cache invalidation), and the shortest time between two CRL regenerations of a scope while a run lasts.
   */
  revocation: { bulkChunkSize: number; bulkCrlIntervalSeconds: number };
  /**
   * Periodic jobs that run on one instance at a time (src/core/jobs.ts): the lease an instance holds a job
   * by. Another instance takes a job over at most about this long after its holder dies.
   */
  jobs: { leaseSeconds: number };
  /**
   * The audit log (src/inventory/audit-log.ts): the chain's head is signed with the audit key at least every
   * checkpointSeconds while entries arrive, and at least every checkpointEntries entries.
   */
  audit: { checkpointSeconds: number; checkpointEntries: number };
  /**
   * Webhooks (src/inventory/webhook-*.ts): whether a webhook may be plain http (tests, a receiver on the same
   * host; https otherwise), and how long one delivery attempt may take, connecting included.
   */
  notifications: { allowHttp: boolean; timeoutSeconds: number };
  /** The TLS policy of every HTTPS listener (config/tls-policy.ts): TLS 1.3, and TLS 1.2 with ECDHE + AEAD only. */
  tls: TlsPolicy;
  /**
   * What one client may hold of each listener (http/listener-limits.ts): the request line and headers must
   * arrive within headersTimeoutSeconds of the request's start, the whole request within
   * requestTimeoutSeconds; at most maxConnections open connections per listener.
   */
  http: { headersTimeoutSeconds: number; requestTimeoutSeconds: number; maxConnections: number };
  /**
   * The admin API (/admin/v1): its HTTPS listener (a Unix socket in the data directory serves the local CLI
   * besides), admin token lifetimes in ms (a token may never live beyond a year: policy/admin-rbac.ts), and
   * how many failed authentications one source address may make a minute before it is refused.
   */
  admin: { listen: ListenAddress; tokens: { defaultLifetime: number; maxLifetime: number }; authFailuresPerMinute: number };
  /** On SIGTERM/SIGINT, how long requests already received may run to their end before they are cut. */
  shutdownGraceSeconds: number;
  log: { level: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent' };
}

export interface ListenAddress {
  host: string;
  port: number;
}

/** The base of every ACME URL: CHANCERY_ACME_URL, or derived from the listen address and TLS setting. */
export function acmeExternalUrl(config: Pick<Config, 'acme'>): string {
  if (config.acme.url) return config.acme.url;
  const { host, port } = config.acme.listen;
  const shown = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;
  return `${config.acme.tls ? 'https' : 'http'}://${shown}:${port}`;
}
