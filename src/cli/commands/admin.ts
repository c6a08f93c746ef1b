import { parseArgs } from 'node:util';
import type { Config } from '../../config/config.js';
import { CaError } from '../../core/errors.js';
import { openAdminClient } from '../admin-client.js';

const USAGE = [
  'usage: chancery admin token create --role admin|group-admin|auditor [--group NAME]... [--expires 90d] [--description TEXT]',
  '       chancery admin token list | chancery admin token revoke ID',
  '       chancery admin operator bind --serial HEX --role ROLE [--group NAME]... [--name NAME]',
  '       chancery admin operator list | chancery admin operator unbind SPKI_SHA256',
].join('\n');

interface Token {
  id: string;
  role: string;
  groups: string[];
  status: string;
  expiresAt: string;
  createdBy: string;
  lastUsedAt?: string;
  description: string;
}

/**
 * `chancery admin token ...` and `chancery admin operator ...`: admin tokens (shown once) and the operators
 * whose client certificates authenticate them, through the admin API as the local operator.
 */
export async function adminCommand(config: Config, args: string[]): Promise<void> {
  const { positionals, values } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      role: { type: 'string' },
      group: { type: 'string', multiple: true },
      expires: { type: 'string' },
      description: { type: 'string' },
      serial: { type: 'string' },
      name: { type: 'string' },
    },
  });
  const [noun, verb, id, ...extra] = positionals;
  const usage = (): CaError => new CaError('malformed', USAGE);
  if (extra.length > 0) throw usage();
  const admin = await openAdminClient(config);
  try {
    if (noun === 'token' && verb === 'create' && id === undefined) {
      if (values.role === undefined) throw usage();
      const expiresInDays = values.expires === undefined ? undefined : parseDays(values.expires);
      const created = await admin.call<{ token: Token; secret: string }>('POST', '/tokens', {
        role: values.role,
        ...(values.group ? { groups: values.group } : {}),
        ...(expiresInDays === undefined ? {} : { expiresInDays }),
        ...(values.description === undefined ? {} : { description: values.description }),
      });
      const { token } = created;
      process.stdout.write(
        [
          `token:   ${created.secret}`,
          `id:      ${token.id}`,
          `role:    ${token.role}${token.groups.length ? ` (groups: ${token.groups.join(', ')})` : ''}`,
          `expires: ${token.expiresAt}`,
          '',
          'The token is shown only now. Send it as `Authorization: Bearer <token>` to the admin listener.',
          '',
        ].join('\n'),
      );
    } else if (noun === 'token' && verb === 'list' && id === undefined) {
      const tokens = await admin.all<Token>('/tokens');
      for (const t of tokens) {
        process.stdout.write(`${t.id}  ${t.status.padEnd(7)}  ${t.role.padEnd(11)}  ${t.groups.join(',') || '-'}  expires ${t.expiresAt}  last used ${t.lastUsedAt ?? 'never'}  by ${t.createdBy}${t.description ? `  ${t.description}` : ''}\n`);
      }
    } else if (noun === 'token' && verb === 'revoke' && id !== undefined) {
      const token = await admin.call<Token>('POST', `/tokens/${encodeURIComponent(id)}/revoke`);
      process.stdout.write(`Revoked admin token ${token.id} (${token.role})\n`);
    } else if (noun === 'operator' && verb === 'bind' && id === undefined) {
      if (values.role === undefined || values.serial === undefined) throw usage();
      const bound = await admin.call<{ name: string; role: string; spkiSha256: string }>('POST', '/operators', {
        serial: values.serial,
        role: values.role,
        ...(values.group ? { groups: values.group } : {}),
        ...(values.name === undefined ? {} : { name: values.name }),
      });
      process.stdout.write(`Bound operator ${bound.name} (${bound.role}) to key ${bound.spkiSha256}\n`);
    } else if (noun === 'operator' && verb === 'list' && id === undefined) {
      for (const o of await admin.all<{ name: string; role: string; groups: string[]; spkiSha256: string; serial: string }>('/operators')) {
        process.stdout.write(`${o.spkiSha256}  ${o.name}  ${o.role}  ${o.groups.join(',') || '-'}  certificate ${o.serial}\n`);
      }
    } else if (noun === 'operator' && verb === 'unbind' && id !== undefined) {
      const removed = await admin.call<{ name: string }>('DELETE', `/operators/${encodeURIComponent(id)}`);
      process.stdout.write(`Removed operator ${removed.name}\n`);
    } else {
      throw usage();
    }
  } finally {
    await admin.close();
  }
}

/** `--expires 90d`: whole days (a token lives from 1 day to a year). */
function parseDays(text: string): number {
  const match = /^(\d{1,3})d$/.exec(text.trim());
  if (match === null) throw new CaError('malformed', `--expires "${text.slice(0, 20)}" must be a number of days, e.g. 90d`);
  return Number(match[1]);
}
