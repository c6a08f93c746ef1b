import { createHash } from 'node:crypto';
import type { Clock } from '../core/clock.js';
import { CaError } from '../core/errors.js';
import type { BlockedKeyUse, OpenIncident } from '../core/incident.js';

/** The reads the directory makes (db/ IncidentRepository). */
export interface IncidentSource {
  openSummaries(): Promise<OpenIncident[]>;
  blockedKeys(): Promise<{ spkiSha256: string; incidentId: string; incidentName: string }[]>;
  /** The incidents (among `open`) covering each serial; batched by the caller's store. */
  covering(serial: string, open: readonly string[]): Promise<string[]>;
}

/** A refused use of a blocked key, to be counted and audited (compose-incidents.ts records it). */
export interface KeyBlock {
  incident: { id: string; name: string };
  spkiSha256: string;
  use: BlockedKeyUse;
  accountId?: string;
  group?: string;
  at: Date;
}

/** The LISTEN/NOTIFY channel an incident's declaration or closing announces itself on (in its transaction). */
export const INCIDENTS_CHANNEL = 'chancery_incidents';
/** How long a snapshot is trusted while changes made elsewhere are not heard (as GroupDirectory). */
export const UNHEARD_INCIDENTS_MS = 5_000;
/** The same refusal is counted at most once a minute per instance: a client retrying in a loop is one block. */
const BLOCK_RECORD_EVERY_MS = 60_000;

export interface IncidentSnapshot {
  open: Map<string, OpenIncident>;
  blocked: Map<string, { id: string; name: string }>;
  loadedAt: number;
}

/**
 * Open incidents and blocked keys, as the ACME hot path reads them: renewalInfo, finalize's CSR key and
 * every request's JWS account key are checked against one in-memory snapshot — no database round trip per
 * request. Incidents are few and change rarely (declared, closed), so the whole set is one snapshot that
 * stays honest across instances like the group directory (DESIGN.md rule 7): a declaration or closing
 * NOTIFYs INCIDENTS_CHANNEL inside its transaction and every instance drops its snapshot when it hears it;
 * while an instance cannot hear, a snapshot is trusted for UNHEARD_INCIDENTS_MS only.
 */
export class IncidentDirectory {
  private snapshot: IncidentSnapshot | undefined;
  private loading: Promise<IncidentSnapshot> | undefined;
  private generation = 0;
  private listening = false;
  private readonly recorded = new Map<string, number>();

  constructor(
    private readonly deps: {
      source: IncidentSource;
      clock: Clock;
      /** Counts and audits a refused use of a blocked key; a failure to record does not lift the refusal. */
      recordBlock?: (block: KeyBlock) => Promise<void>;
      onRecordFailed?: (error: unknown) => void;
    },
  ) {}

  async current(): Promise<IncidentSnapshot> {
    const held = this.snapshot;
    if (held !== undefined && (this.listening || this.deps.clock.now().getTime() - held.loadedAt < UNHEARD_INCIDENTS_MS)) return held;
    return this.load();
  }

  /** Whether any incident is open (the replacement hook and renewalInfo do nothing more otherwise). */
  async anyOpen(): Promise<boolean> {
    return (await this.current()).open.size > 0;
  }

  /** The open incident with the earliest deadline that covers `serial`, if any. */
  async incidentOf(serial: string): Promise<OpenIncident | undefined> {
    const snapshot = await this.current();
    if (snapshot.open.size === 0) return undefined;
    const ids = await this.deps.source.covering(serial, [...snapshot.open.keys()]);
    let earliest: OpenIncident | undefined;
    for (const id of ids) {
      const incident = snapshot.open.get(id);
      if (incident !== undefined && (earliest === undefined || incident.renewBy < earliest.renewBy)) earliest = incident;
    }
    return earliest;
  }

  /** An open incident by id (the snapshot's). */
  async open(id: string): Promise<OpenIncident | undefined> {
    return (await this.current()).open.get(id);
  }

  /**
   * Refuses a subject key an incident blocked (RFC 8555 §7.4 badPublicKey at finalize; §6.2 for a JWS key):
   * the refusal names the incident, and is counted as a blocked renewal of it. `spki`: the
   * SubjectPublicKeyInfo DER, or its SHA-256 in hex.
   */
  async refuseBlocked(spki: Uint8Array | string, use: BlockedKeyUse, who: { accountId?: string; group?: string } = {}): Promise<void> {
    const snapshot = await this.current();
    if (snapshot.blocked.size === 0) return;
    const spkiSha256 = typeof spki === 'string' ? spki : createHash('sha256').update(spki).digest('hex');
    const incident = snapshot.blocked.get(spkiSha256);
    if (incident === undefined) return;
    await this.record({ incident, spkiSha256, use, at: this.deps.clock.now(), ...who });
    const what = use === 'csr' ? 'the certificate key' : 'the JWS account key';
    throw new CaError(
      'badPublicKey',
      `${what} is blocked by incident "${incident.name}" (its key is considered compromised): generate a new key and order again`,
    );
  }

  /** Whether any key is blocked at all (callers skip computing a key's SHA-256 otherwise). */
  async anyBlocked(): Promise<boolean> {
    return (await this.current()).blocked.size > 0;
  }

  invalidate(): void {
    this.generation += 1;
    this.snapshot = undefined;
    this.loading = undefined;
  }

  setListening(listening: boolean): void {
    this.listening = listening;
    this.invalidate();
  }

  private async record(block: KeyBlock): Promise<void> {
    const record = this.deps.recordBlock;
    if (record === undefined) return;
    const key = `${block.incident.id}/${block.spkiSha256}/${block.use}/${block.accountId ?? ''}`;
    const now = block.at.getTime();
    const last = this.recorded.get(key);
    if (last !== undefined && now - last < BLOCK_RECORD_EVERY_MS) return;
    if (this.recorded.size > 10_000) this.recorded.clear();
    this.recorded.set(key, now);
    try {
      await record(block);
    } catch (error) {
      this.deps.onRecordFailed?.(error);
    }
  }

  private load(): Promise<IncidentSnapshot> {
    if (this.loading !== undefined) return this.loading;
    const generation = this.generation;
    const loadedAt = this.deps.clock.now().getTime();
    const loading = Promise.all([this.deps.source.openSummaries(), this.deps.source.blockedKeys()]).then(
      ([open, blocked]) => {
        const snapshot: IncidentSnapshot = {
          open: new Map(open.map((incident) => [incident.id, incident])),
          blocked: new Map(blocked.map((key) => [key.spkiSha256, { id: key.incidentId, name: key.incidentName }])),
          loadedAt,
        };
        if (this.generation === generation) {
          this.snapshot = snapshot;
          this.loading = undefined;
        }
        return snapshot;
      },
      (error: unknown) => {
        if (this.loading === loading) this.loading = undefined;
        throw error;
      },
    );
    this.loading = loading;
    return loading;
  }
}
