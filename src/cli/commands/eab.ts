import { parseArgs } from 'node:util';
import type { Config } from '../../config/config.js';
import { localOperator } from '../../core/audit.js';
import { CaError } from '../../core/errors.js';
import type { Labels } from '../../core/group.js';
import { composeBase } from '../../compose.js';
import { parseLabelArgument } from '../../policy/labels.js';

/**
 * `chancery eab create [--group NAME] [--label key=value ...]`: a new External Account Binding credential
 * (RFC 8555 §7.3.4) for an existing group (`default` without --group), with labels every certificate of the
 * account bound with it will carry in its inventory record. The HMAC key is printed once, here, and never
 * again: it is stored sealed.
 */
export async function eabCommand(config: Config, args: string[]): Promise<void> {
  const { positionals, values } = parseArgs({ args, allowPositionals: true, options: { group: { type: 'string' }, label: { type: 'string', multiple: true } } });
  if (positionals[0] !== 'create') {
    throw new CaError('malformed', `usage: chancery eab create [--group NAME] [--label key=value ...]${positionals[0] ? ` (unknown subcommand "${positionals[0]}")` : ''}`);
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
  // No CA needed: credentials can be minted before the first start.
  const chancery = await composeBase(config);
  try {
    const { credential, hmacKey } = await chancery.services.eab.create({ group, labels, actor: localOperator() });
    process.stdout.write(
      [
        `kid:      ${credential.kid}`,
        `hmac key: ${hmacKey}`,
        ...(credential.group ? [`group:    ${credential.group}`] : []),
        ...Object.entries(credential.labels ?? {}).map(([key, value]) => `label:    ${key}=${value}`),
        '',
        'The HMAC key is shown only now. certbot: --eab-kid KID --eab-hmac-key KEY; lego: --eab --kid KID --hmac KEY',
        '',
      ].join('\n'),
    );
  } finally {
    await chancery.close();
  }
}
