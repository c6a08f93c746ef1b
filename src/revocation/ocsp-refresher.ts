/**
 * The background job that keeps pre-signed OCSP responses fresh (`ocsp.refresh`, run by the JobRunner on one
 * instance at a time; `chancery ocsp refresh` runs a pass at once): every pass it brings the responder
 * certificates up to date (rotation at half life), then claims, in batches, the stored responses past
 * their refresh point (half way from thisUpdate to nextUpdate) and re-signs them. Claims are leases in the
 * database, so the refreshers of several instances share the work instead of repeating it (rule 7).
 * Decisions use the injected Clock (rule 4); the timer only says when to look.
 */
import { MINUTE, type Clock } from '../core/clock.js';
import type { CertificateFacts } from './ocsp-source.js';
import type { Logger } from '../core/logger.js';

/** Implemented by db/ (OcspResponseRepository). */
export interface OcspRefreshStore {
  claimDue(now: Date, leaseUntil: Date, limit: number): Promise<CertificateFacts[]>;
  findMissing(now: Date, limit: number): Promise<CertificateFacts[]>;
  purgeExpired(before: Date): Promise<number>;
}

export interface OcspRefresherSettings {
  /** Responses claimed and re-signed per batch. */
  batchSize: number;
  /** Signatures in flight at once within a batch. */
  concurrency: number;
  /** How often the `ocsp.refresh` job runs (real time; what is due is decided by the Clock). */
  intervalMs: number;
  /** A claimed row is not claimed again by anyone for this long; a crashed claimer's rows come back after it. */
  leaseMs: number;
  /** Upper bound on batches in one run, so one run ends even if signing keeps producing due rows. */
  maxBatches: number;
  /** Every this many runs (and on the first), also sign responses for certificates that have none. */
  backfillEvery: number;
  /** Responses of certificates expired longer than this are deleted. */
  keepExpiredMs: number;
}

export const DEFAULT_REFRESHER_SETTINGS: OcspRefresherSettings = {
  batchSize: 500,
  concurrency: 16,
  intervalMs: MINUTE,
  leaseMs: 10 * MINUTE,
  maxBatches: 200,
  backfillEvery: 60,
  keepExpiredMs: 24 * 60 * MINUTE,
};

export interface RefreshResult {
  refreshed: number;
  backfilled: number;
  failed: number;
  purged: number;
}

export interface OcspRefresherDeps {
  store: OcspRefreshStore;
  source: { refresh(facts: CertificateFacts): Promise<boolean> };
  responders: { ensureCurrent(): Promise<void> };
  clock: Clock;
  settings?: Partial<OcspRefresherSettings>;
  logger?: Logger;
}

export class OcspRefresher {
  private readonly settings: OcspRefresherSettings;
  private running: Promise<RefreshResult> | undefined;
  private runs = 0;

  constructor(private readonly deps: OcspRefresherDeps) {
    this.settings = { ...DEFAULT_REFRESHER_SETTINGS, ...deps.settings };
  }

  /**
   * One pass: responders, then every due response (batched), then — when asked or on schedule — the
   * certificates that have no response yet, then the purge. Concurrent calls share one pass.
   */
  runOnce(options: { backfill?: boolean } = {}): Promise<RefreshResult> {
    this.running ??= this.pass(options.backfill ?? this.runs % this.settings.backfillEvery === 0).finally(() => {
      this.runs += 1;
      this.running = undefined;
    });
    return this.running;
  }

  /** How often the `ocsp.refresh` job runs this (settings.intervalMs). */
  get intervalMs(): number {
    return this.settings.intervalMs;
  }

  /** One pass with its outcome logged: what the `ocsp.refresh` job runs. */
  async runScheduled(): Promise<RefreshResult> {
    const result = await this.runOnce();
    if (result.refreshed + result.backfilled + result.failed > 0) this.deps.logger?.info({ ...result }, 'OCSP responses refreshed');
    return result;
  }

  /** Waits for a pass under way, if any. */
  async stop(): Promise<void> {
    await this.running?.catch(() => undefined);
  }

  private async pass(backfill: boolean): Promise<RefreshResult> {
    const result: RefreshResult = { refreshed: 0, backfilled: 0, failed: 0, purged: 0 };
    // A failed rotation is logged by ensureCurrent; responses still refresh with the current responder
    // while it has life left.
    await this.deps.responders.ensureCurrent().catch(() => undefined);
    const { batchSize, leaseMs, maxBatches, keepExpiredMs } = this.settings;
    for (let batch = 0; batch < maxBatches; batch += 1) {
      const now = this.deps.clock.now();
      const due = await this.deps.store.claimDue(now, new Date(now.getTime() + leaseMs), batchSize);
      const { ok, failed } = await this.signAll(due);
      result.refreshed += ok;
      result.failed += failed;
      if (due.length < batchSize || ok === 0) break;
    }
    if (backfill) {
      for (let batch = 0; batch < maxBatches; batch += 1) {
        const missing = await this.deps.store.findMissing(this.deps.clock.now(), batchSize);
        const { ok, failed } = await this.signAll(missing);
        result.backfilled += ok;
        result.failed += failed;
        // Rows that failed stay missing and would come back in the next batch: stop instead of spinning.
        if (missing.length < batchSize || failed > 0) break;
      }
    }
    result.purged = await this.deps.store.purgeExpired(new Date(this.deps.clock.now().getTime() - keepExpiredMs));
    return result;
  }

  private async signAll(items: CertificateFacts[]): Promise<{ ok: number; failed: number }> {
    let ok = 0;
    let failed = 0;
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < items.length) {
        const facts = items[next]!;
        next += 1;
        try {
          await this.deps.source.refresh(facts);
          ok += 1;
        } catch (error) {
          failed += 1;
          this.deps.logger?.error({ err: error, serial: facts.serial }, 'refreshing an OCSP response failed');
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.settings.concurrency, items.length) }, worker));
    return { ok, failed };
  }
}
