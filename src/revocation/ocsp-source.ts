/**
 * The OCSP source (RFC 6960, RFC 5019 lightweight profile): answers one request with pre-signed bytes.
 *
 * - A response is signed when the certificate is issued (onIssued), re-signed inside the revocation's
 *   transaction (beforeRevocationCommit) and refreshed by the background job (OcspRefresher) before half
 *   its validity has passed; all of them are stored in the database, so every instance serves the same
 *   bytes (rule 7) and a request costs no signature.
 * - Each instance keeps an in-memory cache in front of the database. It is safe because every instance
 *   hears every revocation (PostgreSQL LISTEN/NOTIFY on OCSP_CHANNEL, sent in the revocation's
 *   transaction) and because no entry outlives CACHE_TTL_MS; while the LISTEN connection is down nothing is
 *   cached at all. Notifications are asynchronous, so the revoking instance then waits (bounded by
 *   ACK_WAIT_MS) until every live instance has acknowledged dropping its cached answer: when revoke()
 *   returns, no instance serves `good` for that certificate any more. Instances know each other by
 *   heartbeats on the same channel.
 * - Signing happens live only when nothing stored fits: SHA-256 CertIDs (the stored bytes carry the SHA-1
 *   CertID every client must be able to send, RFC 5019 §2.1.1), `unknown` serials (never stored), a row not
 *   yet written or gone stale, and nonce requests when nonces are signed (RFC 8954).
 */
import { createHash } from 'node:crypto';
import type { OcspCertId, OcspRequestParse } from '../ca/ocsp-request.js';
import type { OcspCertStatus, OcspCodec, OcspResponseInput, OcspResponseStatus } from '../ca/ocsp-response.js';
import type { RevocationReason } from '../core/certificate.js';
import { HOUR, type Clock } from '../core/clock.js';
import { CaError, isCaError } from '../core/errors.js';
import type { ActiveResponder } from './ocsp-responder-keys.js';
import type { Logger } from '../core/logger.js';

/**
 * The NOTIFY channel of the OCSP instances. Payloads: `revoked <serial>` (sent in the revocation's
 * transaction), `ack <serial> <instance>` (that instance has dropped its cached answers), `hello <instance>`
 * (heartbeat) and `bye <instance>`.
 */
export const OCSP_CHANNEL = 'chancery_ocsp';

/**
 * Longest time an instance serves an answer from memory without reading the database again (rule 7: an
 * in-process cache must be invalidated by notifications *and* bounded by a short TTL). Bounds the damage of
 * a notification that never arrived, and how long a refreshed response takes to reach every instance.
 */
export const CACHE_TTL_MS = 60_000;
/** Entries kept per instance; the oldest is dropped first. ~1 KB each. */
export const MAX_CACHE_ENTRIES = 200_000;
/** Request spellings remembered (see cachedByRequestKey), and the longest one worth remembering. */
const MAX_REQUEST_KEYS = 50_000;
const MAX_REQUEST_KEY_LENGTH = 512;
/** nextUpdate of an `unknown` answer: the serial may not be ours, or not yet (RFC 6960 §2.2). */
export const UNKNOWN_VALIDITY_MS = HOUR;
/** Concurrent database reads + live signatures; beyond it answer tryLater (RFC 6960 §2.3) instead of queueing. */
export const MAX_LIVE = 128;
/** Longest time revoke() waits for the other instances to acknowledge a revocation; then it logs who did not. */
export const ACK_WAIT_MS = 2_000;
/** Heartbeat period of an instance, and how long one stays a member without one (a crashed instance drops out). */
export const HEARTBEAT_MS = 10_000;
export const MEMBER_TTL_MS = 3 * HEARTBEAT_MS + 5_000;
/** RFC 8954 §2.1: Nonce ::= OCTET STRING (SIZE(1..32)). */
const NONCE_MIN = 1;
const NONCE_MAX = 32;

export type OcspNonceMode = 'ignore' | 'sign';

/** What the source hands to HTTP: the DER plus, for cacheable answers, what RFC 5019 §6.2 headers need. */
export interface OcspReply {
  status: OcspResponseStatus;
  der: Buffer;
  /** Present only on answers that HTTP caches may keep (not on errors, not on nonce answers). */
  cache?: {
    thisUpdate: Date;
    nextUpdate: Date;
    /** RFC 7231 HTTP-dates, formatted once. */
    lastModified: string;
    expires: string;
    /** Strong ETag: a hash of the response bytes (RFC 5019 §6.2). */
    etag: string;
  };
}

