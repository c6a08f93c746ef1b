import { createHash, createPublicKey } from 'node:crypto';
import { REASON_CODES, type RevocationReason } from '../core/certificate.js';
import { CaError } from '../core/errors.js';
import { REVOKE_MODES, type RevokeMode } from '../core/incident.js';
import { fromPem } from '../core/pem.js';
import { parseSerialText } from '../core/serial-number.js';
import { parseFilter, type CertificateFilter, type FilterParameters } from './certificate-filter.js';

/**
 * What an operator asks of an incident, checked before anything is read or written (DESIGN.md rule 3: bad
 * input gets a precise error and changes nothing). Pure: no I/O, no clock (`now` is the caller's).
 */

/** What the affected certificates are, as the operator chose them (exactly one way). */
export type SelectionInput = {
  /** The inventory's filter grammar (inventory/certificate-filter.ts): parameters, or a query string. */
  select?: FilterParameters | string;
  /** A serials file's text: one serial per line (hex, colons allowed); blank lines and # comments ignored. */
  serials?: string;
  /** A PEM public key, or a PEM certificate holding it: every certificate of that subject key. */
  key?: string;
};

export type ParsedSelection =
  | { kind: 'filter'; filter: CertificateFilter; parameters: Record<string, string | string[]> }
  | { kind: 'serials'; serials: { serial: string; line: number }[] }
  | { kind: 'key'; spkiSha256: string; filter: CertificateFilter };

export interface DeclareInput extends SelectionInput {
  name?: unknown;
  reason?: unknown;
  renewBy?: unknown;
  revoke?: unknown;
  explanationUrl?: unknown;
  drill?: unknown;
}

export interface DeclareRequest {
  name: string;
  reason: RevocationReason;
  renewBy: Date;
  revoke: RevokeMode;
  explanationUrl?: string;
  drill: boolean;
  selection: ParsedSelection;
}

/** The most serials one file may name. */
export const MAX_SERIALS = 1_000_000;
/** The furthest a deadline may lie: the longest a certificate lives (CA/B BR 6.3.2). */
const MAX_DEADLINE_MS = 398 * 86_400_000;
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
/** Reasons a CA revokes for (RFC 5280 §5.3.1); certificateHold and removeFromCRL are not revocations that end. */
const REASONS = Object.keys(REASON_CODES).filter((name) => name !== 'certificateHold' && name !== 'removeFromCRL');

function bad(detail: string): never {
  throw new CaError('malformed', detail);
}

export function parseIncidentName(value: unknown): string {
  if (typeof value !== 'string' || !NAME.test(value)) bad(`name: ${typeof value === 'string' ? `"${value.slice(0, 80)}" is not` : 'must be'} an incident name (a letter or digit, then up to 63 letters, digits, ".", "_" or "-")`);
  return value;
}

/** Exactly one of select, serials and key; each checked as its own kind of input. */
export function parseSelection(input: SelectionInput, spkiOf: (certificateDer: Uint8Array) => Uint8Array): ParsedSelection {
  const given = (['select', 'serials', 'key'] as const).filter((name) => input[name] !== undefined);
  if (given.length === 0) bad('the selection is missing: give one of select (the inventory filter grammar), serials (a serials file) or key (a public key or certificate)');
  if (given.length > 1) bad(`give one selection, not ${given.join(' and ')}`);
  if (input.select !== undefined) return filterSelection(input.select);
  if (input.serials !== undefined) return { kind: 'serials', serials: parseSerialsFile(input.serials) };
  const spkiSha256 = keySha256(input.key, spkiOf);
  return { kind: 'key', spkiSha256, filter: { spki: spkiSha256 } };
}

function filterSelection(select: FilterParameters | string): ParsedSelection {
  const parameters: Record<string, string | string[]> = {};
  if (typeof select === 'string') {
    if (select.trim() === '') bad('select: empty; give filters such as group=payments or issuer=<id>&label=env:prod');
    for (const [name, value] of new URLSearchParams(select.replace(/^\?/, ''))) {
      const held = parameters[name];
      parameters[name] = held === undefined ? value : [...(Array.isArray(held) ? held : [held]), value];
    }
  } else if (typeof select === 'object' && select !== null && !Array.isArray(select)) {
    for (const [name, value] of Object.entries(select)) {
      if (typeof value === 'string' || (Array.isArray(value) && value.every((item) => typeof item === 'string'))) parameters[name] = value as string | string[];
      else bad(`select: parameter "${name}" must be text`);
    }
  } else {
    bad('select: the inventory filter grammar, as parameters or a query string');
  }
  if (Object.keys(parameters).length === 0) bad('select: no filter given; an incident never covers every certificate by accident — name the group, issuer, key, names or labels');
  let filter: CertificateFilter;
  try {
    filter = parseFilter(parameters, { allowSort: false }).filter;
  } catch (error) {
    if (error instanceof CaError) bad(`select: ${error.detail}`);
    throw error;
  }
  if (filter.status !== undefined && filter.status !== 'valid') bad(`select: parameter "status": an incident covers valid certificates; status=${filter.status} selects none of them`);
  return { kind: 'filter', filter, parameters };
}

