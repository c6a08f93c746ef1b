import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { stringify } from 'yaml';
import type { Config } from '../../config/config.js';
import { CaError } from '../../core/errors.js';
import { formatDiff, type GroupChange } from '../../policy/policy-diff.js';
import type { PolicyIssue } from '../../policy/policy-issue.js';
import { AdminProblemError, openAdminClient } from '../admin-client.js';
import { parsePolicyDocument } from '../../policy/policy-document.js';
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
  const admin = await openAdminClient(config);
  try {
    process.stdout.write(HEADER + stringify(await admin.call('GET', '/policy')));
  } finally {
    await admin.close();
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

  // Through the admin API (the running server's socket when there is one), which checks the document again.
  const admin = await openAdminClient(config);
  try {
    let outcome: { changes: { group: string; change: GroupChange['change']; fields: GroupChange['fields'] }[] };
    try {
      outcome = await admin.call('PUT', `/policy${dryRun ? '?dryRun=true' : ''}`, text.value);
    } catch (error) {
      if (error instanceof AdminProblemError && error.problem.issues !== undefined) {
        throw refuse(describeIssues(file, text, error.problem.issues as PolicyIssue[]));
      }
      throw error;
    }
    const changes = outcome.changes.map((c) => ({ name: c.group, change: c.change, fields: c.fields }));
    const lines = formatDiff(changes);
    if (lines.length === 0) {
      process.stdout.write('No changes: the groups are already as the file says.\n');
      return;
    }
    const count = `${changes.length} group${changes.length === 1 ? '' : 's'}`;
    process.stdout.write(`${lines.join('\n')}\n${dryRun ? `Dry run: ${count} would change; nothing was written.` : `Applied: ${count} changed.`}\n`);
  } finally {
    await admin.close();
  }
}
