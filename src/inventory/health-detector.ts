import { DAY, MINUTE, type Clock } from '../core/clock.js';
import { newId } from '../core/ids.js';
import type { LinkedCertificate } from '../core/lineage.js';
import { NOTIFICATION_TYPES, type NotificationType } from '../core/webhook.js';

export type HealthScan = 'renewal-due' | 'expiry';

export interface ScanHit {
  linked: LinkedCertificate;
  crossedAt: Date;
}

export interface OutboxEvent {
  id: string;
  type: NotificationType;
  serial: string;
  group?: string;
  accountId?: string;
  notAfter: Date;
  body: string;
}

/** What the detector needs of the database (db/repositories/notification-outbox-repository.ts). */
export interface OutboxStore {
  watermark(scan: HealthScan): Promise<Date | undefined>;
  scan(scan: HealthScan, range: { from: Date; to: Date }, after: { at: Date; serial: string } | undefined, limit: number): Promise<ScanHit[]>;
  enqueue(events: readonly OutboxEvent[], at: Date, watermark: { scan: HealthScan; through: Date }): Promise<{ events: number; deliveries: number }>;
  purge(types: readonly string[], cutoff: Date, limit: number): Promise<number>;
  owners(groups: readonly string[]): Promise<Map<string, string[]>>;
}

/** How often the notifications.detect job runs. */
export const DETECT_INTERVAL_MS = MINUTE;
/**
 * How far behind its watermark each pass looks again: a certificate stored a moment late (its transaction
 * committed after a pass had looked past its threshold) is still found; finding one twice changes nothing
 * (one event per certificate per condition: the outbox's unique key).
 */
const OVERLAP_MS = 10 * MINUTE;
/**
 * Where the first pass starts. renewal-due: every certificate still valid (none lives longer than 398 days,
 * CA/B BR 6.3.2), so an estate that already has overdue certificates is told about them once; expiry: a
 * week, so turning notifications on does not page owners for certificates that expired long ago.
 */
const FIRST_LOOK_BACK_MS: Record<HealthScan, number> = { 'renewal-due': 400 * DAY, expiry: 7 * DAY };
/** Events of certificates expired longer ago than this (and with nothing left to deliver) are deleted. */
const KEEP_EVENTS_MS = 90 * DAY;
const BATCH = 500;

/**
 * Finds certificates entering a notification condition (the notifications.detect job, one instance at a
 * time under its lease) and puts one event per certificate per condition in the outbox, each with its
 * deliveries, in the statement that also moves the scan's watermark: a crash loses nothing and repeats
 * nothing. Two scans, each a walk of an index from its watermark to now:
 * - renewal-due (certificates_renewal_due): the end of the ARI window passed without a successor →
 *   renewal-overdue and expiring-soon (see core/webhook.ts);
 * - expiry (certificates by notAfter): expired without a successor → expired-unreplaced.
 * "Without a successor" is judged when the pass runs: a certificate renewed in time never gets an event.
 */
export class HealthDetector {
  constructor(private readonly deps: { store: OutboxStore; clock: Clock }) {}

  async run(signal?: AbortSignal): Promise<{ events: number; deliveries: number }> {
    const total = { events: 0, deliveries: 0 };
    for (const scan of ['renewal-due', 'expiry'] as const) {
      const found = await this.pass(scan, signal);
      total.events += found.events;
      total.deliveries += found.deliveries;
    }
    // Every type's events: the outbox is shared (an incident puts its own events in it).
    await this.deps.store.purge(NOTIFICATION_TYPES, new Date(this.deps.clock.now().getTime() - KEEP_EVENTS_MS), 1000);
    return total;
  }

  private async pass(scan: HealthScan, signal?: AbortSignal): Promise<{ events: number; deliveries: number }> {
    const { store, clock } = this.deps;
    const now = clock.now();
    const watermark = await store.watermark(scan);
    const from = watermark === undefined ? new Date(now.getTime() - FIRST_LOOK_BACK_MS[scan]) : new Date(watermark.getTime() - OVERLAP_MS);
    const total = { events: 0, deliveries: 0 };
    let after: { at: Date; serial: string } | undefined;
    for (;;) {
      signal?.throwIfAborted();
      const hits = await store.scan(scan, { from, to: now }, after, BATCH);
      const last = hits.at(-1);
      const complete = hits.length < BATCH;
      const events = await this.events(scan, hits, now);
      // The watermark moves to what this batch covered: all of (from, now] once the walk is complete.
      const through = complete || last === undefined ? now : last.crossedAt;
      const done = await store.enqueue(events, now, { scan, through });
      total.events += done.events;
      total.deliveries += done.deliveries;
      if (complete || last === undefined) return total;
      after = { at: last.crossedAt, serial: last.linked.certificate.serial };
    }
  }

  private async events(scan: HealthScan, hits: readonly ScanHit[], now: Date): Promise<OutboxEvent[]> {
    const groups = [...new Set(hits.map((hit) => hit.linked.certificate.group).filter((g): g is string => g !== undefined))];
    const owners = groups.length === 0 ? new Map<string, string[]>() : await this.deps.store.owners(groups);
    const types: NotificationType[] = scan === 'renewal-due' ? ['renewal-overdue', 'expiring-soon'] : ['expired-unreplaced'];
    return hits.flatMap((hit) => types.map((type) => this.event(type, hit, now, owners)));
  }

  private event(type: NotificationType, hit: ScanHit, now: Date, owners: Map<string, string[]>): OutboxEvent {
    const { certificate, predecessorSerial } = hit.linked;
    const id = `evt_${newId()}`;
    const from = certificate.notBefore.getTime();
    const body = JSON.stringify({
      id,
      type,
      createdAt: now.toISOString(),
      certificate: {
        serial: certificate.serial,
        identifiers: certificate.identifiers.map((i) => `${i.type}:${i.value}`),
        notBefore: certificate.notBefore.toISOString(),
        notAfter: certificate.notAfter.toISOString(),
        renewalDueAt: new Date(from + ((certificate.notAfter.getTime() - from) * 2) / 3).toISOString(),
        issuer: certificate.issuerId,
        ...(certificate.profile === undefined ? {} : { profile: certificate.profile }),
        ...(certificate.accountId === undefined ? {} : { account: certificate.accountId }),
        ...(predecessorSerial === undefined ? {} : { predecessor: predecessorSerial }),
        ...(certificate.labels === undefined ? {} : { labels: certificate.labels }),
      },
      ...(certificate.group === undefined ? {} : { group: { name: certificate.group, owners: owners.get(certificate.group) ?? [] } }),
    });
    return {
      id,
      type,
      serial: certificate.serial,
      ...(certificate.group === undefined ? {} : { group: certificate.group }),
      ...(certificate.accountId === undefined ? {} : { accountId: certificate.accountId }),
      notAfter: certificate.notAfter,
      body,
    };
  }
}