/** A certificate's status facts (IssuedCertificate satisfies it). */
export interface CertificateFacts {
  serial: string;
  issuerId: string;
  status: 'valid' | 'revoked';
  revokedAt?: Date;
  revocationReason?: RevocationReason;
  /** RFC 5280 §5.3.2; carried as a singleExtension of a revoked response, as in the CRL entry. */
  invalidityDate?: Date;
  /** RFC 9608 noRevAvail: no revocation status is published for it, so this responder does not answer. */
  noRevAvail?: boolean;
}

export interface StoredResponse {
  serial: string;
  issuerId: string;
  status: 'good' | 'revoked';
  der?: Buffer;
  thisUpdate: Date;
  nextUpdate: Date;
  refreshAfter: Date;
  responderGeneration?: number;
  updatedAt: Date;
}

/** Implemented by db/ (OcspResponseRepository); see its put() for the guarded write. */
export interface OcspResponseStore {
  find(serial: string): Promise<StoredResponse | undefined>;
  put(record: StoredResponse): Promise<boolean>;
  findCertificate(serial: string): Promise<CertificateFacts | undefined>;
}

/** A bulk revocation chunk's transaction: every response stored in one statement, one NOTIFY. */
export interface OcspBulkScope {
  putMany(records: readonly StoredResponse[]): Promise<unknown>;
  notify(payload: string): Promise<void>;
}

/** The revocation's transaction, as the beforeCommit hook sees it. */
export interface OcspTransactionScope {
  store: Pick<OcspResponseStore, 'put'>;
  /** NOTIFY OCSP_CHANNEL on the same transaction: heard by every instance when, and only if, it commits. */
  notify(payload: string): Promise<void>;
}


export interface OcspSourceSettings {
  /** Validity of a signed response, thisUpdate to nextUpdate (config ocsp.validityHours). */
  validityMs: number;
  /** config ocsp.nonce: `ignore` answers from the cache; `sign` signs nonce requests live and echoes the nonce. */
  nonce: OcspNonceMode;
}

/** This instance on OCSP_CHANNEL: its id and a NOTIFY outside any transaction. */
export interface OcspInstance {
  id: string;
  announce(payload: string): Promise<void>;
}

export interface OcspSourceDeps {
  /** Needed to acknowledge revocations and to wait for acknowledgements; without it (a CLI run) neither happens. */
  instance?: OcspInstance;
  codec: Pick<OcspCodec, 'parseOcspRequest' | 'issuerCertIdHashes' | 'signOcspResponse' | 'signOcspResponses' | 'ocspErrorResponse' | 'serialNumberOctets'>;
  store: OcspResponseStore;
  responders: { current(issuerId: string): ActiveResponder | undefined };
  /** The issuing CAs answered for; a CertID naming any other issuer is `unauthorized`. */
  issuers: readonly { id: string; certificateDer: Uint8Array }[];
  clock: Clock;
  settings: OcspSourceSettings;
  logger?: Logger;
}

interface Issuer {
  id: string;
  hashes: ReturnType<OcspCodec['issuerCertIdHashes']>;
}

interface CacheEntry {
  reply: OcspReply;
  expiresAt: number;
}

interface Signed {
  der: Buffer;
  thisUpdate: Date;
  nextUpdate: Date;
  generation: number;
}

const ALGORITHMS = ['sha1', 'sha256'] as const;

/** Chunks of bulk revocations signed ahead and not yet committed, at most (one is the usual). */
const SIGNED_AHEAD_KEPT = 4;

/** `certificates` by issuer, each issuer's in the order given. */
function byIssuer(certificates: readonly CertificateFacts[]): Map<string, CertificateFacts[]> {
  const groups = new Map<string, CertificateFacts[]>();
  for (const certificate of certificates) {
    const group = groups.get(certificate.issuerId);
    if (group === undefined) groups.set(certificate.issuerId, [certificate]);
    else group.push(certificate);
  }
  return groups;
}

/** What a revoked response signed ahead must agree on with the certificate it is stored for. */
function factsKey(certificate: CertificateFacts): string {
  return `${certificate.issuerId}|${certificate.revokedAt?.getTime() ?? ''}|${certificate.revocationReason ?? ''}|${certificate.invalidityDate?.getTime() ?? ''}`;
}

export class OcspSource {
  private readonly signedAhead = new Map<string, Promise<Map<string, { facts: string; signed: Signed }>>>();
  private readonly issuersByHash = new Map<string, Issuer>();
  private readonly issuersById = new Map<string, Issuer>();
  private readonly errors = new Map<OcspResponseStatus, OcspReply>();
  private readonly cache = new Map<string, CacheEntry>();
  /** Exact request bytes (as the caller spells them, e.g. a GET path) -> cache key. Pure, so never stale. */
  private readonly requestKeys = new Map<string, string>();
  private readonly inflight = new Map<string, Promise<OcspReply>>();
  private liveSignatures = 0;
  /** Bumped on every invalidation: a lookup that started before one must not fill the cache. */
  private epoch = 0;
  /** False until LISTEN is up, and whenever it is down: then nothing is cached (rule 7). */
  private listening = false;
  /** Instances heard from (heartbeat, ack), by id: when last heard (Clock ms). */
  private readonly members = new Map<string, number>();
  /** Acknowledgements per revoked serial, kept for the few that arrive before revoke() starts waiting. */
  private readonly acks = new Map<string, Set<string>>();
  private readonly ackWaiters = new Map<string, () => void>();
  private heartbeat: NodeJS.Timeout | undefined;

