import { KEY_ALGORITHMS } from '../core/key-algorithm.js';

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
  | { kind: 'listen' };

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
  {
    path: 'log.level',
    env: 'CHANCERY_LOG_LEVEL',
    type: { kind: 'enum', values: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] },
  },
];
