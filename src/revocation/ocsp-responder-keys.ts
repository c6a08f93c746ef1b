/**
 * Delegated OCSP responders (RFC 6960 §4.2.2.2): one short-lived responder certificate per issuer, issued
 * by the issuer's key to a key of its own in the KeyStore (named ocsp-<issuer>-<generation>), rotated
 * automatically once half of its lifetime has passed. The certificates live in the database, so every
 * instance signs with the newest one (rule 7); the keys are shared through the KeyStore (software keys in
 * the database, or one HSM).
 */
import type { OcspResponderRecord } from '../core/certificate.js';
import type { Clock } from '../core/clock.js';
import { HOUR } from '../core/clock.js';
import { CaError, isCaError } from '../core/errors.js';
import type { KeyAlgorithm, RsaScheme } from '../core/key-algorithm.js';
import type { OcspResponderCertificateFactory } from '../ca/ocsp-responder-certificate.js';
import type { OcspCodec, OcspResponderMaterial } from '../ca/ocsp-response.js';
import type { Signer } from '../keys/signer.js';
import type { Logger } from '../core/logger.js';
import type { DomainEvent, DomainEvents } from '../core/events.js';
import type { Queryable } from '../db/database.js';

/** The slice of the KeyStore responders need (DESIGN.md: revocation asks a KeyStore for OCSP responder keys). */
export interface ResponderKeyStore {
  create(name: string, spec: { algorithm: KeyAlgorithm; rsaScheme?: RsaScheme }): Promise<Signer>;
  load(name: string, options?: { rsaScheme?: RsaScheme }): Promise<Signer | undefined>;
}

/** Implemented by db/ (OcspResponderRepository). */
export interface ResponderStore {
  latest(issuerId: string): Promise<OcspResponderRecord | undefined>;
  /** False when that generation already exists (another instance rotated first). */
  insert(record: OcspResponderRecord): Promise<boolean>;
}

/** An issuing CA whose certificates get OCSP answers: its certificate and its key's Signer. */
export interface ServedIssuer {
  id: string;
  certificateDer: Uint8Array;
  signer: Signer;
}

export interface ResponderSettings {
  /** Lifetime of a responder certificate (config ocsp.responderValidityDays). */
  validityMs: number;
  /** Responder key type; P-256 verifies everywhere and signs fastest. */
  keyAlgorithm?: KeyAlgorithm;
  rsaScheme?: RsaScheme;
  /** notBefore is set this far in the past, for relying parties whose clocks lag. */
  backdateMs?: number;
  /** Organization in the responder's subject. */
  organization?: string;
}


export interface OcspResponderKeysDeps {
  keys: ResponderKeyStore;
  store: ResponderStore;
  certificates: OcspResponderCertificateFactory;
  codec: Pick<OcspCodec, 'prepareResponder'>;
  /** Reserves the responder certificate's serial before it is signed (rule 2; serials are never reused). */
  reserveSerial(serial: string, issuerId: string, at: Date): Promise<void>;
  issuers: readonly ServedIssuer[];
  clock: Clock;
  settings: ResponderSettings;
  logger?: Logger;
  /**
   * Raise `ocsp.responder.issued`, whose audit entry (DESIGN.md rule 8) commits with the responder's record:
   * `transaction` runs the store on one transaction.
   */
  events?: DomainEvents<Queryable>;
  transaction?: <T>(fn: (store: Pick<ResponderStore, 'insert'>, tx: Queryable) => Promise<T>) => Promise<T>;
}

export interface ActiveResponder {
  issuerId: string;
  generation: number;
  keyName: string;
  material: OcspResponderMaterial;
  notBefore: Date;
  notAfter: Date;
}

/**
 * A responder is handed out for signing only while it has at least this long to live, so every response
 * it signs gets a useful validity (nextUpdate is capped at the responder's notAfter).
 */
export const MIN_RESPONDER_REMAINING_MS = HOUR;

export class OcspResponderKeys {
  private readonly active = new Map<string, ActiveResponder>();
  private running: Promise<void> | undefined;

  constructor(private readonly deps: OcspResponderKeysDeps) {
    if (!(deps.settings.validityMs > 2 * MIN_RESPONDER_REMAINING_MS)) {
      throw new CaError('badConfig', 'ocsp.responderValidityDays is too short for responder rotation');
    }
  }

  /**
   * The responder that signs for an issuer now, or undefined when there is none with enough life left
   * (then live answers are tryLater and pre-signed ones keep being served). Synchronous: it runs inside
   * the revocation's transaction, which must not wait on the database or the KeyStore.
   */
  current(issuerId: string): ActiveResponder | undefined {
    const responder = this.active.get(issuerId);
    if (responder === undefined) return undefined;
    const now = this.deps.clock.now().getTime();
    if (now < responder.notBefore.getTime() || responder.notAfter.getTime() - now < MIN_RESPONDER_REMAINING_MS) return undefined;
    return responder;
  }

  /** When the responder of this generation is replaced: half way through its life. */
  static rotateAt(responder: { notBefore: Date; notAfter: Date }): Date {
    return new Date(responder.notBefore.getTime() + (responder.notAfter.getTime() - responder.notBefore.getTime()) / 2);
  }

