import { parseArgs } from 'node:util';
import type { Config } from '../../config/config.js';
import { HOUR } from '../../core/clock.js';
import { CaError } from '../../core/errors.js';
import { compose } from '../../compose.js';
import type { PublicUrls } from '../../core/url-scheme.js';
import type { CrlInfo } from '../../revocation/crl-publisher.js';

const USAGE = 'usage: chancery crl generate [--issuer ID --shard N] [--next-update-hours H]';

/**
 * `chancery crl generate`: generates, signs and stores CRLs now — every scope (the root's and each
 * intermediate shard), or one with --issuer/--shard — and prints what was published. Running instances
 * serve the new CRLs at once: they read the latest from the database.
 */
export async function crlCommand(config: Config, args: string[]): Promise<void> {
  const { positionals, values } = parseArgs({
    args,
    allowPositionals: true,
    options: { issuer: { type: 'string' }, shard: { type: 'string' }, 'next-update-hours': { type: 'string' } },
  });
  if (positionals[0] !== 'generate' || positionals.length > 1) {
    throw new CaError('malformed', `${USAGE}${positionals[0] && positionals[0] !== 'generate' ? ` (unknown subcommand "${positionals[0].slice(0, 40)}")` : ''}`);
  }
  if (values.shard !== undefined && !/^\d{1,4}$/.test(values.shard)) {
    throw new CaError('malformed', `--shard must be a shard number, got "${values.shard.slice(0, 20)}"`);
  }
  if (values.shard !== undefined && values.issuer === undefined) throw new CaError('malformed', `--shard needs --issuer; ${USAGE}`);
  const shard = values.shard === undefined ? 0 : Number(values.shard);
  const hours = values['next-update-hours'] === undefined ? undefined : Number(values['next-update-hours']);
  if (hours !== undefined && (!Number.isInteger(hours) || hours < 1 || hours > 24 * 30)) {
    throw new CaError('malformed', '--next-update-hours must be a whole number of hours from 1 to 720');
  }

  const chancery = await compose(config, { listen: false, tuning: hours === undefined ? {} : { crl: { nextUpdateMs: hours * HOUR } } });
  try {
    const publisher = chancery.services.crl;
    const started = performance.now();
    const generated =
      values.issuer === undefined ? await publisher.generateAll() : [await publisher.generate(values.issuer, shard)];
    const seconds = (performance.now() - started) / 1000;
    process.stdout.write(`${formatTable(generated, chancery.urls, chancery.hierarchy.root.id)}\n${generated.length} CRL(s) in ${seconds.toFixed(2)} s\n`);
  } finally {
    await chancery.close();
  }
}

function formatTable(crls: CrlInfo[], urls: PublicUrls, rootId: string): string {
  const rows = [['issuer', 'shard', 'number', 'entries', 'thisUpdate', 'nextUpdate', 'url']];
  for (const crl of crls) {
    rows.push([
      crl.issuerId,
      String(crl.shard),
      String(crl.number),
      String(crl.entries),
      crl.thisUpdate.toISOString(),
      crl.nextUpdate.toISOString(),
      crl.issuerId === rootId ? urls.rootCrl() : urls.crl(crl.issuerId, crl.shard),
    ]);
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((cell, i) => cell.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n');
}
