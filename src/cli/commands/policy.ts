import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { stringify } from 'yaml';
import type { Config } from '../../config/config.js';
import { composeBase } from '../../compose.js';
import { localOperator } from '../../core/audit.js';
import { CaError } from '../../core/errors.js';
import { formatDiff } from '../../policy/policy-diff.js';
import { parsePolicyDocument, policyDocumentOf } from '../../policy/policy-document.js';
import { describeIssues, readPolicyText } from '../policy-file.js';

const USAGE = 'usage: chancery policy export > policy.yaml | chancery policy apply policy.yaml [--dry-run]';

const HEADER = [
  '# Chancery policy: every group (department), its owners and what the CA issues to it.',
  '# A group only narrows the limits in configuration; a field left out is what configuration allows.',
  '# Apply with `chancery policy apply FILE` (`--dry-run` shows the changes and writes nothing).',
  '',
].join('\n');

/**
 * `chancery policy export` prints every group as a policy file; `chancery policy apply FILE [--dry-run]`
 * makes the groups exactly what the file says: the file is checked first (a problem is reported with its
 * line and the rule that refused it, and nothing changes), the changes are printed, and they are applied
 * in one transaction.
 */
export async function policyCommand(config: Config, args: string[]): Promise<void> {
  const { positionals, values } = parseArgs({ args, allowPositionals: true, options: { 'dry-run': { type: 'boolean' } } });
  const [sub, file, ...extra] = positionals;
  if (sub === 'export' && file === undefined) return exportPolicy(config);
  if (sub === 'apply' && file !== undefined && extra.length === 0) return applyPolicy(config, file, values['dry-run'] === true);
  throw new CaError('malformed', `${USAGE}${sub !== undefined && sub !== 'export' && sub !== 'apply' ? ` (unknown subcommand "${sub}")` : ''}`);
}

async function exportPolicy(config: Config): Promise<void> {
  const chancery = await composeBase(config);
  try {
    process.stdout.write(HEADER + stringify(policyDocumentOf(await chancery.services.groups.list())));
  } finally {
    await chancery.close();
  }
}

async function applyPolicy(config: Config, file: string, dryRun: boolean): Promise<void> {
  let source: string;
  try {
    source = await readFile(file, 'utf8');
  } catch (cause) {
    throw new CaError('malformed', `cannot read ${file}: ${(cause as NodeJS.ErrnoException).code ?? 'error'}`, { cause });
  }
  const refuse = (lines: string[]): CaError => {
    process.stderr.write(`${lines.join('\n')}\n`);
    return new CaError('malformed', `${file}: ${lines.length} problem${lines.length === 1 ? '' : 's'}; nothing was changed`);
  };
  const text = readPolicyText(source);
  if ('syntaxErrors' in text) throw refuse(text.syntaxErrors.map((e) => `${file}:${e.line}: ${e.message} (rule yaml)`));
  const parsed = parsePolicyDocument(text.value);
  if (parsed.groups === undefined) throw refuse(describeIssues(file, text, parsed.issues));

  const chancery = await composeBase(config);
  try {
    const outcome = await chancery.services.groups.apply(parsed.groups, { actor: localOperator(), dryRun });
    if (!outcome.ok) throw refuse(describeIssues(file, text, outcome.issues));
    const lines = formatDiff(outcome.changes);
    if (lines.length === 0) {
      process.stdout.write('No changes: the groups are already as the file says.\n');
      return;
    }
    const count = `${outcome.changes.length} group${outcome.changes.length === 1 ? '' : 's'}`;
    process.stdout.write(`${lines.join('\n')}\n${dryRun ? `Dry run: ${count} would change; nothing was written.` : `Applied: ${count} changed.`}\n`);
  } finally {
    await chancery.close();
  }
}
