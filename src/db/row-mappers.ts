/**
 * The one place rows become core types and core types become rows (DESIGN.md rule 6). A row that does not
 * fit its core type means the database holds something this code never wrote: that is a server fault, not
 * bad input, so it throws serverInternal instead of passing a wrong value upwards.
 */
import type { Account, AccountStatus, EabCredential } from '../core/account.js';
import type { CertificateStatus, IssuedCertificate, IssuerRecord, IssuerRole, RevocationReason } from '../core/certificate.js';
import { CaError, type CaErrorKind, type Problem, type SubProblem } from '../core/errors.js';
import type { Identifier } from '../core/identifier.js';
import type { Labels } from '../core/group.js';
import { isKeyAlgorithm } from '../core/key-algorithm.js';
import type {
  Authorization,
  AuthorizationStatus,
  Challenge,
  ChallengeStatus,
  ChallengeType,
  Order,
  OrderStatus,
} from '../core/order.js';
import type { KeyBlob } from '../core/key-blob.js';
import { DEFAULT_PROFILE_ID } from '../core/profile.js';
import type {
  AccountRow,
  AuthorizationRow,
  CertificateRow,
  ChallengeRow,
  EabCredentialRow,
  IssuerRow,
  KeyBlobRow,
  OrderRow,
} from './row-types.js';

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

function identifierFromJson(item: unknown, what = 'identifier'): Identifier {
  if (typeof item !== 'object' || item === null) throw corrupt(what);
  const { type, value: idValue } = item as Record<string, unknown>;
  if ((type !== 'dns' && type !== 'ip') || typeof idValue !== 'string') throw corrupt(what);
  return { type, value: idValue };
}

function identifiersFromJson(value: unknown, what = 'certificate identifiers'): Identifier[] {
  if (!Array.isArray(value)) throw corrupt(what);
  return value.map((item: unknown) => identifierFromJson(item, what));
}

/** Only type and value, in the order given, as JSON text (see certificateToRow for why text). */
function identifiersToJson(identifiers: readonly Identifier[]): string {
  return JSON.stringify(identifiers.map(({ type, value }) => ({ type, value })));
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
  if (row.account_id !== null) cert.accountId = row.account_id;
  if (row.order_id !== null) cert.orderId = row.order_id;
  if (row.replaces_serial !== null) cert.replacesSerial = row.replaces_serial;
  cert.profile = row.profile;
  if (row.no_rev_avail) cert.noRevAvail = true;
  if (row.group_name !== null) cert.group = row.group_name;
  if (row.labels !== null && row.labels !== undefined) cert.labels = labelsFromJson(row.labels, 'certificate labels');
  return cert;
}

/** A jsonb labels object (0009_groups): text values only. */
export function labelsFromJson(value: unknown, what: string): Labels {
  if (typeof value !== 'object' || value === null || Array.isArray(value) || Object.values(value).some((v) => typeof v !== 'string')) throw corrupt(what);
  return { ...(value as Labels) };
}

/** Labels as JSON text for a jsonb parameter (see certificateToRow). */
export function labelsToJson(labels: Labels | undefined): string {
  return JSON.stringify(labels ?? {});
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
    identifiers: identifiersToJson(cert.identifiers),
    spki_sha256: cert.spkiSha256,
    not_before: cert.notBefore,
    not_after: cert.notAfter,
    status: cert.status,
    revoked_at: cert.revokedAt ?? null,
    revocation_reason: cert.revocationReason ?? null,
    invalidity_date: cert.invalidityDate ?? null,
    created_at: cert.createdAt,
    account_id: cert.accountId ?? null,
    order_id: cert.orderId ?? null,
    replaces_serial: cert.replacesSerial ?? null,
    profile: cert.profile ?? DEFAULT_PROFILE_ID,
    no_rev_avail: cert.noRevAvail === true,
    group_name: cert.group ?? null,
    labels: cert.labels === undefined ? null : labelsToJson(cert.labels),
  };
}

// ---- ACME problems (stored on failed orders and challenges) --------------------------------------------

/** Only kind, detail and subproblems (each kind, detail, identifier) are stored: never a cause. */
export function problemToJson(problem: Problem): Problem {
  const json: Problem = { kind: problem.kind, detail: problem.detail };
  if (problem.subproblems !== undefined) {
    json.subproblems = problem.subproblems.map((sub) => {
      const out: SubProblem = { kind: sub.kind, detail: sub.detail };
      if (sub.identifier !== undefined) out.identifier = { type: sub.identifier.type, value: sub.identifier.value };
      return out;
    });
  }
  return json;
}

/** A problem as JSON text for a jsonb parameter, or null. */
export function problemToText(problem: Problem | undefined): string | null {
  return problem === undefined ? null : JSON.stringify(problemToJson(problem));
}

