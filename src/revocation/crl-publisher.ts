import type { RevokedEntryPage } from '../core/revoked-entries.js';
import { DAY, MINUTE, SECOND, type Clock } from '../core/clock.js';
import { CaError } from '../core/errors.js';
import type { PublicUrls } from '../core/url-scheme.js';
import { silentLogger, type Logger } from '../core/logger.js';

// ---- the slices of db/ and ca/ this publisher uses (declared here, implemented there; DESIGN.md layers) ----

export interface CrlInfo {
  issuerId: string;
  shard: number;
  /** CRLNumber (RFC 5280 §5.2.3). */
  number: number;
  thisUpdate: Date;
  nextUpdate: Date;
  /** revokedCertificates entries. */
  entries: number;
}

export interface PublishedCrl extends CrlInfo {
  der: Uint8Array;
}

/** db/ CrlRepository. */
export interface CrlStore {
  nextCrlNumber(issuerId: string, shard: number): Promise<number>;
  publishedShards(issuerId: string): Promise<number[]>;
  revokedEntries(issuerId: string, shard: number, options: { notAfterAfter: Date }): AsyncIterable<RevokedEntryPage>;
  countRevoked(issuerId: string, shard: number, options: { notAfterAfter: Date }): Promise<number>;
  /** True when a certificate of the scope was revoked after `since`. */
  revokedSince(issuerId: string, shard: number, since: Date): Promise<boolean>;
  save(crl: PublishedCrl, createdAt: Date): Promise<boolean>;
  latestInfo(issuerId: string, shard: number): Promise<CrlInfo | undefined>;
  latest(issuerId: string, shard: number): Promise<PublishedCrl | undefined>;
}

export interface CrlIssuer {
  id: string;
  role: 'root' | 'intermediate';
}

/** The CA certificates Chancery holds (db/ IssuerRepository.list). */
export interface CrlIssuers {
  list(): Promise<CrlIssuer[]>;
}

export interface CrlSignRequest {
  number: number;
  thisUpdate: Date;
  nextUpdate: Date;
  distributionPoint: string | undefined;
  scope: 'userCerts' | 'caCerts';
  /** The previous CRL's entry count: lets the builder size its buffer once. */
  expectedEntries: number | undefined;
}

/** ca/ CrlBuilder of one issuer: encodes, signs through the issuer's Signer, verifies (rule 2). */
export interface CrlSigner {
  build(request: CrlSignRequest, entries: AsyncIterable<RevokedEntryPage>): Promise<{ der: Uint8Array; entries: number }>;
}

export interface CrlSigners {
  forIssuer(issuerId: string): Promise<CrlSigner>;
}


export interface CrlSettings {
  /** CHANCERY_CRL_SHARDS: the shards new certificates are spread over (certificates.crl_shard). */
  shards: number;
  /** thisUpdate -> nextUpdate (RFC 5280 §5.1.2.5). Default 24 h. */
  nextUpdateMs?: number;
  /**
   * Regenerate a scope when its latest CRL is this old, so relying parties never see a CRL past its
   * nextUpdate while the publisher runs. Default nextUpdate / 2. Also the cap of HTTP max-age.
   */
  refreshMs?: number;
  /**
   * How long a revoked certificate stays listed after its notAfter. RFC 5280 §3.3: "An entry MUST NOT be
   * removed from the CRL until it appears on one regularly scheduled CRL issued beyond the revoked
   * certificate's validity period" — kept for one nextUpdate period (default), longer than the regeneration
   * interval, so at least one scheduled CRL after expiry still lists it.
   */
  expiredRetentionMs?: number;
  /**
   * Revocations within this window share one regeneration of their scope. Default 25 ms: a revocation waits
   * for its CRL (onRevoked), so the window is latency; revocations that arrive while a regeneration runs
   * share the next one whatever the window.
   */
  coalesceMs?: number;
  /** How often the `crl.regenerate` job looks for scopes due for regeneration. Default min(refresh / 4, 5 min). */
  checkEveryMs?: number;
}

