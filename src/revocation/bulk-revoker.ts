import type { Actor } from '../core/audit.js';
import type { BulkRevokedCertificate, BulkRun, CrlScope, LeftOutCertificate } from '../core/bulk-revocation.js';
import type { RevocationReason } from '../core/certificate.js';
import type { Clock } from '../core/clock.js';
import { CaError } from '../core/errors.js';
import type { DomainEvent, DomainEvents } from '../core/events.js';
import { newId } from '../core/ids.js';
import type { JobContext } from '../core/jobs.js';
import { silentLogger, type Logger } from '../core/logger.js';

/**
 * Bulk revocation: `revokeMany(selection, reason, actor)` for the many certificates of an incident (or any
 * selection), built so that a million revocations cost what they must and no more, and survive a crash.
 *
 * - Planned first: the selection's serials are written down with the run in one transaction (short-lived
 *   noRevAvail certificates flagged: RFC 9608 publishes no revocation for them, so they are left out and
 *   reported with their expiry; serials that name nothing counted). Nothing is revoked yet.
 * - Revoked in chunks, in bytewise serial order, by the `revocation.bulk` job on one instance at a time (the
 *   lease primitive, src/core/jobs.ts). One chunk is one transaction: the compare-and-set valid -> revoked of
 *   its certificates, their OCSP responses re-signed and stored in one statement with one NOTIFY for the
 *   whole chunk (the `certificates.revoked` committing handlers), its audit entry, and the run's cursor. So
 *   a crash loses at most the chunk in flight, which never committed; the next holder of the job goes on
 *   after the last chunk that did. Nothing is revoked twice (the compare-and-set) and nothing is left out
 *   (the cursor only moves with its chunk).
 * - Fenced: each chunk's transaction first takes the run's row with the job's lease token, and only if no
 *   higher token touched it and it is still at the cursor this instance last saw. An instance paused past
 *   its lease cannot commit a chunk the new holder already did.
 * - After commit, one wait for the other instances' OCSP caches per chunk (not per certificate), and the
 *   CRLs of the touched scopes are regenerated at most every few seconds while the run lasts (BulkCrlSchedule);
 *   once the last chunk is in, every touched scope's CRL is published once more and the run is done.
 */

/**
 * What to revoke: serials, page after page; read once, while the run is planned, on the planning
 * transaction (`tx`: the embedded database serves one connection, which the transaction holds).
 */
export interface BulkSelection<Tx = unknown> {
  /** For people, in the run and its audit entries: `incident payments-key (all affected)`. */
  label: string;
  pages(tx: Tx): AsyncIterable<readonly string[]>;
}

/** A run as stored, with the cursor and the token of whoever last worked on it. */
export interface StoredBulkRun {
  run: BulkRun;
  cursor: string | undefined;
  token: number;
}

/** db/ BulkRevocationRepository, as bulk revocation uses it. */
export interface BulkRevocationStore {
  insertRun(run: Pick<BulkRun, 'id' | 'origin' | 'label' | 'reason' | 'invalidityDate' | 'actor' | 'createdAt'>): Promise<boolean>;
  addItems(runId: string, serials: readonly string[]): Promise<{ added: number; shortLived: number; shortLivedUntil: Date | undefined; unknown: number }>;
  setTotals(runId: string, totals: { total: number; shortLived: number; shortLivedUntil: Date | undefined; unknown: number }): Promise<void>;
  findById(id: string): Promise<StoredBulkRun | undefined>;
  findByOrigin(origin: string): Promise<StoredBulkRun | undefined>;
  pending(limit: number): Promise<StoredBulkRun[]>;
  claimChunk(runId: string, token: number, cursor: string | undefined): Promise<StoredBulkRun | undefined>;
  nextSerials(runId: string, cursor: string | undefined, limit: number): Promise<string[]>;
  candidates(serials: readonly string[]): Promise<{ serial: string; issuerId: string }[]>;
  revoke(serials: readonly string[], at: Date, reason: RevocationReason, invalidityDate: Date | undefined): Promise<BulkRevokedCertificate[]>;
  advance(runId: string, chunk: { cursor: string; revoked: number; skipped: number; scopes: readonly CrlScope[] }): Promise<void>;
  finishRevoking(runId: string, at: Date): Promise<void>;
  markPublished(runId: string, at: Date, token: number): Promise<StoredBulkRun | undefined>;
  leftOut(runId: string, after: string | undefined, limit: number): Promise<LeftOutCertificate[]>;
}

