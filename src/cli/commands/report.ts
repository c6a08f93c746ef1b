import { parseArgs } from 'node:util';
import type { Config } from '../../config/config.js';
import { CaError } from '../../core/errors.js';
import { openAdminClient, type AdminClient } from '../admin-client.js';

const USAGE = [
  'usage: chancery report health [--days N] [--group NAME]',
  '       chancery report keys shared|weak [--group NAME]',
  '       chancery report accounts --not-seen DAYS [--group NAME]',
].join('\n');

interface Summary {
  at: string;
  days: number;
  asOf?: string;
  groups: { group: string; owners: string[]; renewalOverdue: number; expiring: number; expiredUnreplaced: number; accounts: number }[];
}

interface Entry {
  certificate: { serial: string; identifiers: string[]; notAfter: string; accountId?: string; group?: string };
  renewalDueAt: string;
  accountLastSeenAt?: string;
}

interface KeyEntry {
  spkiSha256: string;
  kind: string;
  weakness?: string;
  certificateCount: number;
  accounts: number;
  groups: number;
  certificates: { serial: string; group?: string; accountId?: string; notAfter: string; identifiers: string[] }[];
}

type Query = (entries: Record<string, string | undefined>) => string;

const query: Query = (entries) => {
  const q = new URLSearchParams(Object.entries(entries).filter((e): e is [string, string] => e[1] !== undefined));
  return q.size === 0 ? '' : `?${q.toString()}`;
};

function days(name: string, text: string | undefined): string | undefined {
  if (text === undefined) return undefined;
  if (!/^\d{1,4}$/.test(text)) throw new CaError('malformed', `${name} "${text.slice(0, 20)}" must be a number of days`);
  return text;
}

const out = (line: string): boolean => process.stdout.write(`${line}\n`);

/**
 * `chancery report health|keys|accounts`: the inventory's reports as the admin API gives them (through the
 * running server's socket, or in this process), printed for people: renewal health by group with its
 * owners, keys shared or weaker than today's policy, accounts not seen for a while.
 */
export async function reportCommand(config: Config, args: string[]): Promise<void> {
  const { positionals, values } = parseArgs({ args, allowPositionals: true, options: { days: { type: 'string' }, group: { type: 'string' }, 'not-seen': { type: 'string' } } });
  const [what, kind, ...extra] = positionals;
  let print: ((admin: AdminClient) => Promise<void>) | undefined;
  if (what === 'health' && kind === undefined) {
    const q = { days: days('--days', values.days), group: values.group };
    print = (admin) => printHealth(admin, q);
  } else if (what === 'keys' && (kind === 'shared' || kind === 'weak') && extra.length === 0) {
    print = async (admin) => printKeys(await admin.all<KeyEntry>(`/reports/keys/${kind}${query({ group: values.group })}`), kind);
  } else if (what === 'accounts' && kind === undefined && values['not-seen'] !== undefined) {
    const q = query({ days: days('--not-seen', values['not-seen']), group: values.group });
    print = async (admin) => {
      const accounts = await admin.all<{ id: string; group: string; contacts: string[]; lastSeenAt?: string; createdAt: string }>(`/reports/accounts/inactive${q}`);
      if (accounts.length === 0) out(`Every valid account was seen in the last ${values['not-seen']} days.`);
      for (const a of accounts) out(`${a.id}  ${a.group}  last seen ${a.lastSeenAt ?? `never (created ${a.createdAt})`}  ${a.contacts.join(',') || '-'}`);
    };
  }
  if (print === undefined) throw new CaError('malformed', USAGE);
  const admin = await openAdminClient(config);
  try {
    await print(admin);
  } finally {
    await admin.close();
  }
}

async function printHealth(admin: AdminClient, q: { days?: string; group?: string }): Promise<void> {
  const summary = await admin.call<Summary>('GET', `/reports/health${query(q)}`);
  out(
    `Renewal health at ${summary.at} (expiring: within ${summary.days} days; expired: in the last ${summary.days} days)` +
      (summary.asOf ? `, detector as of ${summary.asOf}` : ', the detector has not run yet'),
  );
  if (summary.groups.length === 0) {
    out('Nothing to report: every certificate is renewed within its ARI window.');
    return;
  }
  for (const g of summary.groups) {
    out('');
    out(`group ${g.group || '(none)'}  owners: ${g.owners.join(', ') || '(no contacts)'}`);
    out(`  renewal overdue ${g.renewalOverdue} (expiring within ${summary.days} days: ${g.expiring}), expired unreplaced ${g.expiredUnreplaced}, accounts ${g.accounts}`);
    // Certificates recorded with no group cannot be asked for by group: they are the ones without one.
    const group = g.group === '' ? undefined : g.group;
    for (const condition of ['renewal-overdue', 'expired-unreplaced'] as const) {
      const entries = await admin.all<Entry>(`/reports/health/certificates${query({ condition, days: q.days, group })}`);
      for (const e of entries.filter((entry) => group !== undefined || entry.certificate.group === undefined)) {
        const seen = e.certificate.accountId === undefined ? 'no account' : `account ${e.certificate.accountId} last seen ${e.accountLastSeenAt ?? 'never'}`;
        out(`  ${condition === 'renewal-overdue' ? 'OVERDUE' : 'EXPIRED'}  ${e.certificate.serial}  notAfter ${e.certificate.notAfter}  due ${e.renewalDueAt}  ${e.certificate.identifiers.join(',')}  ${seen}`);
      }
    }
  }
  const accounts = await admin.all<{ accountId: string; group?: string; lastSeenAt?: string; certificates: number }>(`/reports/health/accounts${query(q)}`);
  if (accounts.length > 0) {
    out('');
    out('accounts whose certificates went overdue:');
    for (const a of accounts) out(`  ${a.accountId}  ${a.group ?? '-'}  last seen ${a.lastSeenAt ?? 'never'}  certificates ${a.certificates}`);
  }
}

function printKeys(keys: KeyEntry[], kind: 'shared' | 'weak'): void {
  if (keys.length === 0) {
    out(kind === 'shared' ? 'No key in use is certified for more than one account or group.' : "No key in use is weaker than today's key policy.");
    return;
  }
  for (const k of keys) {
    out(`${k.spkiSha256}  ${k.kind}  ${k.certificateCount} certificates, ${k.accounts} accounts, ${k.groups} groups${k.weakness ? `  (${k.weakness})` : ''}`);
    for (const c of k.certificates) out(`  ${c.serial}  ${c.group ?? '-'}  ${c.accountId ?? '-'}  notAfter ${c.notAfter}  ${c.identifiers.join(',')}`);
  }
}
