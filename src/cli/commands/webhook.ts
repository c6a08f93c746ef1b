import { parseArgs } from 'node:util';
import type { Config } from '../../config/config.js';
import { CaError } from '../../core/errors.js';
import { openAdminClient } from '../admin-client.js';

const USAGE = [
  'usage: chancery webhook add --url URL [--group NAME] [--events renewal-overdue,expiring-soon,expired-unreplaced] [--description TEXT]',
  '       chancery webhook list [--group NAME] | chancery webhook remove ID | chancery webhook deliveries ID',
].join('\n');

interface Webhook {
  id: string;
  group?: string;
  url: string;
  events: string[];
  description: string;
  createdAt: string;
  createdBy: string;
}

/**
 * `chancery webhook add|list|remove|deliveries`: notification webhooks through the admin API. `add` prints
 * the signing secret once (it is stored sealed and never shown again).
 */
export async function webhookCommand(config: Config, args: string[]): Promise<void> {
  const { positionals, values } = parseArgs({
    args,
    allowPositionals: true,
    options: { url: { type: 'string' }, group: { type: 'string' }, events: { type: 'string' }, description: { type: 'string' } },
  });
  const [verb, id, ...extra] = positionals;
  const ok =
    extra.length === 0 &&
    ((verb === 'add' && id === undefined && values.url !== undefined) || (verb === 'list' && id === undefined) || ((verb === 'remove' || verb === 'deliveries') && id !== undefined));
  if (!ok) throw new CaError('malformed', USAGE);
  const admin = await openAdminClient(config);
  try {
    const out = (line: string): boolean => process.stdout.write(`${line}\n`);
    if (verb === 'add') {
      const body = {
        url: values.url,
        ...(values.group === undefined ? {} : { group: values.group }),
        ...(values.events === undefined ? {} : { events: values.events.split(',').map((e) => e.trim()).filter(Boolean) }),
        ...(values.description === undefined ? {} : { description: values.description }),
      };
      const made = await admin.call<{ webhook: Webhook; secret: string }>('POST', '/webhooks', body);
      out(`webhook ${made.webhook.id} -> ${made.webhook.url} (${made.webhook.group ?? 'global'}: ${made.webhook.events.join(', ')})`);
      out(`secret (shown only now; verify Chancery-Signature with it): ${made.secret}`);
      return;
    }
    if (verb === 'list') {
      for (const w of await admin.all<Webhook>(`/webhooks${values.group === undefined ? '' : `?group=${encodeURIComponent(values.group)}`}`)) {
        out(`${w.id}  ${w.group ?? 'global'}  ${w.url}  ${w.events.join(',')}  ${w.description}`);
      }
      return;
    }
    if (verb === 'remove') {
      const removed = await admin.call<Webhook>('DELETE', `/webhooks/${encodeURIComponent(id!)}`);
      out(`removed ${removed.id} (${removed.url})`);
      return;
    }
    for (const d of await admin.all<{ eventId: string; type: string; serial: string; status: string; attempts: number; nextAttemptAt?: string; lastError?: string }>(
      `/webhooks/${encodeURIComponent(id!)}/deliveries`,
    )) {
      out(`${d.eventId}  ${d.type}  ${d.serial}  ${d.status}  attempts ${d.attempts}${d.nextAttemptAt ? `  next ${d.nextAttemptAt}` : ''}${d.lastError ? `  last error: ${d.lastError}` : ''}`);
    }
  } finally {
    await admin.close();
  }
}
