import type { LinkedCertificate } from './lineage.js';

/**
 * Renewal health: certificates nobody is renewing. The conditions a report lists (all: valid, not revoked,
 * and no successor):
 * - renewal-overdue: past the end of the ARI window (RFC 9773 §4.2: the middle third of the validity, so
 *   two thirds of it gone), not yet expired;
 * - expiring: renewal-overdue and expiring within the report's N days — the urgent part of the first list.
 *   A certificate inside its window is never here, however short its life: a short-lived certificate that
 *   renews on time never appears;
 * - expired-unreplaced: expired in the last N days.
 */
export const HEALTH_CONDITIONS = ['renewal-overdue', 'expiring', 'expired-unreplaced'] as const;
export type HealthCondition = (typeof HEALTH_CONDITIONS)[number];

/** A certificate in a condition, with its account's last sighting. */
export interface HealthEntry extends LinkedCertificate {
  /** The end of its ARI window: when it became renewal-overdue. */
  renewalDueAt: Date;
  accountLastSeenAt?: Date;
}

/** One group's part of a health report ('' stands for certificates recorded with no group). */
export interface GroupHealth {
  group: string;
  /** The group's contacts (its owners). */
  owners: string[];
  renewalOverdue: number;
  expiring: number;
  expiredUnreplaced: number;
  /** Accounts holding one of those certificates. */
  accounts: number;
}

/** An account whose certificates went overdue (or expired unreplaced), and when it was last seen. */
export interface OverdueAccount {
  accountId: string;
  group?: string;
  status?: string;
  lastSeenAt?: Date;
  certificates: number;
  /** The soonest notAfter among them. */
  firstNotAfter: Date;
}
