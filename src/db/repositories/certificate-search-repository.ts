import { REASON_CODES, type IssuedCertificate } from '../../core/certificate.js';
import { CSV_COLUMNS, CSV_FORMULA_START, type ExportColumn, type ExportFormat } from '../../core/certificate-export.js';
import { DAY } from '../../core/clock.js';
import type { Database, Queryable } from '../database.js';
import { certificateFromRow } from '../row-mappers.js';
import type { CertificateRow } from '../row-types.js';

/**
 * The inventory's reads of the certificates table (DESIGN.md rule 9): one SQL builder for every search,
 * count and export page (an export's lines rendered by the statement itself: exportLinesSql), each a keyset
 * walk over an index of migrations 0013 and 0018 (never OFFSET), and the exact
 * counts by group, status and expiry bucket kept by that migration's deltas. `now` is always a parameter
 * (rule 4): `expired` and the buckets are decided against the caller's Clock, never the server's.
 */

/** What to find (every condition holds). The inventory's filter, resolved against a clock and a scope. */
export interface SearchCriteria {
  /** An identifier, exactly (lower-case). */
  name?: string;
  /** An identifier ends with this (lower-case). */
  suffix?: string;
  /** Only these groups (a scope, a group filter, or both intersected); empty matches nothing. */
  groups?: readonly string[];
  labels?: readonly { key: string; value: string }[];
  status?: 'valid' | 'expired' | 'revoked';
  issuer?: string;
  profile?: string;
  account?: string;
  spki?: string;
  serial?: string;
  /** Valid and not expired, with notAfter at or before this instant. */
  expiringBy?: Date;
  issuedAfter?: Date;
  issuedBefore?: Date;
}

export type SearchOrder = { by: 'notAfter' | 'issuedAt'; descending: boolean };

export interface SearchPage {
  criteria: SearchCriteria;
  now: Date;
  order: SearchOrder;
  limit: number;
  /** Continue after this sort key (exclusive). */
  after?: { at: Date; serial: string };
  /** Leave the DER out (an incident's selection reads thousands): the rows come back with an empty `der`. */
  withoutDer?: boolean;
}

/** A page of an export: the lines in sort order, rendered by the database, and where the next page starts. */
export interface ExportPage {
  lines: string[];
  /** The sort key of the last line (set when there is more). */
  last?: { at: Date; serial: string };
  more: boolean;
}

/** Counts of one group; group '' holds the certificates recorded with no group. */
export interface GroupCounts {
  group: string;
  /** Not revoked, notAfter ahead (expiring7/30/90 are part of it: within 7, 30 and 90 days). */
  valid: number;
  expired: number;
  revoked: number;
  expiring7: number;
  expiring30: number;
  expiring90: number;
}

const COLUMNS = [
  'serial',
  'issuer_id',
  'crl_shard',
  'der',
  'identifiers',
  'spki_sha256',
  'not_before',
  'not_after',
  'status',
  'revoked_at',
  'revocation_reason',
  'invalidity_date',
  'created_at',
  'account_id',
  'order_id',
  'replaces_serial',
  'profile',
  'no_rev_avail',
  'group_name',
  'labels',
];

/**
 * Rows without their DER (`withoutDer`: an incident's selection reads thousands), and times as epoch
 * milliseconds (float8), which the driver reads with parseFloat instead of parsing timestamp text into
 * Dates — most of such a page's client time otherwise. Exact: every time is written from a JS Date, so it
 * has millisecond precision.
 */
const WITHOUT_DER_PROJECTION = [
  ...COLUMNS.filter((name) => !['der', 'not_before', 'not_after', 'created_at', 'revoked_at', 'invalidity_date'].includes(name)).map((name) => `c.${name}`),
  ...['not_before', 'not_after', 'created_at', 'revoked_at', 'invalidity_date'].map((name) => `(extract(epoch FROM c.${name}) * 1000)::float8 AS ${name}_ms`),
].join(', ');

interface EpochTimes {
  not_before_ms: number;
  not_after_ms: number;
  created_at_ms: number;
  revoked_at_ms: number | null;
  invalidity_date_ms: number | null;
}

/** The row is the driver's, used once: filled in place rather than copied (a selection maps thousands). */
function withoutDerRowToCertificate(row: CertificateRow & EpochTimes): IssuedCertificate {
  row.der = EMPTY;
  row.not_before = new Date(row.not_before_ms);
  row.not_after = new Date(row.not_after_ms);
  row.created_at = new Date(row.created_at_ms);
  row.revoked_at = row.revoked_at_ms === null ? null : new Date(row.revoked_at_ms);
  row.invalidity_date = row.invalidity_date_ms === null ? null : new Date(row.invalidity_date_ms);
  return certificateFromRow(row);
}

const EMPTY = new Uint8Array(0);

/**
 * The export, rendered by the statement (exportLinesSql): each row comes back as its finished CSV or JSON
 * line, so the exporter only joins strings. Mapping each row to an IssuedCertificate and writing its line
 * in Node cost about 25 µs a row (the driver parsing a dozen columns, then the text), twice PostgreSQL's
 * work for the row. Rendered here, measured with the export of bench:inventory (132,000 rows, a shared
 * 2-core machine): the exporter's CPU fell from about 29 to 9 µs a row and PostgreSQL's rose from about
 * 15 to 18 µs, most of which is the keyset walk's heap reads. The lines are byte for byte what
 * core/certificate-export.ts describes, and what the JavaScript rendering in test/helpers/export-reference.ts
 * writes (test/integration/inventory/certificate-export.test.ts, on PGlite and PostgreSQL).
 */

/** What exportLinesSql reads of each row of the page (`c.` in selectSql, `p.` around it). */
const EXPORT_SOURCE = ['serial', 'identifiers', 'spki_sha256', 'not_before', 'not_after', 'status', 'revoked_at', 'revocation_reason', 'created_at', 'account_id', 'replaces_serial', 'profile', 'group_name', 'issuer_id', 'labels']
  .map((name) => `c.${name}`)
  .join(', ');

/** A SQL string literal; an escape string (E'') when it holds a line break, which stays readable. */
function sqlText(text: string): string {
  if (!/[\r\n]/.test(text)) return `'${text.replace(/'/g, "''")}'`;
  return `E'${text.replace(/\\/g, '\\\\').replace(/'/g, "''").replace(/\r/g, '\\r').replace(/\n/g, '\\n')}'`;
}

/**
 * A timestamptz as Date.prototype.toISOString() writes it (milliseconds truncated, as a Date holds them),
 * in UTC whatever the session's TimeZone. Years 1-9999, the range of X.509 times.
 */
const isoSql = (t: string): string => `to_char(${t} AT TIME ZONE INTERVAL '0', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;

/** A text as a JSON string, escaped as JSON.stringify does (", \, and control characters; the rest as is). */
const jsonSql = (v: string): string => `to_json(${v})::text`;

/** The CSV cell of a text `v` (a column reference: it is read several times), defused and quoted. */
function csvCellSql(v: string): string {
  const formula = `ascii(${v}) IN (${CSV_FORMULA_START.map((c) => c.codePointAt(0)).join(', ')})`;
  // strpos rather than a regular expression: a third of the cost, and most cells need neither.
  const quote = `(strpos(${v}, '"') > 0 OR strpos(${v}, ',') > 0 OR strpos(${v}, E'\\r') > 0 OR strpos(${v}, E'\\n') > 0)`;
  return `CASE WHEN ${quote} THEN '"' || CASE WHEN ${formula} THEN '''' ELSE '' END || replace(${v}, '"', '""') || '"' WHEN ${formula} THEN '''' || ${v} ELSE ${v} END`;
}

