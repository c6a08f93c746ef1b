import { createHash } from 'node:crypto';
import { CaError } from '../core/errors.js';
import { GROUP_NAME } from '../core/group.js';
import { parseSerialText } from '../core/serial-number.js';
import { LABEL_KEY } from '../policy/labels.js';

/**
 * The one filter grammar of the certificate inventory: the admin API (`GET /admin/v1/certificates`, its
 * exports and counts), the CLI (`chancery certs search|export|count`, the same names as flags) and every later
 * reader (incidents, the dashboard) parse their parameters here, so a name means the same everywhere and a
 * mistake gets the same precise answer: a CaError('malformed') naming the parameter. Pure: no I/O, no clock
 * (`status=expired` and `expiringWithinDays` are resolved against the caller's Clock by the store).
 */

export type CertificateStatusFilter = 'valid' | 'expired' | 'revoked';
export type CertificateSort = 'notAfter' | '-notAfter' | 'issuedAt' | '-issuedAt';
export const CERTIFICATE_SORTS: readonly CertificateSort[] = ['notAfter', '-notAfter', 'issuedAt', '-issuedAt'];
/** Newest first, as the certificate list has always answered. */
export const DEFAULT_SORT: CertificateSort = '-issuedAt';

export interface LabelMatch {
  key: string;
  value: string;
}

/** Every condition holds (AND). Names and suffixes are lower-case; serials canonical (core/serial-number.ts). */
export interface CertificateFilter {
  /** An identifier (DNS name or IP address) of the certificate, exactly. */
  name?: string;
  /** An identifier ends with this text (`.pay.internal`: the names below pay.internal). */
  suffix?: string;
  group?: string;
  labels?: LabelMatch[];
  /** `valid`: not revoked and notAfter still ahead; `expired`: not revoked and notAfter passed. */
  status?: CertificateStatusFilter;
  issuer?: string;
  profile?: string;
  account?: string;
  /** SHA-256 of the subject public key info, lower-case hex. */
  spki?: string;
  serial?: string;
  /** Valid, with notAfter within this many days from now. */
  expiringWithinDays?: number;
  /** Stored strictly after this instant. */
  issuedAfter?: Date;
  /** Stored strictly before this instant. */
  issuedBefore?: Date;
}

/** Where a page continues: the sort key (notAfter or issuedAt, and the serial) of the last row served. */
export interface KeysetPosition {
  at: Date;
  serial: string;
}

export interface CertificateSearch {
  filter: CertificateFilter;
  sort: CertificateSort;
  limit: number;
  after?: KeysetPosition;
}

/** Parameters as they arrive: a query string's or a command line's (repeated ones as arrays). */
export type FilterParameters = Record<string, unknown>;

export const MAX_PAGE = 500;
export const DEFAULT_PAGE = 100;
const MAX_LABELS = 16;

const FILTER_NAMES = [
  'name',
  'suffix',
  'group',
  'label',
  'status',
  'issuer',
  'profile',
  'account',
  'spki',
  'serial',
  'expiringWithinDays',
  'issuedAfter',
  'issuedBefore',
] as const;
const PAGING_NAMES = ['sort', 'cursor', 'limit'] as const;

/** The parameter names of the grammar: filters, and for lists the paging ones. */
export function parameterNames(options: { paging: boolean }): readonly string[] {
  return options.paging ? [...FILTER_NAMES, ...PAGING_NAMES] : [...FILTER_NAMES, 'sort'];
}

function bad(parameter: string, detail: string): never {
  throw new CaError('malformed', `parameter "${parameter}": ${detail}`);
}

/** A single value: a repeated parameter that is not `label` is refused, not silently narrowed to one. */
function single(parameter: string, value: unknown): string {
  if (Array.isArray(value)) {
    if (value.length !== 1) bad(parameter, 'given more than once');
    return single(parameter, value[0]);
  }
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (typeof value !== 'string') bad(parameter, 'must be text');
  if (value.length === 0) bad(parameter, 'is empty');
  if (value.length > 512) bad(parameter, 'is longer than 512 characters');
  return value;
}

/** DNS names (with a wildcard label), IPv4 and IPv6 addresses: what an identifier can hold. */
const NAME_TEXT = /^[a-z0-9*._:-]{1,253}$/;

function nameOf(parameter: string, value: string): string {
  const name = value.trim().toLowerCase().replace(/\.$/, '');
  if (!NAME_TEXT.test(name)) bad(parameter, `"${value.slice(0, 80)}" is not a DNS name or IP address (letters, digits, ".", "-", "*", ":")`);
  return name;
}

