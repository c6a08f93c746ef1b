import { readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import type { Config } from '../../config/config.js';
import { CaError } from '../../core/errors.js';
import { AdminProblemError, openAdminClient, type AdminClient } from '../admin-client.js';

export const INCIDENT_USAGE = `  incident preview (--select FILTER | --serials-file FILE | --key-file FILE) [--json]
            the blast radius: counts by group (with owners), issuer and expiry, a sample; changes nothing
  incident declare NAME (--select ... | --serials-file ... | --key-file ...) --reason R --renew-by WHEN
           [--revoke when-replaced|at-deadline|now] [--explanation-url URL] [--drill] [--no-wait] [--json]
            renewalInfo of every affected certificate moves now; keys blocked (keyCompromise); owners notified
  incident status NAME [--json] | incident list | incident close NAME
  incident certificates NAME [--state outstanding|replaced|revoked|expired|short-lived]
  FILTER: the names of \`certs search\` as a query string, e.g. --select 'group=payments&label=env:prod'
          (--select may be repeated: every condition holds). WHEN: 2026-12-31, 2026-12-31T12:00:00Z, 7d, 48h`;

const USAGE = `usage:\n${INCIDENT_USAGE}`;

interface Status {
  incident: { name: string; state: string; reason: string; revoke: string; drill: boolean; renewBy: string; explanationUrl?: string; declaredAt: string; declaredBy: string; affected: number; shortLived: number; blockedKeys: number; closedAt?: string };
  at: string;
  deadlinePassed: boolean;
  totals: Record<string, number>;
  byGroup: (Record<string, number> & { group: string; owners: string[] })[];
  revocation: { planned: number; revoked: number; running: boolean; runs: { id: string; label: string; state: string; total: number; revoked: number; skipped: number; shortLived: number; shortLivedUntil?: string; publishedAt?: string }[] };
  series: { bucketSeconds: number; points: { at: string; replaced: number; revoked: number; blocked: number }[] };
  replacedWithin: { half?: number; ninetyPercent?: number; all?: number };
  ariRetryAfterSeconds: number;
}

interface Preview {
  affected: number;
  shortLived: { count: number; until?: string };
  byGroup: { group: string; count: number; owners: string[] }[];
  byIssuer: { issuer: string; count: number }[];
  byExpiry: Record<string, number>;
  sample: { serial: string; group: string; notAfter: string; identifiers?: string[] }[];
  excluded: { revoked: number; expired: number };
  notes: string[];
}

const out = (line = ''): boolean => process.stdout.write(`${line}\n`);

/**
 * `chancery incident ...`: incident response through the admin API (the running server's socket, or this
 * process). `declare --revoke now` waits, printing progress, until its revocation is done and its CRLs are
 * published (unless --no-wait): the revocation itself is the server's job and survives this command.
 */
export async function incidentCommand(config: Config, args: string[]): Promise<void> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      strict: true,
      options: {
        select: { type: 'string', multiple: true },
        'serials-file': { type: 'string' },
        'key-file': { type: 'string' },
        reason: { type: 'string' },
        'renew-by': { type: 'string' },
        revoke: { type: 'string' },
        'explanation-url': { type: 'string' },
        drill: { type: 'boolean' },
        'no-wait': { type: 'boolean' },
        json: { type: 'boolean' },
        state: { type: 'string' },
      },
    });
  } catch (error) {
    throw new CaError('malformed', `${error instanceof Error ? error.message : String(error)}\n${USAGE}`);
  }
  const { values, positionals } = parsed;
  const [verb, name, ...extra] = positionals;
  const named = ['declare', 'status', 'close', 'certificates'].includes(verb ?? '');
  if (extra.length > 0 || (named && name === undefined) || (!named && name !== undefined) || !['preview', 'declare', 'status', 'close', 'list', 'certificates'].includes(verb ?? '')) {
    throw new CaError('malformed', USAGE);
  }
  const selection = verb === 'preview' || verb === 'declare' ? await selectionOf(values) : {};
  const admin = await openAdminClient(config);
  try {
    switch (verb) {
      case 'preview': {
        const preview = await call<Preview>(admin, 'POST', '/incidents/preview', selection, values['serials-file']);
        if (values.json) out(JSON.stringify(preview, null, 2));
        else printPreview(preview);
        return;
      }
      case 'declare': {
        const body = {
          name,
          ...selection,
          ...(values.reason === undefined ? {} : { reason: values.reason }),
          ...(values['renew-by'] === undefined ? {} : { renewBy: values['renew-by'] }),
          ...(values.revoke === undefined ? {} : { revoke: values.revoke }),
          ...(values['explanation-url'] === undefined ? {} : { explanationUrl: values['explanation-url'] }),
          ...(values.drill ? { drill: true } : {}),
        };
        const declared = await call<{ incident: Status['incident']; radius: Preview }>(admin, 'POST', '/incidents', body, values['serials-file']);
        if (values.json) out(JSON.stringify(declared, null, 2));
        else {
          const i = declared.incident;
          out(`declared incident ${i.name} (${i.reason}${i.drill ? ', DRILL: nothing is revoked' : ''}): ${i.affected} certificates, renew by ${i.renewBy}, revoke ${i.revoke}`);
          if (i.blockedKeys > 0) out(`${i.blockedKeys} subject keys blocked: a renewal or account presenting one is refused (badPublicKey)`);
          printPreview(declared.radius);
        }
        if (declared.incident.revoke === 'now' && !declared.incident.drill && !values['no-wait']) await waitForRevocation(admin, declared.incident.name);
        return;
      }
      case 'status': {
        const status = await admin.call<Status>('GET', `/incidents/${encodeURIComponent(name!)}`);
        if (values.json) out(JSON.stringify(status, null, 2));
        else printStatus(status);
        return;
      }
      case 'list':
        for (const i of await admin.all<Status['incident']>('/incidents')) {
          out(`${i.name}  ${i.state}${i.drill ? ' (drill)' : ''}  ${i.reason}  revoke ${i.revoke}  renew by ${i.renewBy}  affected ${i.affected}  declared ${i.declaredAt} by ${i.declaredBy}`);
        }
        return;
      case 'certificates': {
        const query = values.state === undefined ? '' : `?state=${encodeURIComponent(values.state)}`;
        for (const c of await admin.all<{ serial: string; group: string; notAfter: string; status: string; replacedBy?: string; identifiers: string[] }>(`/incidents/${encodeURIComponent(name!)}/certificates${query}`)) {
          out(`${c.serial}  ${c.status.padEnd(7)}  ${c.notAfter}  ${(c.group || '-').padEnd(12)}  ${c.replacedBy ? `replaced by ${c.replacedBy}  ` : ''}${c.identifiers.join(',')}`);
        }
        return;
      }
      default: {
        const closed = await admin.call<Status['incident']>('POST', `/incidents/${encodeURIComponent(name!)}/close`);
        out(`closed incident ${closed.name} at ${closed.closedAt ?? ''}: renewalInfo answers as usual again; blocked keys stay blocked`);
      }
    }
  } finally {
    await admin.close();
  }
}