function kindAndDetail(value: Record<string, unknown>, what: string): { kind: CaErrorKind; detail: string } {
  const { kind, detail } = value;
  // The kind was a CaErrorKind when it was written; core has no runtime list of kinds to check it against.
  if (typeof kind !== 'string' || kind === '' || typeof detail !== 'string') throw corrupt(what);
  return { kind: kind as CaErrorKind, detail };
}

function problemFromJson(value: unknown, what: string): Problem | undefined {
  if (value === null || value === undefined) return undefined;
  if (typeof value !== 'object' || Array.isArray(value)) throw corrupt(what);
  const record = value as Record<string, unknown>;
  const problem: Problem = kindAndDetail(record, what);
  if (record.subproblems !== undefined) {
    if (!Array.isArray(record.subproblems)) throw corrupt(what);
    problem.subproblems = record.subproblems.map((item: unknown) => {
      if (typeof item !== 'object' || item === null) throw corrupt(what);
      const sub: SubProblem = kindAndDetail(item as Record<string, unknown>, what);
      const { identifier } = item as Record<string, unknown>;
      if (identifier !== undefined) {
        if (typeof identifier !== 'object' || identifier === null) throw corrupt(what);
        const { type, value: idValue } = identifier as Record<string, unknown>;
        if (typeof type !== 'string' || typeof idValue !== 'string') throw corrupt(what);
        sub.identifier = { type, value: idValue };
      }
      return sub;
    });
  }
  return problem;
}

function oneOf<T extends string>(allowed: readonly T[], value: string, what: string): T {
  if ((allowed as readonly string[]).includes(value)) return value as T;
  throw corrupt(`${what} ${JSON.stringify(value)}`);
}

// ---- accounts and EAB credentials ----------------------------------------------------------------------

const ACCOUNT_STATUSES: readonly AccountStatus[] = ['valid', 'deactivated', 'revoked'];

function stringArrayFromJson(value: unknown, what: string): string[] {
  if (!Array.isArray(value) || !value.every((item): item is string => typeof item === 'string')) throw corrupt(what);
  return [...value];
}

function jwkFromJson(value: unknown): Record<string, string> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw corrupt('account public_jwk');
  const jwk: Record<string, string> = {};
  for (const [name, member] of Object.entries(value)) {
    if (typeof member !== 'string') throw corrupt('account public_jwk');
    jwk[name] = member;
  }
  return jwk;
}

export function accountFromRow(row: AccountRow): Account {
  const account: Account = {
    id: row.id,
    status: oneOf(ACCOUNT_STATUSES, row.status, 'account status'),
    contacts: stringArrayFromJson(row.contacts, 'account contacts'),
    publicJwk: jwkFromJson(row.public_jwk),
    jwkThumbprint: row.jwk_thumbprint,
    termsOfServiceAgreed: row.tos_agreed,
    createdAt: date(row.created_at, 'account created_at'),
  };
  if (row.eab_kid !== null) account.eabKid = row.eab_kid;
  if (row.group_name !== null) account.group = row.group_name;
  const labels = labelsFromJson(row.labels ?? {}, 'account labels');
  if (Object.keys(labels).length > 0) account.labels = labels;
  return account;
}

/** contacts and public_jwk become JSON text, cast to jsonb in SQL (see certificateToRow). */
export function accountToRow(account: Account): AccountRow {
  return {
    id: account.id,
    status: account.status,
    contacts: contactsToJson(account.contacts),
    public_jwk: jwkToJson(account.publicJwk),
    jwk_thumbprint: account.jwkThumbprint,
    eab_kid: account.eabKid ?? null,
    group_name: account.group ?? null,
    labels: labelsToJson(account.labels),
    tos_agreed: account.termsOfServiceAgreed,
    created_at: account.createdAt,
  };
}

export function contactsToJson(contacts: readonly string[]): string {
  return JSON.stringify([...contacts]);
}

export function jwkToJson(jwk: Record<string, string>): string {
  return JSON.stringify(jwk);
}

export function eabCredentialFromRow(row: EabCredentialRow): EabCredential {
  const credential: EabCredential = { kid: row.kid, createdAt: date(row.created_at, 'EAB created_at') };
  if (row.group_name !== null) credential.group = row.group_name;
  const labels = labelsFromJson(row.labels ?? {}, 'EAB labels');
  if (Object.keys(labels).length > 0) credential.labels = labels;
  if (row.bound_account_id !== null) credential.boundAccountId = row.bound_account_id;
  const revokedAt = optionalDate(row.revoked_at, 'EAB revoked_at');
  if (revokedAt !== undefined) credential.revokedAt = revokedAt;
  const boundAt = optionalDate(row.bound_at, 'EAB bound_at');
  if (boundAt !== undefined) credential.boundAt = boundAt;
  return credential;
}

// ---- orders, authorizations, challenges ----------------------------------------------------------------

