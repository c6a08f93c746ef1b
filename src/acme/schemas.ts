import { CaError } from '../core/errors.js';
import type { Identifier, IdentifierType } from '../core/identifier.js';
import { isCertId } from './linker.js';

/**
 * Hand-written validators for the JSON payloads of ACME requests (RFC 8555 §7.3-§7.6, RFC 9773 §5). Each turns
 * an `unknown` (the verified JWS payload) into a typed request or throws CaError('malformed') naming the field,
 * so a client learns exactly what to fix. Unrecognised fields are ignored, as RFC 8555 §7.1 requires.
 * Semantics beyond shape (is this name allowed, is this reason code accepted) belong to the RA and policy.
 */

type JsonObject = Record<string, unknown>;

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}

export function requireObject(value: unknown, what: string): JsonObject {
  if (!isObject(value)) throw new CaError('malformed', `${what} must be a JSON object, got ${describe(value)}`);
  return value;
}

function optionalBoolean(obj: JsonObject, field: string): boolean | undefined {
  const value = obj[field];
  if (value === undefined) return undefined;
  if (typeof value !== 'boolean') throw new CaError('malformed', `"${field}" must be a boolean, got ${describe(value)}`);
  return value;
}

function requireString(obj: JsonObject, field: string): string {
  const value = obj[field];
  if (typeof value !== 'string') {
    throw new CaError('malformed', value === undefined ? `"${field}" is required` : `"${field}" must be a string, got ${describe(value)}`);
  }
  return value;
}

function optionalString(obj: JsonObject, field: string): string | undefined {
  return obj[field] === undefined ? undefined : requireString(obj, field);
}

const BASE64URL_RE = /^[A-Za-z0-9_-]*$/;
const BASE64URL_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

/**
 * Whether `value` (already known to be in the base64url alphabet) is the one encoding of some bytes. A
 * length of 4n+1 encodes no byte string. A last character that carries 4 (length 4n+2) or 2 (4n+3) bits
 * beyond the final byte must have them zero (RFC 4648 §3.5, "canonical encoding"): otherwise 4 or 16
 * spellings decode to the same bytes, and a signature, key or CSR changed in those bits would still be
 * accepted as the same one (a mutated JWS whose signature differed only there was accepted).
 */
export function isCanonicalBase64url(value: string): boolean {
  const rest = value.length % 4;
  if (rest === 0) return true;
  if (rest === 1) return false;
  const last = BASE64URL_ALPHABET.indexOf(value.charAt(value.length - 1));
  return (last & (rest === 2 ? 0x0f : 0x03)) === 0;
}

/**
 * Strict base64url as RFC 8555 §6.1 / RFC 7515 §2 use it: URL alphabet, no padding, no whitespace, canonical
 * (isCanonicalBase64url), so each value has exactly one spelling.
 */
export function decodeBase64url(value: string, field: string): Buffer {
  if (!BASE64URL_RE.test(value) || value.length % 4 === 1) {
    throw new CaError('malformed', `"${field}" is not base64url without padding (RFC 8555 §6.1)`);
  }
  if (!isCanonicalBase64url(value)) throw new CaError('malformed', `"${field}" is not canonical base64url (RFC 4648 §3.5: unused bits must be zero)`);
  return Buffer.from(value, 'base64url');
}

// ----- flattened JWS objects (RFC 7515 §7.2.2) -----

export interface FlattenedJwsObject {
  protected: string;
  payload: string;
  signature: string;
}

/**
 * RFC 8555 §6.2: requests are flattened JWS JSON, protected header only. An unprotected `header` would let
 * parameters escape the signature, so it is refused; so is the general serialization (`signatures`), which
 * could carry several signers. Used for the request body, the keyChange inner JWS (§7.3.5) and the EAB JWS
 * (§7.3.4).
 */
