import type { Account } from './account.js';
import type { Actor, AuditDraft } from './audit.js';
import type { IssuedCertificate, IssuerRecord } from './certificate.js';
import { CaError } from './errors.js';
import type { Group, Labels } from './group.js';
import type { Identifier } from './identifier.js';
import type { AuthorizationStatus, OrderStatus } from './order.js';
import type { AdminActor, AdminToken, OperatorBinding } from './principal.js';
import type { Webhook } from './webhook.js';

/**
 * The typed domain events (DESIGN.md rule 5): what changed, raised by the service that changed it. Side
 * effects that follow a change — re-signing an OCSP response, regenerating a CRL, dropping caches, metrics,
 * notifications, the audit entry — hang off these, wired once in compose.ts, so no caller can forget one.
 */
export type DomainEvent =
  | {
      type: 'certificate.issued';
      certificate: IssuedCertificate;
      /** What became of its first OCSP response during issuance (see FirstOcspOutcome). */
      firstOcsp: FirstOcspOutcome;
      /** Who asked for it (DESIGN.md rule 8): the ordering account, an operator, or Chancery itself. */
      actor: Actor;
    }
  | { type: 'certificate.revoked'; certificate: IssuedCertificate; actor: Actor }
  /** Incidents and bulk revocation (core/incident-events.ts). */
  | import('./incident-events.js').IncidentEvent
  /** `actor`: who acted on the account; the account itself (over ACME) when absent. */
  | { type: 'account.created'; account: Account; actor?: Actor }
  | { type: 'account.changed'; account: Account; change: 'contacts' | 'key'; actor?: Actor }
  | { type: 'account.deactivated'; account: Account; actor?: Actor }
  | { type: 'eab.used'; kid: string; accountId: string; group?: string }
  /** An unused EAB credential revoked through the admin API: it will bind no account. */
  | { type: 'eab.revoked'; kid: string; group?: string; actor: AdminActor }
  /** An admin API token created (never the token itself: it is shown once, to its creator only). */
  | { type: 'admin.token.created'; token: AdminToken; actor: AdminActor }
  | { type: 'admin.token.revoked'; token: AdminToken; actor: AdminActor }
  /** An operator's client-certificate key bound to a role, or the binding removed. */
  | { type: 'admin.operator.bound'; binding: OperatorBinding; actor: AdminActor }
  | { type: 'admin.operator.unbound'; binding: OperatorBinding; actor: AdminActor }
  /**
   * Failed authentications on the admin API from one source address, aggregated: at most one event per
   * source per minute (after commit: nothing changed): the first failure of a minute is raised at once, the
   * ones that follow within that minute together once it is over. `failures`: how many this event stands
   * for; `reason` the latest one's (never the credential presented).
   */
  | { type: 'admin.auth.failed'; source: string; failures: number; at: Date; reason: AdminAuthFailure }
  | { type: 'eab.created'; kid: string; group?: string; actor: Actor }
  /** A delegated OCSP responder certificate issued to a new key (rotation, RFC 6960 §4.2.2.2). */
  | { type: 'ocsp.responder.issued'; issuerId: string; generation: number; serial: string; keyName: string; notAfter: Date; actor: Actor }
  /** The CA ceremony: a root and its first issuing intermediate recorded (chancery init, or the first start). */
  | { type: 'ca.created'; root: IssuerRecord; intermediate: IssuerRecord; keyStore: string; actor: Actor }
  /** Created (pending or ready), and each status the RA moves it to; readiness that follows from a validation is raised as authorization.changed. */
  | { type: 'order.changed'; orderId: string; accountId: string; status: OrderStatus }
  /** Validated, failed, expired or deactivated; a validation's is raised after commit only (one statement on the pool). */
  | { type: 'authorization.changed'; authorizationId: string; status: AuthorizationStatus }
  /**
   * An authorization created valid without a challenge: its name is pre-approved for the account's group
   * (hosts that cannot answer a challenge). Raised in the transaction that stores it, for the audit log.
   */
  | { type: 'authorization.preapproved'; authorizationId: string; accountId: string; group: string; identifier: Identifier; orderId?: string }
  /** A group created, changed or removed (a policy apply: one event per group, all in one transaction). */
  | { type: 'group.changed'; group: string; change: 'created' | 'updated' | 'removed'; before?: Group; after?: Group; actor: Actor }
  /** A certificate's labels replaced through the admin API (inventory only: the X.509 certificate is unchanged). */
  | { type: 'certificate.labels.changed'; serial: string; group?: string; before: Labels; after: Labels; actor: Actor }
  /** A webhook created (never its secret: shown once, to its creator only) or removed. */
  | { type: 'webhook.created'; webhook: Webhook; actor: Actor }
  | { type: 'webhook.removed'; webhook: Webhook; actor: Actor };

export type DomainEventType = DomainEvent['type'];

/** Why an admin API credential was refused (never the credential itself). */
export type AdminAuthFailure = 'malformed' | 'unknown' | 'mismatch' | 'expired' | 'revoked' | 'unbound-certificate' | 'certificate-not-valid';
export type EventOf<T extends DomainEventType> = Extract<DomainEvent, { type: T }>;

/**
 * What became of a certificate's first OCSP response during its issuance: stored with the certificate;
 * attempted but not signed (left to live signing and the refresher's backfill, like any response that
 * failed); not attempted (the issuance stored through the plain path, so it is still to be signed); or
 * none at all (a noRevAvail certificate, RFC 9608: no OCSP responder answers for it).
 */
