import type { KeyObject } from 'node:crypto';
import { accountActor, type Actor, type AuditDraft } from '../core/audit.js';
import type { IssuedCertificate } from '../core/certificate.js';
import type { Clock } from '../core/clock.js';
import { CaError } from '../core/errors.js';
import type { Identifier } from '../core/identifier.js';
import type { DomainEvent, DomainEvents, FirstOcspOutcome } from '../core/events.js';
import type { CertificateProfile } from '../core/profile.js';
import type { Queryable } from '../db/database.js';
import { checkIdentifiers } from '../policy/identifier-policy.js';
import { checkGroupKey, type GroupRules } from '../policy/group-policy.js';
import { checkPublicKey, keyFactsOf, type KeyPolicy } from '../policy/key-policy.js';
import type { Labels } from '../core/group.js';
import { validityWindow } from '../policy/validity.js';
import type { FirstOcspResponse } from './acme-stores.js';

/** The slice of ca/ issuance needs: build + check a TBS, then sign + verify exactly that TBS. */
export interface LeafSigner {
  readonly issuerId: string;
  prepare(
    request: {
      publicKey: Uint8Array;
      keyFamily: 'rsa' | 'ec';
      identifiers: readonly Identifier[];
      notBefore: Date;
      notAfter: Date;
      profile: CertificateProfile;
    },
    now: Date,
  ): PreparedTbs;
  sign(prepared: PreparedTbs): Promise<Buffer>;
}

export interface PreparedTbs {
  issuerId: string;
  serial: string;
  crlShard: number;
  notBefore: Date;
  notAfter: Date;
  identifiers: Identifier[];
  spkiSha256: string;
  tbs: Buffer;
}

export interface ParsedRequest {
  publicKey: Buffer;
  /** publicKey already imported by the parser, if it did (saves importing it again for the key policy). */
  key?: KeyObject;
  identifiers: Identifier[];
}

export interface IssuanceDeps {
  signer: LeafSigner;
  parseCsr(der: Uint8Array): Promise<ParsedRequest>;
  /** Serial reservation and the final record; the composition root backs them with the database. */
  store: IssuanceStore;
  /** The same store inside one transaction, for the in-transaction phase of `certificate.issued`. */
  transaction<T>(fn: (tx: Queryable, store: Pick<IssuanceStore, 'insertCertificate'>) => Promise<T>): Promise<T>;
  events: DomainEvents<Queryable>;
  /**
   * Signs a certificate's first OCSP response between signing the certificate and storing it, so that an
   * issuance that stores through `persist` stores both in one statement. Must not throw; undefined when it
   * could not sign (the event then says 'unsigned'). Without it nothing is pre-signed.
   */
  firstOcsp?: (certificate: IssuedCertificate) => Promise<FirstOcspResponse | undefined>;
  clock: Clock;
  profile: CertificateProfile;
  keyPolicy?: KeyPolicy;
  /**
   * Subject keys incidents blocked (ra/incident-directory.ts, in memory): a CSR presenting one is refused
   * with badPublicKey naming the incident, before anything is reserved or signed.
   */
  blockedKeys?: { refuseBlocked(spki: Uint8Array, use: 'csr', who: { accountId?: string; group?: string }): Promise<void> };
}

export interface IssuanceStore {
  reserveSerial(serial: string, issuerId: string, at: Date): Promise<void>;
  insertCertificate(certificate: IssuedCertificate): Promise<void>;
}

export type { FirstOcspOutcome };

export interface IssueOptions {
  /** When set (an ACME order), the CSR must name exactly these identifiers (RFC 8555 §7.4). */
  expectedIdentifiers?: readonly Identifier[];
  notBefore?: Date;
  notAfter?: Date;
  /** The profile to issue under (the order's); the issuance's default profile when absent. */
  profile?: CertificateProfile;
  /** Keys the subscriber key must differ from (the ACME account key, RFC 8555 §11.1). */
  forbiddenKeys?: readonly Uint8Array[];
  /**
   * Who asked for it: recorded with the certificate (revocation and inventory read it), with the group and
   * labels of the inventory record (never written into the X.509 certificate).
   */
  metadata?: { accountId?: string; orderId?: string; replacesSerial?: string; group?: string; labels?: Labels };
  /** The ordering account's group policy: the certificate key must also be within its key limits. */
  groupRules?: GroupRules;
  /**
   * Who acts (DESIGN.md rule 8), for the audit entry: by default the account of metadata.accountId, and
   * Chancery itself when there is none.
   */
  actor?: Actor;
  /**
   * Reserves the serial instead of store.reserveSerial — e.g. together with the ACME order's claim, in one
   * statement (one round trip fewer per issuance). It must have committed the reservation when it resolves (rule 2), and throw to stop
   * the issuance before anything is signed.
   */
  reserveSerial?: (serial: string, issuerId: string, at: Date) => Promise<void>;
  /**
   * Stores the signed certificate instead of store.insertCertificate — e.g. together with the order's
   * transition to valid (DESIGN.md rule 6) — and, when firstOcsp signed one, the certificate's first OCSP
   * response with it. `committing`, when given, must run inside the transaction that stores the
   * certificate, after it (the in-transaction phase of `certificate.issued`); it is given only when a
   * handler is registered for that phase, so the usual path stays one statement. `records` are the audit
   * entries the issuance records when there is no such handler: stored by that same statement (DESIGN.md
   * rule 8), so that recording them costs no transaction.
   */
  persist?: (
    certificate: IssuedCertificate,
    ocsp?: FirstOcspResponse,
    committing?: (tx: Queryable) => Promise<void>,
    records?: readonly AuditDraft[],
  ) => Promise<void>;
}