export interface CrlPublisherDeps {
  store: CrlStore;
  issuers: CrlIssuers;
  signers: CrlSigners;
  urls: Pick<PublicUrls, 'crl'>;
  clock: Clock;
  settings: CrlSettings;
  logger?: Logger;
}

interface ScopeState {
  issuerId: string;
  shard: number;
  /** A revocation arrived that the CRL being generated (if any) may not include. */
  dirty: boolean;
  timer: NodeJS.Timeout | undefined;
  running: Promise<void> | undefined;
  failures: number;
  /** Callers of onRevoked waiting for a CRL generated after their revocation committed. */
  waiters: (() => void)[];
}

const MAX_RETRY_MS = 5 * MINUTE;

/**
 * Publishes CRLs (RFC 5280 §5): one per intermediate and shard (/crl/<issuer>/<shard>.crl) listing revoked
 * end-entity certificates, and the root's (/crl/root.crl) listing revoked CA certificates — normally none.
 *
 * Generated on a schedule (a scope is regenerated once its latest CRL is refreshMs old, well before
 * nextUpdate) and right after revocations, coalesced per scope: a bulk revocation of 10k certificates
 * of one shard costs the CRL being generated plus one more, not 10k. Every CRL is stored in the database
 * with its number, so any instance serves the latest without regenerating (rule 7); this instance keeps
 * the DER of the latest CRL of each scope it served in memory, keyed by CRL number — an entry that can never
 * be wrong, since a number always names the same bytes — and asks the database for the current number on
 * every request.
 *
 * CRLs are generated one at a time per process, so memory stays bounded by the largest CRL.
 */
export class CrlPublisher {
  private readonly store: CrlStore;
  private readonly clock: Clock;
  private readonly logger: Logger;
  readonly nextUpdateMs: number;
  readonly refreshMs: number;
  private readonly expiredRetentionMs: number;
  private readonly coalesceMs: number;
  readonly checkEveryMs: number;
  private readonly scopes = new Map<string, ScopeState>();
  private readonly cache = new Map<string, PublishedCrl>();
  private readonly loading = new Map<string, Promise<PublishedCrl | undefined>>();
  private queue: Promise<unknown> = Promise.resolve();
  private rootId: string | undefined;
  private stopped = false;
  /** Scheduled passes under way (regenerateDue). */
  private readonly passes = new Set<Promise<void>>();

  constructor(private readonly deps: CrlPublisherDeps) {
    const { settings } = deps;
    this.store = deps.store;
    this.clock = deps.clock;
    this.logger = deps.logger ?? silentLogger;
    this.nextUpdateMs = settings.nextUpdateMs ?? DAY;
    this.refreshMs = settings.refreshMs ?? Math.floor(this.nextUpdateMs / 2);
    this.expiredRetentionMs = settings.expiredRetentionMs ?? this.nextUpdateMs;
    this.coalesceMs = settings.coalesceMs ?? 25;
    this.checkEveryMs = settings.checkEveryMs ?? Math.min(Math.floor(this.refreshMs / 4), 5 * MINUTE);
    if (!Number.isInteger(settings.shards) || settings.shards < 1) throw new CaError('badConfig', `CRL shards must be at least 1, got ${settings.shards}`);
    if (this.nextUpdateMs < 2 * SECOND) throw new CaError('badConfig', 'CRL nextUpdate must be at least 2 seconds after thisUpdate');
    if (this.refreshMs <= 0 || this.refreshMs >= this.nextUpdateMs) {
      // A CRL regenerated only at or after its nextUpdate leaves relying parties without a current one.
      throw new CaError('badConfig', 'the CRL regeneration interval must be shorter than nextUpdate');
    }
  }

  /**
   * Generates, signs, verifies and stores the CRL of one scope now. The number is drawn before the entries
   * are read, so CRL n lists every revocation committed before n was drawn.
   */
  generate(issuerId: string, shard: number): Promise<CrlInfo> {
    return this.exclusive(() => this.generateNow(issuerId, shard, false));
  }

