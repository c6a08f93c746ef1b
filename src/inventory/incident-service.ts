import type { Actor } from '../core/audit.js';
import type { BulkRun } from '../core/bulk-revocation.js';
import { REASON_CODES } from '../core/certificate.js';
import type { Clock } from '../core/clock.js';
import { CaError } from '../core/errors.js';
import type { DomainEvent, DomainEvents } from '../core/events.js';
import { newId } from '../core/ids.js';
import type { Incident, IncidentSelection } from '../core/incident.js';
import type { Page } from '../core/page.js';
import type { Queryable } from '../db/database.js';
import type { InventoryStore } from './certificate-inventory.js';
import type { StoreAccess } from './change-with-event.js';
import { parseDeclare, parseIncidentName, parseSelection, type DeclareInput, type ParsedSelection, type SelectionInput } from './incident-input.js';
import { RadiusCounter, countSelection, type BlastRadius, type FactsLookup, type Member, type SelectionCounter } from './incident-selection.js';
import { incidentStatus, type IncidentStatus, type StatusStore } from './incident-status.js';

/** What the incident service needs of the database (db/ IncidentRepository). */
export interface IncidentStore extends StatusStore {
  insert(incident: Incident): Promise<void>;
  findByName(name: string): Promise<Incident | undefined>;
  list(page: { cursor?: string; limit: number }): Promise<Page<Incident>>;
  addMembers(incidentId: string, members: readonly Member[]): Promise<number>;
  /** Records the certificates matching the criteria as the incident's, counted. */
  addSelected(incidentId: string, ...args: Parameters<SelectionCounter>): ReturnType<SelectionCounter>;
  selectionCounts: SelectionCounter;
  blockMemberKeys(incidentId: string): Promise<number>;
  setCounts(incidentId: string, counts: { affected: number; shortLived: number; blockedKeys: number }): Promise<void>;
  close(incidentId: string, at: Date, by: Actor): Promise<Incident | undefined>;
  owners(groups: readonly string[]): Promise<Map<string, string[]>>;
  certificateFacts: FactsLookup;
  certificates(incidentId: string, state: IncidentCertificateState | undefined, now: Date, page: { cursor?: string; limit: number }): Promise<Page<IncidentCertificate>>;
}

/** What became of an incident's certificate: still to be replaced, replaced, revoked, expired; or short-lived. */
export type IncidentCertificateState = 'outstanding' | 'replaced' | 'revoked' | 'expired' | 'short-lived';
export const INCIDENT_CERTIFICATE_STATES: readonly IncidentCertificateState[] = ['outstanding', 'replaced', 'revoked', 'expired', 'short-lived'];

/** A certificate of an incident with what became of it. */
export interface IncidentCertificate extends Member {
  identifiers: string[];
  status: 'valid' | 'revoked';
  revokedAt?: Date;
  replacedBy?: string;
  replacedAt?: Date;
}

/** The runs an incident's revocations made (revocation/ BulkRevoker through db/: origins `incident:<id>:...`). */
export interface IncidentRuns {
  ofIncident(incidentId: string): Promise<BulkRun[]>;
}

/** The incidents and the inventory's search, on one Queryable (the pool, or a declaration's transaction). */
export interface IncidentStores {
  incidents: IncidentStore;
  inventory: Pick<InventoryStore, 'search'>;
}

export interface IncidentServiceDeps {
  access: StoreAccess<IncidentStores>;
  events: DomainEvents<Queryable>;
  clock: Clock;
  /** The groups that exist (a selection naming another is refused). */
  groupNames: () => Promise<string[]>;
  /** The SubjectPublicKeyInfo of a DER certificate (ca/ parses it; compose.ts passes it). */
  spkiOf: (certificateDer: Uint8Array) => Uint8Array;
  runs: IncidentRuns;
  /** renewalInfo's Retry-After (ari.retryAfterSeconds): clients see an incident at their next poll, within this. */
  ariRetryAfterSeconds: number;
  /** Asks the incidents.sweep job for a pass now (revocations due, notifications). */
  kickSweep?: () => void;
}

/** A preview: the blast radius, and what declaring it would mean for renewals. */
export interface IncidentPreview extends BlastRadius {
  ariRetryAfterSeconds: number;
  notes: string[];
}