export function parseFlattenedJws(value: unknown, what: string): FlattenedJwsObject {
  if (!isObject(value)) throw new CaError('malformed', `${what} must be a flattened JWS JSON object, got ${describe(value)}`);
  if ('signatures' in value) {
    throw new CaError('malformed', `${what} uses the general JWS serialization; RFC 8555 §6.2 requires the flattened serialization`);
  }
  if ('header' in value) {
    throw new CaError('malformed', `${what} has an unprotected "header"; RFC 8555 §6.2 allows only the protected header`);
  }
  for (const member of Object.keys(value)) {
    if (member !== 'protected' && member !== 'payload' && member !== 'signature') {
      throw new CaError('malformed', `${what} has an unexpected member "${member}"; a flattened JWS has only protected, payload and signature`);
    }
  }
  const fields = ['protected', 'payload', 'signature'] as const;
  for (const field of fields) {
    const member = value[field];
    if (typeof member !== 'string') {
      throw new CaError('malformed', member === undefined ? `${what} lacks "${field}"` : `${what} "${field}" must be a string`);
    }
    if (!BASE64URL_RE.test(member)) throw new CaError('malformed', `${what} "${field}" is not base64url without padding`);
    // Every part (of the request, the keyChange inner JWS and the EAB JWS alike) has one spelling only.
    if (!isCanonicalBase64url(member)) throw new CaError('malformed', `${what} "${field}" is not canonical base64url (RFC 4648 §3.5: unused bits must be zero)`);
  }
  return { protected: value.protected as string, payload: value.payload as string, signature: value.signature as string };
}

// ----- contacts (RFC 8555 §7.3, RFC 6068) -----

/** Bound on contacts per account: a handful of team addresses, not a mailing list. */
export const MAX_CONTACTS = 10;

// RFC 5322 dot-atom local part without '%' (no percent-encoded tricks) and a DNS domain of at least two labels.
const LOCAL_PART = "[A-Za-z0-9!#$&'*+/=^_`{|}~-]+(?:\\.[A-Za-z0-9!#$&'*+/=^_`{|}~-]+)*";
const LABEL = '[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?';
const ADDRESS_RE = new RegExp(`^(${LOCAL_PART})@(${LABEL}(?:\\.${LABEL})+)$`);

function parseContact(contact: string, index: number): string {
  const field = `contact[${index}]`;
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):/.exec(contact);
  if (!scheme) throw new CaError('invalidContact', `${field} ${JSON.stringify(contact)} is not a URI: use mailto:<address>`);
  if (scheme[1]!.toLowerCase() !== 'mailto') {
    throw new CaError('unsupportedContact', `${field} uses the "${scheme[1]}" scheme; only mailto: contacts are supported`);
  }
  const address = contact.slice(scheme[0].length);
  // RFC 8555 §7.3: servers should reject mailto: URIs with hfields or with more than one address.
  if (address.includes('?')) throw new CaError('invalidContact', `${field} has hfields ("?..."); give a bare mailto:<address>`);
  if (address.includes(',')) throw new CaError('invalidContact', `${field} names more than one address; use one contact per address`);
  const m = ADDRESS_RE.exec(address);
  if (!m || address.length > 254 || m[1]!.length > 64) {
    throw new CaError('invalidContact', `${field} ${JSON.stringify(contact)} is not a plausible email address`);
  }
  return `mailto:${address}`;
}

/** Validates an RFC 8555 §7.1.2 `contact` array; returns normalised mailto: URIs. */
export function parseContacts(value: unknown): string[] {
  if (!Array.isArray(value)) throw new CaError('malformed', `"contact" must be an array of strings, got ${describe(value)}`);
  if (value.length > MAX_CONTACTS) throw new CaError('invalidContact', `"contact" has ${value.length} entries; at most ${MAX_CONTACTS} are allowed`);
  return value.map((entry, index) => {
    if (typeof entry !== 'string') throw new CaError('malformed', `contact[${index}] must be a string, got ${describe(entry)}`);
    return parseContact(entry, index);
  });
}

// ----- accounts (§7.3) -----

export interface NewAccountRequest {
  contacts: string[];
  termsOfServiceAgreed: boolean;
  onlyReturnExisting: boolean;
  externalAccountBinding?: FlattenedJwsObject;
}

/** RFC 8555 §7.3 newAccount payload. The EAB JWS is only shape-checked here; the RA verifies its MAC (§7.3.4). */
export function parseNewAccount(payload: unknown): NewAccountRequest {
  const obj = requireObject(payload, 'newAccount payload');
  const request: NewAccountRequest = {
    contacts: obj.contact === undefined ? [] : parseContacts(obj.contact),
    termsOfServiceAgreed: optionalBoolean(obj, 'termsOfServiceAgreed') ?? false,
    onlyReturnExisting: optionalBoolean(obj, 'onlyReturnExisting') ?? false,
  };
  if (obj.externalAccountBinding !== undefined) {
    request.externalAccountBinding = parseFlattenedJws(obj.externalAccountBinding, '"externalAccountBinding"');
  }
  return request;
}