  /** Every scope: the root's CRL and each intermediate's shards (configured ones and any published before). */
  async generateAll(): Promise<CrlInfo[]> {
    const generated: CrlInfo[] = [];
    for (const scope of await this.allScopes()) generated.push(await this.generate(scope.issuerId, scope.shard));
    return generated;
  }

  /** The scopes whose latest CRL is missing or older than refreshMs (what the schedule runs). */
  async generateDue(): Promise<CrlInfo[]> {
    const generated: CrlInfo[] = [];
    for (const scope of await this.allScopes()) {
      const latest = await this.store.latestInfo(scope.issuerId, scope.shard);
      // Another instance sharing the database may have just regenerated it: then there is nothing to do —
      // unless a revocation is newer than that CRL (a process killed between a revocation's commit and its
      // CRL regeneration leaves exactly this behind; the next start must publish it). A revocation
      // committing while a generation reads its entries is covered by its own onRevoked regeneration.
      if (
        latest !== undefined &&
        this.clock.now().getTime() < latest.thisUpdate.getTime() + this.refreshMs &&
        !(await this.store.revokedSince(scope.issuerId, scope.shard, latest.thisUpdate))
      ) {
        continue;
      }
      generated.push(await this.generate(scope.issuerId, scope.shard));
    }
    return generated;
  }

  /**
   * Called after a certificate's revocation committed (the `certificate.revoked` event). The scope is
   * regenerated in the background, coalesced with other revocations of the same scope; the promise resolves
   * once a CRL generated after this call — so listing the certificate — is stored and served, so a
   * revocation's caller can return only when relying parties can see it (RFC 5280 §5: a cache that fetched
   * the CRL in between would keep the pre-revocation one for its max-age). It never rejects: failures are
   * logged and retried with backoff, and the promise waits for the retry that succeeds (bound it).
   */
  onRevoked(certificate: { issuerId: string; crlShard: number }): Promise<void> {
    if (this.stopped) return Promise.resolve();
    const key = scopeKey(certificate.issuerId, certificate.crlShard);
    let state = this.scopes.get(key);
    if (state === undefined) {
      state = { issuerId: certificate.issuerId, shard: certificate.crlShard, dirty: false, timer: undefined, running: undefined, failures: 0, waiters: [] };
      this.scopes.set(key, state);
    }
    state.dirty = true;
    const published = new Promise<void>((resolve) => state.waiters.push(resolve));
    if (state.timer === undefined && state.running === undefined) this.schedule(state, this.coalesceMs);
    return published;
  }

  /** Resolves once every regeneration requested by onRevoked so far has finished (tests, shutdown). */
  async settled(): Promise<void> {
    for (;;) {
      const busy = [...this.scopes.values()].filter((s) => s.running !== undefined || (s.timer !== undefined && s.failures === 0));
      if (busy.length === 0) return;
      for (const state of busy) {
        if (state.timer !== undefined && state.running === undefined) {
          // Run a pending coalesced regeneration now rather than waiting out its window.
          clearTimeout(state.timer);
          this.drain(state);
        }
      }
      await Promise.all(busy.map((s) => s.running));
    }
  }

  /** The latest stored CRL of a scope, or undefined if none was published (yet). */
  async latest(issuerId: string, shard: number): Promise<PublishedCrl | undefined> {
    const key = scopeKey(issuerId, shard);
    const info = await this.store.latestInfo(issuerId, shard);
    if (info === undefined) return undefined;
    const cached = this.cache.get(key);
    if (cached !== undefined && cached.number === info.number) return cached;
    // One read per scope and number however many requests arrive for it at once: a million-entry CRL is
    // ~50 MB, and each concurrent read would hold its own copy.
    const loadKey = `${key}#${info.number}`;
    let loading = this.loading.get(loadKey);
    if (loading === undefined) {
      loading = this.store.latest(issuerId, shard).then((crl) => {
        if (crl !== undefined) this.remember(crl);
        return crl;
      });
      this.loading.set(loadKey, loading);
      void loading.finally(() => this.loading.delete(loadKey)).catch(() => undefined);
    }
    return loading;
  }

