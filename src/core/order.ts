import type { Problem } from './errors.js';
import type { Identifier } from './identifier.js';

/** RFC 8555 §7.1.3 / §7.1.6 order states. */
export type OrderStatus = 'pending' | 'ready' | 'processing' | 'valid' | 'invalid';

export interface Order {
  id: string;
  accountId: string;
  status: OrderStatus;
  identifiers: Identifier[];
  authorizationIds: string[];
  notBefore?: Date;
  notAfter?: Date;
  expires: Date;
  error?: Problem;
  /** Serial of the issued certificate once valid. */
  certificateSerial?: string;
  /** Serial of the certificate this order replaces (RFC 9773 §5). */
  replacesSerial?: string;
  /** The certificate profile it was requested with (draft-ietf-acme-profiles); DEFAULT_PROFILE_ID when absent. */
  profile?: string;
  createdAt: Date;
}

/** RFC 8555 §7.1.4 authorization states. */
export type AuthorizationStatus = 'pending' | 'valid' | 'invalid' | 'deactivated' | 'expired' | 'revoked';
export type ChallengeType = 'http-01' | 'dns-01' | 'tls-alpn-01';
export type ChallengeStatus = 'pending' | 'processing' | 'valid' | 'invalid';

export interface Challenge {
  id: string;
  authorizationId: string;
  type: ChallengeType;
  /** RFC 8555 §8.1: at least 128 bits of entropy, base64url. */
  token: string;
  status: ChallengeStatus;
  validatedAt?: Date;
  error?: Problem;
  /** Validation attempts made so far; the scheduler retries until a limit. */
  attempts: number;
  /** When the next attempt is due while status is 'processing'. */
  nextAttemptAt?: Date;
}

export interface Authorization {
  id: string;
  accountId: string;
  /** Always the base name: "*.example.com" is stored as example.com with wildcard=true (RFC 8555 §7.1.4). */
  identifier: Identifier;
  wildcard: boolean;
  status: AuthorizationStatus;
  expires: Date;
  challenges: Challenge[];
  createdAt: Date;
}
