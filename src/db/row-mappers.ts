/**
 * The one place rows become core types and core types become rows (DESIGN.md rule 6). A row that does not
 * fit its core type means the database holds something this code never wrote: that is a server fault, not
 * bad input, so it throws serverInternal instead of passing a wrong value upwards.
 */
import type { CertificateStatus, IssuedCertificate, IssuerRecord, IssuerRole, RevocationReason } from '../core/certificate.js';
import { CaError } from '../core/errors.js';
import type { Identifier } from '../core/identifier.js';
import { isKeyAlgorithm } from '../core/key-algorithm.js';
import type { KeyBlob } from '../keys/software/key-blob-store.js';
import type { CertificateRow, IssuerRow, KeyBlobRow } from './row-types.js';

const REVOCATION_REASONS: readonly number[] = [0, 1, 2, 3, 4, 5, 6, 8, 9, 10];

function corrupt(what: string): CaError {
  return new CaError('serverInternal', `unexpected value in the database: ${what}`);
}

/** A plain Uint8Array copy: pg hands out Buffers (often views on a shared pool), PGlite Uint8Arrays. */
function bytes(value: Uint8Array): Uint8Array {
  return new Uint8Array(value);
}

function date(value: unknown, what: string): Date {
  if (value instanceof Date && !Number.isNaN(value.getTime())) return value;
  throw corrupt(what);
}

function optionalDate(value: unknown, what: string): Date | undefined {
  return value === null || value === undefined ? undefined : date(value, what);
}

// ---- issuers -------------------------------------------------------------------------------------------

function issuerRole(value: string): IssuerRole {
  if (value === 'root' || value === 'intermediate') return value;
  throw corrupt(`issuer role ${JSON.stringify(value)}`);
}

export function issuerFromRow(row: IssuerRow): IssuerRecord {
  const record: IssuerRecord = {
    id: row.id,
    role: issuerRole(row.role),
    keyName: row.key_name,
    der: bytes(row.der),
    subject: row.subject,
    notBefore: date(row.not_before, 'issuer not_before'),
    notAfter: date(row.not_after, 'issuer not_after'),
    createdAt: date(row.created_at, 'issuer created_at'),
  };
  if (row.parent_id !== null) record.parentId = row.parent_id;
  return record;
}

export function issuerToRow(record: IssuerRecord): IssuerRow {
  return {
    id: record.id,
    role: record.role,
    key_name: record.keyName,
    parent_id: record.parentId ?? null,
    der: record.der,
    subject: record.subject,
    not_before: record.notBefore,
    not_after: record.notAfter,
    created_at: record.createdAt,
  };
}

// ---- key blobs -----------------------------------------------------------------------------------------

export function keyBlobFromRow(row: KeyBlobRow): KeyBlob {
  if (!isKeyAlgorithm(row.algorithm)) throw corrupt(`key algorithm ${JSON.stringify(row.algorithm)}`);
  return {
    name: row.name,
    algorithm: row.algorithm,
    encryptedPkcs8: bytes(row.encrypted_pkcs8),
    createdAt: date(row.created_at, 'key blob created_at'),
  };
}

export function keyBlobToRow(blob: KeyBlob): KeyBlobRow {
  return { name: blob.name, algorithm: blob.algorithm, encrypted_pkcs8: blob.encryptedPkcs8, created_at: blob.createdAt };
}

// ---- certificates --------------------------------------------------------------------------------------

function identifiersFromJson(value: unknown): Identifier[] {
  if (!Array.isArray(value)) throw corrupt('certificate identifiers');
  return value.map((item: unknown) => {
    if (typeof item !== 'object' || item === null) throw corrupt('certificate identifier');
    const { type, value: idValue } = item as Record<string, unknown>;
    if ((type !== 'dns' && type !== 'ip') || typeof idValue !== 'string') throw corrupt('certificate identifier');
    return { type, value: idValue };
  });
}

function certificateStatus(value: string): CertificateStatus {
  if (value === 'valid' || value === 'revoked') return value;
  throw corrupt(`certificate status ${JSON.stringify(value)}`);
}

export function revocationReason(value: number): RevocationReason {
  if (REVOCATION_REASONS.includes(value)) return value as RevocationReason;
  throw corrupt(`revocation reason ${value}`);
}

export function certificateFromRow(row: CertificateRow): IssuedCertificate {
  const cert: IssuedCertificate = {
    serial: row.serial,
    issuerId: row.issuer_id,
    crlShard: row.crl_shard,
    der: bytes(row.der),
    identifiers: identifiersFromJson(row.identifiers),
    spkiSha256: row.spki_sha256,
    notBefore: date(row.not_before, 'certificate not_before'),
    notAfter: date(row.not_after, 'certificate not_after'),
    status: certificateStatus(row.status),
    createdAt: date(row.created_at, 'certificate created_at'),
  };
  const revokedAt = optionalDate(row.revoked_at, 'certificate revoked_at');
  if (revokedAt !== undefined) cert.revokedAt = revokedAt;
  if (row.revocation_reason !== null) cert.revocationReason = revocationReason(row.revocation_reason);
  const invalidityDate = optionalDate(row.invalidity_date, 'certificate invalidity_date');
  if (invalidityDate !== undefined) cert.invalidityDate = invalidityDate;
  return cert;
}

/**
 * identifiers become JSON text, bound as a text parameter and cast to jsonb in SQL: pg would turn a JS
 * array into a PostgreSQL array literal, and PGlite would serialize it itself, so text is the one form
 * both drivers pass through unchanged. Only type and value are kept, in the order given.
 */
export function certificateToRow(cert: IssuedCertificate): CertificateRow {
  return {
    serial: cert.serial,
    issuer_id: cert.issuerId,
    crl_shard: cert.crlShard,
    der: cert.der,
    identifiers: JSON.stringify(cert.identifiers.map(({ type, value }) => ({ type, value }))),
    spki_sha256: cert.spkiSha256,
    not_before: cert.notBefore,
    not_after: cert.notAfter,
    status: cert.status,
    revoked_at: cert.revokedAt ?? null,
    revocation_reason: cert.revocationReason ?? null,
    invalidity_date: cert.invalidityDate ?? null,
    created_at: cert.createdAt,
  };
}

// ---- driver errors -------------------------------------------------------------------------------------

/** SQLSTATE codes (PostgreSQL Appendix A) that repositories turn into CaError kinds. */
export const UNIQUE_VIOLATION = '23505';
export const FOREIGN_KEY_VIOLATION = '23503';

/** The SQLSTATE and constraint of a pg or PGlite error (both expose the server's fields by the same names). */
export function sqlError(error: unknown): { code?: string; constraint?: string } {
  if (typeof error !== 'object' || error === null) return {};
  const { code, constraint } = error as { code?: unknown; constraint?: unknown };
  return {
    ...(typeof code === 'string' ? { code } : {}),
    ...(typeof constraint === 'string' ? { constraint } : {}),
  };
}