/**
 * The names of `p.identifiers` (a jsonb array of {type, value}) in their order: one name (most
 * certificates) read directly, several through the array's elements.
 */
function namesSql(format: ExportFormat): string {
  const element = (e: string): string => (format === 'csv' ? `${e} ->> 'value'` : `'{"type":' || ${jsonSql(`${e} ->> 'type'`)} || ',"value":' || ${jsonSql(`${e} ->> 'value'`)} || '}'`);
  const all = `array_to_string(ARRAY(SELECT ${element('i.value')} FROM jsonb_array_elements(p.identifiers) WITH ORDINALITY AS i (value, ord) ORDER BY i.ord), ${format === 'csv' ? `' '` : `','`})`;
  const names = `CASE WHEN jsonb_array_length(p.identifiers) = 1 THEN ${element('p.identifiers -> 0')} ELSE ${all} END`;
  return format === 'csv' ? `coalesce(${names}, '')` : `'[' || coalesce(${names}, '') || ']'`;
}

/**
 * The labels of `p.labels` (`j.t`: its jsonb text) in the order JavaScript gives the object the driver
 * parses from that text: integer-like keys ("0", "42": array indices) first, ascending, then the others in
 * the text's order (jsonb's: by length, then bytes). The index keys are in ascending order in the text too,
 * so "first" is the whole rule.
 *
 * jsonb's text is `{"k": "v", "k2": "v2"}` (labels are text: labelsFromJson). Without a backslash in it, no
 * key or value holds a quote (it would be written \"), so every `": "` and `", "` in it is a separator and
 * the text between is each key and value as stored; without a key of digits only (`"42": `) the text's
 * order is JavaScript's. Then the separators are all there is to replace: about 1 µs a row, where taking
 * the object apart (jsonb_each_text) costs about 5. Any other labels are taken apart, keys in the order
 * above and every string escaped as JSON.stringify does.
 */
function labelsSql(format: ExportFormat): string {
  const indexFirst = `CASE WHEN e.key ~ '^(0|[1-9][0-9]{0,9})$' AND (length(e.key) < 10 OR e.key COLLATE "C" <= '4294967294') THEN 0 ELSE 1 END`;
  const pairs = `FROM jsonb_each_text(p.labels) WITH ORDINALITY AS e (key, value, ord)`;
  // E'\\' is a backslash whatever standard_conforming_strings says.
  const plain = `(strpos(j.t, E'\\\\') = 0 AND j.t !~ '"[0-9]+": ')`;
  if (format === 'csv') {
    const fast = `replace(replace(left(right(j.t, -2), -2), '": "', '='), '", "', ';')`;
    const slow = `coalesce((SELECT string_agg(e.key || '=' || e.value, ';' ORDER BY ${indexFirst}, e.ord) ${pairs}), '')`;
    return `CASE WHEN j.t IS NULL THEN '' WHEN ${plain} THEN ${fast} ELSE ${slow} END`;
  }
  const fast = `replace(replace(j.t, '": "', '":"'), '", "', '","')`;
  const slow = `'{' || coalesce((SELECT string_agg(${jsonSql('e.key')} || ':' || ${jsonSql('e.value')}, ',' ORDER BY ${indexFirst}, e.ord) ${pairs}), '') || '}'`;
  return `CASE WHEN j.t IS NULL THEN '{}' WHEN ${plain} THEN ${fast} ELSE ${slow} END`;
}

/** Each column's value as SQL text (`x.names`, `x.labels` computed once per row), and whether it is free text. */
function exportValues(now: string): Record<ExportColumn, { sql: string; text: boolean }> {
  const reasons = Object.entries(REASON_CODES).map(([name, code]) => `WHEN p.revocation_reason = ${code} THEN ${sqlText(name)}`);
  return {
    // serial, spkiSha256 and replaces are lower-case hex (the CHECKs of serials and certificates, and
    // replaces_serial's foreign key): nothing to quote or escape. So are the times and the fixed words.
    serial: { sql: 'p.serial', text: false },
    status: { sql: `CASE WHEN p.status = 'revoked' THEN 'revoked' WHEN p.not_after <= ${now} THEN 'expired' ELSE 'valid' END`, text: false },
    names: { sql: 'x.names', text: true },
    group: { sql: `coalesce(p.group_name, '')`, text: true },
    labels: { sql: 'x.labels', text: true },
    notBefore: { sql: isoSql('p.not_before'), text: false },
    notAfter: { sql: isoSql('p.not_after'), text: false },
    issuedAt: { sql: isoSql('p.created_at'), text: false },
    issuer: { sql: 'p.issuer_id', text: true },
    profile: { sql: 'p.profile', text: true },
    account: { sql: `coalesce(p.account_id, '')`, text: true },
    spkiSha256: { sql: 'p.spki_sha256', text: false },
    replaces: { sql: `coalesce(p.replaces_serial, '')`, text: false },
    revokedAt: { sql: `coalesce(${isoSql('p.revoked_at')}, '')`, text: false },
    // RFC 5280 names (REASON_CODES); 'unspecified' for a code without one.
    revocationReason: { sql: `CASE WHEN p.revocation_reason IS NULL THEN '' ${reasons.join(' ')} ELSE 'unspecified' END`, text: false },
  };
}

/** Literal text and SQL expressions concatenated with ||, adjacent literals merged into one. */
function concatSql(parts: readonly ({ literal: string } | { sql: string })[]): string {
  const merged: string[] = [];
  let literal = '';
  for (const part of parts) {
    if ('literal' in part) literal += part.literal;
    else {
      if (literal !== '') merged.push(sqlText(literal));
      literal = '';
      merged.push(part.sql);
    }
  }
  if (literal !== '') merged.push(sqlText(literal));
  return merged.join(' || ');
}

/**
 * The export statement around one page's SELECT (`inner`, selectSql in 'export' mode, LIMIT applied): each
 * row's line, its serial and its sort key (epoch seconds) for the next page's keyset. The lines are made
 * after the LIMIT, for the page's rows only, whatever plan the page has; the laterals compute the labels'
 * text, names and labels once per row (OFFSET 0 keeps the planner from copying them into every use).
 */
