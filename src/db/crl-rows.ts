/**
 * Rows of 0003_crl as the SQL in crl-repository.ts returns them (see row-types.ts for the conventions).
 * Kept apart from row-types.ts so CRL work does not collide with the other tables' edits.
 */

/**
 * One page of a scope's revoked certificates as the CRL entry reader selects it: one row of column
 * aggregates, base64 text of PostgreSQL binary send formats (see crl-repository.ts). NULL when the page
 * (or, for invalidity_dates, every entry of it) has none.
 */
export interface CrlPageRow {
  count: number;
  last_serial: string | null;
  /** Serial magnitudes back to back. */
  serials: string | null;
  /** int2send of each serial's octet count. */
  serial_lengths: string | null;
  /** float8send of whole epoch seconds. */
  revoked_at: string | null;
  /** int2send of each CRLReason code, + 256 when an invalidity date follows. */
  reasons: string | null;
  /** float8send of whole epoch seconds, only for entries that have one. */
  invalidity_dates: string | null;
}

export interface CrlMetaRow {
  issuer_id: string;
  shard: number;
  number: number | bigint | string;
  this_update: Date;
  next_update: Date;
  entries: number;
}

/** A crls row joined with one of its crl_parts. */
export interface CrlPartRow extends CrlMetaRow {
  size: number;
  bytes: Uint8Array;
}