/** The one selection flag given, as the API takes it (a file's text read here). */
async function selectionOf(values: { select?: string[]; 'serials-file'?: string; 'key-file'?: string }): Promise<Record<string, string>> {
  const given = [values.select !== undefined, values['serials-file'] !== undefined, values['key-file'] !== undefined].filter(Boolean).length;
  if (given !== 1) throw new CaError('malformed', `give one of --select, --serials-file and --key-file\n${USAGE}`);
  if (values.select !== undefined) return { select: values.select.join('&') };
  const [flag, path, field] = values['serials-file'] !== undefined ? ['--serials-file', values['serials-file'], 'serials'] : ['--key-file', values['key-file']!, 'key'];
  try {
    return { [field]: await readFile(path, 'utf8') };
  } catch (cause) {
    throw new CaError('malformed', `${flag} ${path}: cannot read it (${(cause as NodeJS.ErrnoException).code ?? 'error'})`, { cause });
  }
}

/** An API call whose refusal of a serials file names the file (the API says "serials file line N"). */
async function call<T>(admin: AdminClient, method: 'POST', path: string, body: unknown, serialsFile: string | undefined): Promise<T> {
  try {
    return await admin.call<T>(method, path, body);
  } catch (error) {
    if (serialsFile !== undefined && error instanceof AdminProblemError && error.detail.startsWith('serials file')) {
      throw new CaError(error.kind, `${serialsFile}${error.detail.slice('serials file'.length)}`);
    }
    throw error;
  }
}

