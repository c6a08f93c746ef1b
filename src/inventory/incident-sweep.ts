import { createHash } from 'node:crypto';
import type { Actor } from '../core/audit.js';
import type { BulkRun } from '../core/bulk-revocation.js';
import type { RevocationReason } from '../core/certificate.js';
import type { Clock } from '../core/clock.js';
import type { Incident } from '../core/incident.js';
import { silentLogger, type Logger } from '../core/logger.js';
import type { Queryable } from '../db/database.js';
import type { BulkSelection } from '../revocation/bulk-revoker.js';
import { incidentOrigin } from './incident-service.js';

/** What the sweep reads (db/ IncidentRepository). */
export interface SweepStore {
  open(): Promise<Incident[]>;
  replacedUnrevoked(incidentId: string, limit: number): Promise<string[]>;
  /** Puts the incident's notification for its owners in the outbox, once (idempotent). */
  notifyOwners?(incident: Incident, at: Date): Promise<unknown>;
}

/** Bulk revocation as the sweep asks for it (revocation/ BulkRevoker). */
export interface SweepRevoker {
  revokeMany(selection: BulkSelection<Queryable>, reason: RevocationReason, actor: Actor, options: { origin: string }): Promise<BulkRun>;
  findByOrigin(origin: string): Promise<BulkRun | undefined>;
}

/** How often the incidents.sweep job runs (a declaration or a replacement also asks for a pass at once). */
export const INCIDENT_SWEEP_INTERVAL_MS = 5_000;
const PAGE = 10_000;

/**
 * The incidents.sweep job (one instance at a time, src/core/jobs.ts): for each open incident, the owners'
 * notification put in the outbox once, and the revocations that are due planned (revocation/bulk-revoker.ts
 * does them, crash-safe):
 * - `now`: all of its certificates, once;
 * - `when-replaced`: each replaced certificate as soon as its replacement exists (those not already in a
 *   run), and all the rest once the deadline has passed;
 * - `at-deadline`: all of them once the deadline has passed.
 * A drill revokes nothing. Every pass does what is due and can be repeated: a revocation is planned under a
 * unique origin, so planning it twice finds the first.
 */
export class IncidentSweep {
  private readonly logger: Logger;

  constructor(
    private readonly deps: {
      store: SweepStore;
      /** The incident's serials after `after`, read on `on` (the planning transaction). */
      memberSerials: (on: Queryable, incidentId: string, after: string | undefined, limit: number) => Promise<string[]>;
      revoker: SweepRevoker;
      clock: Clock;
      logger?: Logger;
    },
  ) {
    this.logger = deps.logger ?? silentLogger;
  }

  async run(signal?: AbortSignal): Promise<void> {
    for (const incident of await this.deps.store.open()) {
      signal?.throwIfAborted();
      const now = this.deps.clock.now();
      await this.deps.store.notifyOwners?.(incident, now);
      if (incident.drill) continue;
      if (incident.revoke === 'now') {
        await this.revokeAll(incident, 'now');
      } else if (now.getTime() >= incident.renewBy.getTime()) {
        await this.revokeAll(incident, 'deadline');
      } else if (incident.revoke === 'when-replaced') {
        await this.revokeReplaced(incident);
      }
    }
  }

  private async revokeAll(incident: Incident, what: 'now' | 'deadline'): Promise<void> {
    const origin = incidentOrigin(incident, what);
    if ((await this.deps.revoker.findByOrigin(origin)) !== undefined) return;
    const memberSerials = this.deps.memberSerials;
    const selection: BulkSelection<Queryable> = {
      label: `incident ${incident.name} (${what === 'now' ? 'all affected, at once' : 'all not yet revoked, at the deadline'})`,
      async *pages(tx) {
        let after: string | undefined;
        for (;;) {
          const page = await memberSerials(tx, incident.id, after, PAGE);
          if (page.length > 0) yield page;
          if (page.length < PAGE) return;
          after = page.at(-1);
        }
      },
    };
    const run = await this.deps.revoker.revokeMany(selection, incident.reason, incident.declaredBy, { origin });
    this.logger.info({ incident: incident.name, run: run.id, total: run.total, shortLived: run.shortLived }, `incident revocation planned (${what})`);
  }

  private async revokeReplaced(incident: Incident): Promise<void> {
    const serials = await this.deps.store.replacedUnrevoked(incident.id, PAGE);
    if (serials.length === 0) return;
    // The same set planned twice (a pass that died after planning) finds the first run.
    const origin = incidentOrigin(incident, `replaced:${createHash('sha256').update(serials.join('\n')).digest('base64url').slice(0, 22)}`);
    const run = await this.deps.revoker.revokeMany(
      {
        label: `incident ${incident.name} (replaced certificates)`,
        async *pages() {
          yield serials;
        },
      },
      incident.reason,
      incident.declaredBy,
      { origin },
    );
    this.logger.info({ incident: incident.name, run: run.id, total: run.total }, 'incident revocation of replaced certificates planned');
  }
}