function exportLinesSql(inner: string, page: { now: Date; order: SearchOrder | undefined; format: ExportFormat }, p: Params): string {
  const values = exportValues(p.add(page.now));
  const parts: ({ literal: string } | { sql: string })[] = [];
  CSV_COLUMNS.forEach((column, i) => {
    const { sql, text } = values[column];
    if (page.format === 'csv') {
      if (i > 0) parts.push({ literal: ',' });
      parts.push({ sql: text ? csvCellSql(sql) : sql });
    } else {
      parts.push({ literal: `${i === 0 ? '{' : ','}${JSON.stringify(column)}:` });
      if (column === 'names' || column === 'labels') parts.push({ sql });
      else if (text) parts.push({ sql: jsonSql(sql) });
      else parts.push({ literal: '"' }, { sql }, { literal: '"' });
    }
  });
  parts.push({ literal: page.format === 'csv' ? '\r\n' : '}\n' });
  const rendered = `FROM (${inner}) AS p
    CROSS JOIN LATERAL (SELECT p.labels::text AS t OFFSET 0) AS j
    CROSS JOIN LATERAL (SELECT ${namesSql(page.format)} AS names, ${labelsSql(page.format)} AS labels OFFSET 0) AS x`;
  if (page.order === undefined) return `SELECT ${concatSql(parts)} AS line ${rendered}`;
  const direction = page.order.descending ? 'DESC' : 'ASC';
  return `SELECT ${concatSql(parts)} AS line, p.serial, date_part('epoch', p.k) AS at ${rendered}
    ORDER BY p.k ${direction}, p.serial ${direction}`;
}

/**
 * An export in no particular order, as one statement (certificate-snapshot-export.ts runs it through a
 * cursor in one snapshot): the rows matching `criteria`, each rendered as its line (exportLinesSql), read
 * however the planner finds cheapest — the table in its storage order for a broad selection, an index for
 * a narrow one. No sort index is walked: in a sort order each row is a random read of the heap, which at ten
 * million certificates held the sorted export to about 26,000 rows/s (docs/benchmarks.md). Names and
 * suffixes through certificate_names, labels as containment on the row, a group-admin's groups as an
 * equality or ANY, as in search. Undefined when nothing can match.
 */
export function unorderedExportSql(criteria: SearchCriteria, now: Date, format: ExportFormat): { sql: string; values: unknown[] } | undefined {
  const p = new Params();
  const inner = matchingSql(criteria, now, EXPORT_SOURCE, p);
  if (inner === undefined) return undefined;
  return { sql: exportLinesSql(inner, { now, order: undefined, format }, p), values: p.values };
}

/**
 * `SELECT columns FROM certificates c` (columns of `c`) for the rows matching `criteria`, in no particular
 * order, read however the planner finds cheapest (see unorderedExportSql); its parameters are $1 onwards,
 * the caller's follow them. Undefined when nothing can match. Incidents fill their certificates with it in
 * one statement (IncidentRepository.addSelected).
 */
export function selectMatchingSql(criteria: SearchCriteria, now: Date, columns: string): { sql: string; values: unknown[] } | undefined {
  const p = new Params();
  const sql = matchingSql(criteria, now, columns, p);
  return sql === undefined ? undefined : { sql, values: p.values };
}

function matchingSql(criteria: SearchCriteria, now: Date, columns: string, p: Params): string | undefined {
  const where = conditions(criteria, now, p);
  if (where === undefined) return undefined;
  const names = nameConditions(criteria, p);
  if (names.length > 0) where.push(`c.serial IN (SELECT n.serial FROM certificate_names n WHERE ${names.join(' AND ')})`);
  return `SELECT ${columns} FROM certificates c ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''}`;
}

/** More names than this under a suffix: walk the sort order and check each row instead (broadSuffix). */
const BROAD_SUFFIX = 20_000;

/**
 * What a search reads first, in sort order, stopping when the page is full (every other condition checked
 * on what it meets):
 * - `certificates`: a sort index of certificates (a group's, the revoked ones', or all);
 * - `names`: the certificates of a name or a suffix (certificate_names), sorted;
 * - `broadSuffix`: certificates in sort order, the suffix checked on each (it matches most of them);
 * - `label`: the certificates of one label (certificate_labels, migration 0018), the group checked on its
 *   index entries, the other labels probed, the suffix (if any) checked on each row;
 * - `group`: a group's certificates (certificates_group_not_after / _created, index only), each label
 *   probed on certificate_labels' index (`probes`: narrowest first) before the certificate is read.
 * walkFor decides which.
 */
type Walk = { kind: 'certificates' } | { kind: 'names' } | { kind: 'broadSuffix' } | { kind: 'label'; first: number } | { kind: 'group'; probes: number[] };

/**
 * Labels, groups and suffixes are counted up to this many index entries (index only, a few milliseconds)
 * when a search has more than one of them, to choose the walk: their widths cannot be seen by the planner
 * in a parameter, and its guess (1 % for any label) is what made labels slow at 10M (docs/benchmarks.md).
 */
const PROBE_CAP = 20_000;

/**
 * What one label probe costs, in index entries read in order (a label walk checking a group on its entries):
 * on 200,000 certificates with the widths of the 10M bench estate (groups of 5,000, labels of 50,000), a
 * group walk's 5,000 probes took 13.6 ms and 15,068 buffer hits, a label walk's 5,000 entries 0.7 ms and
 * 107 (EXPLAIN ANALYZE, load average 4.5). A label walk reads at most its label's entries; a group walk
 * probes at most its group's certificates.
 */
const PROBE_WEIGHT = 20;

/** Entries of each label sampled when every label is too wide to count (bestYield): ~2 ms each at 10M. */
const YIELD_SAMPLE = 1000;

/**
 * How far a label wider than PROBE_CAP is counted against a group walk (~7 ms at this many on that estate):
 * enough to tell owner=team-N (48,500 certificates at 10M, walked whole in ~7 ms when none is in the group)
 * from env=prod (3.9M, where a group's 5,000 certificates hold a page within ~250 probes).
 */
const LABEL_COUNT_MAX = 50_000;

/** The highest code point: `prefix || MAX_CHAR` bounds every text that starts with prefix (COLLATE "C"). */
const MAX_CHAR = '\u{10FFFF}';

const reversed = (text: string): string => [...text].reverse().join('');

class Params {
  readonly values: unknown[] = [];
  add(value: unknown): string {
    this.values.push(value);
    return `$${this.values.length}`;
  }
}

/**
 * The WHERE conditions on `c` (certificates) for `criteria`, or undefined when nothing can match.
 * `unrevokedByIndex`: "not revoked" as the absence of the certificate from its group's revoked index
 * (certificates_group_revoked_not_after, 0020) instead of its status column, so that a count of one group's
 * valid or expired certificates reads indexes only (at 10M: 6 ms where reading each row for its status took
 * 30-140).
 */
