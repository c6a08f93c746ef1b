import { once } from 'node:events';
import { parseArgs } from 'node:util';
import { auditEntryFields, type AuditEntry, type AuditFilter } from '../../core/audit.js';
import { composeBase } from '../../compose.js';
import type { Config } from '../../config/config.js';
import { CaError } from '../../core/errors.js';
import { readLatestCheckpoint } from '../../inventory/audit-checkpoint-file.js';
import type { AuditVerification } from '../../inventory/audit-verify.js';

const USAGE = `usage: chancery audit verify [--expect-head FILE]
       chancery audit export --since WHEN [--until WHEN] [--actor A] [--action A] [--subject S]
  WHEN: an ISO 8601 date (2026-12-01, midnight UTC) or date-time with a time zone (2026-12-01T09:30:00Z)`;

/**
 * `chancery audit verify [--expect-head FILE]`: checks the hash chain, every checkpoint's signature, and the
 * latest checkpoint kept outside the database (FILE, a copy an auditor kept; by default
 * <dataDir>/audit/checkpoints.jsonl) against the database. Exit 0 when all holds, 1 naming the first bad
 * entry otherwise.
 * `chancery audit export --since WHEN ...`: the entries as JSON lines on stdout, oldest first (ties in id
 * order), streamed page by page (DESIGN.md rule 9), with each one's chain position and hashes once sealed.
 */
export async function auditCommand(config: Config, args: string[]): Promise<void> {
  const { positionals, values } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      'expect-head': { type: 'string' },
      since: { type: 'string' },
      until: { type: 'string' },
      actor: { type: 'string' },
      action: { type: 'string' },
      subject: { type: 'string' },
    },
  });
  const [subcommand, ...extra] = positionals;
  if (extra.length > 0) throw new CaError('malformed', USAGE);
  if (subcommand === 'verify') {
    if (values.since ?? values.until ?? values.actor ?? values.action ?? values.subject) throw new CaError('malformed', USAGE);
    return verify(config, values['expect-head']);
  }
  if (subcommand === 'export') {
    if (values['expect-head'] !== undefined) throw new CaError('malformed', USAGE);
    if (values.since === undefined) throw new CaError('malformed', `--since is required; ${USAGE}`);
    const filter: AuditFilter = {
      from: parseWhen(values.since, '--since'),
      ...(values.until === undefined ? {} : { to: parseWhen(values.until, '--until') }),
      ...(values.actor === undefined ? {} : { actor: values.actor }),
      ...(values.action === undefined ? {} : { action: values.action }),
      ...(values.subject === undefined ? {} : { subject: values.subject }),
    };
    return exportEntries(config, filter);
  }
  throw new CaError('malformed', `${USAGE}${subcommand ? `\n(unknown subcommand "${subcommand.slice(0, 40)}")` : ''}`);
}

async function verify(config: Config, expectHead: string | undefined): Promise<void> {
  // Read before opening anything: a missing or damaged file is the operator's error, named as such.
  const expected =
    expectHead === undefined
      ? undefined
      : { checkpoint: await readExpected(expectHead), source: expectHead };
  if (expected !== undefined && expected.checkpoint === undefined) throw new CaError('malformed', `--expect-head ${expectHead} holds no checkpoint`);
  const chancery = await composeBase(config);
  let report: AuditVerification;
  try {
    report = await chancery.services.audit.verify(expected === undefined ? {} : { expected });
  } finally {
    await chancery.close();
  }
  process.stdout.write(describe(report));
  if (!report.ok) {
    const first = report.firstBad;
    const where = first?.seq === undefined ? '' : ` at position ${first.seq}${first.entryId === undefined ? '' : ` (entry ${first.entryId})`}`;
    throw new CaError('caState', `audit log verification FAILED: first bad entry${where}: ${first?.detail ?? 'see above'}`);
  }
}

async function readExpected(file: string): ReturnType<typeof readLatestCheckpoint> {
  try {
    const checkpoint = await readLatestCheckpoint(file);
    return checkpoint;
  } catch (cause) {
    throw new CaError('malformed', `--expect-head ${file}: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
  }
}

function describe(report: AuditVerification): string {
  const lines = [
    `chain: ${report.sealed} entries sealed${report.head ? ` (head ${report.head.seq}: ${report.head.hash})` : ''}, ${report.unsealed} waiting to be sealed`,
    `checkpoints: ${report.checkpoints}${report.latestCheckpoint ? ` (latest at position ${report.latestCheckpoint.seq}, ${report.latestCheckpoint.at.toISOString()})` : ''}`,
    `kept outside the database: ${report.expected.source}${report.expected.seq === undefined ? ' (none found)' : ` (position ${report.expected.seq})`}`,
    ...report.warnings.map((w) => `warning: ${w}`),
    ...report.problems.map((p) => `problem: ${p.detail}`),
    report.ok ? 'OK: the audit log is intact' : `FAILED: ${report.problems.length} problem(s)`,
    '',
  ];
  return lines.join('\n');
}

async function exportEntries(config: Config, filter: AuditFilter): Promise<void> {
  const chancery = await composeBase(config);
  try {
    for await (const entry of chancery.services.audit.export(filter)) {
      // Backpressure: a slow reader (a pipe to gzip, ssh) holds the export, not memory.
      if (!process.stdout.write(`${JSON.stringify(exportLine(entry))}\n`)) await once(process.stdout, 'drain');
    }
  } finally {
    await chancery.close();
  }
}

/** An entry as exported: its fields, then its chain position flat (seq, prevHash, hash) once sealed. */
function exportLine(entry: AuditEntry): Record<string, unknown> {
  return { ...auditEntryFields(entry), ...(entry.seal === undefined ? {} : { seq: entry.seal.seq, prevHash: entry.seal.prevHash, hash: entry.seal.hash }) };
}

/** An ISO 8601 date (midnight UTC) or date-time with Z or an offset. */
function parseWhen(text: string, option: string): Date {
  const iso = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,3})?)?(Z|[+-]\d{2}:\d{2}))?$/;
  const date = new Date(text.length === 10 ? `${text}T00:00:00Z` : text);
  if (!iso.test(text) || Number.isNaN(date.getTime())) {
    throw new CaError('malformed', `${option} "${text.slice(0, 40)}" is not an ISO 8601 date or date-time with a time zone (e.g. 2026-12-01 or 2026-12-01T09:30:00Z)`);
  }
  return date;
}
