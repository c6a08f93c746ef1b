import { KEY_ALGORITHMS } from '../core/key-algorithm.js';
import { TLS_VERSIONS } from './tls-policy.js';
import { PROFILE_IDS } from '../core/profile.js';

const MINUTE_MS = 60_000;
const DAY_MS = 24 * 60 * MINUTE_MS;

/** The settings of one certificate profile (profiles.<id>.*, CHANCERY_PROFILE_<ID>_*). */
function profileSettings(id: string): Setting[] {
  const env = `CHANCERY_PROFILE_${id.toUpperCase().replace(/-/g, '_')}`;
  return [
    // Empty: issuance.validityDays. A short-lived profile is bounded by 7 days (policy/profiles.ts).
    { path: `profiles.${id}.validity`, env: `${env}_VALIDITY`, type: { kind: 'duration', minMs: MINUTE_MS, maxMs: 398 * DAY_MS, optional: true } },
    { path: `profiles.${id}.ekus`, env: `${env}_EKUS`, type: { kind: 'enumList', values: ['serverAuth', 'clientAuth'], nonEmpty: true } },
    { path: `profiles.${id}.description`, env: `${env}_DESCRIPTION`, type: { kind: 'string', nonEmpty: true } },
  ];
}

/**
 * Every setting: its place in the YAML tree, its CHANCERY_* variable and how to read it. This table is the
 * single source of truth for the loader and for the "unknown key" check; config/chancery.example.yaml
 * documents the same keys for people.
 */
export type SettingType =
  | { kind: 'string'; nonEmpty?: boolean }
  | { kind: 'enum'; values: readonly string[] }
  | { kind: 'int'; min: number; max: number }
  | { kind: 'url'; protocols: readonly string[] }
  | { kind: 'listen' }
  | { kind: 'bool' }
  /** Comma-separated in a variable, a YAML sequence or comma-separated string in a file. */
  | { kind: 'hostPortList' }
  /** IPv4/IPv6 CIDR networks (an address alone is a /32 or /128): comma-separated or a YAML sequence. */
  | { kind: 'cidrList' }
  | { kind: 'optionalUrl'; protocols: readonly string[] }
  /** A duration such as 90m, 12h or 30d (minutes, hours, days); empty allowed when `optional`. */
  | { kind: 'duration'; minMs: number; maxMs: number; optional?: boolean }
  /** Comma-separated in a variable, a YAML sequence or comma-separated string in a file; each one of `values`. */
  | { kind: 'enumList'; values: readonly string[]; nonEmpty?: boolean };

export interface Setting {
  path: string;
  env: string;
  type: SettingType;
  /** Secrets are never echoed in error messages or logs. */
  secret?: boolean;
}