/**
 * What an operator is told about replacements and renewalInfo, with every preview and declaration:
 * Chancery has no issuance quota or rate limit today, so no replacement order is ever held back by one.
 */
export function incidentNotes(retryAfterSeconds: number): string[] {
  return [
    `ACME clients that read renewalInfo (RFC 9773) see the incident at their next poll: within ari.retryAfterSeconds (${retryAfterSeconds} s) of the declaration`,
    'replacement orders are never held back: Chancery applies no issuance quotas or rate limits',
  ];
}

/** Who an incident's revocations are attributed to: whoever declared it (DESIGN.md rule 8). */
export function incidentOrigin(incident: Pick<Incident, 'id'>, what: string): string {
  return `incident:${incident.id}:${what}`;
}

/** The admin API's view of incidents. */
export type IncidentAdmin = Pick<IncidentService, 'preview' | 'declare' | 'get' | 'list' | 'status' | 'close' | 'certificates'>;

/**
 * Incidents (see core/incident.ts): preview a selection's blast radius (nothing changes), declare it (the
 * certificates it covers recorded, keys blocked, every instance told at once, revocation and notifications
 * left to the incidents.sweep job), follow it (status), close it.
 */
export class IncidentService {
  constructor(private readonly deps: IncidentServiceDeps) {}

  /** The blast radius of a selection; reads only. */
  async preview(input: SelectionInput): Promise<IncidentPreview> {
    const selection = parseSelection(input, this.deps.spkiOf);
    await this.checkGroups(selection);
    const now = this.deps.clock.now();
    const counter = new RadiusCounter(now);
    const on = this.deps.access.stores;
    await countSelection(selection, { ...this.sources(on), count: (...args) => on.incidents.selectionCounts(...args) }, now, counter);
    const radius = counter.finish(await on.incidents.owners(counter.groupNames()));
    return { ...radius, ariRetryAfterSeconds: this.deps.ariRetryAfterSeconds, notes: incidentNotes(this.deps.ariRetryAfterSeconds) };
  }

  /**
   * Declares an incident in one transaction: the incident, every certificate it covers (valid now), the
   * blocked keys (keyCompromise), its audit entry and the NOTIFY that makes every instance answer renewalInfo
   * with the incident's window. Bad input — an empty selection, an unknown group, a bad serials line, a
   * deadline past, a name taken — is refused precisely and changes nothing.
   */
  async declare(input: DeclareInput, actor: Actor): Promise<{ incident: Incident; radius: IncidentPreview }> {
    const now = this.deps.clock.now();
    const request = parseDeclare(input, now, this.deps.spkiOf);
    const stores = this.deps.access.stores.incidents;
    const existing = await stores.findByName(request.name);
    if (existing !== undefined) {
      throw new CaError('conflict', `an incident named "${request.name}" already exists (declared ${existing.declaredAt.toISOString()} by ${existing.declaredBy}); nothing was declared`);
    }
    await this.checkGroups(request.selection);
    const incident: Incident = {
      id: `inc_${newId(12)}`,
      name: request.name,
      reason: request.reason,
      revoke: request.revoke,
      drill: request.drill,
      renewBy: request.renewBy,
      ...(request.explanationUrl === undefined ? {} : { explanationUrl: request.explanationUrl }),
      selection: recorded(request.selection),
      affected: 0,
      shortLived: 0,
      blockedKeys: 0,
      declaredAt: now,
      declaredBy: actor,
    };
    const counter = new RadiusCounter(now);
    const declared = await this.deps.access.transaction(async (on, q) => {
      const tx = on.incidents;
      await tx.insert(incident);
      await countSelection(
        request.selection,
        {
          ...this.sources(on),
          count: (...args) => tx.addSelected(incident.id, ...args),
          record: async (members) => void (await tx.addMembers(incident.id, members)),
        },
        now,
        counter,
      );
      if (counter.count === 0) throw new CaError('malformed', 'the selection matches no valid certificate (revoked and expired ones are never covered); nothing was declared');
      const blockedKeys = request.reason === REASON_CODES.keyCompromise ? await tx.blockMemberKeys(incident.id) : 0;
      const final: Incident = { ...incident, affected: counter.count, shortLived: counter.shortLivedCount, blockedKeys };
      await tx.setCounts(incident.id, { affected: final.affected, shortLived: final.shortLived, blockedKeys });
      const event: DomainEvent = { type: 'incident.declared', incident: final, actor };
      await this.deps.events.committing(event, q);
      return { incident: final, event };
    });
    await this.deps.events.committed(declared.event);
    this.deps.kickSweep?.();
    const radius = counter.finish(await stores.owners(counter.groupNames()));
    return { incident: declared.incident, radius: { ...radius, ariRetryAfterSeconds: this.deps.ariRetryAfterSeconds, notes: incidentNotes(this.deps.ariRetryAfterSeconds) } };
  }