async function waitForRevocation(admin: AdminClient, name: string): Promise<void> {
  process.stderr.write('revoking (the server goes on if this command is stopped; `chancery incident status` shows where it is)\n');
  let shown = '';
  for (;;) {
    const status = await admin.call<Status>('GET', `/incidents/${encodeURIComponent(name)}`);
    const { runs, running } = status.revocation;
    const line = `revoked ${status.revocation.revoked} of ${status.revocation.planned}`;
    if (line !== shown) process.stderr.write(`${line}\n`);
    shown = line;
    if (runs.length > 0 && !running) {
      for (const run of runs) printRun(run);
      return;
    }
    await sleep(1000);
  }
}

function printRun(run: Status['revocation']['runs'][number]): void {
  out(`revocation ${run.id} (${run.label}): ${run.state}, ${run.revoked} of ${run.total} revoked${run.skipped ? `, ${run.skipped} already revoked` : ''}${run.publishedAt ? `, CRLs published ${run.publishedAt}` : ''}`);
  if (run.shortLived > 0) out(`  ${run.shortLived} short-lived (noRevAvail) certificates left out: revocation is never published for them; they expire by ${run.shortLivedUntil ?? '?'}`);
}

function printPreview(p: Preview): void {
  out(`affected: ${p.affected} valid certificates${p.excluded.revoked + p.excluded.expired > 0 ? ` (left out: ${p.excluded.revoked} already revoked, ${p.excluded.expired} expired)` : ''}`);
  if (p.shortLived.count > 0) out(`  of which ${p.shortLived.count} short-lived (noRevAvail): never revoked, they expire by ${p.shortLived.until ?? '?'}`);
  out('by group (owners to contact):');
  for (const g of p.byGroup) out(`  ${(g.group || '(no group)').padEnd(20)} ${String(g.count).padStart(8)}  ${g.owners.join(', ') || '-'}`);
  out(`by issuer: ${p.byIssuer.map((i) => `${i.issuer} ${i.count}`).join(', ')}`);
  out(`by expiry: within 7 days ${p.byExpiry.within7Days}, 30 days ${p.byExpiry.within30Days}, 90 days ${p.byExpiry.within90Days}, later ${p.byExpiry.later}`);
  out('sample:');
  for (const s of p.sample) out(`  ${s.serial}  ${s.notAfter}  ${(s.group || '-').padEnd(12)}  ${(s.identifiers ?? []).join(',')}`);
  for (const note of p.notes) out(`note: ${note}`);
}

function printStatus(s: Status): void {
  const i = s.incident;
  out(`incident ${i.name}: ${i.state}${i.drill ? ' (DRILL: nothing is revoked)' : ''}, ${i.reason}, revoke ${i.revoke}, renew by ${i.renewBy}${s.deadlinePassed ? ' (passed)' : ''}`);
  out(`declared ${i.declaredAt} by ${i.declaredBy}${i.closedAt ? `, closed ${i.closedAt}` : ''}${i.explanationUrl ? `; explanation ${i.explanationUrl}` : ''}`);
  out(`clients see it at their next renewalInfo poll: within ${s.ariRetryAfterSeconds} s of the declaration`);
  const t = s.totals;
  out(`affected ${t.affected}  replaced ${t.replaced}  revoked ${t.revoked}  blocked renewals ${t.blocked}  outstanding ${t.outstanding}  expired ${t.expired}  short-lived ${t.shortLived}`);
  out('by group:');
  for (const g of s.byGroup) {
    out(`  ${(g.group || '(no group)').padEnd(20)} affected ${g.affected}  replaced ${g.replaced}  revoked ${g.revoked}  blocked ${g.blocked}  outstanding ${g.outstanding}  owners ${g.owners.join(', ') || '-'}`);
  }
  for (const run of s.revocation.runs) printRun(run);
  const within = (seconds: number | undefined): string => (seconds === undefined ? 'not yet' : `${seconds} s`);
  out(`replaced: half within ${within(s.replacedWithin.half)}, 90% within ${within(s.replacedWithin.ninetyPercent)}, all within ${within(s.replacedWithin.all)}`);
  out(`time series (cumulative, every ${s.series.bucketSeconds} s since the declaration):`);
  out('  at                        replaced  revoked  blocked');
  for (const p of s.series.points) out(`  ${p.at}  ${String(p.replaced).padStart(8)}  ${String(p.revoked).padStart(7)}  ${String(p.blocked).padStart(7)}`);
}
