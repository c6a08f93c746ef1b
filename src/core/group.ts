import type { ChallengeType } from './order.js';
import type { ProfileId } from './profile.js';

/**
 * Groups (departments): who owns a set of machines and what the CA will issue to the accounts bound to it.
 * A group's policy only narrows the global limits configuration sets (the ceiling); every field left out
 * means "as the ceiling allows". Evaluated by the pure functions of policy/group-policy.ts.
 */

/** The group of accounts made without EAB (and of credentials made without --group). */
export const DEFAULT_GROUP = 'default';

/** What a group may be called: what `chancery eab create --group` always accepted. */
export const GROUP_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** One identifier scope of a group. */
export interface IdentifierScope {
  /**
   * `suffix`: a DNS name and every name below it (label-wise: pay.internal covers api.pay.internal, not
   * xpay.internal); `name`: exactly one DNS name (a wildcard name only as written); `cidr`: the IP
   * addresses of an IPv4 or IPv6 network.
   */
  type: 'suffix' | 'name' | 'cidr';
  value: string;
  /** Another group may hold an overlapping scope only when both mark theirs shared. */
  shared: boolean;
}

export type KeyType = 'rsa' | 'ecdsa';
export const KEY_TYPES: readonly KeyType[] = ['rsa', 'ecdsa'];
export type EcdsaCurve = 'P-256' | 'P-384';

/** Labels: business context (owner, application, environment, criticality, any key) recorded with certificates. */
export type Labels = Record<string, string>;

export interface GroupPolicy {
  /**
   * The names and addresses the group may get certificates for. Absent: any name no other group declares
   * in its scopes (a group without scopes, such as `default` as seeded, cannot reach into another's).
   */
  identifiers?: IdentifierScope[];
  /** Whether wildcard names may be ordered (the ceiling: yes). */
  wildcards?: boolean;
  challengeTypes?: ChallengeType[];
  keyTypes?: KeyType[];
  /** At least the ceiling's minimum (CA/B BR 6.1.5: 2048). */
  rsaMinBits?: number;
  ecdsaCurves?: EcdsaCurve[];
  /** The longest validity of the group's certificates: each profile's validity is cut to it. */
  maxValidityMs?: number;
  /** Profile ids from the registry; the first is the group's default (an order naming none gets it). */
  profiles?: ProfileId[];
  /** Recorded with every certificate of the group (a credential's own labels win). */
  labels?: Labels;
  /**
   * Names (DNS names or IP addresses, exact) issued without a challenge: for hosts that cannot answer one.
   * Off unless listed. Every such authorization raises `authorization.preapproved`.
   */
  preapproved?: string[];
}

export interface Group {
  name: string;
  /** The owners' addresses. */
  contacts: string[];
  policy: GroupPolicy;
  /** Last changed (absent: as the migration seeded it). */
  updatedAt?: Date;
}