  /**
   * Brings every issuer's responder up to date: adopts a newer one another instance made, and rotates
   * when the newest is past half its life (or missing, or its key cannot be loaded). Runs at start and on
   * every refresher tick; concurrent calls share one run.
   */
  ensureCurrent(): Promise<void> {
    this.running ??= (async () => {
      try {
        const failures: unknown[] = [];
        for (const issuer of this.deps.issuers) {
          try {
            await this.ensureIssuer(issuer);
          } catch (error) {
            failures.push(error);
            this.deps.logger?.error({ err: error, issuer: issuer.id }, 'OCSP responder rotation failed');
          }
        }
        if (failures.length > 0) throw failures[0];
      } finally {
        this.running = undefined;
      }
    })();
    return this.running;
  }

  private async ensureIssuer(issuer: ServedIssuer): Promise<void> {
    const now = this.deps.clock.now();
    const latest = await this.deps.store.latest(issuer.id);
    const usable = latest !== undefined && (await this.adopt(latest));
    if (!usable || now.getTime() >= OcspResponderKeys.rotateAt(latest).getTime()) {
      await this.rotate(issuer, (latest?.generation ?? 0) + 1, now);
    }
  }

  /** Makes `record` the active responder if it is newer than ours; false when its key is not in the KeyStore. */
  private async adopt(record: OcspResponderRecord): Promise<boolean> {
    const mine = this.active.get(record.issuerId);
    if (mine !== undefined && mine.generation >= record.generation) return true;
    const signer = await this.deps.keys.load(record.keyName, { rsaScheme: this.deps.settings.rsaScheme });
    if (signer === undefined) {
      this.deps.logger?.error({ issuer: record.issuerId, key: record.keyName }, 'OCSP responder key is missing from the key store; rotating');
      return false;
    }
    let material: OcspResponderMaterial;
    try {
      material = this.deps.codec.prepareResponder(signer, record.der);
    } catch (error) {
      // The key under that name is not the certified one (e.g. two HSM clients raced to create it): move on
      // to a new generation instead of signing with a key the certificate does not name.
      this.deps.logger?.error({ err: error, issuer: record.issuerId, key: record.keyName }, 'OCSP responder key does not match its certificate; rotating');
      return false;
    }
    this.active.set(record.issuerId, {
      issuerId: record.issuerId,
      generation: record.generation,
      keyName: record.keyName,
      material,
      notBefore: record.notBefore,
      notAfter: record.notAfter,
    });
    return true;
  }

  /** Stores a new responder, with its audit entry when events are wired; false when that generation exists. */
  private async record(record: OcspResponderRecord): Promise<boolean> {
    const { events, transaction } = this.deps;
    const event: DomainEvent = {
      type: 'ocsp.responder.issued',
      issuerId: record.issuerId,
      generation: record.generation,
      serial: record.serial,
      keyName: record.keyName,
      notAfter: record.notAfter,
      actor: 'system:chancery',
    };
    if (events === undefined || !events.hasCommitting(event.type)) return this.deps.store.insert(record);
    if (transaction === undefined) throw new CaError('badConfig', 'OcspResponderKeys needs a transaction to record ocsp.responder.issued with the responder');
    const inserted = await transaction(async (store, tx) => {
      const stored = await store.insert(record);
      if (stored) await events.committing(event, tx);
      return stored;
    });
    if (inserted) await events.committed(event);
    return inserted;
  }

  private async rotate(issuer: ServedIssuer, generation: number, now: Date): Promise<void> {
    const { settings } = this.deps;
    const keyName = `ocsp-${issuer.id}-${generation}`;
    const algorithm = settings.keyAlgorithm ?? 'ecdsa-p256';
    let signer: Signer;
    try {
      signer = await this.deps.keys.create(keyName, { algorithm, rsaScheme: settings.rsaScheme });
    } catch (error) {
      // Another instance is rotating the same generation, or an earlier attempt died after creating the
      // key: certify the existing key rather than skip a generation.
      if (!isCaError(error, 'conflict')) throw error;
      const existing = await this.deps.keys.load(keyName, { rsaScheme: settings.rsaScheme });
      if (existing === undefined) throw error;
      signer = existing;
    }
    const notBefore = new Date(now.getTime() - (settings.backdateMs ?? HOUR));
    const prepared = this.deps.certificates.prepare({
      issuer,
      responderPublicKey: signer.publicKey,
      subject: {
        ...(settings.organization ? { organization: settings.organization } : {}),
        commonName: `OCSP Responder ${issuer.id} ${generation}`,
      },
      notBefore,
      notAfter: new Date(now.getTime() + settings.validityMs),
    });
    await this.deps.reserveSerial(prepared.serial, issuer.id, now);
    const der = await this.deps.certificates.sign(issuer.signer, prepared);
    const record: OcspResponderRecord = {
      issuerId: issuer.id,
      generation,
      keyName,
      serial: prepared.serial,
      der,
      notBefore: prepared.notBefore,
      notAfter: prepared.notAfter,
      createdAt: now,
    };
    if (await this.record(record)) {
      this.deps.logger?.info({ issuer: issuer.id, generation, notAfter: record.notAfter.toISOString() }, 'OCSP responder certificate issued');
      await this.adopt(record);
      return;
    }
    const winner = await this.deps.store.latest(issuer.id);
    if (winner === undefined || !(await this.adopt(winner))) {
      throw new CaError('caState', `OCSP responder generation ${generation} of ${issuer.id} exists but cannot be used`);
    }
  }
}