  constructor(private readonly deps: OcspSourceDeps) {
    if (!(deps.settings.validityMs > 0)) throw new CaError('badConfig', 'ocsp.validityHours must be positive');
    for (const issuer of deps.issuers) {
      const entry: Issuer = { id: issuer.id, hashes: deps.codec.issuerCertIdHashes(issuer.certificateDer) };
      this.issuersById.set(issuer.id, entry);
      for (const algorithm of ALGORITHMS) {
        const { nameHash, keyHash } = entry.hashes[algorithm];
        this.issuersByHash.set(`${algorithm}:${nameHash.toString('hex')}:${keyHash.toString('hex')}`, entry);
      }
    }
  }

  // ---- answering ---------------------------------------------------------------------------------------

  /**
   * The hot path of a repeated request (nginx stapling asks the same GET over and over): the answer for a
   * request seen before, found by `requestKey` alone — no base64, no DER parsing — or undefined when it
   * must go through respond(). `requestKey` must determine the request bytes (the raw GET path does).
   */
  cachedByRequestKey(requestKey: string): OcspReply | undefined {
    const key = this.requestKeys.get(requestKey);
    if (key === undefined) return undefined;
    const hit = this.cache.get(key);
    return hit !== undefined && hit.expiresAt > this.deps.clock.now().getTime() ? hit.reply : undefined;
  }

  /** Answers one DER OCSPRequest. Never throws: failures are OCSP error statuses. */
  async respond(requestDer: Uint8Array, requestKey?: string): Promise<OcspReply> {
    const parsed: OcspRequestParse = this.deps.codec.parseOcspRequest(requestDer);
    if (!parsed.ok) return this.error(parsed.status);
    const { certId } = parsed;
    const issuer = this.issuersByHash.get(
      `${certId.hashAlgorithm}:${certId.issuerNameHash.toString('hex')}:${certId.issuerKeyHash.toString('hex')}`,
    );
    // RFC 5019 §2.2.3 / RFC 6960 §2.3: a CA we do not answer for.
    if (issuer === undefined) return this.error('unauthorized');
    if (parsed.nonce !== undefined && this.deps.settings.nonce === 'sign') {
      // RFC 8954 §2.1: a server that supports nonces MUST reject one of 0 or more than 32 octets.
      if (parsed.nonce.length < NONCE_MIN || parsed.nonce.length > NONCE_MAX) return this.error('malformedRequest');
      return this.signWithNonce(issuer, certId, parsed.nonce.extnValue);
    }
    // With nonces ignored (the default) the nonce is simply not echoed: RFC 5019 §2.2.1 / RFC 6960 §4.4.1
    // let a responder ignore it, and the cached answer serves.
    const key = cacheKey(certId.serial, certId.hashAlgorithm, issuer.id);
    // A request with a nonce is never sent twice; only nonce-less ones (stapling) are worth remembering.
    if (requestKey !== undefined && parsed.nonce === undefined && requestKey.length <= MAX_REQUEST_KEY_LENGTH && !this.requestKeys.has(requestKey)) {
      if (this.requestKeys.size >= MAX_REQUEST_KEYS) this.requestKeys.delete(this.requestKeys.keys().next().value!);
      this.requestKeys.set(requestKey, key);
    }
    const hit = this.cache.get(key);
    if (hit !== undefined && hit.expiresAt > this.deps.clock.now().getTime()) return hit.reply;
    return this.load(key, issuer, certId);
  }

  private load(key: string, issuer: Issuer, certId: OcspCertId): Promise<OcspReply> {
    const pending = this.inflight.get(key);
    if (pending !== undefined) return pending;
    if (this.inflight.size >= MAX_LIVE) return Promise.resolve(this.error('tryLater'));
    const epoch = this.epoch;
    const promise = this.lookup(issuer, certId)
      .then((entry) => {
        if (epoch === this.epoch && this.listening) this.remember(key, entry);
        return entry.reply;
      })
      .catch((error: unknown) => this.failure(error, certId.serial))
      .finally(() => {
        if (this.inflight.get(key) === promise) this.inflight.delete(key);
      });
    this.inflight.set(key, promise);
    return promise;
  }