  async get(name: string): Promise<Incident> {
    const incident = await this.deps.access.stores.incidents.findByName(parseIncidentName(name));
    if (incident === undefined) throw new CaError('notFound', `no incident named "${name}"`);
    return incident;
  }

  list(page: { cursor?: string; limit: number }): Promise<Page<Incident>> {
    return this.deps.access.stores.incidents.list(page);
  }

  /** The incident's certificates (in one state), by serial, a page at a time (DESIGN.md rule 9). */
  async certificates(name: string, state: IncidentCertificateState | undefined, page: { cursor?: string; limit: number }): Promise<Page<IncidentCertificate>> {
    if (state !== undefined && !INCIDENT_CERTIFICATE_STATES.includes(state)) throw new CaError('malformed', `state: must be one of ${INCIDENT_CERTIFICATE_STATES.join(', ')}`);
    const incident = await this.get(name);
    return this.deps.access.stores.incidents.certificates(incident.id, state, this.deps.clock.now(), page);
  }

  /** Where the incident stands: counts by group with owners, revocations, the time series (incident-status.ts). */
  async status(name: string): Promise<IncidentStatus> {
    const incident = await this.get(name);
    return incidentStatus(incident, { store: this.deps.access.stores.incidents, runs: this.deps.runs, clock: this.deps.clock, ariRetryAfterSeconds: this.deps.ariRetryAfterSeconds });
  }

  /**
   * Closes an incident: renewalInfo answers as usual again and nothing more is revoked for it; blocked keys
   * stay blocked. Refused while one of its revocations is still running (close it once that is done).
   */
  async close(name: string, actor: Actor): Promise<Incident> {
    const incident = await this.get(name);
    if (incident.closedAt !== undefined) throw new CaError('conflict', `incident "${name}" was already closed at ${incident.closedAt.toISOString()}`);
    const running = (await this.deps.runs.ofIncident(incident.id)).find((run) => run.state !== 'done');
    if (running !== undefined) throw new CaError('conflict', `incident "${name}" has a revocation still running (${running.revoked} of ${running.total} revoked); close it once that is done`);
    const closed = await this.deps.access.transaction(async (on, q) => {
      const done = await on.incidents.close(incident.id, this.deps.clock.now(), actor);
      if (done === undefined) throw new CaError('conflict', `incident "${name}" was already closed`);
      const event: DomainEvent = { type: 'incident.closed', incident: done, actor };
      await this.deps.events.committing(event, q);
      return { incident: done, event };
    });
    await this.deps.events.committed(closed.event);
    return closed.incident;
  }

  private sources(on: IncidentStores): { inventory: IncidentStores['inventory']; facts: FactsLookup } {
    return { inventory: on.inventory, facts: (serials) => on.incidents.certificateFacts(serials) };
  }

  /** A filter naming a group that does not exist is a mistake to report, not an empty incident. */
  private async checkGroups(selection: ParsedSelection): Promise<void> {
    const group = selection.kind === 'filter' ? selection.filter.group : undefined;
    if (group === undefined) return;
    const names = await this.deps.groupNames();
    if (!names.includes(group)) throw new CaError('malformed', `select: parameter "group": no group "${group}" (groups: ${names.join(', ')})`);
  }
}

/** How the selection is recorded with the incident (a serials file by its size: the serials are the incident's). */
function recorded(selection: ParsedSelection): IncidentSelection {
  if (selection.kind === 'filter') return { kind: 'filter', parameters: selection.parameters };
  if (selection.kind === 'serials') return { kind: 'serials', count: selection.serials.length };
  return { kind: 'key', spkiSha256: selection.spkiSha256 };
}
