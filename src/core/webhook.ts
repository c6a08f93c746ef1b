import type { Actor } from './audit.js';

/**
 * Notifications that matter: a certificate nobody is renewing. One event per certificate per condition,
 * each with an id that stays the same across every retry of every delivery (receivers deduplicate on it).
 * - renewal-overdue: its ARI window (RFC 9773 §4.2; src/ra/renewal-info.ts) has closed, two thirds of its
 *   validity are gone, and no successor exists;
 * - expiring-soon: a third of its validity is left and no successor exists;
 * - expired-unreplaced: it expired without a successor;
 * - incident-declared: an incident covers it (src/inventory/incident-service.ts): renew it by the deadline
 *   the event names.
 * With today's ARI window (the middle third) the first two fall due at the same instant; they stay two
 * conditions so a receiver subscribes to what it acts on (an owner's pager: expiring-soon; a fleet
 * dashboard: renewal-overdue), and so a window that a profile narrows later moves only renewal-overdue.
 */
export const NOTIFICATION_TYPES = ['renewal-overdue', 'expiring-soon', 'expired-unreplaced', 'incident-declared'] as const;
export type NotificationType = (typeof NOTIFICATION_TYPES)[number];

export function isNotificationType(value: string): value is NotificationType {
  return (NOTIFICATION_TYPES as readonly string[]).includes(value);
}

/** A webhook as stored and listed: never its secret (shown once, when it is created). */
export interface Webhook {
  id: string;
  /** The group whose certificates it hears of; absent: global (every certificate, in a group or none). */
  group?: string;
  url: string;
  /** The event types it receives. */
  events: NotificationType[];
  description: string;
  createdAt: Date;
  createdBy: Actor;
  /** Removed webhooks receive nothing more; they stay listed so what they were sent stays explained. */
  removedAt?: Date;
  removedBy?: Actor;
}

export type DeliveryStatus = 'pending' | 'delivered' | 'failed';

/** One event's delivery to one webhook (the outbox's unit of work). */
export interface WebhookDelivery {
  eventId: string;
  webhookId: string;
  type: NotificationType;
  serial: string;
  status: DeliveryStatus;
  attempts: number;
  nextAttemptAt?: Date;
  lastAttemptAt?: Date;
  lastError?: string;
  deliveredAt?: Date;
  createdAt: Date;
}
