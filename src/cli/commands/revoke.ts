import { parseArgs } from 'node:util';
import type { Config } from '../../config/config.js';
import { CaError } from '../../core/errors.js';
import { loadHierarchy, openAcme, openCrlPublisher, openOcsp, openRuntime } from '../../main.js';
import { REASON_CODES } from '../../ra/revocation-service.js';

const USAGE = `usage: chancery revoke --serial HEX --reason NAME   (reasons: ${Object.keys(REASON_CODES).join(', ')})`;

/**
 * `chancery revoke --serial HEX --reason NAME`: revokes through the same RevocationService as ACME, so the
 * OCSP response is re-signed in the revocation's transaction (running instances drop their cached answer
 * on the NOTIFY) and the certificate's CRL is regenerated before this command returns.
 */
export async function revokeCommand(config: Config, args: string[]): Promise<void> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { serial: { type: 'string' }, reason: { type: 'string' } } });
  if (positionals.length > 0 || !values.serial) throw new CaError('malformed', USAGE);
  const serial = normalizeSerial(values.serial);
  const reasonName = values.reason ?? 'unspecified';
  const reason = REASON_CODES[reasonName];
  if (reason === undefined) throw new CaError('badRevocationReason', `unknown --reason "${reasonName.slice(0, 40)}"; ${USAGE}`);

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
      const revoked = await acme.revocation.revoke(serial, reason);
      await crl.settled();
      process.stdout.write(`Revoked ${revoked.serial} (${reasonName}) at ${revoked.revokedAt?.toISOString() ?? ''}; OCSP re-signed, CRL regenerated\n`);
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