  private async lookup(issuer: Issuer, certId: OcspCertId): Promise<CacheEntry> {
    const now = this.deps.clock.now();
    if (certId.hashAlgorithm === 'sha1') {
      const row = await this.deps.store.find(certId.serial);
      if (row !== undefined && row.der !== undefined && row.issuerId === issuer.id && row.nextUpdate.getTime() > now.getTime()) {
        return this.entry(row.der, row.thisUpdate, row.nextUpdate, now);
      }
    }
    // Nothing stored fits: sign from the certificate itself (the source of truth).
    const facts = await this.deps.store.findCertificate(certId.serial);
    const canonical = this.certId(issuer, certId.hashAlgorithm, certId.serial);
    if (facts === undefined || facts.issuerId !== issuer.id) {
      // Never stored (0004_ocsp.sql): unknown serials are unbounded.
      const nextUpdate = new Date(now.getTime() + UNKNOWN_VALIDITY_MS);
      const signed = await this.sign(issuer.id, { kind: 'unknown' }, { ...canonical, serialNumber: certId.serialNumber }, now, nextUpdate);
      return this.entry(signed.der, signed.thisUpdate, signed.nextUpdate, now);
    }
    // RFC 9608 §2 / RFC 6960 §2.3: a noRevAvail certificate has no revocation status to give; `unauthorized`
    // says this responder cannot answer for it (cached like any answer: the flag never changes).
    if (facts.noRevAvail) return { reply: this.error('unauthorized'), expiresAt: now.getTime() + CACHE_TTL_MS };
    const signed = await this.sign(issuer.id, statusOf(facts), canonical, now);
    if (certId.hashAlgorithm === 'sha1') {
      // Fill the row (a certificate from before OCSP, or an issuance hook that did not run); a failure
      // here still answers.
      await this.deps.store.put(this.record(facts, signed, now)).catch((error: unknown) => {
        this.deps.logger?.warn({ err: error, serial: facts.serial }, 'storing a live-signed OCSP response failed');
      });
    }
    return this.entry(signed.der, signed.thisUpdate, signed.nextUpdate, now);
  }

  /** RFC 8954: a fresh signature over the current status with the request's nonce echoed. Never cached. */
  private async signWithNonce(issuer: Issuer, certId: OcspCertId, nonce: Buffer): Promise<OcspReply> {
    if (this.liveSignatures >= MAX_LIVE) return this.error('tryLater');
    this.liveSignatures += 1;
    try {
      const now = this.deps.clock.now();
      const facts = await this.deps.store.findCertificate(certId.serial);
      if (facts?.noRevAvail && facts.issuerId === issuer.id) return this.error('unauthorized');
      const known = facts !== undefined && facts.issuerId === issuer.id;
      const signed = await this.sign(
        issuer.id,
        known ? statusOf(facts) : { kind: 'unknown' },
        // Echo the client's CertID (hash algorithm, serial octets) so it matches what it asked.
        { ...this.certId(issuer, certId.hashAlgorithm, certId.serial), serialNumber: certId.serialNumber },
        now,
        known ? undefined : new Date(now.getTime() + UNKNOWN_VALIDITY_MS),
        nonce,
      );
      return { status: 'successful', der: signed.der };
    } catch (error) {
      return this.failure(error, certId.serial);
    } finally {
      this.liveSignatures -= 1;
    }
  }

  // ---- writing -----------------------------------------------------------------------------------------

  /**
   * Pre-signs the `good` response of a certificate that has just been stored. Never throws: the
   * certificate is already issued, and a response that could not be signed now is signed on first request
   * or by the refresher's backfill.
   */
  async onIssued(certificate: CertificateFacts): Promise<void> {
    const record = await this.presign(certificate);
    if (record === undefined) return;
    try {
      await this.deps.store.put(record);
      this.issuedWithResponse(certificate.serial);
    } catch (error) {
      this.deps.logger?.error({ err: error, serial: certificate.serial }, 'storing the OCSP response of a new certificate failed');
    }
  }

  /**
   * Signs the `good` response of a certificate about to be stored, for its issuance to store both in one
   * statement (the caller then calls issuedWithResponse). Never throws: undefined when the issuer is not
   * served here or signing failed (logged); the certificate is issued all the same, and its response is
   * signed on first request or by the refresher's backfill.
   */
  async presign(certificate: CertificateFacts): Promise<StoredResponse | undefined> {
    try {
      const issuer = this.issuersById.get(certificate.issuerId);
      if (issuer === undefined) return undefined;
      const now = this.deps.clock.now();
      const signed = await this.sign(issuer.id, statusOf(certificate), this.certId(issuer, 'sha1', certificate.serial), now);
      return this.record(certificate, signed, now);
    } catch (error) {
      this.deps.logger?.error({ err: error, serial: certificate.serial }, 'pre-signing the OCSP response of a new certificate failed');
      return undefined;
    }
  }

