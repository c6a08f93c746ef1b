import type { Clock } from '../core/clock.js';
import { CaError } from '../core/errors.js';
import { silentLogger, type Logger } from '../core/logger.js';
import type { KeyStoreHealth } from './signer.js';

export interface SignerHealthStatus {
  ok: boolean;
  /** Why not, when not ok: the store's detail (token and CKR_* code), never a PIN or a handle. */
  reason?: string;
}

export interface SignerHealthOptions {
  /** The key store's health, or undefined for a store with no device to lose (software keys): always ok. */
  health: KeyStoreHealth | undefined;
  clock: Clock;
  /** How long a result is reused (keys.healthCacheSeconds). */
  cacheMs: number;
  logger?: Logger;
}

const OK: SignerHealthStatus = { ok: true };

/**
 * Whether the CA can sign now, without signing (a CA key's signature is a certificate, a CRL or an OCSP
 * response, never a test). Answers /readyz, and finalize before it claims an order: RFC 8555 §7.1.6 has no
 * way from processing back to ready, so an order claimed while the HSM is away would be lost, whereas one
 * refused with 503 before its claim stays ready for the client's retry.
 *
 * A result is reused for `cacheMs` (DESIGN.md rule 7: a short TTL on what this process sees of its own
 * device), so the probe costs one set of PKCS#11 calls per period, not per request — unless a signature
 * failed since the last probe: then the next check probes at once. When the probe fails, the store
 * recovers (new sessions, keys found again, the library re-initialized if need be) and is probed again; while
 * that fails every check after `cacheMs` tries again, so the CA comes back on its own when the token does.
 * Checks that arrive during a probe share it.
 */
export class SignerHealth {
  readonly #options: SignerHealthOptions;
  readonly #logger: Logger;
  #cached: { status: SignerHealthStatus; at: number; failures: number } | undefined;
  #running: Promise<SignerHealthStatus> | undefined;

  constructor(options: SignerHealthOptions) {
    if (!(options.cacheMs > 0)) throw new CaError('badConfig', `signer health cache must be a positive duration; got ${options.cacheMs} ms`);
    this.#options = options;
    this.#logger = options.logger ?? silentLogger;
  }

  /** Seconds a client should wait before trying again while the signer is unavailable (Retry-After). */
  get retryAfterSeconds(): number {
    return Math.max(1, Math.ceil(this.#options.cacheMs / 1000));
  }

  async check(): Promise<SignerHealthStatus> {
    const { health, clock, cacheMs } = this.#options;
    if (health === undefined) return OK;
    const cached = this.#cached;
    if (cached !== undefined && cached.failures === health.signFailures && clock.now().getTime() - cached.at < cacheMs) return cached.status;
    this.#running ??= this.#probe(health).finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  async #probe(health: KeyStoreHealth): Promise<SignerHealthStatus> {
    const failures = health.signFailures;
    const previous = this.#cached?.status;
    let status: SignerHealthStatus;
    try {
      await health.probe();
      status = OK;
    } catch (probeError) {
      this.#logger.warn({ err: probeError }, 'signer health probe failed; recovering the key store');
      try {
        await health.recover();
        await health.probe();
        status = OK;
      } catch (error) {
        status = { ok: false, reason: reasonOf(error) };
        if (previous?.ok !== false) this.#logger.error({ err: error }, 'signer unavailable: finalize answers 503 until it is back');
      }
    }
    if (status.ok && previous?.ok === false) this.#logger.info({}, 'signer available again');
    this.#cached = { status, at: this.#options.clock.now().getTime(), failures };
    return status;
  }
}

function reasonOf(error: unknown): string {
  const detail = error instanceof CaError ? error.detail : 'unexpected error';
  return detail.length > 200 ? `${detail.slice(0, 200)}…` : detail;
}