/** Publishes the CRLs of a run's scopes once its last chunk is in (BulkCrlSchedule.publish). */
export interface BulkCrlPublication {
  publish(scopes: readonly CrlScope[]): Promise<void>;
}

export interface BulkRevokerSettings {
  /** Certificates per chunk (one transaction, one OCSP batch, one cache invalidation). */
  chunkSize: number;
}

/**
 * The next chunk of a run, read ahead while the current one is written: the certificates it will revoke
 * (as they are now), with the revocation time, reason and invalidity date it will record. `key` names the
 * chunk as its certificates.revoked event will (`${run id}:${first serial}`).
 */
export interface ChunkAhead {
  key: string;
  certificates: readonly { serial: string; issuerId: string; revokedAt: Date; revocationReason: RevocationReason; invalidityDate?: Date }[];
}

export interface BulkRevokerDeps<Tx> {
  store: Pick<BulkRevocationStore, 'findById' | 'findByOrigin' | 'pending' | 'leftOut' | 'nextSerials' | 'candidates'>;
  /** Runs fn in one transaction with the store on it (DESIGN.md rule 6). */
  transaction<T>(fn: (scope: { tx: Tx; runs: BulkRevocationStore }) => Promise<T>): Promise<T>;
  events: DomainEvents<Tx>;
  clock: Clock;
  crl: BulkCrlPublication;
  settings: BulkRevokerSettings;
  /**
   * Told of each chunk read ahead (compose.ts: the OCSP source signs its revoked responses on the key's batch
   * worker), so that signing the next chunk overlaps writing this one instead of following it.
   */
  readAhead?: (chunk: ChunkAhead) => void;
  logger?: Logger;
}

/** A chunk read ahead: where it starts, the time it will revoke at, and when its read-ahead is done. */
interface Ahead {
  cursor: string;
  at: Date;
  ready: Promise<void>;
}

/** How long a chunk waits for its read-ahead before it goes on without (it then signs in its transaction). */
const READ_AHEAD_WAIT_MS = 5_000;

/** The job every instance registers; one holder at a time revokes. */
export const BULK_REVOCATION_JOB = 'revocation.bulk';
/** How often the job looks for runs (a new run also asks for a pass at once: `kick`). */
export const BULK_REVOCATION_INTERVAL_MS = 2_000;
/** Serials read per statement while a run is planned. */
const PLAN_PAGE = 5_000;

export class BulkRevoker<Tx> {
  private readonly logger: Logger;
  /** Asks the job for a pass now (compose.ts: jobs.runNow); without it the next interval does. */
  private kick: (() => void) | undefined;
  private readonly waiters = new Map<string, (() => void)[]>();

  constructor(private readonly deps: BulkRevokerDeps<Tx>) {
    if (!Number.isInteger(deps.settings.chunkSize) || deps.settings.chunkSize < 1) {
      throw new CaError('badConfig', `bulk revocation chunk size must be a positive integer, got ${deps.settings.chunkSize}`);
    }
    this.logger = deps.logger ?? silentLogger;
  }

  /** How a new run asks for the job at once (set once, by the composition root). */
  onPlanned(kick: () => void): void {
    this.kick = kick;
  }

