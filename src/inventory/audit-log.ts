import type { AuditCheckpoint, AuditDraft, AuditEntry, AuditFilter } from '../core/audit.js';
import type { Clock } from '../core/clock.js';
import { SECOND } from '../core/clock.js';
import { CaError, isCaError } from '../core/errors.js';
import type { KeyAlgorithm } from '../core/key-algorithm.js';
import { silentLogger, type Logger } from '../core/logger.js';
import type { Queryable } from '../db/database.js';
import type { Signer } from '../keys/signer.js';
import { checkpointPayload, entryHash, ZERO_HASH } from './audit-chain.js';
import { verifyAuditLog, type AuditVerification } from './audit-verify.js';

/**
 * The audit log (DESIGN.md rule 8): who did what, when, provably unaltered — also against someone who can
 * write the database.
 *
 * Write path. A change's entry is appended *unhashed* in the change's own statement (an ACME issuance:
 * CertificateRepository.insertForOrder) or transaction (`write`, the events' record writer), so there is
 * no change without its entry and no entry without its change, and writers never wait on each other: a
 * hash chain built at write time would need the previous entry's hash, one locked chain head that every
 * issuance queues on. Each entry also lands in audit_unsealed in that same statement.
 *
 * Sealing. The one instance holding the `audit.seal` lease (core/jobs.ts) takes the committed entries
 * waiting in audit_unsealed, in id order, and links them into the chain: position n gets
 * SHA-256(hash(n - 1) || the entry's canonical form) (audit-chain.ts). Only committed rows are visible to
 * it, and a row is taken only by its position being written: an entry whose transaction commits after
 * later ids were sealed is simply sealed at the next position, never skipped. Two sealers (a holder that
 * lost its lease) cannot both write a position: the chain's keys refuse the second, whose statement then
 * wrote nothing.
 *
 * Checkpoints. Every `checkpointMs` or `checkpointEntries` entries the sealer signs the head (position,
 * hash, time) with a dedicated key created in the KeyStore (non-extractable on an HSM), stores the
 * checkpoint, appends it to a file outside the database and logs it. Whoever rewrites the chain must
 * re-sign every later checkpoint (impossible without the key) and rewrite every copy kept elsewhere.
 *
 * Verification (`verify`, audit-verify.ts) walks the chain and the checkpoints and compares the latest
 * checkpoint kept outside the database with the database. The limit: with software keys the audit key is
 * in the database, encrypted under the installation passphrase — whoever holds both can re-sign a rewritten
 * chain, and only copies kept elsewhere (the file, the log, an --expect-head an auditor kept) still tell.
 * With an HSM the key never leaves the token.
 */

/** The audit tables (implemented by db/ AuditRepository). */
export interface AuditStore {
  append(drafts: readonly AuditDraft[]): Promise<void>;
  head(): Promise<{ seq: number; hash: string } | undefined>;
  unsealed(limit: number): Promise<AuditEntry[]>;
  countUnsealed(): Promise<number>;
  /** Throws CaError('conflict') when another sealer wrote any of these positions or entries first. */
  seal(links: readonly { seq: number; entryId: number; prevHash: string; hash: string }[]): Promise<void>;
  chain(afterSeq: number, limit: number): Promise<{ seq: number; entryId: number; prevHash: string; hash: string; entry: AuditEntry | undefined }[]>;
  unlinked(afterId: number, limit: number): Promise<number[]>;
  latestCheckpoint(): Promise<AuditCheckpoint | undefined>;
  checkpoints(afterSeq: number, limit: number): Promise<AuditCheckpoint[]>;
  insertCheckpoint(checkpoint: AuditCheckpoint): Promise<boolean>;
  /**
   * A keyset page on (at, id), oldest first unless newestFirst: `cursor` is a previous page's nextCursor
   * (opaque; CaError('malformed') if not one, or one of the other order).
   */
  query(filter: AuditFilter, cursor: string | undefined, limit: number, options?: { newestFirst?: boolean }): Promise<AuditPage>;
}

/** The slice of the KeyStore the audit key needs (DESIGN.md rule 1: touched only through its Signer). */
export interface AuditKeyStore {
  readonly backend: 'software' | 'pkcs11';
  create(name: string, spec: { algorithm: KeyAlgorithm }): Promise<Signer>;
  load(name: string): Promise<Signer | undefined>;
}

/** A checkpoint as kept outside the database, with the public key that signed it (for offline checks). */
export interface MirroredCheckpoint extends AuditCheckpoint {
  /** SubjectPublicKeyInfo DER of the audit key, base64. */
  publicKey: string;
}

/** Where checkpoints are copied outside the database (audit-checkpoint-file.ts). */
export interface CheckpointMirror {
  /** Where it is, for messages. */
  readonly location: string;
  append(checkpoint: MirroredCheckpoint): Promise<void>;
  /** The last checkpoint written, or undefined when there is none (or no file). */
  latest(): Promise<MirroredCheckpoint | undefined>;
}

