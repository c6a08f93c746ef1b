import { REASON_CODES, type IssuedCertificate } from '../core/certificate.js';

/**
 * The inventory's export formats: CSV (RFC 4180) and JSON lines, one certificate a line, the same fields in
 * both. CSV cells are defused against spreadsheet formula injection (OWASP "CSV Injection"): a value an
 * ACME client or an EAB label controls may start with = + - @ (or a tab or carriage return, which some
 * spreadsheets skip before reading a formula); such a cell gets a leading apostrophe, so it is shown as
 * text and never evaluated. JSON lines need no such care: they are data to programs, not to spreadsheets.
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

const REASON_NAMES = new Map(Object.entries(REASON_CODES).map(([name, code]) => [code, name]));

/** One certificate as exported: the status at `now` (expired is derived), names and labels as text. */
export function exportRecord(certificate: IssuedCertificate, now: Date): Record<(typeof CSV_COLUMNS)[number], string> {
  const status = certificate.status === 'revoked' ? 'revoked' : certificate.notAfter.getTime() <= now.getTime() ? 'expired' : 'valid';
  return {
    serial: certificate.serial,
    status,
    names: certificate.identifiers.map((identifier) => identifier.value).join(' '),
    group: certificate.group ?? '',
    labels: Object.entries(certificate.labels ?? {})
      .map(([key, value]) => `${key}=${value}`)
      .join(';'),
    notBefore: certificate.notBefore.toISOString(),
    notAfter: certificate.notAfter.toISOString(),
    issuedAt: certificate.createdAt.toISOString(),
    issuer: certificate.issuerId,
    profile: certificate.profile ?? '',
    account: certificate.accountId ?? '',
    spkiSha256: certificate.spkiSha256,
    replaces: certificate.replacesSerial ?? '',
    revokedAt: certificate.revokedAt?.toISOString() ?? '',
    revocationReason: certificate.revocationReason === undefined ? '' : (REASON_NAMES.get(certificate.revocationReason) ?? 'unspecified'),
  };
}

/** Characters that make a spreadsheet read a cell as a formula (OWASP CSV Injection). */
const FORMULA_START = /^[=+\-@\t\r]/;

/** One CSV cell: defused, then quoted when it holds a separator, a quote or a line break (RFC 4180 §2). */
export function csvCell(value: string): string {
  const safe = FORMULA_START.test(value) ? `'${value}` : value;
  return /[",\r\n]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}

function csvLine(certificate: IssuedCertificate, now: Date): string {
  const record = exportRecord(certificate, now);
  return `${CSV_COLUMNS.map((column) => csvCell(record[column])).join(',')}\r\n`;
}

function jsonLine(certificate: IssuedCertificate, now: Date): string {
  const record = exportRecord(certificate, now);
  return `${JSON.stringify({
    ...record,
    names: certificate.identifiers.map((identifier) => ({ type: identifier.type, value: identifier.value })),
    labels: certificate.labels ?? {},
  })}\n`;
}

/** The export as text chunks: the CSV header first, then one chunk per page of certificates. */
export async function* exportChunks(format: ExportFormat, now: Date, pages: AsyncIterable<IssuedCertificate[]>): AsyncGenerator<string> {
  if (format === 'csv') yield `${CSV_COLUMNS.join(',')}\r\n`;
  const line = format === 'csv' ? csvLine : jsonLine;
  for await (const page of pages) {
    let chunk = '';
    for (const certificate of page) chunk += line(certificate, now);
    yield chunk;
  }
}
