import { parseArgs } from 'node:util';
import type { Config } from '../../config/config.js';
import { localOperator } from '../../core/audit.js';
import { CaError } from '../../core/errors.js';
import { composeBase } from '../../compose.js';

/**
 * `chancery eab create [--group NAME]`: a new External Account Binding credential (RFC 8555 §7.3.4).
 * The HMAC key is printed once, here, and never again: it is stored sealed.
 */
export async function eabCommand(config: Config, args: string[]): Promise<void> {
  const { positionals, values } = parseArgs({ args, allowPositionals: true, options: { group: { type: 'string' } } });
  if (positionals[0] !== 'create') {
    throw new CaError('malformed', `usage: chancery eab create [--group NAME]${positionals[0] ? ` (unknown subcommand "${positionals[0]}")` : ''}`);
  }
  const group = values.group;
  if (group !== undefined && !/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(group)) {
    throw new CaError('malformed', `--group "${group.slice(0, 80)}" must be 1-64 letters, digits, dots, dashes or underscores`);
  }
  // No CA needed: credentials can be minted before the first start.
  const chancery = await composeBase(config);
  try {
    const { credential, hmacKey } = await chancery.services.eab.create({ group, actor: localOperator() });
    process.stdout.write(
      [
        `kid:      ${credential.kid}`,
        `hmac key: ${hmacKey}`,
        ...(credential.group ? [`group:    ${credential.group}`] : []),
        '',
        'The HMAC key is shown only now. certbot: --eab-kid KID --eab-hmac-key KEY; lego: --eab --kid KID --hmac KEY',
        '',
      ].join('\n'),
    );
  } finally {
    await chancery.close();
  }
}
