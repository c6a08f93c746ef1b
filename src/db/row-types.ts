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
  account_id: string | null;
  order_id: string | null;
  replaces_serial: string | null;
  /** The certificate profile it was issued under (draft-ietf-acme-profiles). */
  profile: string;
  /** RFC 9608 noRevAvail: revocation recorded, never published (no CRL entry, no OCSP answer). */
  no_rev_avail: boolean;
  /** The group and labels of the inventory record (0009_groups); null outside ACME and before groups. */
  group_name: string | null;
  /** jsonb object, or null (written as JSON text). */
  labels: unknown;
}

// ---- ACME (0002_acme) ------------------------------------------------------------------------------------
// jsonb columns are `unknown`: parsed by both drivers on the way out, and written as JSON text cast to jsonb
// in SQL (see row-mappers.ts).

export interface AccountRow {
  id: string;
  status: string;
  contacts: unknown;
  public_jwk: unknown;
  jwk_thumbprint: string;
  eab_kid: string | null;
  group_name: string | null;
  /** jsonb object: the credential's labels, {} without (0009_groups). */
  labels: unknown;
  tos_agreed: boolean;
  created_at: Date;
}

/** eab_credentials without the key: what listing needs. */
export interface EabCredentialRow {
  kid: string;
  group_name: string | null;
  /** jsonb object, {} without labels (0009_groups). */
  labels: unknown;
  created_at: Date;
  bound_account_id: string | null;
  bound_at: Date | null;
  /** Revoked credentials bind no account (0011_admin_api). */
  revoked_at?: Date | null;
}

export interface EabCredentialWithKeyRow extends EabCredentialRow {
  hmac_key_encrypted: Uint8Array;
}

export interface OrderRow {
  id: string;
  account_id: string;
  status: string;
  identifiers: unknown;
  not_before: Date | null;
  not_after: Date | null;
  expires: Date;
  error: unknown;
  certificate_serial: string | null;
  replaces_serial: string | null;
  created_at: Date;
  profile: string;
  /** Not a column: the order's authorization ids in position order, aggregated as a jsonb array. */
  authorization_ids: unknown;
}

export interface AuthorizationRow {
  id: string;
  account_id: string;
  identifier_type: string;
  identifier_value: string;
  wildcard: boolean;
  status: string;
  expires: Date;
  created_at: Date;
}

export interface ChallengeRow {
  id: string;
  authorization_id: string;
  type: string;
  token: string;
  status: string;
  validated_at: Date | null;
  error: unknown;
  attempts: number;
  next_attempt_at: Date | null;
}
