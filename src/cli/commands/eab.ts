import { parseArgs } from 'node:util';
import type { Config } from '../../config/config.js';
import { CaError } from '../../core/errors.js';
import type { Labels } from '../../core/group.js';
import { parseLabelArgument } from '../../policy/labels.js';
import { openAdminClient } from '../admin-client.js';

const USAGE = 'usage: chancery eab create [--group NAME] [--label key=value ...] | chancery eab list [--group NAME] | chancery eab revoke KID';

interface Credential {
  kid: string;
  group: string;
  labels?: Labels;
  status: string;
  createdAt: string;
  boundAccountId?: string;
}

/**
 * `chancery eab create [--group NAME] [--label key=value ...]`: a new External Account Binding credential
 * (RFC 8555 §7.3.4) for an existing group (`default` without --group), with labels every certificate of the
 * account bound with it will carry in its inventory record. The HMAC key is printed once, here, and never
 * again: it is stored sealed. `eab list` and `eab revoke KID` (an unused credential) besides. All go
 * through the admin API: the running server's socket when there is one, so they work while it serves.
 */
export async function eabCommand(config: Config, args: string[]): Promise<void> {
  const { positionals, values } = parseArgs({ args, allowPositionals: true, options: { group: { type: 'string' }, label: { type: 'string', multiple: true } } });
  const [verb, kid, ...extra] = positionals;
  if (extra.length > 0 || !['create', 'list', 'revoke'].includes(verb ?? '') || (verb === 'revoke') !== (kid !== undefined)) {
    throw new CaError('malformed', `${USAGE}${verb && !['create', 'list', 'revoke'].includes(verb) ? ` (unknown subcommand "${verb}")` : ''}`);
  }
  const labels: Labels = {};
  for (const text of values.label ?? []) {
    const label = parseLabelArgument(text);
    if ('error' in label) throw new CaError('malformed', label.error);
    if (label.key in labels) throw new CaError('malformed', `--label ${label.key} is given twice`);
    labels[label.key] = label.value;
  }
  const group = values.group;
  if (group !== undefined && !/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(group)) {
    throw new CaError('malformed', `--group "${group.slice(0, 80)}" must be 1-64 letters, digits, dots, dashes or underscores`);
  }
  const admin = await openAdminClient(config);
  try {
    if (verb === 'list') {
      for (const c of await admin.all<Credential>(`/eab${group ? `?group=${encodeURIComponent(group)}` : ''}`)) {
        process.stdout.write(`${c.kid}  ${c.status.padEnd(7)}  ${c.group}  ${c.createdAt}${c.boundAccountId ? `  account ${c.boundAccountId}` : ''}\n`);
      }
      return;
    }
    if (verb === 'revoke') {
      const revoked = await admin.call<Credential>('POST', `/eab/${encodeURIComponent(kid!)}/revoke`);
      process.stdout.write(`Revoked EAB credential ${revoked.kid}\n`);
      return;
    }
    const { credential, hmacKey } = await admin.call<{ credential: Credential; hmacKey: string }>('POST', '/eab', {
      ...(group === undefined ? {} : { group }),
      ...(Object.keys(labels).length > 0 ? { labels } : {}),
    });
    process.stdout.write(
      [
        `kid:      ${credential.kid}`,
        `hmac key: ${hmacKey}`,
        ...(group !== undefined ? [`group:    ${credential.group}`] : []),
        ...Object.entries(credential.labels ?? {}).map(([key, value]) => `label:    ${key}=${value}`),
        '',
        'The HMAC key is shown only now. certbot: --eab-kid KID --eab-hmac-key KEY; lego: --eab --kid KID --hmac KEY',
        '',
      ].join('\n'),
    );
  } finally {
    await admin.close();
  }
}
