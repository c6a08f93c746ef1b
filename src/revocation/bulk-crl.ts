import type { CrlScope } from '../core/bulk-revocation.js';
import { CaError } from '../core/errors.js';
import { silentLogger, type Logger } from '../core/logger.js';

/** The CRL publisher as bulk revocation uses it: generate one scope now (CrlPublisher.generate). */
export interface CrlGenerator {
  generate(issuerId: string, shard: number): Promise<unknown>;
}

/**
 * CRLs during a bulk revocation. A single revocation waits for its CRL (CrlPublisher.onRevoked); a chunk
 * of a bulk revocation must not, or a million revocations would regenerate a growing CRL a thousand times.
 * Instead the scopes chunks touch are regenerated at most once every `intervalMs` while the run lasts —
 * relying parties see the revocations within seconds, OCSP at once — and once more, each touched scope
 * exactly once, when the run's last chunk is in (publish). A regeneration's cost grows with the CRL: the
 * next one waits at least REGENERATION_SPACING times as long as the last took, so regenerating takes at most
 * a fifth of the time however long the CRL grows (a 1,000,000-entry CRL every 5 s held back a 1,000,000
 * revocation run and the ACME requests beside it: bench:revoke). Timers are real (scheduling, like the job
 * runner's); the durations are measured with the monotonic clock, not read from the Clock.
 */
export class BulkCrlSchedule {
  private readonly dirty = new Map<string, CrlScope>();
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;
  /** How long the last regeneration took (ms): the next waits at least REGENERATION_SPACING times that. */
  private lastTookMs = 0;
  private readonly logger: Logger;

  constructor(private readonly deps: { crl: CrlGenerator; intervalMs: number; logger?: Logger }) {
    if (!(deps.intervalMs > 0)) throw new CaError('badConfig', `the bulk revocation CRL interval must be positive, got ${deps.intervalMs} ms`);
    this.logger = deps.logger ?? silentLogger;
  }

  /** A chunk committed revocations in these scopes: their CRLs are regenerated at the next tick. */
  revoked(scopes: readonly CrlScope[]): void {
    if (this.stopped) return;
    for (const scope of scopes) this.dirty.set(key(scope), scope);
    if (this.timer === undefined && this.dirty.size > 0) {
      this.timer = setTimeout(
        () => {
          this.timer = undefined;
          void this.regenerate();
        },
        Math.max(this.deps.intervalMs, REGENERATION_SPACING * this.lastTookMs),
      );
      this.timer.unref();
    }
  }

  /**
   * The run is over: each of `scopes` regenerated once now (after any regeneration under way, which may
   * have read its entries before the last chunks committed). Rejects if one fails: the run stays publishing
   * and the job tries again.
   */
  async publish(scopes: readonly CrlScope[]): Promise<void> {
    await this.running;
    for (const scope of scopes) {
      this.dirty.delete(key(scope));
      await this.deps.crl.generate(scope.issuerId, scope.shard);
    }
  }

  /** Stops the timer and waits for a regeneration under way. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    await this.running;
  }

  private async regenerate(): Promise<void> {
    if (this.stopped || this.running !== undefined) return;
    const scopes = [...this.dirty.values()];
    this.dirty.clear();
    this.running = (async () => {
      const started = performance.now();
      for (const scope of scopes) {
        try {
          await this.deps.crl.generate(scope.issuerId, scope.shard);
        } catch (error) {
          // The scheduled regeneration and the run's final publication catch up.
          this.logger.error({ err: error, issuerId: scope.issuerId, shard: scope.shard }, 'CRL regeneration during a bulk revocation failed');
        }
      }
      this.lastTookMs = performance.now() - started;
    })();
    try {
      await this.running;
    } finally {
      this.running = undefined;
      // Chunks kept committing meanwhile: their scopes wait one more interval.
      if (this.dirty.size > 0) this.revoked([]);
    }
  }
}

/** A regeneration during a run is followed by at least this many times its duration without one. */
const REGENERATION_SPACING = 4;

function key(scope: CrlScope): string {
  return `${scope.issuerId}/${scope.shard}`;
}
