import type { Actor } from './audit.js';
import type { RevocationReason } from './certificate.js';

/**
 * Bulk revocation (revocation/bulk-revoker.ts): many certificates revoked as one run — planned once (its
 * serials written down before the first is revoked), then revoked chunk by chunk, each chunk one
 * transaction that also moves the run's cursor, so a run that dies half way resumes where it stopped.
 */

/** running: chunks remain; publishing: every chunk done, the CRLs of its scopes still to publish; done. */
export type BulkRunState = 'running' | 'publishing' | 'done';

/** A CRL scope a run revoked certificates in: the issuer and its CRL shard (RFC 5280 §5, one CRL each). */
export interface CrlScope {
  issuerId: string;
  shard: number;
}

export interface BulkRun {
  id: string;
  /**
   * What asked for it, unique: planning the same origin twice finds the run already planned (an incident's
   * `incident:<id>:now`, its deadline, ...).
   */
  origin: string;
  /** What was selected, for people: `incident payments-key-2026 (all affected)`. */
  label: string;
  reason: RevocationReason;
  invalidityDate?: Date;
  actor: Actor;
  state: BulkRunState;
  /** Certificates to revoke (short-lived ones not counted). */
  total: number;
  /**
   * Selected certificates of a noRevAvail profile (RFC 9608): their revocation is never published, so a
   * bulk run leaves them out; they stop being trusted when they expire (latest `shortLivedUntil`).
   */
  shortLived: number;
  shortLivedUntil?: Date;
  /** Selected serials that name no certificate of this CA. */
  unknown: number;
  /** Revoked by this run so far. */
  revoked: number;
  /** Already revoked (by someone else, or expired meanwhile) when their chunk came: left as they were. */
  skipped: number;
  chunks: number;
  scopes: CrlScope[];
  createdAt: Date;
  finishedAt?: Date;
  /** When the CRLs of every scope the run touched were published after its last chunk. */
  publishedAt?: Date;
}

/** What the OCSP re-signing and the CRL of a revoked certificate need (RFC 6960, RFC 5280 §5.3). */
export interface BulkRevokedCertificate {
  serial: string;
  issuerId: string;
  crlShard: number;
  status: 'revoked';
  revokedAt: Date;
  revocationReason: RevocationReason;
  invalidityDate?: Date;
  notAfter: Date;
  group?: string;
}

/** A short-lived certificate a run left out, with the time it stops being trusted on its own. */
export interface LeftOutCertificate {
  serial: string;
  notAfter: Date;
}