  /** The root's CRL (/crl/root.crl). */
  async rootCrl(): Promise<PublishedCrl | undefined> {
    const rootId = await this.findRootId();
    return rootId === undefined ? undefined : this.latest(rootId, 0);
  }

  /**
   * One scheduled pass (the `crl.regenerate` job, every checkEveryMs on one instance at a time): regenerates
   * the scopes that are due and logs what it published.
   */
  regenerateDue(): Promise<CrlInfo[]> {
    if (this.stopped) return Promise.resolve([]);
    const pass = this.generateDue().then((generated) => {
      if (generated.length > 0) this.logger.info({ crls: generated.map(describe) }, 'CRLs regenerated');
      return generated;
    });
    // stop() waits for it, so the database is not closed under a generation.
    const tracked = pass.then(() => undefined, () => undefined);
    this.passes.add(tracked);
    void tracked.finally(() => this.passes.delete(tracked));
    return pass;
  }

  /** Stops pending regenerations; waits for the one running, if any. */
  async stop(): Promise<void> {
    this.stopped = true;
    // Nobody waits on a publisher that stopped: the next start's catch-up publishes what is missing.
    for (const state of this.scopes.values()) for (const resolve of state.waiters.splice(0)) resolve();
    for (const state of this.scopes.values()) {
      if (state.timer !== undefined) clearTimeout(state.timer);
      state.timer = undefined;
    }
    await Promise.all([...this.scopes.values()].map((s) => s.running));
    await Promise.all(this.passes);
  }

  // ---------------------------------------------------------------------------------------------------

  /** `known`: the shard comes from a stored certificate (onRevoked), so it exists even if not configured now. */
  private async generateNow(issuerId: string, shard: number, known: boolean): Promise<CrlInfo> {
    const issuer = (await this.deps.issuers.list()).find((i) => i.id === issuerId);
    if (issuer === undefined) throw new CaError('notFound', `no issuer ${issuerId}`);
    if (!Number.isSafeInteger(shard) || shard < 0) throw new CaError('malformed', `CRL shard ${shard} is not a non-negative integer`);
    if (issuer.role === 'root' && shard !== 0) throw new CaError('malformed', 'the root has one CRL, shard 0');
    if (issuer.role === 'intermediate' && !known && shard >= this.deps.settings.shards && !(await this.store.publishedShards(issuerId)).includes(shard)) {
      throw new CaError('notFound', `issuer ${issuerId} has no CRL shard ${shard} (CHANCERY_CRL_SHARDS is ${this.deps.settings.shards})`);
    }
    const signer = await this.deps.signers.forIssuer(issuerId);

    // Time carries whole seconds: truncate so the stored dates (Last-Modified, scheduling) equal the DER's.
    const now = this.clock.now();
    const thisUpdate = new Date(Math.floor(now.getTime() / SECOND) * SECOND);
    const nextUpdate = new Date(thisUpdate.getTime() + this.nextUpdateMs);
    const notAfterAfter = new Date(thisUpdate.getTime() - this.expiredRetentionMs);
    // The builder sizes its buffer from the expected count: the previous CRL's, or a count the first time.
    const expectedEntries = (await this.store.latestInfo(issuerId, shard))?.entries ?? (await this.store.countRevoked(issuerId, shard, { notAfterAfter }));
    // The cached DER of this scope is about to be superseded: let it go before the new one is built, so a
    // process holds one large CRL of a scope at a time, not two.
    this.cache.delete(scopeKey(issuerId, shard));
    const number = await this.store.nextCrlNumber(issuerId, shard);
    const entries = this.store.revokedEntries(issuerId, shard, { notAfterAfter });
    const signed = await signer.build(
      {
        number,
        thisUpdate,
        nextUpdate,
        // The URL the certificates of this scope carry in their CRL DP (core/url-scheme.ts builds both).
        distributionPoint: issuer.role === 'root' ? undefined : this.deps.urls.crl(issuerId, shard),
        scope: issuer.role === 'root' ? 'caCerts' : 'userCerts',
        expectedEntries,
      },
      entries,
    );
    const crl: PublishedCrl = { issuerId, shard, number, thisUpdate, nextUpdate, entries: signed.entries, der: signed.der };
    const stored = await this.store.save(crl, this.clock.now());
    // Not stored: a higher number is already there (another instance was faster), which is the latest.
    if (stored) this.remember(crl);
    return { issuerId, shard, number, thisUpdate, nextUpdate, entries: signed.entries };
  }