  /** After a certificate and its pre-signed response were stored: drop an `unknown` this instance may have cached. */
  issuedWithResponse(serial: string): void {
    this.forget(serial);
  }

  /**
   * The `certificate.revoked` handler inside the revocation's transaction: re-signs the response as revoked and announces it, both in the
   * revocation's transaction, so the status change, the stored answer and the notification commit
   * together. If signing fails (HSM down, no responder) the revocation still commits, with a row that
   * holds no response: it stops any `good` from being written back, and requests are answered live from
   * the certificate until the refresher fills it in. A database error rolls the revocation back.
   */
  async beforeRevocationCommit(scope: OcspTransactionScope, certificate: CertificateFacts): Promise<void> {
    const issuer = this.issuersById.get(certificate.issuerId);
    const now = this.deps.clock.now();
    let record: StoredResponse;
    try {
      if (issuer === undefined) throw new CaError('caState', `issuer ${certificate.issuerId} is not served by OCSP here`);
      const signed = await this.sign(issuer.id, statusOf(certificate), this.certId(issuer, 'sha1', certificate.serial), now);
      record = this.record(certificate, signed, now);
    } catch (error) {
      this.deps.logger?.error({ err: error, serial: certificate.serial }, 'signing the revoked OCSP response failed; it will be signed on request');
      record = {
        serial: certificate.serial,
        issuerId: certificate.issuerId,
        status: 'revoked',
        thisUpdate: now,
        nextUpdate: now,
        refreshAfter: now,
        updatedAt: now,
      };
    }
    await scope.store.put(record);
    await scope.notify(`revoked ${certificate.serial}`);
  }

  /**
   * The `certificate.revoked` handler after commit: drops this instance's cached answers, then
   * waits until every live instance has acknowledged the revocation (each drops its cache before it acks),
   * at most ACK_WAIT_MS. So when revoke() returns, no instance that is alive serves `good` any more; one that
   * does not answer in time is named in the log (it is partitioned from the database or stalled, and its
   * cache entries run out within CACHE_TTL_MS in any case).
   */
  async afterRevocation(certificate: CertificateFacts): Promise<void> {
    this.invalidate(certificate.serial);
    await this.awaitAcks(certificate.serial);
  }

  /**
   * A bulk revocation's chunk, inside its transaction: re-signs the revoked responses of every certificate
   * of the chunk (one batch per issuer: signBatch), stores them in one statement and announces the chunk
   * with one NOTIFY naming its serial range — one cache invalidation per chunk on every instance, not one
   * per certificate. Responses that cannot be signed are stored without bytes, as in
   * beforeRevocationCommit, and answered live until the refresher fills them in.
   */
  async beforeBulkRevocationCommit(
    scope: OcspBulkScope,
    certificates: readonly CertificateFacts[],
    chunk: { key: string; first: string; last: string; signedAhead?: string },
  ): Promise<void> {
    if (certificates.length === 0) return;
    const now = this.deps.clock.now();
    const ahead = chunk.signedAhead === undefined ? undefined : await this.takeSignedAhead(chunk.signedAhead);
    const records: StoredResponse[] = [];
    const unsigned: CertificateFacts[] = [];
    for (const certificate of certificates) {
      // Signed ahead with the facts it has now (same issuer, same revocation time, reason and invalidity date).
      const early = ahead?.get(certificate.serial);
      if (early !== undefined && early.facts === factsKey(certificate)) records.push(this.record(certificate, early.signed, now));
      else unsigned.push(certificate);
    }
    for (const [issuerId, ofIssuer] of byIssuer(unsigned)) {
      try {
        const signed = await this.signBatch(issuerId, ofIssuer, now);
        ofIssuer.forEach((certificate, i) => records.push(this.record(certificate, signed[i]!, now)));
      } catch (error) {
        this.deps.logger?.error({ err: error, issuerId, failures: ofIssuer.length, first: chunk.first, last: chunk.last }, 'signing revoked OCSP responses failed; they will be signed on request');
        for (const certificate of ofIssuer) {
          records.push({ serial: certificate.serial, issuerId, status: 'revoked', thisUpdate: now, nextUpdate: now, refreshAfter: now, updatedAt: now });
        }
      }
    }
    await scope.putMany(records);
    await scope.notify(`revoked-range ${chunk.first} ${chunk.last} ${chunk.key}`);
  }

