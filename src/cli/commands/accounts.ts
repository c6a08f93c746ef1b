import { parseArgs } from 'node:util';
import type { Config } from '../../config/config.js';
import { CaError } from '../../core/errors.js';
import { openAdminClient } from '../admin-client.js';

const USAGE = 'usage: chancery accounts list [--group NAME] [--status valid|deactivated|revoked] | chancery accounts deactivate ID';

/** `chancery accounts list|deactivate`: ACME accounts through the admin API. */
export async function accountsCommand(config: Config, args: string[]): Promise<void> {
  const { positionals, values } = parseArgs({ args, allowPositionals: true, options: { status: { type: 'string' }, group: { type: 'string' } } });
  const [verb, id, ...extra] = positionals;
  if (extra.length > 0 || (verb !== 'list' && verb !== 'deactivate') || (verb === 'deactivate') !== (id !== undefined)) throw new CaError('malformed', USAGE);
  const admin = await openAdminClient(config);
  try {
    if (verb === 'deactivate') {
      const account = await admin.call<{ id: string; status: string }>('POST', `/accounts/${encodeURIComponent(id!)}/deactivate`);
      process.stdout.write(`Account ${account.id} is ${account.status}\n`);
      return;
    }
    const query = new URLSearchParams();
    if (values.status) query.set('status', values.status);
    if (values.group) query.set('group', values.group);
    const text = query.toString();
    for (const a of await admin.all<{ id: string; status: string; group: string; contacts: string[]; createdAt: string }>(`/accounts${text ? `?${text}` : ''}`)) {
      process.stdout.write(`${a.id}  ${a.status.padEnd(11)}  ${a.group}  ${a.createdAt}  ${a.contacts.join(',') || '-'}\n`);
    }
  } finally {
    await admin.close();
  }
}