/**
 * Issues end-entity certificates in the order DESIGN.md rule 2 requires: check the request (key policy,
 * identifier policy), build and check the TBS, persist the serial, sign that TBS, verify, then store.
 * Nothing is stored for a request that fails a check; a serial, once reserved, is never reused even if
 * signing then fails.
 */
export class CertificateIssuance {
  constructor(private readonly deps: IssuanceDeps) {}

  async issueFromCsr(csrDer: Uint8Array, options: IssueOptions = {}): Promise<IssuedCertificate> {
    const parsed = await this.deps.parseCsr(csrDer);
    if (options.expectedIdentifiers) assertSameIdentifiers(parsed.identifiers, options.expectedIdentifiers);
    return this.issueForKey(parsed.publicKey, parsed.identifiers, options, parsed.key);
  }

  async issueForKey(
    publicKey: Uint8Array,
    identifiers: readonly Identifier[],
    options: IssueOptions = {},
    imported?: KeyObject,
  ): Promise<IssuedCertificate> {
    const key = checkPublicKey(publicKey, this.deps.keyPolicy, imported);
    if (options.groupRules) checkGroupKey(options.groupRules, keyFactsOf(key.key));
    for (const forbidden of options.forbiddenKeys ?? []) {
      if (Buffer.from(forbidden).equals(Buffer.from(publicKey))) {
        throw new CaError('badCSR', 'the certificate key must differ from the account key (RFC 8555 §11.1)');
      }
    }
    if (this.deps.blockedKeys !== undefined) {
      const { accountId, group } = options.metadata ?? {};
      await this.deps.blockedKeys.refuseBlocked(publicKey, 'csr', { ...(accountId === undefined ? {} : { accountId }), ...(group === undefined ? {} : { group }) });
    }
    const profile = options.profile ?? this.deps.profile;
    const checked = checkIdentifiers(identifiers, profile.maxIdentifiers);
    const now = this.deps.clock.now();
    const { notBefore, notAfter } = validityWindow(profile, options, now);
    const prepared = this.deps.signer.prepare({ publicKey, keyFamily: key.family, identifiers: checked, notBefore, notAfter, profile }, now);
    if (options.reserveSerial) await options.reserveSerial(prepared.serial, prepared.issuerId, now);
    else await this.deps.store.reserveSerial(prepared.serial, prepared.issuerId, now);
    const der = await this.deps.signer.sign(prepared);
    const certificate: IssuedCertificate = {
      serial: prepared.serial,
      issuerId: prepared.issuerId,
      crlShard: prepared.crlShard,
      der,
      identifiers: prepared.identifiers,
      spkiSha256: prepared.spkiSha256,
      notBefore: prepared.notBefore,
      notAfter: prepared.notAfter,
      status: 'valid',
      createdAt: now,
      profile: profile.name,
      ...(profile.noRevAvail ? { noRevAvail: true } : {}),
      ...options.metadata,
    };
    const { events, firstOcsp } = this.deps;
    const actor = options.actor ?? (certificate.accountId === undefined ? 'system:chancery' : accountActor(certificate.accountId));
    // RFC 9608: no OCSP responder answers for a noRevAvail certificate, so it gets no response at all.
    let outcome: FirstOcspOutcome = profile.noRevAvail ? 'none' : 'not-attempted';
    let event: DomainEvent = { type: 'certificate.issued', certificate, firstOcsp: outcome, actor };
    if (options.persist) {
      const ocsp = firstOcsp && !profile.noRevAvail ? await firstOcsp(certificate) : undefined;
      if (firstOcsp && !profile.noRevAvail) outcome = ocsp ? 'stored' : 'unsigned';
      event = { ...event, firstOcsp: outcome };
      const raised = event;
      // Only the audit entry to write: it goes into the certificate's own statement (no transaction).
      if (events.hasCommittingHandlers('certificate.issued')) await options.persist(certificate, ocsp, (tx) => events.committing(raised, tx));
      else await options.persist(certificate, ocsp, undefined, events.records(raised));
    } else if (events.hasCommitting('certificate.issued')) {
      const raised = event;
      await this.deps.transaction(async (tx, store) => {
        await store.insertCertificate(certificate);
        await events.committing(raised, tx);
      });
    } else {
      await this.deps.store.insertCertificate(certificate);
    }
    await events.committed(event);
    return certificate;
  }
}

function assertSameIdentifiers(got: readonly Identifier[], expected: readonly Identifier[]): void {
  const key = (id: Identifier): string => `${id.type}:${id.value.toLowerCase()}`;
  const want = new Set(expected.map(key));
  const have = new Set(got.map(key));
  const missing = [...want].filter((k) => !have.has(k));
  const extra = [...have].filter((k) => !want.has(k));
  if (missing.length || extra.length) {
    const parts = [extra.length ? `not in the order: ${extra.join(', ')}` : '', missing.length ? `missing: ${missing.join(', ')}` : ''];
    throw new CaError('badCSR', `CSR names differ from the order's identifiers (${parts.filter(Boolean).join('; ')})`);
  }
}