  /**
   * A bulk revocation's next chunk, read ahead (BulkRevoker readAhead): its revoked responses signed now, as
   * beforeBulkRevocationCommit would sign them, while the chunk before is written. Kept for that chunk's
   * commit under `key`; at most SIGNED_AHEAD_KEPT chunks are kept, and a failure only means the chunk signs
   * in its own transaction.
   */
  signAhead(key: string, certificates: readonly CertificateFacts[]): void {
    const now = this.deps.clock.now();
    const signing = (async () => {
      const signed = new Map<string, { facts: string; signed: Signed }>();
      for (const [issuerId, ofIssuer] of byIssuer(certificates)) {
        const batch = await this.signBatch(issuerId, ofIssuer, now);
        ofIssuer.forEach((certificate, i) => signed.set(certificate.serial, { facts: factsKey(certificate), signed: batch[i]! }));
      }
      return signed;
    })();
    signing.catch((error: unknown) => this.deps.logger?.warn({ err: error, chunk: key }, 'signing a bulk revocation chunk ahead failed; it signs in its own transaction'));
    this.signedAhead.set(key, signing);
    for (const old of this.signedAhead.keys()) {
      if (this.signedAhead.size <= SIGNED_AHEAD_KEPT) break;
      this.signedAhead.delete(old);
    }
  }

  /** The responses signed ahead for a chunk, once (undefined when there are none or their signing failed). */
  private async takeSignedAhead(key: string): Promise<Map<string, { facts: string; signed: Signed }> | undefined> {
    const signing = this.signedAhead.get(key);
    if (signing === undefined) return undefined;
    this.signedAhead.delete(key);
    return signing.catch(() => undefined);
  }

  /** After a bulk chunk committed: this instance's cache dropped for its range, then one wait for the others' acks. */
  async afterBulkRevocation(chunk: { key: string; first: string; last: string }): Promise<void> {
    this.invalidateRange(chunk.first, chunk.last);
    await this.awaitAcks(chunk.key);
  }

