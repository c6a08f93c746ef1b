/**
 * Rows as the SQL in this layer returns them (snake_case, driver types). Only repositories and
 * row-mappers.ts see these; everything above db/ sees core types (DESIGN.md rule 6).
 * bytea arrives as Buffer from pg and Uint8Array from PGlite; timestamptz as Date from both.
 */
export interface IssuerRow {
  id: string;
  role: string;
  key_name: string;
  parent_id: string | null;
  der: Uint8Array;
  subject: string;
  not_before: Date;
  not_after: Date;
  created_at: Date;
}

export interface KeyBlobRow {
  name: string;
  algorithm: string;
  encrypted_pkcs8: Uint8Array;
  created_at: Date;
}

export interface SerialRow {
  serial: string;
  issuer_id: string;
  created_at: Date;
}

export interface CertificateRow {
  serial: string;
  issuer_id: string;
  crl_shard: number;
  der: Uint8Array;
  /** jsonb: parsed by both drivers on the way out; written as JSON text (see row-mappers.ts). */
  identifiers: unknown;
  spki_sha256: string;
  not_before: Date;
  not_after: Date;
  status: string;
  revoked_at: Date | null;
  revocation_reason: number | null;
  invalidity_date: Date | null;
  created_at: Date;
}