function integerOf(parameter: string, value: string, min: number, max: number): number {
  if (!/^\d{1,7}$/.test(value)) bad(parameter, `"${value.slice(0, 40)}" is not a whole number`);
  const n = Number(value);
  if (n < min || n > max) bad(parameter, `must be between ${min} and ${max}`);
  return n;
}

/** RFC 3339 date-time, or a date (midnight UTC). */
const INSTANT = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2}))?$/;

function instantOf(parameter: string, value: string): Date {
  if (!INSTANT.test(value)) bad(parameter, `"${value.slice(0, 40)}" is not a date (2026-01-31) or an RFC 3339 date-time (2026-01-31T12:00:00Z)`);
  const date = new Date(value.length === 10 ? `${value}T00:00:00Z` : value);
  // Date rolls 2026-02-30 over into March; a calendar date that does not exist is a mistake to report.
  const [year, month, day] = value.slice(0, 10).split('-').map(Number) as [number, number, number];
  const lastDay = new Date(Date.UTC(year, month, 0)).getUTCDate();
  if (Number.isNaN(date.getTime()) || month < 1 || month > 12 || day < 1 || day > lastDay) bad(parameter, `"${value.slice(0, 40)}" is not a real date`);
  return date;
}

function labelOf(value: string): LabelMatch {
  const at = value.indexOf(':');
  if (at <= 0 || at === value.length - 1) bad('label', `"${value.slice(0, 80)}" must be key:value`);
  const key = value.slice(0, at);
  if (!LABEL_KEY.test(key)) bad('label', `key "${key.slice(0, 80)}" must start with a lower-case letter and hold only a-z, 0-9, ".", "_" or "-"`);
  if (/\p{Cc}/u.test(value)) bad('label', 'holds a control character');
  return { key, value: value.slice(at + 1) };
}

const TOKEN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

function tokenOf(parameter: string, value: string): string {
  if (!TOKEN.test(value)) bad(parameter, `"${value.slice(0, 80)}" holds characters an ${parameter} id never has`);
  return value;
}

/** The filter alone (an export, a count): the filters, and `sort` when `allowSort`. */
export function parseFilter(parameters: FilterParameters, options: { allowSort?: boolean } = {}): { filter: CertificateFilter; sort: CertificateSort } {
  const known = options.allowSort === false ? FILTER_NAMES : [...FILTER_NAMES, 'sort'];
  return parseWith(parameters, known);
}

function parseWith(parameters: FilterParameters, known: readonly string[]): { filter: CertificateFilter; sort: CertificateSort } {
  for (const name of Object.keys(parameters)) {
    if (parameters[name] === undefined) continue;
    if (!known.includes(name)) bad(name, `unknown; the parameters are ${known.join(', ')}`);
  }
  const value = (name: string): string | undefined => (parameters[name] === undefined ? undefined : single(name, parameters[name]));
  const filter: CertificateFilter = {};
  const name = value('name');
  if (name !== undefined) filter.name = nameOf('name', name);
  const suffix = value('suffix');
  if (suffix !== undefined) filter.suffix = nameOf('suffix', suffix);
  const group = value('group');
  if (group !== undefined) {
    if (!GROUP_NAME.test(group)) bad('group', `"${group.slice(0, 80)}" is not a group name`);
    filter.group = group;
  }
  const labels = parameters.label;
  if (labels !== undefined) {
    const list = (Array.isArray(labels) ? labels : [labels]).map((item) => single('label', item));
    if (list.length > MAX_LABELS) bad('label', `at most ${MAX_LABELS}`);
    filter.labels = list.map(labelOf);
  }
  const status = value('status');
  if (status !== undefined) {
    if (status !== 'valid' && status !== 'expired' && status !== 'revoked') bad('status', `"${status.slice(0, 40)}" is not one of valid, expired, revoked`);
    filter.status = status;
  }
  const issuer = value('issuer');
  if (issuer !== undefined) filter.issuer = tokenOf('issuer', issuer);
  const profile = value('profile');
  if (profile !== undefined) filter.profile = tokenOf('profile', profile);
  const account = value('account');
  if (account !== undefined) filter.account = tokenOf('account', account);
  const spki = value('spki');
  if (spki !== undefined) {
    if (!/^[0-9a-fA-F]{64}$/.test(spki)) bad('spki', 'must be the SHA-256 of the SubjectPublicKeyInfo: 64 hex digits');
    filter.spki = spki.toLowerCase();
  }
  const serial = value('serial');
  if (serial !== undefined) filter.serial = parseSerialText(serial) ?? bad('serial', `"${serial.slice(0, 80)}" is not a serial number (hex, up to 20 octets)`);
  const expiring = value('expiringWithinDays');
  if (expiring !== undefined) {
    filter.expiringWithinDays = integerOf('expiringWithinDays', expiring, 1, 3650);
    if (filter.status !== undefined && filter.status !== 'valid') bad('expiringWithinDays', `selects valid certificates, which status=${filter.status} excludes`);
  }
  const after = value('issuedAfter');
  if (after !== undefined) filter.issuedAfter = instantOf('issuedAfter', after);
  const before = value('issuedBefore');
  if (before !== undefined) filter.issuedBefore = instantOf('issuedBefore', before);
  if (filter.issuedAfter && filter.issuedBefore && filter.issuedAfter.getTime() >= filter.issuedBefore.getTime()) bad('issuedBefore', 'must be later than issuedAfter');
  const sortText = value('sort');
  let sort = DEFAULT_SORT;
  if (sortText !== undefined) {
    if (!(CERTIFICATE_SORTS as readonly string[]).includes(sortText)) bad('sort', `"${sortText.slice(0, 40)}" is not one of ${CERTIFICATE_SORTS.join(', ')}`);
    sort = sortText as CertificateSort;
  }
  return { filter, sort };
}