  /**
   * Waits until every live instance has acknowledged `key` (a revoked serial, or a bulk chunk), at most
   * ACK_WAIT_MS; see afterRevocation.
   */
  private async awaitAcks(serial: string): Promise<void> {
    if (!this.listening || this.deps.instance === undefined) return;
    const missing = (): string[] => {
      const acked = this.acks.get(serial) ?? new Set<string>();
      return this.liveMembers().filter((id) => !acked.has(id));
    };
    if (missing().length > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          const silent = missing();
          this.deps.logger?.warn({ serial, instances: silent }, 'OCSP instances did not acknowledge a revocation in time');
          // Not waited for again until heard from again, so a bulk revocation pays this once, not per certificate.
          for (const id of silent) if (id !== this.deps.instance?.id) this.members.delete(id);
          finish();
        }, ACK_WAIT_MS);
        const finish = (): void => {
          clearTimeout(timer);
          this.ackWaiters.delete(serial);
          resolve();
        };
        this.ackWaiters.set(serial, () => {
          if (missing().length === 0) finish();
        });
      });
    }
    this.acks.delete(serial);
  }

  /** Re-signs one response (the refresher). Throws on failure so the row's lease runs out and it is retried. */
  async refresh(facts: CertificateFacts): Promise<boolean> {
    const issuer = this.issuersById.get(facts.issuerId);
    if (issuer === undefined) return false;
    const now = this.deps.clock.now();
    const signed = await this.sign(issuer.id, statusOf(facts), this.certId(issuer, 'sha1', facts.serial), now);
    const written = await this.deps.store.put(this.record(facts, signed, now));
    this.forget(facts.serial);
    return written;
  }

  // ---- notifications -----------------------------------------------------------------------------------

  /** A NOTIFY on OCSP_CHANNEL (see there for the payloads). */
  handleNotification(payload: string): void {
    const [kind = '', first = '', second = ''] = payload.split(' ');
    const now = this.deps.clock.now().getTime();
    switch (kind) {
      case 'revoked': {
        this.invalidate(first);
        const instance = this.deps.instance;
        if (instance !== undefined) {
          instance.announce(`ack ${first} ${instance.id}`).catch((error: unknown) => {
            this.deps.logger?.warn({ err: error, serial: first }, 'acknowledging a revocation failed');
          });
        }
        return;
      }
      case 'revoked-range': {
        // A bulk revocation's chunk: every serial of the run between the two (bytewise) is in it.
        const key = payload.split(' ')[3] ?? '';
        this.invalidateRange(first, second);
        const instance = this.deps.instance;
        if (instance !== undefined) {
          instance.announce(`ack ${key} ${instance.id}`).catch((error: unknown) => {
            this.deps.logger?.warn({ err: error, chunk: key }, 'acknowledging a bulk revocation failed');
          });
        }
        return;
      }
      case 'ack': {
        this.members.set(second, now);
        let acked = this.acks.get(first);
        if (acked === undefined) {
          acked = new Set();
          this.acks.set(first, acked);
          // Acks of revocations nobody here waits for: keep the map small.
          if (this.acks.size > 1024) this.acks.delete(this.acks.keys().next().value!);
        }
        acked.add(second);
        this.ackWaiters.get(first)?.();
        return;
      }
      case 'hello':
        this.members.set(first, now);
        return;
      case 'bye':
        this.members.delete(first);
        for (const waiter of this.ackWaiters.values()) waiter();
        return;
      default:
        // Something newer than this code: drop everything rather than risk a stale answer.
        this.deps.logger?.warn({ payload: payload.slice(0, 100) }, 'unknown OCSP notification; cache dropped');
        this.epoch += 1;
        this.cache.clear();
        this.inflight.clear();
    }
  }

  /**
   * LISTEN state: while it is down notifications may be missed, so nothing may be cached; once it is back
   * this instance says hello, and repeats it every HEARTBEAT_MS so the others wait for its acks.
   */
  setListening(listening: boolean): void {
    this.listening = listening;
    this.epoch += 1;
    this.cache.clear();
    this.inflight.clear();
    const instance = this.deps.instance;
    if (instance === undefined) return;
    if (listening) {
      this.members.set(instance.id, this.deps.clock.now().getTime());
      const hello = (): void => {
        instance.announce(`hello ${instance.id}`).catch((error: unknown) => {
          this.deps.logger?.warn({ err: error }, 'OCSP heartbeat failed');
        });
      };
      hello();
      if (this.heartbeat === undefined) {
        this.heartbeat = setInterval(hello, HEARTBEAT_MS);
        this.heartbeat.unref();
      }
    }
  }

  /** Stops the heartbeat and tells the others not to wait for this instance any more. */
  async stop(): Promise<void> {
    if (this.heartbeat !== undefined) clearInterval(this.heartbeat);
    this.heartbeat = undefined;
    const instance = this.deps.instance;
    if (instance !== undefined && this.listening) await instance.announce(`bye ${instance.id}`).catch(() => undefined);
    this.listening = false;
    this.cache.clear();
  }

  private liveMembers(): string[] {
    const now = this.deps.clock.now().getTime();
    const live: string[] = [];
    for (const [id, seen] of this.members) {
      if (now - seen <= MEMBER_TTL_MS || id === this.deps.instance?.id) live.push(id);
      else this.members.delete(id);
    }
    return live;
  }

  invalidate(serial: string): void {
    this.epoch += 1;
    this.forget(serial);
  }

  /** Drops the cached answers (and lookups in flight) of every serial from `first` to `last`, bytewise. */
  invalidateRange(first: string, last: string): void {
    this.epoch += 1;
    for (const map of [this.cache, this.inflight] as Map<string, unknown>[]) {
      for (const key of map.keys()) {
        const serial = key.slice(0, key.indexOf(':'));
        if (serial >= first && serial <= last) map.delete(key);
      }
    }
  }

  /** Entries cached right now (tests, metrics). */
  get cacheSize(): number {
    return this.cache.size;
  }

  // ---- helpers -----------------------------------------------------------------------------------------

  /** Drops the cached answers of a serial, and in-flight lookups, so later requests read the database afresh. */
  private forget(serial: string): void {
    for (const issuer of this.issuersById.values()) {
      for (const algorithm of ALGORITHMS) {
        const key = cacheKey(serial, algorithm, issuer.id);
        this.cache.delete(key);
        this.inflight.delete(key);
      }
    }
  }

  private remember(key: string, entry: CacheEntry): void {
    this.cache.delete(key);
    if (this.cache.size >= MAX_CACHE_ENTRIES) this.cache.delete(this.cache.keys().next().value!);
    this.cache.set(key, entry);
  }

  private certId(issuer: Issuer, algorithm: OcspCertId['hashAlgorithm'], serial: string): OcspResponseInput['certId'] {
    const { nameHash, keyHash } = issuer.hashes[algorithm];
    return {
      hashAlgorithm: algorithm,
      issuerNameHash: nameHash,
      issuerKeyHash: keyHash,
      serialNumber: this.deps.codec.serialNumberOctets(serial),
    };
  }

  /**
   * Signs with the issuer's current responder. nextUpdate is capped at the responder certificate's
   * notAfter: a client verifies with that certificate and must find it valid for as long as it keeps the
   * response (RFC 6960 §4.2.2.2).
   */
  private async sign(
    issuerId: string,
    status: OcspCertStatus,
    certId: OcspResponseInput['certId'],
    now: Date,
    nextUpdateWanted?: Date,
    nonce?: Buffer,
  ): Promise<Signed> {
    const { responder, thisUpdate, nextUpdate } = this.window(issuerId, now, nextUpdateWanted);
    const der = await this.deps.codec.signOcspResponse(responder.material, {
      certId,
      status,
      thisUpdate,
      nextUpdate,
      producedAt: thisUpdate,
      ...(nonce === undefined ? {} : { nonce }),
    });
    return { der, thisUpdate, nextUpdate, generation: responder.generation };
  }

  /**
   * The issuer's current responder and a response's validity from `now`: thisUpdate in whole seconds (what
   * GeneralizedTime here carries, so the stored times equal the signed ones), nextUpdate `wanted` or the
   * configured validity, capped at the responder certificate's notAfter.
   */
  private window(issuerId: string, now: Date, wanted?: Date): { responder: ActiveResponder; thisUpdate: Date; nextUpdate: Date } {
    const responder = this.deps.responders.current(issuerId);
    if (responder === undefined) throw new CaError('caState', `no usable OCSP responder certificate for issuer ${issuerId}`);
    const thisUpdate = new Date(Math.floor(now.getTime() / 1000) * 1000);
    const nextUpdate = new Date(Math.min(wanted?.getTime() ?? thisUpdate.getTime() + this.deps.settings.validityMs, responder.notAfter.getTime()));
    return { responder, thisUpdate, nextUpdate };
  }

  /**
   * The responses of many certificates of one issuer, as sign() makes each, signed as one batch
   * (ca/ocsp-response.ts signOcspResponses: off the event loop where the key can, so the ACME requests
   * served meanwhile do not wait behind a thousand signatures). Fails as a whole.
   */
  private async signBatch(issuerId: string, certificates: readonly CertificateFacts[], at: Date): Promise<Signed[]> {
    const issuer = this.issuersById.get(issuerId);
    if (issuer === undefined) throw new CaError('caState', `issuer ${issuerId} is not served by OCSP here`);
    const { responder, thisUpdate, nextUpdate } = this.window(issuerId, at);
    const ders = await this.deps.codec.signOcspResponses(
      responder.material,
      certificates.map((certificate) => ({ certId: this.certId(issuer, 'sha1', certificate.serial), status: statusOf(certificate), thisUpdate, nextUpdate, producedAt: thisUpdate })),
    );
    return ders.map((der) => ({ der, thisUpdate, nextUpdate, generation: responder.generation }));
  }

  private record(facts: CertificateFacts, signed: Signed, now: Date): StoredResponse {
    const half = (signed.nextUpdate.getTime() - signed.thisUpdate.getTime()) / 2;
    return {
      serial: facts.serial,
      issuerId: facts.issuerId,
      status: facts.status === 'revoked' ? 'revoked' : 'good',
      der: signed.der,
      thisUpdate: signed.thisUpdate,
      nextUpdate: signed.nextUpdate,
      // RFC 5019 §6.2 practice: re-sign half way, so a cached copy is always well inside its validity.
      refreshAfter: new Date(signed.thisUpdate.getTime() + half),
      responderGeneration: signed.generation,
      updatedAt: now,
    };
  }

  private entry(der: Buffer, thisUpdate: Date, nextUpdate: Date, now: Date): CacheEntry {
    return {
      reply: {
        status: 'successful',
        der,
        cache: {
          thisUpdate,
          nextUpdate,
          lastModified: thisUpdate.toUTCString(),
          expires: nextUpdate.toUTCString(),
          etag: `"${createHash('sha256').update(der).digest('base64url').slice(0, 32)}"`,
        },
      },
      expiresAt: Math.min(now.getTime() + CACHE_TTL_MS, nextUpdate.getTime()),
    };
  }

  private error(status: Exclude<OcspResponseStatus, 'successful'>): OcspReply {
    let reply = this.errors.get(status);
    if (reply === undefined) {
      reply = { status, der: this.deps.codec.ocspErrorResponse(status) };
      this.errors.set(status, reply);
    }
    return reply;
  }

  private failure(error: unknown, serial: string): OcspReply {
    // No usable responder (rotation failing) is temporary; anything else is a fault of ours.
    if (isCaError(error, 'caState')) {
      this.deps.logger?.warn({ err: error, serial }, 'OCSP answer unavailable');
      return this.error('tryLater');
    }
    this.deps.logger?.error({ err: error, serial }, 'OCSP answer failed');
    return this.error('internalError');
  }
}

function cacheKey(serial: string, algorithm: string, issuerId: string): string {
  return `${serial}:${algorithm}:${issuerId}`;
}

function statusOf(facts: CertificateFacts): OcspCertStatus {
  if (facts.status === 'valid') return { kind: 'good' };
  if (facts.revokedAt === undefined) throw new CaError('serverInternal', `revoked certificate ${facts.serial} has no revocation time`);
  return {
    kind: 'revoked',
    revokedAt: facts.revokedAt,
    ...(facts.revocationReason === undefined ? {} : { reason: facts.revocationReason }),
    ...(facts.invalidityDate === undefined ? {} : { invalidityDate: facts.invalidityDate }),
  };
}