  /**
   * Plans the revocation of `selection` (see the top of this file) and asks for it to start; returns the run
   * as planned. `origin`: a name unique to what asked (an incident's); planning an origin again returns the
   * run already planned, unchanged. `invalidityDate` (RFC 5280 §5.3.2) may not be after now.
   */
  async revokeMany(selection: BulkSelection<Tx>, reason: RevocationReason, actor: Actor, options: { origin?: string; invalidityDate?: Date } = {}): Promise<BulkRun> {
    const now = this.deps.clock.now();
    if (options.invalidityDate !== undefined && options.invalidityDate.getTime() > now.getTime()) {
      throw new CaError('malformed', `invalidity date ${options.invalidityDate.toISOString()} is after the revocation time ${now.toISOString()}`);
    }
    const id = `rv_${newId(12)}`;
    const origin = options.origin ?? `run:${id}`;
    const planned = await this.deps.transaction(async ({ tx, runs }) => {
      const created = await runs.insertRun({ id, origin, label: selection.label, reason, actor, createdAt: now, ...(options.invalidityDate ? { invalidityDate: options.invalidityDate } : {}) });
      if (!created) return undefined;
      const totals = { total: 0, shortLived: 0, shortLivedUntil: undefined as Date | undefined, unknown: 0 };
      for await (const page of selection.pages(tx)) {
        for (let at = 0; at < page.length; at += PLAN_PAGE) {
          const added = await runs.addItems(id, page.slice(at, at + PLAN_PAGE));
          totals.total += added.added;
          totals.shortLived += added.shortLived;
          totals.unknown += added.unknown;
          if (added.shortLivedUntil !== undefined && (totals.shortLivedUntil === undefined || added.shortLivedUntil > totals.shortLivedUntil)) {
            totals.shortLivedUntil = added.shortLivedUntil;
          }
        }
      }
      await runs.setTotals(id, totals);
      const stored = await runs.findById(id);
      const event: DomainEvent = { type: 'revocation.bulk.planned', run: stored!.run };
      await this.deps.events.committing(event, tx);
      return { run: stored!.run, event };
    });
    if (planned === undefined) {
      const existing = await this.deps.store.findByOrigin(origin);
      if (existing === undefined) throw new CaError('serverInternal', `bulk revocation ${origin} was planned and is gone`);
      return existing.run;
    }
    await this.deps.events.committed(planned.event);
    this.logger.info({ run: planned.run.id, origin, total: planned.run.total, shortLived: planned.run.shortLived, unknown: planned.run.unknown }, 'bulk revocation planned');
    this.kick?.();
    return planned.run;
  }

  async find(id: string): Promise<BulkRun | undefined> {
    return (await this.deps.store.findById(id))?.run;
  }

  async findByOrigin(origin: string): Promise<BulkRun | undefined> {
    return (await this.deps.store.findByOrigin(origin))?.run;
  }

  /** The short-lived certificates a run left out, with their expiry (keyset by serial). */
  leftOut(runId: string, after: string | undefined, limit: number): Promise<LeftOutCertificate[]> {
    return this.deps.store.leftOut(runId, after, limit);
  }

  /**
   * Resolves once this process has seen the run done (tests and one-shot commands; a run finished by
   * another instance is seen by polling `find`).
   */
  async settled(runId: string): Promise<BulkRun | undefined> {
    const current = await this.find(runId);
    if (current === undefined || current.state === 'done') return current;
    await new Promise<void>((resolve) => this.waiters.set(runId, [...(this.waiters.get(runId) ?? []), resolve]));
    return this.find(runId);
  }

  /**
   * One pass of the job (BULK_REVOCATION_JOB): every run not done, oldest first, to its end — chunk after
   * chunk while the lease holds (`signal`), then the CRLs. Returns how many runs it finished.
   */
  async runPending(context: Pick<JobContext, 'signal' | 'token'>): Promise<number> {
    let finished = 0;
    for (const stored of await this.deps.store.pending(100)) {
      context.signal.throwIfAborted();
      let current: StoredBulkRun | undefined = stored;
      if (current.run.state === 'running') current = await this.revokeChunks(current, context);
      if (current?.run.state === 'publishing') {
        await this.publish(current, context.token);
        finished += 1;
      }
    }
    return finished;
  }

  private async revokeChunks(stored: StoredBulkRun, context: Pick<JobContext, 'signal' | 'token'>): Promise<StoredBulkRun | undefined> {
    let cursor = stored.cursor;
    let ahead: Ahead | undefined;
    for (;;) {
      context.signal.throwIfAborted();
      const outcome = await this.chunk(stored.run, context.token, cursor, ahead);
      if (outcome.kind === 'lost') {
        this.logger.warn({ run: stored.run.id, token: context.token }, 'bulk revocation moved on elsewhere (a newer lease holder); stopping here');
        return undefined;
      }
      if (outcome.kind === 'done') return this.deps.store.findById(stored.run.id);
      cursor = outcome.cursor;
      ahead = outcome.ahead;
    }
  }