/** A list request: the filters, `sort`, `limit` (1..500, default 100) and `cursor` (from the previous page). */
export function parseSearch(parameters: FilterParameters, options: { maxLimit?: number } = {}): CertificateSearch {
  const { filter, sort } = parseWith(parameters, [...FILTER_NAMES, ...PAGING_NAMES]);
  const maxLimit = options.maxLimit ?? MAX_PAGE;
  const limit = parameters.limit === undefined ? Math.min(DEFAULT_PAGE, maxLimit) : integerOf('limit', single('limit', parameters.limit), 1, maxLimit);
  const cursor = parameters.cursor === undefined ? undefined : single('cursor', parameters.cursor);
  const search: CertificateSearch = { filter, sort, limit };
  if (cursor !== undefined) search.after = decodeSearchCursor(cursor, filter, sort);
  return search;
}

const CURSOR_VERSION = 'c1';

/**
 * Which search a cursor belongs to: a cursor carries the hash of its filter and its sort, so one taken from
 * another search (whose keyset position would skip or repeat rows here) is refused instead of obeyed.
 */
function fingerprint(filter: CertificateFilter, sort: CertificateSort): string {
  const canonical = JSON.stringify([sort, ...FILTER_NAMES.map((name) => filterValue(filter, name))]);
  return createHash('sha256').update(canonical).digest('base64url').slice(0, 12);
}

function filterValue(filter: CertificateFilter, name: (typeof FILTER_NAMES)[number]): unknown {
  if (name === 'label') return filter.labels?.map((l) => `${l.key}:${l.value}`).sort() ?? null;
  const value = filter[name];
  return value instanceof Date ? value.toISOString() : value ?? null;
}

/** The opaque cursor after `position` (base64url JSON: version, search fingerprint, sort key, serial). */
export function encodeSearchCursor(filter: CertificateFilter, sort: CertificateSort, position: KeysetPosition): string {
  return Buffer.from(JSON.stringify([CURSOR_VERSION, fingerprint(filter, sort), position.at.toISOString(), position.serial]), 'utf8').toString('base64url');
}

export function decodeSearchCursor(cursor: string, filter: CertificateFilter, sort: CertificateSort): KeysetPosition {
  const refuse = (why: string): never => bad('cursor', why);
  if (cursor.length > 256 || !/^[A-Za-z0-9_-]+$/.test(cursor)) refuse('not a cursor this server issued');
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    return refuse('not a cursor this server issued');
  }
  if (!Array.isArray(parsed) || parsed.length !== 4 || parsed[0] !== CURSOR_VERSION || !parsed.every((item) => typeof item === 'string')) {
    return refuse('not a cursor this server issued');
  }
  const [, print, at, serial] = parsed as string[];
  if (print !== fingerprint(filter, sort)) refuse('it belongs to a search with other filters or another sort; start again without it');
  const date = new Date(at!);
  if (!INSTANT.test(at!) || Number.isNaN(date.getTime()) || parseSerialText(serial!) !== serial) refuse('not a cursor this server issued');
  return { at: date, serial: serial! };
}
