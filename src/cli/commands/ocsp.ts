import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { ocspResponderCertificateFactory } from '../../ca/ocsp-responder-certificate.js';
import { ocspCodec } from '../../ca/ocsp-response.js';
import type { Config } from '../../config/config.js';
import type { IssuedCertificate } from '../../core/certificate.js';
import { DAY, HOUR } from '../../core/clock.js';
import { CaError } from '../../core/errors.js';
import type { Queryable, Subscription } from '../../db/database.js';
import { listen, notify } from '../../db/notifications.js';
import { OcspResponderRepository, OcspResponseRepository } from '../../db/repositories/ocsp-repository.js';
import { loadHierarchy, openOcsp, openRuntime } from '../../main.js';
import type { RevocationService } from '../../ra/revocation-service.js';
import { OcspRefresher, type OcspRefresherSettings } from '../../revocation/ocsp-refresher.js';
import { OcspResponderKeys, type ServedIssuer } from '../../revocation/ocsp-responder-keys.js';
import { OCSP_CHANNEL, OcspSource, type OcspNonceMode } from '../../revocation/ocsp-source.js';

const USAGE = 'usage: chancery ocsp refresh';

/**
 * `chancery ocsp refresh`: one refresher pass now — rotates responder certificates that are due, re-signs
 * every response past its refresh point, signs responses for certificates that have none, and prints the
 * counts. Safe while servers run: claims are leased in the database, and every write is guarded.
 */
export async function ocspCommand(config: Config, args: string[]): Promise<void> {
  const { positionals } = parseArgs({ args, allowPositionals: true, options: {} });
  if (positionals[0] !== 'refresh' || positionals.length > 1) {
    throw new CaError('malformed', `${USAGE}${positionals[0] && positionals[0] !== 'refresh' ? ` (unknown subcommand "${positionals[0]}")` : ''}`);
  }
  const runtime = await openRuntime(config);
  try {
    const hierarchy = await loadHierarchy(runtime);
    if (!hierarchy) throw new CaError('caState', 'no CA in this database: run `chancery init` first');
    const ocsp = await openOcsp(runtime, hierarchy, { listen: false, startRefresher: false });
    try {
      const result = await ocsp.refresher.runOnce({ backfill: true });
      const stored = await new OcspResponseRepository(runtime.db).count();
      process.stdout.write(
        [
          `refreshed:  ${result.refreshed}`,
          `backfilled: ${result.backfilled}`,
          `failed:     ${result.failed}`,
          `purged:     ${result.purged}`,
          `stored:     ${stored}`,
          '',
        ].join('\n'),
      );
      if (result.failed > 0) throw new CaError('keyStore', `${result.failed} OCSP responses could not be signed; see the log`);
    } finally {
      await ocsp.close();
    }
  } finally {
    await runtime.close();
  }
}