export interface AuditSettings {
  /** A checkpoint at least this often while entries arrive (audit.checkpointSeconds). */
  checkpointMs: number;
  /** ... and at least every this many entries (audit.checkpointEntries). */
  checkpointEntries: number;
  /** Entries sealed per statement. */
  sealBatch?: number;
}

export interface AuditLogDeps {
  store: AuditStore;
  /** The store on a change's transaction, for the in-transaction writer. */
  storeOn: (tx: Queryable) => Pick<AuditStore, 'append'>;
  keys: AuditKeyStore;
  mirror: CheckpointMirror;
  clock: Clock;
  settings: AuditSettings;
  logger?: Logger;
}

/** The KeyStore name of the key that signs checkpoints. */
export const AUDIT_KEY_NAME = 'audit-checkpoint';
const AUDIT_KEY_ALGORITHM: KeyAlgorithm = 'ecdsa-p256';
/** How often the lease holder seals: the longest an entry stays outside the chain while all is well. */
export const AUDIT_SEAL_INTERVAL_MS = SECOND;
const DEFAULT_SEAL_BATCH = 1000;
const EXPORT_PAGE = 1000;
/** The most entries one query page returns. */
export const AUDIT_MAX_PAGE = 1000;

export interface AuditPage {
  entries: AuditEntry[];
  /** Pass back to get the next page; absent on the last one. */
  nextCursor?: string;
}

export class AuditLog {
  private readonly logger: Logger;
  private signer: Promise<Signer> | undefined;

  constructor(private readonly deps: AuditLogDeps) {
    const { checkpointMs, checkpointEntries } = deps.settings;
    if (!(checkpointMs > 0) || !(checkpointEntries >= 1)) throw new CaError('badConfig', 'audit checkpoints need a positive interval and entry count');
    this.logger = deps.logger ?? silentLogger;
  }

  /**
   * The in-transaction writer (DomainEvents' record writer): appends entries on the change's transaction,
   * so a failure here rolls the change back.
   */
  write(tx: Queryable, drafts: readonly AuditDraft[]): Promise<void> {
    return this.deps.storeOn(tx).append(drafts);
  }

  /**
   * One pass of the `audit.seal` job: links every committed entry waiting into the chain, in id order, then
   * signs a checkpoint if one is due. Safe to repeat, and to race (see the top of this file).
   */
  async seal(signal?: AbortSignal): Promise<{ sealed: number; checkpoint?: AuditCheckpoint }> {
    const { store } = this.deps;
    const batch = this.deps.settings.sealBatch ?? DEFAULT_SEAL_BATCH;
    // The audit key before the first link: its creation is itself an entry, sealed (and covered by the
    // checkpoint) in this same pass.
    if (this.signer === undefined && (await store.unsealed(1)).length > 0) await this.auditKey();
    let sealed = 0;
    while (signal?.aborted !== true) {
      // The head first, then the waiting entries: an entry sealed by another sealer after this read is gone
      // from audit_unsealed too, or its position conflicts and nothing is written.
      const head = await store.head();
      const waiting = await store.unsealed(batch);
      if (waiting.length === 0) break;
      let prevHash = head?.hash ?? ZERO_HASH;
      let seq = head?.seq ?? 0;
      const links = waiting.map((entry) => {
        seq += 1;
        const hash = entryHash(prevHash, seq, entry);
        const link = { seq, entryId: entry.id, prevHash, hash };
        prevHash = hash;
        return link;
      });
      await store.seal(links);
      sealed += links.length;
      if (waiting.length < batch) break;
    }
    const checkpoint = signal?.aborted === true ? undefined : await this.checkpointIfDue();
    return { sealed, ...(checkpoint ? { checkpoint } : {}) };
  }

  /** Signs the head when checkpointMs have passed or checkpointEntries were sealed since the last checkpoint. */
  private async checkpointIfDue(): Promise<AuditCheckpoint | undefined> {
    const head = await this.deps.store.head();
    if (head === undefined) return undefined;
    const last = await this.deps.store.latestCheckpoint();
    const now = this.deps.clock.now();
    if (last !== undefined) {
      if (head.seq <= last.seq) return undefined;
      const due = head.seq - last.seq >= this.deps.settings.checkpointEntries || now.getTime() - last.at.getTime() >= this.deps.settings.checkpointMs;
      if (!due) return undefined;
    }
    return this.sign(head, now);
  }

  /** Signs and records a checkpoint of the current head now, whatever is due (tests, `close`). */
  async checkpoint(): Promise<AuditCheckpoint | undefined> {
    const head = await this.deps.store.head();
    if (head === undefined) return undefined;
    const last = await this.deps.store.latestCheckpoint();
    if (last !== undefined && last.seq >= head.seq) return last;
    return this.sign(head, this.deps.clock.now());
  }