/** A serials file: each line a serial (hex, optional colons or 0x), or blank, or a # comment. */
export function parseSerialsFile(text: string): { serial: string; line: number }[] {
  if (typeof text !== 'string') bad('serials: the text of a serials file');
  const serials: { serial: string; line: number }[] = [];
  const seen = new Set<string>();
  const lines = text.split(/\r?\n/);
  for (const [index, raw] of lines.entries()) {
    const line = raw.replace(/#.*$/, '').trim();
    if (line === '') continue;
    const serial = parseSerialText(line);
    if (serial === undefined) bad(`serials file line ${index + 1}: "${line.slice(0, 80)}" is not a serial number (hex, up to 20 octets)`);
    if (seen.has(serial)) continue;
    seen.add(serial);
    serials.push({ serial, line: index + 1 });
    if (serials.length > MAX_SERIALS) bad(`serials file line ${index + 1}: more than ${MAX_SERIALS.toLocaleString('en')} serials; split the incident or select by filter`);
  }
  if (serials.length === 0) bad('serials file: no serial in it (blank lines and # comments only)');
  return serials;
}

/** The SHA-256 of the SubjectPublicKeyInfo of a PEM public key, or of the key a PEM certificate holds. */
function keySha256(text: unknown, spkiOf: (certificateDer: Uint8Array) => Uint8Array): string {
  if (typeof text !== 'string') bad('key: the PEM text of a public key or a certificate');
  const label = /-----BEGIN ([A-Z ]+)-----/.exec(text)?.[1];
  const der = label === 'PUBLIC KEY' || label === 'CERTIFICATE' ? fromPem(text, label)[0] : undefined;
  if (der === undefined || der.length === 0) bad('key: expected a PEM "PUBLIC KEY" (SubjectPublicKeyInfo) or "CERTIFICATE"');
  let spki: Uint8Array;
  try {
    spki = label === 'CERTIFICATE' ? spkiOf(der) : der;
    createPublicKey({ key: Buffer.from(spki), format: 'der', type: 'spki' });
  } catch {
    return bad(`key: the PEM ${label === 'CERTIFICATE' ? 'certificate' : 'public key'} cannot be read`);
  }
  return createHash('sha256').update(spki).digest('hex');
}

function instantOf(what: string, value: unknown): Date {
  if (typeof value !== 'string' || !/^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2}))?$/.test(value)) {
    bad(`${what}: ${typeof value === 'string' ? `"${value.slice(0, 40)}" is not` : 'must be'} a date (2026-12-31), an RFC 3339 date-time (2026-12-31T12:00:00Z) or a duration from now (7d, 48h, 90m)`);
  }
  const date = new Date(value.length === 10 ? `${value}T00:00:00Z` : value);
  if (Number.isNaN(date.getTime())) bad(`${what}: "${value}" is not a real date`);
  return date;
}

/** A declaration, checked whole against `now` (the caller's Clock). */
export function parseDeclare(input: DeclareInput, now: Date, spkiOf: (certificateDer: Uint8Array) => Uint8Array): DeclareRequest {
  const name = parseIncidentName(input.name);
  if (typeof input.reason !== 'string' || !REASONS.includes(input.reason)) bad(`reason: must be one of ${REASONS.join(', ')}`);
  const reason = REASON_CODES[input.reason]!;
  if (input.renewBy === undefined) bad('renewBy: the deadline is missing (--renew-by WHEN): by when every affected certificate must be replaced');
  const relative = typeof input.renewBy === 'string' ? /^(\d{1,4})(m|h|d)$/.exec(input.renewBy) : null;
  // A duration (`7d`, `48h`) counts from now, by the server's clock (DESIGN.md rule 4), not the caller's.
  const renewBy = relative ? new Date(now.getTime() + Number(relative[1]) * { m: 60_000, h: 3_600_000, d: 86_400_000 }[relative[2] as 'm' | 'h' | 'd']) : instantOf('renewBy', input.renewBy);
  if (renewBy.getTime() <= now.getTime()) bad(`renewBy: ${renewBy.toISOString()} is not in the future (now ${now.toISOString()})`);
  if (renewBy.getTime() > now.getTime() + MAX_DEADLINE_MS) bad(`renewBy: ${renewBy.toISOString()} is more than 398 days ahead, beyond the life of any certificate`);
  const revoke = input.revoke === undefined ? 'when-replaced' : input.revoke;
  if (typeof revoke !== 'string' || !(REVOKE_MODES as readonly string[]).includes(revoke)) bad(`revoke: must be one of ${REVOKE_MODES.join(', ')}`);
  if (input.drill !== undefined && typeof input.drill !== 'boolean') bad('drill: true or false');
  let explanationUrl: string | undefined;
  if (input.explanationUrl !== undefined) {
    let url: URL | undefined;
    try {
      url = typeof input.explanationUrl === 'string' && input.explanationUrl.length <= 2048 ? new URL(input.explanationUrl) : undefined;
    } catch {
      url = undefined;
    }
    if (url === undefined || (url.protocol !== 'https:' && url.protocol !== 'http:')) bad('explanationUrl: an absolute https (or http) URL of at most 2048 characters, shown to ACME clients (RFC 9773 §4.2)');
    explanationUrl = url.href;
  }
  const selection = parseSelection(input, spkiOf);
  return { name, reason, renewBy, revoke: revoke as RevokeMode, drill: input.drill === true, selection, ...(explanationUrl === undefined ? {} : { explanationUrl }) };
}

/** The reason's name (RFC 5280 §5.3.1), as the CLI and the API spell it. */
export function reasonName(reason: RevocationReason): string {
  return Object.entries(REASON_CODES).find(([, code]) => code === reason)?.[0] ?? String(reason);
}