function conditions(criteria: SearchCriteria, now: Date, p: Params, options: { unrevokedByIndex?: boolean } = {}): string[] | undefined {
  const where: string[] = [];
  const unrevoked = options.unrevokedByIndex
    ? `NOT EXISTS (SELECT 1 FROM certificates r WHERE r.group_name = c.group_name AND r.not_after = c.not_after AND r.serial = c.serial AND r.status = 'revoked')`
    : `c.status = 'valid'`;
  if (criteria.groups !== undefined) {
    if (criteria.groups.length === 0) return undefined;
    // One group is an equality, so the (group_name, sort key) indexes are walked in order.
    where.push(criteria.groups.length === 1 ? `c.group_name = ${p.add(criteria.groups[0])}` : `c.group_name = ANY(${p.add([...criteria.groups])}::text[])`);
  }
  if (criteria.status === 'revoked') where.push(`c.status = 'revoked'`);
  if (criteria.status === 'valid') where.push(unrevoked, `c.not_after > ${p.add(now)}`);
  if (criteria.status === 'expired') where.push(unrevoked, `c.not_after <= ${p.add(now)}`);
  if (criteria.expiringBy !== undefined) {
    if (criteria.status !== 'valid') where.push(unrevoked, `c.not_after > ${p.add(now)}`);
    where.push(`c.not_after <= ${p.add(criteria.expiringBy)}`);
  }
  if (criteria.issuer !== undefined) where.push(`c.issuer_id = ${p.add(criteria.issuer)}`);
  if (criteria.profile !== undefined) where.push(`c.profile = ${p.add(criteria.profile)}`);
  if (criteria.account !== undefined) where.push(`c.account_id = ${p.add(criteria.account)}`);
  if (criteria.spki !== undefined) where.push(`c.spki_sha256 = ${p.add(criteria.spki)}`);
  if (criteria.serial !== undefined) where.push(`c.serial = ${p.add(criteria.serial)}`);
  if (criteria.issuedAfter !== undefined) where.push(`c.created_at > ${p.add(criteria.issuedAfter)}`);
  if (criteria.issuedBefore !== undefined) where.push(`c.created_at < ${p.add(criteria.issuedBefore)}`);
  // One containment per label, on the row: the certificates and names walks meet a few rows each (a serial,
  // a key, an account, a name) or a suffix narrower than any label. Two values of one key match nothing.
  for (const label of criteria.labels ?? []) where.push(`c.labels @> ${p.add(JSON.stringify({ [label.key]: label.value }))}::jsonb`);
  return where;
}

/** A count these conditions alone decide from certificates_group_not_after and the group's revoked index. */
function groupAndValidityOnly(criteria: SearchCriteria): boolean {
  const { groups, status, expiringBy, ...rest } = criteria;
  const others = Object.values(rest).some((value) => value !== undefined);
  return groups?.length === 1 && status !== 'revoked' && (status !== undefined || expiringBy !== undefined) && !others;
}

/**
 * The certificates of groups, counted up to PROBE_CAP + 1: one group's index range at a time (a scope's
 * `group_name = ANY` was planned on a fresh database as a scan of certificates).
 */
function groupWidth(groups: readonly string[]): (p: Params) => string {
  return (p) => {
    const cap = p.add(PROBE_CAP + 1);
    return `SELECT 1 FROM (${groups.map((group) => `(SELECT 1 FROM certificates c WHERE c.group_name = ${p.add(group)} LIMIT ${cap})`).join(' UNION ALL ')}) AS g LIMIT ${cap}`;
  };
}

/** Groups as a condition on `column`: one group is an equality (an index range walked in order). */
function groupCondition(column: string, groups: readonly string[], p: Params): string {
  return groups.length === 1 ? `${column} = ${p.add(groups[0])}` : `${column} = ANY(${p.add([...groups])}::text[])`;
}

/** The suffix checked on a row `c` met in sort order (broadSuffix, or a label or group walk with a suffix). */
function suffixOnRow(suffix: string, p: Params): string {
  return `EXISTS (SELECT 1 FROM jsonb_array_elements(c.identifiers) AS i (value) WHERE right(lower(i.value ->> 'value'), ${p.add([...suffix].length)}) = ${p.add(suffix)})`;
}

/**
 * A label of the certificate met as `alias`, looked up by the whole key of certificate_labels' index by
 * `column` (that sort key of `alias`, and its serial): one index probe, no certificate row read. OFFSET 0
 * keeps it a probe per row: as a semi-join the planner may merge the two walks, reading the label's entries
 * up to the walk's end (all of env:prod's). `revoked`: the revocations' rows (status=revoked, exactly), else
 * the certificate's own.
 */
function labelProbe(label: { key: string; value: string }, alias: string, column: 'not_after' | 'created_at', revoked: boolean, extra: string[], p: Params): string {
  const on = [`o.key = ${p.add(label.key)}`, `o.value = ${p.add(label.value)}`, `o.${column} = ${alias}.${column}`, `o.serial = ${alias}.serial`, ...labelIndex('o', column, revoked), ...extra];
  return `EXISTS (SELECT 1 FROM certificate_labels o WHERE ${on.join(' AND ')} OFFSET 0)`;
}

/**
 * The predicate of the certificate_labels index by `column` of the certificates' own rows or, `revoked`,
 * of the revocations' rows: repeated in a statement, it names the index the statement reads (migration
 * 0018: on a small or unanalyzed table the planner cannot tell the two sort orders' indexes apart).
 */
function labelIndex(alias: string, column: 'not_after' | 'created_at', revoked: boolean): string[] {
  return [revoked ? `${alias}.revoked` : `NOT ${alias}.revoked`, `${alias}.${column} > '-infinity'`];
}

/** notAfter bounds of `status` and `expiringBy` on a column holding notAfter (the revoked are left to the caller). */
function validityBounds(column: string, criteria: SearchCriteria, now: Date, p: Params): string[] {
  const bounds: string[] = [];
  if (criteria.status === 'valid' || criteria.expiringBy !== undefined) bounds.push(`${column} > ${p.add(now)}`);
  if (criteria.status === 'expired') bounds.push(`${column} <= ${p.add(now)}`);
  if (criteria.expiringBy !== undefined) bounds.push(`${column} <= ${p.add(criteria.expiringBy)}`);
  return bounds;
}

function issuedBounds(column: string, criteria: SearchCriteria, p: Params): string[] {
  const bounds: string[] = [];
  if (criteria.issuedAfter !== undefined) bounds.push(`${column} > ${p.add(criteria.issuedAfter)}`);
  if (criteria.issuedBefore !== undefined) bounds.push(`${column} < ${p.add(criteria.issuedBefore)}`);
  return bounds;
}

/** The certificate_names conditions on `n` for name / suffix: an equality or a prefix range on the reversed value. */
function nameConditions(criteria: SearchCriteria, p: Params): string[] {
  const where: string[] = [];
  if (criteria.name !== undefined) where.push(`n.name_reversed = ${p.add(reversed(criteria.name))}`);
  if (criteria.suffix !== undefined) {
    const prefix = reversed(criteria.suffix);
    // A range, not LIKE: a parameterized LIKE pattern is not an index range in a generic plan.
    where.push(`n.name_reversed >= ${p.add(prefix)}`, `n.name_reversed < ${p.add(prefix + MAX_CHAR)}`);
  }
  return where;
}

/**
 * After the cursor: the row comparison, and the same bound on the sort column alone. The second is
 * redundant for the answer but not for the plan: a b-tree scan cannot weigh a row comparison against
 * another bound on its first column (`status=valid` is `not_after > now`), and would start at whichever it
 * took; with two plain bounds it starts at the tighter one.
 */
function keyset(alias: string, column: string, compare: '<' | '>', after: { at: Date; serial: string }, p: Params): string[] {
  const at = p.add(after.at);
  return [`${alias}.${column} ${compare}= ${at}`, `(${alias}.${column}, ${alias}.serial) ${compare} (${at}, ${p.add(after.serial)})`];
}

function sortColumn(order: SearchOrder): 'not_after' | 'created_at' {
  return order.by === 'notAfter' ? 'not_after' : 'created_at';
}