  /**
   * One chunk in one transaction (see the top of this file). With a readAhead listener, as soon as the
   * chunk's serials are known the next chunk is read (on another connection) and announced, so its OCSP
   * responses are signed while this one is written, and returned with the outcome; `ahead`, the read-ahead
   * of this chunk, gives the time it revokes at (the time its responses were signed with) when it starts
   * where this chunk does.
   */
  private async chunk(
    run: BulkRun,
    token: number,
    cursor: string | undefined,
    ahead: Ahead | undefined,
  ): Promise<{ kind: 'lost' } | { kind: 'done' } | { kind: 'more'; cursor: string; ahead: Ahead | undefined }> {
    const { events, clock, settings } = this.deps;
    const runId = run.id;
    const prepared = ahead !== undefined && ahead.cursor === cursor ? ahead : undefined;
    if (prepared !== undefined) await Promise.race([prepared.ready, new Promise((resolve) => setTimeout(resolve, READ_AHEAD_WAIT_MS).unref())]);
    const at = prepared?.at ?? clock.now();
    let next: Ahead | undefined;
    const result = await this.deps.transaction(async ({ tx, runs }) => {
      const claimed = await runs.claimChunk(runId, token, cursor);
      if (claimed === undefined) return { kind: 'lost' as const };
      const serials = await runs.nextSerials(runId, cursor, settings.chunkSize);
      if (serials.length === 0) {
        await runs.finishRevoking(runId, at);
        return { kind: 'done' as const };
      }
      if (this.deps.readAhead !== undefined && serials.length === settings.chunkSize) next = this.readAhead(claimed.run, serials.at(-1)!);
      const { run } = claimed;
      const revoked = await runs.revoke(serials, at, run.reason, run.invalidityDate);
      const done = new Set(revoked.map((c) => c.serial));
      const skipped = serials.filter((serial) => !done.has(serial));
      const first = serials[0]!;
      const last = serials.at(-1)!;
      const event: DomainEvent = {
        type: 'certificates.revoked',
        run: { id: run.id, origin: run.origin, label: run.label, reason: run.reason, actor: run.actor },
        chunk: run.chunks + 1,
        certificates: revoked,
        skipped,
        first,
        last,
        actor: run.actor,
      };
      await events.committing(event, tx);
      await runs.advance(runId, { cursor: last, revoked: revoked.length, skipped: skipped.length, scopes: scopesOf(revoked) });
      return { kind: 'more' as const, cursor: last, event };
    });
    if (result.kind === 'more') {
      await events.committed(result.event);
      return { kind: 'more', cursor: result.cursor, ahead: next };
    }
    return result;
  }

  /** Reads the chunk after `cursor` and announces it (readAhead); never fails (the chunk then signs itself). */
  private readAhead(run: BulkRun, cursor: string): Ahead {
    const at = this.deps.clock.now();
    const ready = (async () => {
      const serials = await this.deps.store.nextSerials(run.id, cursor, this.deps.settings.chunkSize);
      if (serials.length === 0) return;
      const candidates = await this.deps.store.candidates(serials);
      this.deps.readAhead?.({
        key: `${run.id}:${serials[0]!}`,
        certificates: candidates.map((c) => ({
          ...c,
          revokedAt: at,
          revocationReason: run.reason,
          ...(run.invalidityDate === undefined ? {} : { invalidityDate: run.invalidityDate }),
        })),
      });
    })().catch((error: unknown) => this.logger.warn({ err: error, run: run.id }, 'reading the next bulk revocation chunk ahead failed; it signs in its own transaction'));
    return { cursor, at, ready };
  }

  /** The last step: every touched scope's CRL published, then the run is done (with its audit entry). */
  private async publish(stored: StoredBulkRun, token: number): Promise<void> {
    await this.deps.crl.publish(stored.run.scopes);
    const at = this.deps.clock.now();
    const done = await this.deps.transaction(async ({ tx, runs }) => {
      const published = await runs.markPublished(stored.run.id, at, token);
      if (published === undefined) return undefined;
      const event: DomainEvent = { type: 'revocation.bulk.finished', run: published.run };
      await this.deps.events.committing(event, tx);
      return { run: published.run, event };
    });
    if (done === undefined) return;
    await this.deps.events.committed(done.event);
    const { run } = done;
    this.logger.info({ run: run.id, origin: run.origin, revoked: run.revoked, skipped: run.skipped, shortLived: run.shortLived, chunks: run.chunks }, 'bulk revocation done');
    for (const resolve of this.waiters.get(run.id) ?? []) resolve();
    this.waiters.delete(run.id);
  }
}

/** The distinct CRL scopes of revoked certificates. */
export function scopesOf(certificates: readonly { issuerId: string; crlShard: number }[]): CrlScope[] {
  const seen = new Map<string, CrlScope>();
  for (const c of certificates) seen.set(`${c.issuerId}/${c.crlShard}`, { issuerId: c.issuerId, shard: c.crlShard });
  return [...seen.values()];
}