export type FirstOcspOutcome = 'stored' | 'unsigned' | 'not-attempted' | 'none';

/** Runs inside the change's transaction; a handler that throws rolls the change back. */
export type CommittingHandler<T extends DomainEventType, Tx> = (event: EventOf<T>, tx: Tx) => Promise<void>;
/** Runs after the change committed; the change stands whatever it does. */
export type CommittedHandler<T extends DomainEventType> = (event: EventOf<T>) => Promise<void> | void;
/** The audit entry a change records (pure: no I/O), or undefined when this one records none. */
export type Recorder<T extends DomainEventType> = (event: EventOf<T>) => AuditDraft | undefined;
/** Appends a change's audit entries on its transaction (the audit log's in-transaction writer). */
export type RecordWriter<Tx> = (tx: Tx, records: readonly AuditDraft[]) => Promise<void>;

/**
 * One event seam, two phases:
 * - `committing`: inside the change's transaction, on its connection (`Tx`), before COMMIT — work that must
 *   commit with the change or not at all (the revoked OCSP response; the audit entry, DESIGN.md rule 8).
 * - `committed`: after COMMIT — caches, CRL regeneration, metrics, notifications.
 * Handlers run in the order they were registered and are awaited one after another, so a service's call
 * returns only once its change's consequences are done (a revocation's CRL is requested before revoke()
 * returns). Registration happens once, in compose.ts.
 */
export class DomainEvents<Tx> {
  // Stored untyped: onCommitting/onCommitted pair each handler with its event type, so the event a handler
  // receives below is always the type it registered for.
  private readonly committingHandlers = new Map<DomainEventType, ((event: DomainEvent, tx: Tx) => Promise<void>)[]>();
  private readonly committedHandlers = new Map<DomainEventType, ((event: DomainEvent) => Promise<void> | void)[]>();
  private readonly recorders = new Map<DomainEventType, ((event: DomainEvent) => AuditDraft | undefined)[]>();

  /**
   * `writeRecords`: how the entries of onRecord are appended inside a change's transaction (the audit log,
   * src/inventory/audit-log.ts). Without it nothing may be recorded.
   */
  constructor(private readonly options: { writeRecords?: RecordWriter<Tx> } = {}) {}

  /**
   * The audit entry a change of this type records (DESIGN.md rule 8: written with the change, in its
   * statement or its transaction, or not at all). A service whose change is one statement may append the
   * entries itself in that statement (`records`, with committing's `recordsWritten`); otherwise committing()
   * appends them first thing inside the transaction.
   */
  onRecord<T extends DomainEventType>(type: T, recorder: Recorder<T>): void {
    if (this.options.writeRecords === undefined) throw new CaError('badConfig', `a recorder for ${type} needs the events' record writer`);
    const list = this.recorders.get(type) ?? [];
    list.push(recorder as unknown as (event: DomainEvent) => AuditDraft | undefined);
    this.recorders.set(type, list);
  }

  /** The audit entries `event` records (empty when none is registered for its type). */
  records(event: DomainEvent): AuditDraft[] {
    const recorders = this.recorders.get(event.type);
    if (recorders === undefined) return [];
    return recorders.map((record) => record(event)).filter((draft): draft is AuditDraft => draft !== undefined);
  }

  onCommitting<T extends DomainEventType>(type: T, handler: CommittingHandler<T, Tx>): void {
    const list = this.committingHandlers.get(type) ?? [];
    list.push(handler as unknown as (event: DomainEvent, tx: Tx) => Promise<void>);
    this.committingHandlers.set(type, list);
  }

  onCommitted<T extends DomainEventType>(type: T, handler: CommittedHandler<T>): void {
    const list = this.committedHandlers.get(type) ?? [];
    list.push(handler as unknown as (event: DomainEvent) => Promise<void> | void);
    this.committedHandlers.set(type, list);
  }

  /**
   * True when something must run inside the transaction of a change of this type (a handler, or an entry
   * to record). A service whose change is otherwise a single statement opens a transaction only then.
   */
  hasCommitting(type: DomainEventType): boolean {
    return this.hasCommittingHandlers(type) || (this.recorders.get(type)?.length ?? 0) > 0;
  }

  /**
   * True when a handler must run inside the transaction, beyond the entries to record: a service that
   * appends those in its change's own statement (an ACME issuance) opens a transaction only then.
   */
  hasCommittingHandlers(type: DomainEventType): boolean {
    return (this.committingHandlers.get(type)?.length ?? 0) > 0;
  }

  /**
   * Call inside the change's transaction, after the change itself: appends the entries it records (unless
   * the change's statement already did: `recordsWritten`), then runs the handlers.
   */
  async committing(event: DomainEvent, tx: Tx, options: { recordsWritten?: boolean } = {}): Promise<void> {
    if (options.recordsWritten !== true) {
      const records = this.records(event);
      if (records.length > 0) await this.options.writeRecords!(tx, records);
    }
    const handlers = this.committingHandlers.get(event.type);
    if (handlers === undefined) return;
    for (const handler of handlers) await handler(event, tx);
  }

  /** Call after the change committed. */
  async committed(event: DomainEvent): Promise<void> {
    const handlers = this.committedHandlers.get(event.type);
    if (handlers === undefined) return;
    for (const handler of handlers) await handler(event);
  }
}
