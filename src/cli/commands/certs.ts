import { parseArgs } from 'node:util';
import type { Config } from '../../config/config.js';
import { CaError } from '../../core/errors.js';
import { openAdminClient } from '../admin-client.js';

const USAGE = 'usage: chancery certs list [--status valid|revoked] [--group NAME] [--expiring 30d] | chancery certs show SERIAL';

interface Certificate {
  serial: string;
  status: string;
  notAfter: string;
  identifiers: { value: string }[];
  group?: string;
  profile: string;
  pem: string;
}

/** `chancery certs list|show`: the certificates the admin API shows (newest first, or soonest to expire). */
export async function certsCommand(config: Config, args: string[]): Promise<void> {
  const { positionals, values } = parseArgs({ args, allowPositionals: true, options: { status: { type: 'string' }, group: { type: 'string' }, expiring: { type: 'string' } } });
  const [verb, serial, ...extra] = positionals;
  if (extra.length > 0 || (verb !== 'list' && verb !== 'show') || (verb === 'show') !== (serial !== undefined)) throw new CaError('malformed', USAGE);
  const admin = await openAdminClient(config);
  try {
    if (verb === 'show') {
      const c = await admin.call<Certificate>('GET', `/certificates/${encodeURIComponent(serial!)}`);
      process.stdout.write(`${JSON.stringify({ ...c, pem: undefined }, null, 2)}\n${c.pem}`);
      return;
    }
    const query = new URLSearchParams();
    if (values.status) query.set('status', values.status);
    if (values.group) query.set('group', values.group);
    if (values.expiring) {
      const days = /^(\d{1,4})d$/.exec(values.expiring)?.[1];
      if (days === undefined) throw new CaError('malformed', `--expiring "${values.expiring.slice(0, 20)}" must be a number of days, e.g. 30d`);
      query.set('expiringWithinDays', days);
    }
    const text = query.toString();
    for (const c of await admin.all<Certificate>(`/certificates${text ? `?${text}` : ''}`)) {
      process.stdout.write(`${c.serial}  ${c.status.padEnd(7)}  ${c.notAfter}  ${c.profile.padEnd(11)}  ${c.group ?? '-'}  ${c.identifiers.map((i) => i.value).join(',')}\n`);
    }
  } finally {
    await admin.close();
  }
}