  private async sign(head: { seq: number; hash: string }, at: Date): Promise<AuditCheckpoint | undefined> {
    const signer = await this.auditKey();
    const signature = Buffer.from(await signer.sign(checkpointPayload({ ...head, at }))).toString('hex');
    const checkpoint: AuditCheckpoint = { seq: head.seq, hash: head.hash, at, keyName: signer.name, signature };
    // The database first: a copy outside it of a checkpoint the database never got would be a false alarm.
    if (!(await this.deps.store.insertCheckpoint(checkpoint))) return undefined;
    const mirrored: MirroredCheckpoint = { ...checkpoint, publicKey: Buffer.from(signer.publicKey).toString('base64') };
    try {
      await this.deps.mirror.append(mirrored);
    } catch (error) {
      // The checkpoint stands (signed, in the database and the log); the next one is copied again.
      this.logger.error({ err: error, file: this.deps.mirror.location }, 'audit checkpoint could not be copied outside the database');
    }
    this.logger.info({ auditCheckpoint: { seq: checkpoint.seq, hash: checkpoint.hash, at: at.toISOString(), keyName: checkpoint.keyName, signature: checkpoint.signature } }, 'audit checkpoint');
    return checkpoint;
  }

  /**
   * The audit key: loaded, or created on first use (by whichever instance gets there first; the other
   * loads it). Its creation is itself an entry.
   */
  private auditKey(): Promise<Signer> {
    this.signer ??= (async () => {
      const { keys } = this.deps;
      const existing = await keys.load(AUDIT_KEY_NAME);
      if (existing) return existing;
      try {
        const created = await keys.create(AUDIT_KEY_NAME, { algorithm: AUDIT_KEY_ALGORITHM });
        await this.deps.store.append([
          {
            at: this.deps.clock.now(),
            actor: 'system:chancery',
            action: 'audit-key.create',
            subject: `key:${AUDIT_KEY_NAME}`,
            outcome: 'ok',
            details: { keyStore: keys.backend, algorithm: AUDIT_KEY_ALGORITHM, publicKey: Buffer.from(created.publicKey).toString('base64') },
          },
        ]);
        this.logger.info({ keyName: AUDIT_KEY_NAME, keyStore: keys.backend }, 'audit checkpoint key created');
        return created;
      } catch (error) {
        if (!isCaError(error, 'conflict')) throw error;
        const raced = await keys.load(AUDIT_KEY_NAME);
        if (raced === undefined) throw error;
        return raced;
      }
    })();
    this.signer.catch(() => (this.signer = undefined));
    return this.signer;
  }

  /**
   * Checks the whole log (audit-verify.ts): the chain, every checkpoint's signature, and the latest
   * checkpoint kept outside the database (`expected`, or the mirror's) against the database.
   */
  async verify(options: { expected?: { checkpoint: MirroredCheckpoint | undefined; source: string } } = {}): Promise<AuditVerification> {
    const expected = options.expected ?? { checkpoint: await this.deps.mirror.latest(), source: this.deps.mirror.location };
    return verifyAuditLog({ store: this.deps.store, key: await this.deps.keys.load(AUDIT_KEY_NAME), expected });
  }

  /**
   * One page of entries matching `filter`, in time order (oldest first, or newest first), ties in id order
   * (the admin API's list and the CLI's export). `cursor` is the previous page's nextCursor; `limit` 1 to
   * AUDIT_MAX_PAGE (default 100). A group administrator passes `filter.groups` (its groups): entries of no
   * group (the CA's own operations) are then not among them.
   */
  async query(filter: AuditFilter, options: { cursor?: string; limit?: number; newestFirst?: boolean } = {}): Promise<AuditPage> {
    const limit = options.limit ?? 100;
    if (!Number.isSafeInteger(limit) || limit < 1 || limit > AUDIT_MAX_PAGE) throw new CaError('malformed', `limit must be 1-${AUDIT_MAX_PAGE}`);
    if (filter.from !== undefined && Number.isNaN(filter.from.getTime())) throw new CaError('malformed', 'from is not a time');
    if (filter.to !== undefined && Number.isNaN(filter.to.getTime())) throw new CaError('malformed', 'to is not a time');
    return this.deps.store.query(filter, options.cursor, limit, { newestFirst: options.newestFirst === true });
  }

  /** Every entry matching `filter`, oldest first, page by page (bounded memory, DESIGN.md rule 9). */
  async *export(filter: AuditFilter): AsyncGenerator<AuditEntry> {
    let cursor: string | undefined;
    do {
      const page = await this.query(filter, { ...(cursor === undefined ? {} : { cursor }), limit: EXPORT_PAGE });
      yield* page.entries;
      cursor = page.nextCursor;
    } while (cursor !== undefined);
  }
}