export interface AccountUpdate {
  contacts?: string[];
  deactivate: boolean;
}

/**
 * RFC 8555 §7.3.2 update and §7.3.6 deactivation. `{}` is the "empty update" of §7.3.3 and changes nothing.
 * Other account fields (orders, termsOfServiceAgreed, ...) are ignored as §7.3.2 says.
 */
export function parseAccountUpdate(payload: unknown): AccountUpdate {
  const obj = requireObject(payload, 'account update');
  const update: AccountUpdate = { deactivate: false };
  if (obj.status !== undefined) {
    // §7.3.6: the only status a client may ask for is "deactivated"; anything else is not a transition it owns.
    if (obj.status !== 'deactivated') throw new CaError('malformed', `"status" may only be "deactivated", got ${JSON.stringify(obj.status)}`);
    update.deactivate = true;
  }
  if (obj.contact !== undefined) update.contacts = parseContacts(obj.contact);
  return update;
}

export interface KeyChangeRequest {
  account: string;
  oldKey: JsonObject;
}

/** RFC 8555 §7.3.5: the payload of the inner JWS of a keyChange request. */
export function parseKeyChange(payload: unknown): KeyChangeRequest {
  const obj = requireObject(payload, 'keyChange inner payload');
  const account = requireString(obj, 'account');
  if (obj.oldKey === undefined) throw new CaError('malformed', '"oldKey" is required');
  return { account, oldKey: requireObject(obj.oldKey, '"oldKey"') };
}

// ----- orders (§7.4) -----

export interface NewOrderRequest {
  identifiers: Identifier[];
  notBefore?: Date;
  notAfter?: Date;
  /** RFC 9773 §5 certID of the certificate this order replaces. */
  replaces?: string;
  /** draft-ietf-acme-profiles: the profile name the client asks for (the RA judges it: invalidProfile). */
  profile?: string;
}

const IDENTIFIER_TYPES: readonly IdentifierType[] = ['dns', 'ip'];
/** Longest DNS name (RFC 1035 presentation form) / IPv6 text; the policy checks the value itself. */
const MAX_IDENTIFIER_LENGTH = 253;

function parseIdentifier(value: unknown, field: string): Identifier {
  const obj = requireObject(value, field);
  const type = obj.type;
  if (typeof type !== 'string') throw new CaError('malformed', `${field}.type must be a string`);
  if (!(IDENTIFIER_TYPES as readonly string[]).includes(type)) {
    throw new CaError('unsupportedIdentifier', `${field} has type "${type}"; only "dns" and "ip" (RFC 8738) are supported`, {
      subproblems: typeof obj.value === 'string' ? [{ kind: 'unsupportedIdentifier', detail: `type "${type}" is not supported`, identifier: { type, value: obj.value } }] : [],
    });
  }
  const v = obj.value;
  if (typeof v !== 'string' || v.length === 0) throw new CaError('malformed', `${field}.value must be a non-empty string`);
  if (v.length > MAX_IDENTIFIER_LENGTH) throw new CaError('malformed', `${field}.value is longer than ${MAX_IDENTIFIER_LENGTH} characters`);
  return { type: type as IdentifierType, value: v };
}

const RFC3339_RE = /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$/;

/** RFC 3339 §5.6 date-time (RFC 8555 §7.4 notBefore/notAfter). Calendar-checked: no 30 February. */
export function parseRfc3339(value: string, field: string): Date {
  const m = RFC3339_RE.exec(value);
  const bad = (): CaError => new CaError('malformed', `"${field}" must be an RFC 3339 date-time such as 2026-01-01T00:00:00Z, got ${JSON.stringify(value)}`);
  if (!m) throw bad();
  const [year, month, day, hour, minute, second] = [m[1], m[2], m[3], m[4], m[5], m[6]].map(Number) as [number, number, number, number, number, number];
  const daysInMonth = new Date(Date.UTC(year, month, 0)).getUTCDate();
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth || hour > 23 || minute > 59 || second > 60) throw bad();
  const date = new Date(value.toUpperCase());
  if (Number.isNaN(date.getTime())) throw bad();
  return date;
}