/**
 * A label walk or a group walk (Walk): the driving index read alone (index only: certificate_labels
 * carries both sort keys and the group; a group index the sort key and serial) with the keyset condition
 * and every condition it can check, in sort order; then certificates by serial, in that order, with the rest
 * checked on each row, until the page is full.
 *
 * Labels: on the label walk, the walked label is its range and the others are probes; on the group walk,
 * every label is a probe, and the bounds the group index lacks (the other sort key) go on the first probe.
 * Status: `revoked` walks or probes the revocations' rows, which exist for revoked certificates only; the
 * certificate's own rows include the revoked ones, which `valid`, `expired` and `expiringBy` leave out on the
 * row (2 % of an estate: a page reads 2 % more rows).
 */
function sideWalkSql(page: SearchPage, walk: Extract<Walk, { kind: 'label' | 'group' }>, p: Params, limit: number, mode: 'rows' | 'export' | 'countOnly', projection: string): string {
  const { criteria, now } = page;
  const labels = criteria.labels ?? [];
  const column = sortColumn(page.order);
  const direction = page.order.descending ? 'DESC' : 'ASC';
  const ordered = mode !== 'countOnly';
  const revoked = criteria.status === 'revoked';
  // status valid or expired, or expiring: not revoked.
  const unrevoked = !revoked && (criteria.status !== undefined || criteria.expiringBy !== undefined);
  const after = page.after !== undefined && ordered ? keyset('w', column, page.order.descending ? '<' : '>', page.after, p) : [];
  const orderBy = (alias: string): string => (ordered ? `ORDER BY ${alias}.${column} ${direction}, ${alias}.serial ${direction}` : '');
  let walked: string;
  if (walk.kind === 'label') {
    const label = labels[walk.first]!;
    const where = [`w.key = ${p.add(label.key)}`, `w.value = ${p.add(label.value)}`, ...labelIndex('w', column, revoked), ...after];
    if (criteria.groups !== undefined) where.push(groupCondition('w.group_name', criteria.groups, p));
    where.push(...validityBounds('w.not_after', criteria, now, p), ...issuedBounds('w.created_at', criteria, p));
    labels.forEach((other, i) => {
      if (i !== walk.first) where.push(labelProbe(other, 'w', column, revoked, [], p));
    });
    // Not revoked, told by the index: a revoked certificate has the walked label's revoked row too (0018).
    // A count then reads no certificate (a rare label with status=valid read ~5,000 rows at 10M: p99 89 ms).
    if (unrevoked) where.push(`NOT ${labelProbe(label, 'w', column, true, [], p)}`);
    walked = `SELECT w.serial, w.${column} AS k FROM certificate_labels w WHERE ${where.join(' AND ')} ${orderBy('w')}`;
  } else {
    const own = [...after, ...(column === 'not_after' ? validityBounds('w.not_after', criteria, now, p) : issuedBounds('w.created_at', criteria, p))];
    const onProbe = column === 'not_after' ? issuedBounds('o.created_at', criteria, p) : validityBounds('o.not_after', criteria, now, p);
    const probes = walk.probes.map((i, n) => labelProbe(labels[i]!, 'w', column, revoked, n === 0 ? onProbe : [], p));
    const one = (group: string): string => `SELECT w.serial, w.${column} AS k FROM certificates w WHERE ${[group, ...own, ...probes].join(' AND ')}`;
    const groups = criteria.groups!;
    // Several groups: each group's walk in order, merged (a Merge Append stops at the page as one walk
    // does, where `group_name = ANY` is read whole and sorted, or planned on a fresh database as a scan of
    // certificates). Their conditions are the same parameters.
    walked =
      groups.length === 1
        ? `${one(`w.group_name = ${p.add(groups[0])}`)} ${orderBy('w')}`
        : `SELECT u.serial, u.k FROM (${groups.map((group) => `(${one(`w.group_name = ${p.add(group)}`)} ${orderBy('w')})`).join(' UNION ALL ')}) AS u
           ${ordered ? `ORDER BY u.k ${direction}, u.serial ${direction}` : ''}`;
  }

  const outer: string[] = [];
  if (unrevoked && !(walk.kind === 'label' && mode === 'countOnly')) outer.push(`c.status = 'valid'`);
  if (criteria.issuer !== undefined) outer.push(`c.issuer_id = ${p.add(criteria.issuer)}`);
  if (criteria.profile !== undefined) outer.push(`c.profile = ${p.add(criteria.profile)}`);
  if (criteria.suffix !== undefined) outer.push(suffixOnRow(criteria.suffix, p));

  // A count with nothing left to check on the row reads the index alone.
  if (mode === 'countOnly' && outer.length === 0) return `${walked} LIMIT ${p.add(limit)}`;
  // Each certificate by its serial as a LATERAL lookup with OFFSET 0 (keyed-joins.ts): planned as a join on
  // a fresh database, `c.status = 'valid'` made it a walk of the whole certificates_renewal_due (whose
  // predicate it matches) for every entry.
  return `SELECT ${projection}
    FROM (${walked}) AS m
    CROSS JOIN LATERAL (SELECT ${COLUMNS.join(', ')} FROM certificates WHERE serial = m.serial OFFSET 0) AS c
    ${outer.length > 0 ? `WHERE ${outer.join(' AND ')}` : ''} ${ordered ? `ORDER BY m.k ${direction}, m.serial ${direction}` : ''} LIMIT ${p.add(limit)}`;
}

export class CertificateSearchRepository {
  private readonly broadSuffixNames: number;
  private readonly labelCountCap: number;

  /**
   * `broadSuffix`: from how many names a suffix is walked in sort order (BROAD_SUFFIX); `labelCountCap`: how
   * far labels are counted to choose the one walked, when no group is weighed against them (PROBE_CAP).
   * Tests lower both.
   */
  constructor(
    private readonly db: Queryable,
    options: { broadSuffix?: number; labelCountCap?: number } = {},
  ) {
    this.broadSuffixNames = options.broadSuffix ?? BROAD_SUFFIX;
    this.labelCountCap = options.labelCountCap ?? PROBE_CAP;
  }

  /** One page (limit + 1 rows are read: the extra one says whether there is a next page). */
  async search(page: SearchPage): Promise<{ items: IssuedCertificate[]; more: boolean }> {
    const p = new Params();
    const sql = this.selectSql(page, p, page.limit + 1, 'rows', await this.walkFor(page.criteria, sortColumn(page.order)));
    if (sql === undefined) return { items: [], more: false };
    const { rows } = await this.db.query<CertificateRow & EpochTimes>(sql, p.values);
    const items = rows.slice(0, page.limit).map(page.withoutDer ? withoutDerRowToCertificate : certificateFromRow);
    return { items, more: rows.length > page.limit };
  }

  /**
   * One page of an export (limit + 1 rows read, as search does), each row one finished line: the keyset
   * walk of search with exportLinesSql around it.
   */
  async exportLines(page: Omit<SearchPage, 'withoutDer'> & { format: ExportFormat }): Promise<ExportPage> {
    const p = new Params();
    const inner = this.selectSql(page, p, page.limit + 1, 'export', await this.walkFor(page.criteria, sortColumn(page.order)));
    if (inner === undefined) return { lines: [], more: false };
    const { rows } = await this.db.query<{ line: string; serial: string; at: number }>(exportLinesSql(inner, page, p), p.values);
    const more = rows.length > page.limit;
    const lines = (more ? rows.slice(0, page.limit) : rows).map((row) => row.line);
    const last = more ? rows[page.limit - 1] : undefined;
    // `at` is epoch seconds as float8: exact to the millisecond once rounded (every time has ms precision).
    return last === undefined ? { lines, more } : { lines, more, last: { at: new Date(Math.round(last.at * 1000)), serial: last.serial } };
  }

