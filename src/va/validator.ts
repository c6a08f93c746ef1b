import type { Problem } from '../core/errors.js';
import type { Identifier } from '../core/identifier.js';
import type { ChallengeType } from '../core/order.js';

/**
 * One validation attempt, as the RA hands it to the VA. `keyAuthorization` is token "." thumbprint
 * (RFC 8555 §8.1); each challenge type derives what it expects from it.
 */
export interface ValidationRequest {
  type: ChallengeType;
  /** The identifier being proven: for a wildcard authorization, the base name (no "*."). */
  identifier: Identifier;
  token: string;
  keyAuthorization: string;
  /** The authorization is for "*.<identifier>" (CAA then reads issuewild, RFC 8659 §4.3). */
  wildcard?: boolean;
  /** The account's URL, for CAA accounturi (RFC 8657 §3). */
  accountUri?: string;
}

export type ValidationOutcome =
  | { valid: true; detail?: string }
  /** `retryable` is true for failures that may pass on a later attempt (timeouts, connection refused). */
  | { valid: false; problem: Problem; retryable: boolean };

export interface Validator {
  validate(request: ValidationRequest): Promise<ValidationOutcome>;
}

/** Where validation reaches: the ports and resolvers the VA contacts (RFC 8555 §8.3, §8.4; RFC 8737 §3). */
export interface ValidationReach {
  /** CHANCERY_HTTP01_PORT, default 80. */
  http01Port: number;
  /** CHANCERY_TLSALPN01_PORT, default 443. */
  tlsAlpn01Port: number;
  /** CHANCERY_DNS_RESOLVERS as host:port; empty = system resolvers. */
  dnsResolvers: string[];
  /** Per-attempt timeout. */
  timeoutMs: number;
}
