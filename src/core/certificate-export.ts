/**
 * The inventory's export formats: CSV (RFC 4180) and JSON lines, one certificate a line, the same fields in
 * both. The database renders the lines (db/repositories/certificate-search-repository.ts, exportLinesSql);
 * the inventory writes the header and streams the pages (inventory/certificate-inventory.ts).
 *
 * A line holds: the status at the export's `now` (revoked, else expired when notAfter <= now, else valid);
 * the names in identifier order (CSV: the values joined by a space; JSON: [{type, value}]); the labels in
 * the order JavaScript's Object.entries gives for the stored object (CSV: key=value joined by `;`; JSON: an
 * object); times as Date.prototype.toISOString() writes them; the revocation reason as its RFC 5280 name;
 * absent values as ''. JSON lines are JSON.stringify's text (no spaces), keys in CSV_COLUMNS order.
 *
 * CSV cells are defused against spreadsheet formula injection (OWASP "CSV Injection"): a value an ACME
 * client or an EAB label controls may start with = + - @ (or a tab or carriage return, which some
 * spreadsheets skip before reading a formula); such a cell gets a leading apostrophe, so it is shown as
 * text and never evaluated; then a cell holding a quote, a comma or a line break is quoted (RFC 4180 §2).
 * JSON lines need no such care: they are data to programs, not to spreadsheets.
 */
export type ExportFormat = 'csv' | 'jsonl';
export const EXPORT_FORMATS: readonly ExportFormat[] = ['csv', 'jsonl'];

export const EXPORT_CONTENT_TYPES: Readonly<Record<ExportFormat, string>> = {
  csv: 'text/csv; charset=utf-8',
  jsonl: 'application/jsonl; charset=utf-8',
};

export const CSV_COLUMNS = [
  'serial',
  'status',
  'names',
  'group',
  'labels',
  'notBefore',
  'notAfter',
  'issuedAt',
  'issuer',
  'profile',
  'account',
  'spkiSha256',
  'replaces',
  'revokedAt',
  'revocationReason',
] as const;

export type ExportColumn = (typeof CSV_COLUMNS)[number];

/** The CSV export's first line. */
export const CSV_HEADER = `${CSV_COLUMNS.join(',')}\r\n`;

/** Characters that make a spreadsheet read a cell as a formula when they start it (OWASP CSV Injection). */
export const CSV_FORMULA_START: readonly string[] = ['=', '+', '-', '@', '\t', '\r'];
