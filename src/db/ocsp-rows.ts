/**
 * OCSP rows (0004_ocsp) and the records the OCSP repositories map them to. The records are plain data
 * whose shape revocation/ declares on its side (DESIGN.md: the consumer states the interface); db/ imports
 * only core, so the two meet structurally in the composition root.
 * bytea arrives as Buffer from pg and Uint8Array from PGlite; timestamptz as Date from both.
 */
import type { RevocationReason } from '../core/certificate.js';

export interface OcspResponseRow {
  serial: string;
  issuer_id: string;
  status: string;
  der: Uint8Array | null;
  this_update: Date;
  next_update: Date;
  refresh_after: Date;
  responder_generation: number | null;
  updated_at: Date;
}

export interface OcspResponderRow {
  issuer_id: string;
  generation: number;
  key_name: string;
  serial: string;
  der: Uint8Array;
  not_before: Date;
  not_after: Date;
  created_at: Date;
}

/** A certificate's facts as the OCSP refresher reads them (certificates joined with ocsp_responses). */
export interface OcspCertificateRow {
  serial: string;
  issuer_id: string;
  status: string;
  revoked_at: Date | null;
  revocation_reason: number | null;
  invalidity_date: Date | null;
  not_after: Date;
  /** Only where the statement selects it (findCertificate). */
  no_rev_avail?: boolean;
}

export type OcspStatus = 'good' | 'revoked';

/** A stored response. `der` is absent only for a revoked row whose signing is pending (see 0004_ocsp.sql). */
export interface OcspResponseRecord {
  serial: string;
  issuerId: string;
  status: OcspStatus;
  der?: Buffer;
  thisUpdate: Date;
  nextUpdate: Date;
  refreshAfter: Date;
  responderGeneration?: number;
  updatedAt: Date;
}

/** What a response says, read from the certificates table. */
export interface OcspCertificateFacts {
  serial: string;
  issuerId: string;
  status: 'valid' | 'revoked';
  revokedAt?: Date;
  revocationReason?: RevocationReason;
  invalidityDate?: Date;
  notAfter: Date;
  /** RFC 9608: no OCSP answer for it. */
  noRevAvail?: boolean;
}