  /**
   * How many match, counting at most `cap + 1` rows: an exact number up to `cap`, otherwise "more than
   * cap" (a count of millions would read millions of index entries; rule 9 bounds what a request reads).
   */
  async count(criteria: SearchCriteria, now: Date, cap: number): Promise<{ count: number; capped: boolean }> {
    const p = new Params();
    const inner = this.selectSql({ criteria, now, order: { by: 'notAfter', descending: false }, limit: cap + 1 }, p, cap + 1, 'countOnly', await this.walkFor(criteria, 'not_after'));
    if (inner === undefined) return { count: 0, capped: false };
    const { rows } = await this.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM (${inner}) AS matched`, p.values);
    const n = rows[0]?.n ?? 0;
    return n > cap ? { count: cap, capped: true } : { count: n, capped: false };
  }

  /**
   * What to walk (Walk). Without labels, or with a name, a serial, a key or an account (a handful of
   * certificates, found through their own index), as before labels had an index: a name or a suffix through
   * certificate_names, the rest through certificates' sort indexes, chosen by the planner. A suffix that
   * matches more than `broadSuffix` names (`.internal` on an estate of internal names) is checked on each
   * row met in sort order instead: most rows match it, so a page fills at once, where finding its names
   * first would read and sort them all.
   *
   * One label alone is walked without more ado: the walk stops at the page in sort order whatever the
   * label's width (env:prod's first page reads 101 entries). With more labels, a group (or a scope's groups)
   * or a suffix, each is counted up to PROBE_CAP in one statement and the walk that reads least at worst is
   * taken (PROBE_WEIGHT); a label wider than PROBE_CAP against a group walk is counted further
   * (LABEL_COUNT_MAX). The worst case is what matters: a label and a group may have nothing in common (an
   * owner's label and another team's group), and then either walk reads all it may. Labels are counted on
   * the index of `column` (the sort order's), the one a label walk reads: at 10M each is 4.8 GB, and counting
   * on the other kept both in the page cache (a label + group search's p99 34-634 ms where its p50 was 22).
   */
  private async walkFor(criteria: SearchCriteria, column: 'not_after' | 'created_at'): Promise<Walk> {
    const labels = criteria.labels ?? [];
    const suffix = criteria.name === undefined ? criteria.suffix : undefined;
    const few = criteria.name !== undefined || criteria.serial !== undefined || criteria.spki !== undefined || criteria.account !== undefined;
    if (criteria.groups?.length === 0) return { kind: 'certificates' }; // matches nothing: selectSql says so
    if (labels.length === 0 || few) {
      if (criteria.name !== undefined) return { kind: 'names' };
      if (suffix === undefined) return { kind: 'certificates' };
      const [names] = await this.widths([this.namesWidth(suffix)]);
      return names! > this.broadSuffixNames ? { kind: 'broadSuffix' } : { kind: 'names' };
    }
    if (labels.length === 1 && criteria.groups === undefined && suffix === undefined) return { kind: 'label', first: 0 };
    const revoked = criteria.status === 'revoked';
    // One statement. A single label with a group that could be walked is counted as far as the choice
    // needs: to PROBE_WEIGHT times the group's width (the group walk's cost), at least PROBE_CAP, at most
    // LABEL_COUNT_MAX.
    const p = new Params();
    const against = criteria.groups !== undefined && labels.length === 1 && suffix === undefined;
    const labelCap = against
      ? `CASE WHEN (SELECT n FROM g) > ${PROBE_CAP} THEN ${PROBE_CAP} ELSE least(greatest(${PROBE_WEIGHT} * (SELECT n FROM g), ${PROBE_CAP}), ${LABEL_COUNT_MAX}) END`
      : String(this.labelCountCap);
    const columns = labels.map(
      (label) =>
        `(SELECT count(*)::int FROM (SELECT 1 FROM certificate_labels l WHERE l.key = ${p.add(label.key)} AND l.value = ${p.add(label.value)}
           AND ${labelIndex('l', column, revoked).join(' AND ')} LIMIT ${labelCap} + 1) AS s)`,
    );
    if (criteria.groups !== undefined) columns.push('(SELECT n FROM g)');
    if (suffix !== undefined) columns.push(`(SELECT count(*)::int FROM (${this.namesWidth(suffix)(p)}) AS s)`);
    const groupCount = criteria.groups === undefined ? '' : `WITH g AS (SELECT count(*)::int AS n FROM (${groupWidth(criteria.groups)(p)}) AS s) `;
    const { rows } = await this.db.query<Record<string, number>>(`${groupCount}SELECT ${columns.map((column, i) => `${column} AS n${i}`).join(', ')}`, p.values);
    const widths = columns.map((_, i) => Number(rows[0]?.[`n${i}`] ?? 0));
    const labelWidths = widths.slice(0, labels.length);
    let first = labelWidths.indexOf(Math.min(...labelWidths));
    const width = labelWidths[first]!;
    // Every label reached the cap: their widths say nothing about which to walk. Walk the one whose entries
    // match the others most often (labelYields).
    if (labels.length > 1 && !against && width > this.labelCountCap) first = await this.bestYield(labels, revoked);
    const group = criteria.groups === undefined ? undefined : widths[labels.length]!;
    const names = suffix === undefined ? undefined : widths.at(-1)!;
    // What each walk reads at worst, in index entries read in order (PROBE_WEIGHT for each probe or row
    // read): a label walk its label's entries, probing the other labels on those in the group, or reading
    // each row for a suffix; a group walk probes each of its certificates; a names walk reads each one's
    // row. A label that reached its cap has no known bound.
    const capped = width > (against && group! <= PROBE_CAP ? Math.min(Math.max(PROBE_WEIGHT * group!, PROBE_CAP), LABEL_COUNT_MAX) : PROBE_CAP);
    const labelCost =
      suffix !== undefined
        ? PROBE_WEIGHT * width
        : labels.length > 1
          ? width + PROBE_WEIGHT * Math.min(width, group ?? width)
          : against && capped
            ? Number.POSITIVE_INFINITY
            : width;
    const costs: [Walk, number][] = [[{ kind: 'label', first }, labelCost]];
    if (group !== undefined && group <= PROBE_CAP) {
      costs.push([{ kind: 'group', probes: labels.map((_, i) => i).sort((x, y) => labelWidths[x]! - labelWidths[y]!) }, PROBE_WEIGHT * group]);
    }
    if (names !== undefined && names <= this.broadSuffixNames) costs.push([{ kind: 'names' }, PROBE_WEIGHT * names]);
    // The cheapest; on a tie, the first (the label walk stops at the page in sort order).
    return costs.reduce((best, next) => (next[1] < best[1] ? next : best))[0];
  }

  /**
   * Of several labels too wide to count, the one to walk: the first YIELD_SAMPLE entries of each (in notAfter
   * order) are probed for the other labels, and the label whose sample matched most often is walked — it
   * fills a page reading fewest entries; on a tie, the first given. On the 10M bench estate env:prod (40 %) and owner:team-N (0.5 %) both
   * reach the cap, and walking env:prod (the first given) probed ~20,000 entries for a page (p50 57 ms);
   * owner's 1,000 sampled entries match env:prod ~400 times, env:prod's match owner ~5 times.
   */
  private async bestYield(labels: readonly { key: string; value: string }[], revoked: boolean): Promise<number> {
    const p = new Params();
    const yields = labels.map((label, i) => {
      const others = labels.filter((_, j) => j !== i).map((other) => labelProbe(other, 's', 'not_after', revoked, [], p));
      const sample = `SELECT w.serial, w.not_after FROM certificate_labels w WHERE w.key = ${p.add(label.key)} AND w.value = ${p.add(label.value)}
        AND ${labelIndex('w', 'not_after', revoked).join(' AND ')} ORDER BY w.not_after, w.serial LIMIT ${YIELD_SAMPLE}`;
      // Matches per entry read (the sample is shorter than YIELD_SAMPLE only on a small estate).
      return `(SELECT count(*) FILTER (WHERE ${others.join(' AND ')})::float8 / greatest(count(*), 1) FROM (${sample}) AS s) AS y${i}`;
    });
    const { rows } = await this.db.query<Record<string, number>>(`SELECT ${yields.join(', ')}`, p.values);
    const yieldOf = labels.map((_, i) => Number(rows[0]?.[`y${i}`] ?? 0));
    return yieldOf.indexOf(Math.max(...yieldOf));
  }

  /** The names under a suffix, counted up to broadSuffix + 1. */
  private namesWidth(suffix: string): (p: Params) => string {
    return (p) => `SELECT 1 FROM certificate_names n WHERE ${nameConditions({ suffix }, p).join(' AND ')} LIMIT ${p.add(this.broadSuffixNames + 1)}`;
  }

  /** How many rows each statement yields (each has its LIMIT): one round trip. */
  private async widths(statements: ((p: Params) => string)[]): Promise<number[]> {
    const p = new Params();
    const columns = statements.map((statement, i) => `(SELECT count(*)::int FROM (${statement(p)}) AS s) AS n${i}`);
    const { rows } = await this.db.query<Record<string, number>>(`SELECT ${columns.join(', ')}`, p.values);
    return statements.map((_, i) => Number(rows[0]?.[`n${i}`] ?? 0));
  }

  /**
   * `mode`: 'rows' selects COLUMNS (or WITHOUT_DER_PROJECTION), 'export' what exportLinesSql renders,
   * 'countOnly' nothing (no order either).
   */
  private selectSql(page: SearchPage, p: Params, limit: number, mode: 'rows' | 'export' | 'countOnly', walk: Walk): string | undefined {
    if (page.criteria.groups?.length === 0) return undefined;
    const column = sortColumn(page.order);
    const projection =
      mode === 'countOnly' ? '1' : mode === 'export' ? `${EXPORT_SOURCE}, c.${column} AS k` : page.withoutDer ? WITHOUT_DER_PROJECTION : COLUMNS.map((name) => `c.${name}`).join(', ');
    if (walk.kind === 'label' || walk.kind === 'group') return sideWalkSql(page, walk, p, limit, mode, projection);
    const where = conditions(page.criteria, page.now, p, { unrevokedByIndex: mode === 'countOnly' && groupAndValidityOnly(page.criteria) });
    if (where === undefined) return undefined;
    const direction = page.order.descending ? 'DESC' : 'ASC';
    const compare = page.order.descending ? '<' : '>';
    const broad = walk.kind === 'broadSuffix';
    if (broad) where.push(suffixOnRow(page.criteria.suffix!, p));
    const names = broad ? [] : nameConditions(page.criteria, p);
    if (names.length === 0) {
      if (page.after !== undefined && mode !== 'countOnly') where.push(...keyset('c', column, compare, page.after, p));
      const order = mode !== 'countOnly' ? `ORDER BY c.${column} ${direction}, c.serial ${direction}` : '';
      return `SELECT ${projection} FROM certificates c ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''} ${order} LIMIT ${p.add(limit)}`;
    }
    // name / suffix: the matching names first (certificate_names carries both sort keys, so the keyset
    // condition and the order are applied on that index alone), then certificates by serial, in that order,
    // until the page is full. A certificate with several matching names is met once (GROUP BY).
    if (page.after !== undefined && mode !== 'countOnly') names.push(...keyset('n', column, compare, page.after, p));
    if (page.criteria.expiringBy !== undefined) names.push(`n.not_after <= ${p.add(page.criteria.expiringBy)}`, `n.not_after > ${p.add(page.now)}`);
    if (page.criteria.status === 'valid') names.push(`n.not_after > ${p.add(page.now)}`);
    if (page.criteria.status === 'expired') names.push(`n.not_after <= ${p.add(page.now)}`);
    if (page.criteria.issuedAfter !== undefined) names.push(`n.created_at > ${p.add(page.criteria.issuedAfter)}`);
    if (page.criteria.issuedBefore !== undefined) names.push(`n.created_at < ${p.add(page.criteria.issuedBefore)}`);
    const order = mode !== 'countOnly' ? `ORDER BY m.k ${direction}, m.serial ${direction}` : '';
    return `SELECT ${projection}
      FROM (SELECT n.serial, n.${column} AS k FROM certificate_names n WHERE ${names.join(' AND ')} GROUP BY n.serial, n.${column}
            ${mode !== 'countOnly' ? `ORDER BY n.${column} ${direction}, n.serial ${direction}` : ''}) AS m
      JOIN certificates c ON c.serial = m.serial
      ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''} ${order} LIMIT ${p.add(limit)}`;
  }

  /**
   * Counts by group x status x expiry bucket at `now`, exact, in one statement (one snapshot): the folded
   * counts (relative to as_of), moved to `now` by the certificates whose bucket changed in between, plus the
   * deltas not yet folded. `groups`: only these (a group-admin's scope); all when undefined.
   */
  async counts(now: Date, groups?: readonly string[]): Promise<GroupCounts[]> {
    if (groups !== undefined && groups.length === 0) return [];
    // as_of is read first and given as a value, so the planner sizes the moved-certificate ranges from its
    // statistics (a few rows) instead of guessing for an unknown bound (thousands: enough for PostgreSQL's
    // JIT to spend most of a second compiling a millisecond's query). The statement checks that as_of is
    // still that value (a fold may commit in between) and is read again if not.
    for (let attempt = 0; ; attempt++) {
      const current = await this.db.query<{ as_of: Date }>('SELECT as_of FROM certificate_counts_as_of WHERE one');
      const asOf = current.rows[0]?.as_of ?? null;
      const p = new Params();
      const at = p.add(now);
      const expected = p.add(asOf);
      const sql = countsSql(at, expected, groups === undefined ? undefined : p.add([...groups]));
      const { rows } = await this.db.query<{ group_name: string; bucket: string; n: string | number; as_of_moved: boolean }>(
        `SELECT counted.group_name, counted.bucket, counted.n,
           (SELECT as_of FROM certificate_counts_as_of WHERE one) IS DISTINCT FROM ${expected}::timestamptz AS as_of_moved
         FROM (${sql}) AS counted`,
        p.values,
      );
      if (!rows.some((row) => row.as_of_moved) || attempt === 4) return groupCountsOf(rows);
    }
  }
}

/** Bucket of a valid certificate whose notAfter is `t`, at instant `at` (both SQL expressions). */
function bucketSql(t: string, at: string): string {
  return `CASE WHEN ${t} <= ${at} THEN 'expired' WHEN ${t} <= ${at} + interval '7 days' THEN '7'
    WHEN ${t} <= ${at} + interval '30 days' THEN '30' WHEN ${t} <= ${at} + interval '90 days' THEN '90' ELSE 'later' END`;
}

/** Boundaries a bucket changes at, as offsets from an instant. */
const BOUNDARIES = ['0 days', '7 days', '30 days', '90 days'];

function countsSql(now: string, asOfValue: string, groups: string | undefined): string {
  const inScope = (column: string): string => (groups === undefined ? 'true' : `${column} = ANY(${groups}::text[])`);
  // Certificates valid now whose bucket at now differs from their bucket at as_of: notAfter in
  // (as_of + b, now + b] for a boundary b (or (now + b, as_of + b] when this instance's clock is behind the
  // one that folded: the bucket difference below counts them back). One scan with the ranges OR-ed (a
  // bitmap of index ranges on certificates_not_after_serial), so a row in two ranges is counted once.
  // No as_of (nothing folded yet): least/greatest ignore the NULL, the ranges are empty, no row moved.
  const asOf = `${asOfValue}::timestamptz`;
  const ranges = (t: string): string =>
    BOUNDARIES.map(
      (b) => `(${t} > least(${asOf}, ${now}::timestamptz) + interval '${b}' AND ${t} <= greatest(${asOf}, ${now}::timestamptz) + interval '${b}')`,
    ).join(' OR ');
  const moved = `SELECT coalesce(c.group_name, '') AS g, c.not_after AS t FROM certificates c WHERE c.status = 'valid' AND (${ranges('c.not_after')})`;
  const movedDeltas = `SELECT d.group_name AS g, d.not_after AS t, d.delta FROM certificate_count_deltas d WHERE d.status = 'valid' AND (${ranges('d.not_after')})`;
  // No join with the as_of row anywhere: a join's row estimate would make the plan look costly enough for
  // PostgreSQL's JIT (jit_above_cost), which then spends most of a second compiling a millisecond's query.
  return `WITH moved AS (${moved}),
    moved_deltas AS (${movedDeltas}),
    parts (g, b, n) AS (
      SELECT group_name, bucket, n FROM certificate_counts
      UNION ALL
      SELECT group_name, CASE WHEN status = 'revoked' THEN 'revoked' ELSE ${bucketSql('not_after', `${now}::timestamptz`)} END, delta::bigint
        FROM certificate_count_deltas
      UNION ALL
      -- Folded certificates that changed bucket: the ones valid now, less those whose entry is still a delta.
      SELECT m.g, ${bucketSql('m.t', `${now}::timestamptz`)}, 1::bigint FROM moved m
      UNION ALL
      SELECT m.g, ${bucketSql('m.t', asOf)}, -1::bigint FROM moved m
      UNION ALL
      SELECT m.g, ${bucketSql('m.t', `${now}::timestamptz`)}, -m.delta::bigint FROM moved_deltas m
      UNION ALL
      SELECT m.g, ${bucketSql('m.t', asOf)}, m.delta::bigint FROM moved_deltas m
    )
    SELECT g AS group_name, b AS bucket, sum(n)::bigint AS n FROM parts WHERE ${inScope('g')} GROUP BY g, b`;
}

function groupCountsOf(rows: readonly { group_name: string; bucket: string; n: string | number }[]): GroupCounts[] {
  const byGroup = new Map<string, GroupCounts>();
  for (const row of rows) {
    const n = Number(row.n);
    if (n === 0) continue;
    let counts = byGroup.get(row.group_name);
    if (counts === undefined) {
      counts = { group: row.group_name, valid: 0, expired: 0, revoked: 0, expiring7: 0, expiring30: 0, expiring90: 0 };
      byGroup.set(row.group_name, counts);
    }
    if (row.bucket === 'revoked') counts.revoked += n;
    else if (row.bucket === 'expired') counts.expired += n;
    else {
      counts.valid += n;
      if (row.bucket === '7') counts.expiring7 += n;
      if (row.bucket === '7' || row.bucket === '30') counts.expiring30 += n;
      if (row.bucket !== 'later') counts.expiring90 += n;
    }
  }
  return [...byGroup.values()].sort((x, y) => (x.group < y.group ? -1 : x.group > y.group ? 1 : 0));
}

/**
 * Folds the count deltas into certificate_counts relative to `now` (the job certificates.counts.fold). One
 * transaction: the as_of row locked first (two instances fold one after the other, each from the other's
 * result), then one statement that computes the counts at `now` exactly as a read does and deletes the very
 * deltas it read (the statement's snapshot: a delta committed meanwhile stays for the next fold). Returns
 * how many delta rows it folded.
 */
export async function foldCertificateCounts(db: Database, now: Date): Promise<number> {
  return db.transaction(async (tx) => {
    // EXCLUSIVE blocks other folds (and nothing else: reads take ACCESS SHARE) until this one commits.
    await tx.query('LOCK TABLE certificate_counts_as_of IN EXCLUSIVE MODE');
    const current = await tx.query<{ as_of: Date }>('SELECT as_of FROM certificate_counts_as_of WHERE one');
    // Never move backwards (a clock behind another instance's): folding at an earlier instant is pointless.
    if ((current.rows[0]?.as_of.getTime() ?? -Infinity) >= now.getTime()) return 0;
    const p = new Params();
    const at = p.add(now);
    // Locked: as_of cannot change under this statement.
    const asOf = p.add(current.rows[0]?.as_of ?? null);
    const { rows } = await tx.query<{ folded: number }>(
      `WITH counted AS (${countsSql(at, asOf, undefined)}),
       folded AS (DELETE FROM certificate_count_deltas RETURNING 1),
       -- Every (group, bucket) already stored is in counted (its row is one of the parts), so this rewrites
       -- them all, emptied ones to 0.
       stored AS (
         INSERT INTO certificate_counts (group_name, bucket, n) SELECT group_name, bucket, n FROM counted
         ON CONFLICT (group_name, bucket) DO UPDATE SET n = excluded.n
         RETURNING 1),
       moved AS (
         INSERT INTO certificate_counts_as_of (one, as_of) VALUES (true, ${at})
         ON CONFLICT (one) DO UPDATE SET as_of = excluded.as_of
         RETURNING 1)
       SELECT (SELECT count(*)::int FROM folded) AS folded, (SELECT count(*)::int FROM stored) AS stored, (SELECT count(*)::int FROM moved) AS moved`,
      p.values,
    );
    return rows[0]?.folded ?? 0;
  });
}

/** How far apart the fold job runs: each read then moves counts over at most this much time per boundary. */
export const COUNTS_FOLD_INTERVAL_MS = 60_000;
/** An as_of older than this means the fold job has stopped (the reads stay exact, only slower). */
export const COUNTS_STALE_MS = DAY;