  private remember(crl: PublishedCrl): void {
    const key = scopeKey(crl.issuerId, crl.shard);
    const cached = this.cache.get(key);
    if (cached === undefined || cached.number < crl.number) this.cache.set(key, crl);
  }

  private async allScopes(): Promise<{ issuerId: string; shard: number }[]> {
    const scopes: { issuerId: string; shard: number }[] = [];
    const issuers = await this.deps.issuers.list();
    // The root's CRL first: every chain check needs it, and it is small.
    for (const issuer of [...issuers.filter((i) => i.role === 'root'), ...issuers.filter((i) => i.role !== 'root')]) {
      if (issuer.role === 'root') {
        scopes.push({ issuerId: issuer.id, shard: 0 });
        continue;
      }
      // Shards published before stay published after CHANCERY_CRL_SHARDS shrinks: certificates point at them.
      const shards = new Set<number>(await this.store.publishedShards(issuer.id));
      for (let shard = 0; shard < this.deps.settings.shards; shard += 1) shards.add(shard);
      for (const shard of [...shards].sort((a, b) => a - b)) scopes.push({ issuerId: issuer.id, shard });
    }
    return scopes;
  }

  private async findRootId(): Promise<string | undefined> {
    // The root is never replaced (runCeremony refuses), so its id can be kept once found.
    this.rootId ??= (await this.deps.issuers.list()).find((i) => i.role === 'root')?.id;
    return this.rootId;
  }

  /** One generation at a time in this process: a million-entry CRL is built in bounded memory only once. */
  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const result = this.queue.then(fn);
    this.queue = result.catch(() => undefined);
    return result;
  }

  private schedule(state: ScopeState, delayMs: number): void {
    state.timer = setTimeout(() => this.drain(state), delayMs);
    state.timer.unref();
  }

  private drain(state: ScopeState): void {
    state.timer = undefined;
    state.running = (async () => {
      while (state.dirty && !this.stopped) {
        state.dirty = false;
        // These revocations committed before this generation draws its number, so it lists them.
        const waiting = state.waiters.splice(0);
        try {
          const info = await this.exclusive(() => this.generateNow(state.issuerId, state.shard, true));
          state.failures = 0;
          this.logger.info({ crl: describe(info) }, 'CRL regenerated after revocation');
          for (const resolve of waiting) resolve();
        } catch (error) {
          state.waiters.unshift(...waiting);
          state.dirty = true;
          state.failures += 1;
          this.logger.error({ err: error, issuerId: state.issuerId, shard: state.shard, failures: state.failures }, 'CRL regeneration after revocation failed; retrying');
          return;
        }
      }
    })().finally(() => {
      state.running = undefined;
      if (state.dirty && !this.stopped) {
        this.schedule(state, state.failures === 0 ? this.coalesceMs : Math.min(this.coalesceMs * 2 ** state.failures, MAX_RETRY_MS));
      }
    });
  }
}

function scopeKey(issuerId: string, shard: number): string {
  return `${issuerId}/${shard}`;
}

function describe(info: CrlInfo): object {
  return { issuerId: info.issuerId, shard: info.shard, number: info.number, entries: info.entries, nextUpdate: info.nextUpdate.toISOString() };
}
