import type { Actor } from './audit.js';
import type { BulkRevokedCertificate, BulkRun } from './bulk-revocation.js';
import type { BlockedKeyUse, Incident } from './incident.js';

/**
 * The domain events of incidents and bulk revocation (part of core/events.ts's DomainEvent): each one's
 * audit entry is written with it (src/inventory/audit-entries.ts), and the consequences hang off it in
 * compose-incidents.ts (DESIGN.md rule 5).
 */
export type IncidentEvent =
  /** Declared: its certificates recorded, its keys blocked (keyCompromise). Every instance drops its snapshot. */
  | { type: 'incident.declared'; incident: Incident; actor: Actor }
  /** Closed: renewalInfo answers as usual again; blocked keys stay blocked. */
  | { type: 'incident.closed'; incident: Incident; actor: Actor }
  /**
   * A renewal (a CSR at finalize) or an ACME request (its JWS account key) refused because it presented a key
   * an incident blocked; counted as a blocked renewal of that incident.
   */
  | {
      type: 'incident.key.blocked';
      incident: { id: string; name: string };
      spkiSha256: string;
      use: BlockedKeyUse;
      accountId?: string;
      group?: string;
      at: Date;
    }
  /** A bulk revocation planned: its serials written down, none revoked yet. */
  | { type: 'revocation.bulk.planned'; run: BulkRun }
  /**
   * One chunk of a bulk revocation, in its transaction: these certificates went valid -> revoked. The
   * committing handlers re-sign their OCSP responses in one batch and announce the chunk once; the committed
   * ones wait for the other instances' caches once and schedule the CRLs (at most every few seconds).
   */
  | {
      type: 'certificates.revoked';
      run: Pick<BulkRun, 'id' | 'origin' | 'label' | 'reason' | 'actor'>;
      chunk: number;
      certificates: BulkRevokedCertificate[];
      /** Serials of the chunk left as they were (already revoked or otherwise not valid). */
      skipped: string[];
      /** The chunk's first and last serial (bytewise order): every serial of the run between them is in it. */
      first: string;
      last: string;
      actor: Actor;
    }
  /** Every chunk revoked and the CRLs of every scope the run touched published. */
  | { type: 'revocation.bulk.finished'; run: BulkRun };