/** RFC 8555 §7.4 newOrder payload (+ RFC 9773 §5 `replaces`). */
export function parseNewOrder(payload: unknown): NewOrderRequest {
  const obj = requireObject(payload, 'newOrder payload');
  if (!Array.isArray(obj.identifiers)) {
    throw new CaError('malformed', obj.identifiers === undefined ? '"identifiers" is required' : `"identifiers" must be an array, got ${describe(obj.identifiers)}`);
  }
  if (obj.identifiers.length === 0) throw new CaError('malformed', '"identifiers" must name at least one identifier');
  const request: NewOrderRequest = { identifiers: obj.identifiers.map((value, index) => parseIdentifier(value, `identifiers[${index}]`)) };
  const notBefore = optionalString(obj, 'notBefore');
  const notAfter = optionalString(obj, 'notAfter');
  if (notBefore !== undefined) request.notBefore = parseRfc3339(notBefore, 'notBefore');
  if (notAfter !== undefined) request.notAfter = parseRfc3339(notAfter, 'notAfter');
  if (request.notBefore && request.notAfter && request.notAfter <= request.notBefore) {
    throw new CaError('malformed', '"notAfter" must be later than "notBefore"');
  }
  const replaces = optionalString(obj, 'replaces');
  if (replaces !== undefined) {
    if (!isCertId(replaces)) throw new CaError('malformed', '"replaces" must be an RFC 9773 certID: base64url(keyIdentifier).base64url(serial)');
    request.replaces = replaces;
  }
  const profile = optionalString(obj, 'profile');
  if (profile !== undefined) {
    // A name, not free text: it is echoed in the order and in problem details.
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(profile)) {
      throw new CaError('invalidProfile', `"profile" must be a profile name from the directory's meta.profiles, got ${JSON.stringify(profile.slice(0, 64))}`);
    }
    request.profile = profile;
  }
  return request;
}

/** RFC 8555 §7.4.1 newAuthz payload: {"identifier": {"type", "value"}}. */
export function parseNewAuthz(payload: unknown): { identifier: Identifier } {
  const obj = requireObject(payload, 'newAuthz payload');
  if (obj.identifier === undefined) throw new CaError('malformed', '"identifier" is required');
  return { identifier: parseIdentifier(obj.identifier, 'identifier') };
}

/** RFC 8555 §7.4 finalize payload: the CSR as base64url DER (not PEM). */
export function parseFinalize(payload: unknown): { csr: Uint8Array } {
  const obj = requireObject(payload, 'finalize payload');
  const csr = decodeBase64url(requireString(obj, 'csr'), 'csr');
  if (csr.length === 0) throw new CaError('malformed', '"csr" is empty');
  return { csr };
}

// ----- authorizations and challenges (§7.5) -----

/** RFC 8555 §7.5.2: the only update a client may post to an authorization is {"status": "deactivated"}. */
export function parseAuthorizationUpdate(payload: unknown): { deactivate: true } {
  const obj = requireObject(payload, 'authorization update');
  if (obj.status !== 'deactivated') {
    throw new CaError('malformed', `an authorization update must be {"status": "deactivated"}, got status ${JSON.stringify(obj.status ?? null)}`);
  }
  return { deactivate: true };
}

/** RFC 8555 §7.5.1: the challenge response is a JSON object (usually `{}`); its fields are ignored. */
export function parseChallengeResponse(payload: unknown): void {
  requireObject(payload, 'challenge response');
}

// ----- revocation (§7.6) -----

/** RFC 8555 §7.6 revokeCert payload. The reason code's acceptability is the RA's (badRevocationReason). */
export function parseRevokeCert(payload: unknown): { certificate: Uint8Array; reason?: number } {
  const obj = requireObject(payload, 'revokeCert payload');
  const certificate = decodeBase64url(requireString(obj, 'certificate'), 'certificate');
  if (certificate.length === 0) throw new CaError('malformed', '"certificate" is empty');
  const reason = obj.reason;
  if (reason === undefined) return { certificate };
  if (typeof reason !== 'number' || !Number.isInteger(reason)) throw new CaError('malformed', `"reason" must be an integer, got ${describe(reason)}`);
  return { certificate, reason };
}
