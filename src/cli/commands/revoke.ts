import { parseArgs } from 'node:util';
import type { Config } from '../../config/config.js';
import { localOperator } from '../../core/audit.js';
import { REASON_CODES } from '../../core/certificate.js';
import { CaError } from '../../core/errors.js';
import { parseSerialText } from '../../core/serial-number.js';
import { openAdminClient } from '../admin-client.js';

const USAGE = `usage: chancery revoke --serial HEX [--reason NAME] [--invalidity-date ISO-8601]   (reasons: ${Object.keys(REASON_CODES).join(', ')})`;

/**
 * `chancery revoke --serial HEX --reason NAME [--invalidity-date WHEN]`: revokes through the admin API and
 * the same Revoker as ACME, so the OCSP response is re-signed in the revocation's transaction (running
 * instances drop their cached answer on the NOTIFY) and the certificate's CRL is regenerated before this
 * command returns. WHEN (RFC 5280 §5.3.2: since when the key is known or suspected to be compromised) goes
 * into the CRL entry and the OCSP response.
 */
export async function revokeCommand(config: Config, args: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { serial: { type: 'string' }, reason: { type: 'string' }, 'invalidity-date': { type: 'string' } },
  });
  if (positionals.length > 0 || !values.serial) throw new CaError('malformed', USAGE);
  const serial = parseSerialText(values.serial);
  if (serial === undefined) throw new CaError('malformed', `--serial "${values.serial.slice(0, 60)}" is not a hexadecimal serial number`);
  const reasonName = values.reason ?? 'unspecified';
  const reason = REASON_CODES[reasonName];
  if (reason === undefined) throw new CaError('badRevocationReason', `unknown --reason "${reasonName.slice(0, 40)}"; ${USAGE}`);
  const invalidityDate = values['invalidity-date'] === undefined ? undefined : parseInvalidityDate(values['invalidity-date']);

  // Through the admin API (the running server's socket when there is one), as the local operator: the same
  // Revoker, OCSP re-signing and CRL publication before it answers.
  const admin = await openAdminClient(config);
  try {
    const revoked = await admin.call<{ serial: string; revokedAt?: string }>('POST', `/certificates/${serial}/revoke`, {
      reason: reasonName,
      ...(invalidityDate === undefined ? {} : { invalidityDate: invalidityDate.toISOString() }),
    });
    const since = invalidityDate === undefined ? '' : `, invalid since ${invalidityDate.toISOString()}`;
    process.stdout.write(`Revoked ${revoked.serial} (${reasonName}) at ${revoked.revokedAt ?? ''}${since}; OCSP re-signed, CRL regenerated\n`);
  } finally {
    await admin.close();
  }
}

/** --invalidity-date: an ISO 8601 date (midnight UTC) or date-time with Z or an offset; seconds optional. */
function parseInvalidityDate(text: string): Date {
  const iso = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,3})?)?(Z|[+-]\d{2}:\d{2}))?$/;
  const date = new Date(text.length === 10 ? `${text}T00:00:00Z` : text);
  // Date rolls 2026-02-30 over to March 2nd: the calendar date must be one that exists.
  const [year, month, day] = text.slice(0, 10).split('-').map(Number) as [number, number, number];
  const calendar = new Date(0);
  calendar.setUTCFullYear(year, month - 1, day); // not Date.UTC, which reads years 0-99 as 1900-1999
  const exists = calendar.getUTCMonth() === month - 1 && calendar.getUTCDate() === day;
  if (!iso.test(text) || !exists || Number.isNaN(date.getTime())) {
    throw new CaError('malformed', `--invalidity-date "${text.slice(0, 40)}" is not an ISO 8601 date or date-time with a time zone (e.g. 2026-12-01 or 2026-12-01T09:30:00Z)`);
  }
  return date;
}