const ORDER_STATUSES: readonly OrderStatus[] = ['pending', 'ready', 'processing', 'valid', 'invalid'];
const AUTHORIZATION_STATUSES: readonly AuthorizationStatus[] = ['pending', 'valid', 'invalid', 'deactivated', 'expired', 'revoked'];
const CHALLENGE_STATUSES: readonly ChallengeStatus[] = ['pending', 'processing', 'valid', 'invalid'];
const CHALLENGE_TYPES: readonly ChallengeType[] = ['http-01', 'dns-01', 'tls-alpn-01'];

export function orderFromRow(row: OrderRow): Order {
  const order: Order = {
    id: row.id,
    accountId: row.account_id,
    status: oneOf(ORDER_STATUSES, row.status, 'order status'),
    identifiers: identifiersFromJson(row.identifiers, 'order identifiers'),
    authorizationIds: stringArrayFromJson(row.authorization_ids ?? [], 'order authorization ids'),
    expires: date(row.expires, 'order expires'),
    createdAt: date(row.created_at, 'order created_at'),
  };
  const notBefore = optionalDate(row.not_before, 'order not_before');
  if (notBefore !== undefined) order.notBefore = notBefore;
  const notAfter = optionalDate(row.not_after, 'order not_after');
  if (notAfter !== undefined) order.notAfter = notAfter;
  const error = problemFromJson(row.error, 'order error');
  if (error !== undefined) order.error = error;
  if (row.certificate_serial !== null) order.certificateSerial = row.certificate_serial;
  if (row.replaces_serial !== null) order.replacesSerial = row.replaces_serial;
  order.profile = row.profile;
  return order;
}

/** The orders row (authorization ids go to order_authorizations); jsonb columns as JSON text. */
export function orderToRow(order: Order): Omit<OrderRow, 'authorization_ids'> {
  return {
    id: order.id,
    account_id: order.accountId,
    status: order.status,
    identifiers: identifiersToJson(order.identifiers),
    not_before: order.notBefore ?? null,
    not_after: order.notAfter ?? null,
    expires: order.expires,
    error: problemToText(order.error),
    certificate_serial: order.certificateSerial ?? null,
    replaces_serial: order.replacesSerial ?? null,
    created_at: order.createdAt,
    profile: order.profile ?? DEFAULT_PROFILE_ID,
  };
}

export function challengeFromRow(row: ChallengeRow): Challenge {
  const challenge: Challenge = {
    id: row.id,
    authorizationId: row.authorization_id,
    type: oneOf(CHALLENGE_TYPES, row.type, 'challenge type'),
    token: row.token,
    status: oneOf(CHALLENGE_STATUSES, row.status, 'challenge status'),
    attempts: row.attempts,
  };
  const validatedAt = optionalDate(row.validated_at, 'challenge validated_at');
  if (validatedAt !== undefined) challenge.validatedAt = validatedAt;
  const error = problemFromJson(row.error, 'challenge error');
  if (error !== undefined) challenge.error = error;
  const nextAttemptAt = optionalDate(row.next_attempt_at, 'challenge next_attempt_at');
  if (nextAttemptAt !== undefined) challenge.nextAttemptAt = nextAttemptAt;
  return challenge;
}

/** error as JSON text, cast to jsonb in SQL. */
export function challengeToRow(challenge: Challenge): ChallengeRow {
  return {
    id: challenge.id,
    authorization_id: challenge.authorizationId,
    type: challenge.type,
    token: challenge.token,
    status: challenge.status,
    validated_at: challenge.validatedAt ?? null,
    error: problemToText(challenge.error),
    attempts: challenge.attempts,
    next_attempt_at: challenge.nextAttemptAt ?? null,
  };
}

/** challenges: the authorization's challenges, already read (the mapper does no I/O). */
export function authorizationFromRow(row: AuthorizationRow, challenges: Challenge[]): Authorization {
  return {
    id: row.id,
    accountId: row.account_id,
    identifier: identifierFromJson({ type: row.identifier_type, value: row.identifier_value }, 'authorization identifier'),
    wildcard: row.wildcard,
    status: oneOf(AUTHORIZATION_STATUSES, row.status, 'authorization status'),
    expires: date(row.expires, 'authorization expires'),
    challenges,
    createdAt: date(row.created_at, 'authorization created_at'),
  };
}

/** The authorizations row; its challenges are rows of their own (challengeToRow). */
export function authorizationToRow(authorization: Authorization): AuthorizationRow {
  return {
    id: authorization.id,
    account_id: authorization.accountId,
    identifier_type: authorization.identifier.type,
    identifier_value: authorization.identifier.value,
    wildcard: authorization.wildcard,
    status: authorization.status,
    expires: authorization.expires,
    created_at: authorization.createdAt,
  };
}

// ---- driver errors -------------------------------------------------------------------------------------

// Moved to errors.ts; re-exported so existing imports keep working.
export { CHECK_VIOLATION, FOREIGN_KEY_VIOLATION, UNIQUE_VIOLATION, sqlError } from './errors.js';
