import { parseArgs } from 'node:util';
import { compose } from '../../compose.js';
import type { Config } from '../../config/config.js';
import { CaError } from '../../core/errors.js';
import { OcspResponseRepository } from '../../db/repositories/ocsp-repository.js';

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
  const chancery = await compose(config, { listen: false });
  try {
    const result = await chancery.services.refresher.runOnce({ backfill: true });
    const stored = await new OcspResponseRepository(chancery.db).count();
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
    await chancery.close();
  }
}