export const SETTINGS: readonly Setting[] = [
  { path: 'dataDir', env: 'CHANCERY_DATA_DIR', type: { kind: 'string', nonEmpty: true } },
  { path: 'database.url', env: 'CHANCERY_DATABASE_URL', type: { kind: 'string' }, secret: true },
  { path: 'keys.backend', env: 'CHANCERY_KEYS', type: { kind: 'enum', values: ['software', 'pkcs11'] } },
  { path: 'keys.passphrase', env: 'CHANCERY_KEY_PASSPHRASE', type: { kind: 'string' }, secret: true },
  { path: 'keys.pkcs11.library', env: 'CHANCERY_PKCS11_LIBRARY', type: { kind: 'string', nonEmpty: true } },
  { path: 'keys.pkcs11.tokenLabel', env: 'CHANCERY_PKCS11_TOKEN_LABEL', type: { kind: 'string', nonEmpty: true } },
  { path: 'keys.pkcs11.pin', env: 'CHANCERY_PKCS11_PIN', type: { kind: 'string' }, secret: true },
  { path: 'keys.pkcs11.pinFile', env: 'CHANCERY_PKCS11_PIN_FILE', type: { kind: 'string' } },
  { path: 'keys.pkcs11.sessions', env: 'CHANCERY_PKCS11_SESSIONS', type: { kind: 'int', min: 1, max: 256 } },
  { path: 'keys.healthCacheSeconds', env: 'CHANCERY_KEYS_HEALTH_CACHE_SECONDS', type: { kind: 'int', min: 1, max: 60 } },
  { path: 'ca.organization', env: 'CHANCERY_CA_ORGANIZATION', type: { kind: 'string', nonEmpty: true } },
  { path: 'ca.rootAlgorithm', env: 'CHANCERY_CA_ROOT_ALGORITHM', type: { kind: 'enum', values: KEY_ALGORITHMS } },
  { path: 'ca.intermediateAlgorithm', env: 'CHANCERY_CA_INTERMEDIATE_ALGORITHM', type: { kind: 'enum', values: KEY_ALGORITHMS } },
  { path: 'ca.rsaScheme', env: 'CHANCERY_CA_RSA_SCHEME', type: { kind: 'enum', values: ['pkcs1', 'pss'] } },
  { path: 'ca.rootValidityDays', env: 'CHANCERY_CA_ROOT_VALIDITY_DAYS', type: { kind: 'int', min: 1, max: 36_500 } },
  { path: 'ca.intermediateValidityDays', env: 'CHANCERY_CA_INTERMEDIATE_VALIDITY_DAYS', type: { kind: 'int', min: 1, max: 36_500 } },
  { path: 'issuance.validityDays', env: 'CHANCERY_ISSUANCE_VALIDITY_DAYS', type: { kind: 'int', min: 1, max: 398 } },
  { path: 'issuance.crlShards', env: 'CHANCERY_CRL_SHARDS', type: { kind: 'int', min: 1, max: 4096 } },
  { path: 'public.url', env: 'CHANCERY_PUBLIC_URL', type: { kind: 'url', protocols: ['http:'] } },
  { path: 'public.listen', env: 'CHANCERY_PUBLIC_LISTEN', type: { kind: 'listen' } },
  { path: 'acme.url', env: 'CHANCERY_ACME_URL', type: { kind: 'optionalUrl', protocols: ['https:', 'http:'] } },
  { path: 'acme.listen', env: 'CHANCERY_ACME_LISTEN', type: { kind: 'listen' } },
  { path: 'acme.tls', env: 'CHANCERY_ACME_TLS', type: { kind: 'bool' } },
  { path: 'acme.eabRequired', env: 'CHANCERY_EAB_REQUIRED', type: { kind: 'bool' } },
  { path: 'acme.termsOfService', env: 'CHANCERY_ACME_TERMS_OF_SERVICE', type: { kind: 'optionalUrl', protocols: ['https:', 'http:'] } },
  { path: 'acme.website', env: 'CHANCERY_ACME_WEBSITE', type: { kind: 'optionalUrl', protocols: ['https:', 'http:'] } },
  { path: 'acme.caaIdentities', env: 'CHANCERY_ACME_CAA_IDENTITIES', type: { kind: 'string' } },
  { path: 'acme.orderLifetimeHours', env: 'CHANCERY_ORDER_LIFETIME_HOURS', type: { kind: 'int', min: 1, max: 24 * 30 } },
  { path: 'acme.authorizationReuseDays', env: 'CHANCERY_AUTHZ_REUSE_DAYS', type: { kind: 'int', min: 0, max: 90 } },
  { path: 'acme.processingTimeoutSeconds', env: 'CHANCERY_ORDER_PROCESSING_TIMEOUT_SECONDS', type: { kind: 'int', min: 10, max: 3600 } },
  { path: 'validation.http01Port', env: 'CHANCERY_HTTP01_PORT', type: { kind: 'int', min: 1, max: 65_535 } },
  { path: 'validation.tlsAlpn01Port', env: 'CHANCERY_TLSALPN01_PORT', type: { kind: 'int', min: 1, max: 65_535 } },
  { path: 'validation.dnsResolvers', env: 'CHANCERY_DNS_RESOLVERS', type: { kind: 'hostPortList' } },
  { path: 'validation.timeoutSeconds', env: 'CHANCERY_VALIDATION_TIMEOUT_SECONDS', type: { kind: 'int', min: 1, max: 120 } },
  { path: 'validation.maxAttempts', env: 'CHANCERY_VALIDATION_MAX_ATTEMPTS', type: { kind: 'int', min: 1, max: 20 } },
  { path: 'validation.allowNetworks', env: 'CHANCERY_VALIDATION_ALLOW_NETWORKS', type: { kind: 'cidrList' } },
  { path: 'validation.denyNetworks', env: 'CHANCERY_VALIDATION_DENY_NETWORKS', type: { kind: 'cidrList' } },
  { path: 'validation.allowLoopback', env: 'CHANCERY_VALIDATION_ALLOW_LOOPBACK', type: { kind: 'bool' } },
  { path: 'validation.caa.enabled', env: 'CHANCERY_VALIDATION_CAA', type: { kind: 'bool' } },
  { path: 'validation.caa.recheckHours', env: 'CHANCERY_VALIDATION_CAA_RECHECK_HOURS', type: { kind: 'int', min: 0, max: 24 * 30 } },
  { path: 'profiles.default', env: 'CHANCERY_PROFILE_DEFAULT', type: { kind: 'enum', values: PROFILE_IDS } },
  ...PROFILE_IDS.flatMap(profileSettings),
  { path: 'crl.nextUpdateHours', env: 'CHANCERY_CRL_NEXT_UPDATE_HOURS', type: { kind: 'int', min: 1, max: 24 * 10 } },
  { path: 'crl.cacheMaxAgeSeconds', env: 'CHANCERY_CRL_CACHE_MAX_AGE_SECONDS', type: { kind: 'int', min: 0, max: 86_400 } },
  { path: 'ocsp.nonce', env: 'CHANCERY_OCSP_NONCE', type: { kind: 'enum', values: ['ignore', 'sign'] } },
  { path: 'ocsp.validityHours', env: 'CHANCERY_OCSP_VALIDITY_HOURS', type: { kind: 'int', min: 8, max: 240 } },
  { path: 'ocsp.responderValidityDays', env: 'CHANCERY_OCSP_RESPONDER_VALIDITY_DAYS', type: { kind: 'int', min: 1, max: 90 } },
  { path: 'ari.retryAfterSeconds', env: 'CHANCERY_ARI_RETRY_AFTER_SECONDS', type: { kind: 'int', min: 60, max: 86_400 } },
  { path: 'revocation.bulkChunkSize', env: 'CHANCERY_REVOCATION_BULK_CHUNK_SIZE', type: { kind: 'int', min: 1, max: 10_000 } },
  { path: 'revocation.bulkCrlIntervalSeconds', env: 'CHANCERY_REVOCATION_BULK_CRL_INTERVAL_SECONDS', type: { kind: 'int', min: 1, max: 3600 } },
  { path: 'jobs.leaseSeconds', env: 'CHANCERY_JOBS_LEASE_SECONDS', type: { kind: 'int', min: 5, max: 600 } },
  { path: 'audit.checkpointSeconds', env: 'CHANCERY_AUDIT_CHECKPOINT_SECONDS', type: { kind: 'int', min: 1, max: 3600 } },
  { path: 'audit.checkpointEntries', env: 'CHANCERY_AUDIT_CHECKPOINT_ENTRIES', type: { kind: 'int', min: 1, max: 1_000_000 } },
  { path: 'notifications.allowHttp', env: 'CHANCERY_NOTIFICATIONS_ALLOW_HTTP', type: { kind: 'bool' } },
  { path: 'notifications.timeoutSeconds', env: 'CHANCERY_NOTIFICATIONS_TIMEOUT_SECONDS', type: { kind: 'int', min: 1, max: 120 } },
  { path: 'tls.minVersion', env: 'CHANCERY_TLS_MIN_VERSION', type: { kind: 'enum', values: TLS_VERSIONS } },
  { path: 'tls.ciphers', env: 'CHANCERY_TLS_CIPHERS', type: { kind: 'string', nonEmpty: true } },
  { path: 'http.headersTimeoutSeconds', env: 'CHANCERY_HTTP_HEADERS_TIMEOUT_SECONDS', type: { kind: 'int', min: 1, max: 600 } },
  { path: 'http.requestTimeoutSeconds', env: 'CHANCERY_HTTP_REQUEST_TIMEOUT_SECONDS', type: { kind: 'int', min: 1, max: 3600 } },
  { path: 'http.maxConnections', env: 'CHANCERY_HTTP_MAX_CONNECTIONS', type: { kind: 'int', min: 1, max: 1_000_000 } },
  { path: 'admin.listen', env: 'CHANCERY_ADMIN_LISTEN', type: { kind: 'listen' } },
  { path: 'admin.tokens.defaultLifetime', env: 'CHANCERY_ADMIN_TOKEN_DEFAULT_LIFETIME', type: { kind: 'duration', minMs: MINUTE_MS, maxMs: 366 * DAY_MS } },
  { path: 'admin.tokens.maxLifetime', env: 'CHANCERY_ADMIN_TOKEN_MAX_LIFETIME', type: { kind: 'duration', minMs: MINUTE_MS, maxMs: 366 * DAY_MS } },
  { path: 'admin.authFailuresPerMinute', env: 'CHANCERY_ADMIN_AUTH_FAILURES_PER_MINUTE', type: { kind: 'int', min: 1, max: 10_000 } },
  { path: 'shutdownGraceSeconds', env: 'CHANCERY_SHUTDOWN_GRACE_SECONDS', type: { kind: 'int', min: 0, max: 600 } },
  {
    path: 'log.level',
    env: 'CHANCERY_LOG_LEVEL',
    type: { kind: 'enum', values: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] },
  },
];
