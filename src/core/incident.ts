import type { Actor } from './audit.js';
import type { RevocationReason } from './certificate.js';

/**
 * Incidents: "this key (or this set of certificates) can no longer be trusted" turned into one declared
 * thing with a deadline. From the declaration every affected certificate's renewalInfo (RFC 9773 §4.2)
 * answers a window that has already begun, their owners are told, the replacements are tracked through
 * lineage, and the old certificates are revoked as the declaration says — or, for a drill, not at all.
 */

/**
 * When the affected certificates are revoked: `when-replaced` each as soon as its replacement is issued and
 * the rest at the deadline, `at-deadline` all at the deadline, `now` at once.
 */
export type RevokeMode = 'when-replaced' | 'at-deadline' | 'now';
export const REVOKE_MODES: readonly RevokeMode[] = ['when-replaced', 'at-deadline', 'now'];

/** How the affected certificates were chosen, as recorded with the incident (and shown by status). */
export type IncidentSelection =
  | { kind: 'filter'; parameters: Record<string, string | string[]> }
  | { kind: 'serials'; count: number }
  | { kind: 'key'; spkiSha256: string };

export interface Incident {
  id: string;
  /** Unique, chosen by the operator: what the CLI, the API and every refusal name. */
  name: string;
  reason: RevocationReason;
  revoke: RevokeMode;
  /** A rehearsal: everything happens except revocation. */
  drill: boolean;
  renewBy: Date;
  /** RFC 9773 §4.2 explanationURL, sent with every affected certificate's renewalInfo. */
  explanationUrl?: string;
  selection: IncidentSelection;
  /** Certificates covered (valid when it was declared), short-lived ones included. */
  affected: number;
  /** Of those, the noRevAvail ones (RFC 9608): never revoked, they expire on their own. */
  shortLived: number;
  /** Subject keys put on the blocklist (reason keyCompromise: every affected certificate's key). */
  blockedKeys: number;
  declaredAt: Date;
  declaredBy: Actor;
  closedAt?: Date;
  closedBy?: Actor;
}

/** An open incident as the ACME hot path needs it (renewalInfo, blocked keys, replacements). */
export interface OpenIncident {
  id: string;
  name: string;
  declaredAt: Date;
  renewBy: Date;
  explanationUrl?: string;
  drill: boolean;
  revoke: RevokeMode;
}

/** Expiry buckets of a blast radius, as instants: notAfter at or before each. */
export interface ExpiryBounds {
  within7Days: Date;
  within30Days: Date;
  within90Days: Date;
}

/** Covered certificates of one group, issuer, short-lived or not and expiry bucket: a blast radius's counts. */
export interface SelectionCount {
  /** '' for certificates with no group. */
  group: string;
  issuerId: string;
  shortLived: boolean;
  expiry: keyof ExpiryBounds | 'later';
  count: number;
  /** The latest notAfter among them. */
  latestNotAfter: Date;
}

/** Where a blocked key was presented. */
export type BlockedKeyUse = 'csr' | 'account-key';

/**
 * The renewal window an incident asks of an affected certificate (RFC 9773 §4.2): it has begun by the time
 * anyone can ask (start = the declaration), and ends half way to the deadline, so a client that picks a
 * random moment in it still has half the time left for retries. Never later than the certificate's own
 * window, and a certificate already due keeps its earlier start.
 */
export function incidentWindow(own: { start: Date; end: Date }, incident: { declaredAt: Date; renewBy: Date }): { start: Date; end: Date } {
  const declared = incident.declaredAt.getTime();
  const half = declared + Math.max(60_000, (incident.renewBy.getTime() - declared) / 2);
  const start = Math.min(own.start.getTime(), declared);
  const end = Math.max(start + 1000, Math.min(own.end.getTime(), half));
  return { start: new Date(start), end: new Date(end) };
}
