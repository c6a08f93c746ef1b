import { REASON_CODES, type IssuedCertificate } from '../../src/core/certificate.js';
import { CSV_COLUMNS, type ExportColumn, type ExportFormat } from '../../src/core/certificate-export.js';

/**
 * The inventory export written in JavaScript from IssuedCertificates as the row mapper reads them: the
 * reference that the database's rendering (certificate-search-repository.ts, exportLinesSql) must match
 * byte for byte. It was the exporter's own code until the lines moved into SQL; kept here, unchanged, so
 * the format core/certificate-export.ts describes is pinned by a second, independent implementation.
 */

const REASON_NAMES = new Map(Object.entries(REASON_CODES).map(([name, code]) => [code, name]));

/** One certificate as exported: the status at `now` (expired is derived), names and labels as text. */
export function exportRecord(certificate: IssuedCertificate, now: Date): Record<ExportColumn, string> {
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

export function csvLine(certificate: IssuedCertificate, now: Date): string {
  const record = exportRecord(certificate, now);
  return `${CSV_COLUMNS.map((column) => csvCell(record[column])).join(',')}\r\n`;
}

export function jsonLine(certificate: IssuedCertificate, now: Date): string {
  const record = exportRecord(certificate, now);
  return `${JSON.stringify({
    ...record,
    names: certificate.identifiers.map((identifier) => ({ type: identifier.type, value: identifier.value })),
    labels: certificate.labels ?? {},
  })}\n`;
}

/** A whole export of these certificates, in this order: the CSV header, then one line each. */
export function referenceExport(format: ExportFormat, now: Date, certificates: readonly IssuedCertificate[]): string {
  const line = format === 'csv' ? csvLine : jsonLine;
  return (format === 'csv' ? `${CSV_COLUMNS.join(',')}\r\n` : '') + certificates.map((certificate) => line(certificate, now)).join('');
}
