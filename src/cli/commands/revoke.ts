import { parseArgs } from 'node:util';
import type { Config } from '../../config/config.js';
import { CaError } from '../../core/errors.js';
import { loadHierarchy, openAcme, openCrlPublisher, openOcsp, openRuntime } from '../../main.js';
import { REASON_CODES } from '../../ra/revocation-service.js';

const USAGE = `usage: chancery revoke --serial HEX [--reason NAME] [--invalidity-date ISO-8601]   (reasons: ${Object.keys(REASON_CODES).join(', ')})`;

/**
 * `chancery revoke --serial HEX --reason NAME [--invalidity-date WHEN]`: revokes through the same
 * RevocationService as ACME, so the OCSP response is re-signed in the revocation's transaction (running
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
  const serial = normalizeSerial(values.serial);
  const reasonName = values.reason ?? 'unspecified';
  const reason = REASON_CODES[reasonName];
  if (reason === undefined) throw new CaError('badRevocationReason', `unknown --reason "${reasonName.slice(0, 40)}"; ${USAGE}`);
  const invalidityDate = values['invalidity-date'] === undefined ? undefined : parseInvalidityDate(values['invalidity-date']);

  const runtime = await openRuntime(config);
  try {
    const hierarchy = await loadHierarchy(runtime);
    if (!hierarchy) throw new CaError('caState', 'no CA in this database: nothing to revoke');
    const acme = await openAcme(runtime, hierarchy, { startScheduler: false });
    const ocsp = await openOcsp(runtime, hierarchy, { listen: false, startRefresher: false });
    const crl = openCrlPublisher(runtime);
    try {
      ocsp.attach(acme.revocation);
      acme.revocation.onRevoked((certificate) => crl.onRevoked(certificate));
      const revoked = await acme.revocation.revoke(serial, reason, invalidityDate === undefined ? {} : { invalidityDate });
      await crl.settled();
      const since = revoked.invalidityDate === undefined ? '' : `, invalid since ${revoked.invalidityDate.toISOString()}`;
      process.stdout.write(`Revoked ${revoked.serial} (${reasonName}) at ${revoked.revokedAt?.toISOString() ?? ''}${since}; OCSP re-signed, CRL regenerated\n`);
    } finally {
      await crl.stop();
      await ocsp.close();
      await acme.close();
    }
  } finally {
    await runtime.close();
  }
}

/**
 * Accepts `3a:f0:...`, `0x3AF0...` or plain hex; returns the stored form: lower-case hex of the serial's
 * magnitude octets (even length, no leading zero octets), as `openssl x509 -serial` prints it.
 */
function normalizeSerial(text: string): string {
  const hex = text.trim().replace(/^0x/i, '').replace(/:/g, '').toLowerCase();
  if (!/^[0-9a-f]{1,42}$/.test(hex)) throw new CaError('malformed', `--serial "${text.slice(0, 60)}" is not a hexadecimal serial number`);
  return (hex.length % 2 ? `0${hex}` : hex).replace(/^(00)+(?=..)/, '');
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
