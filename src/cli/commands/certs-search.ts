import { once } from 'node:events';
import { request as httpRequest } from 'node:http';
import { userInfo } from 'node:os';
import { parseArgs } from 'node:util';
import { composeBase } from '../../compose.js';
import { inventoryOf } from '../../compose-inventory.js';
import type { Config } from '../../config/config.js';
import { CaError } from '../../core/errors.js';
import { EXPORT_FORMATS, type ExportFormat } from '../../core/certificate-export.js';
import { parameterNames } from '../../inventory/certificate-filter.js';
import { openAdminClient } from '../admin-client.js';
import { adminSocketPath, socketServed } from '../admin-socket.js';

export const CERTS_SEARCH_USAGE = `  certs search [FILTERS] [--sort notAfter|-notAfter|issuedAt|-issuedAt] [--limit N] [--cursor C] [--all] [--json]
            certificates matching every filter, a page at a time (--all: every page)
  certs count [FILTERS]      how many match (exact up to 10,000, else "more than 10,000")
  certs counts [--group G]   counts by group x status x expiry bucket (7/30/90 days), exact
  certs export --format csv|jsonl [FILTERS] [--sort ...]
            every matching certificate to standard output, streamed
  FILTERS: --name N --suffix .S --group G --label key:value (repeatable) --status valid|expired|revoked
           --issuer ID --profile P --account A --spki HEX --serial HEX --expiringWithinDays D
           --issuedAfter WHEN --issuedBefore WHEN   (the names of GET /admin/v1/certificates)`;

export const CERTS_SEARCH_VERBS = ['search', 'count', 'counts', 'export'] as const;

interface Row {
  serial: string;
  status: string;
  notAfter: string;
  group?: string;
  identifiers: { value: string }[];
}

/** Flags to grammar parameters: the same names, label repeatable; the rest is the command's own. */
function flags(args: string[]): { parameters: Record<string, string | string[]>; own: Record<string, string | boolean | undefined> } {
  const grammar = parameterNames({ paging: true });
  const options = Object.fromEntries(grammar.map((name) => [name, { type: 'string' as const, ...(name === 'label' ? { multiple: true } : {}) }]));
  let parsed;
  try {
    parsed = parseArgs({ args, allowPositionals: false, strict: true, options: { ...options, format: { type: 'string' }, all: { type: 'boolean' }, json: { type: 'boolean' } } });
  } catch (error) {
    throw new CaError('malformed', `${error instanceof Error ? error.message : String(error)}\nusage:\n${CERTS_SEARCH_USAGE}`);
  }
  const parameters: Record<string, string | string[]> = {};
  const own: Record<string, string | boolean | undefined> = {};
  for (const [name, value] of Object.entries(parsed.values)) {
    if (value === undefined) continue;
    if (grammar.includes(name)) parameters[name] = value as string | string[];
    else own[name] = value as string | boolean;
  }
  return { parameters, own };
}

function queryString(parameters: Record<string, string | string[]>): string {
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(parameters)) for (const item of Array.isArray(value) ? value : [value]) query.append(name, item);
  const text = query.toString();
  return text ? `?${text}` : '';
}

/**
 * `chancery certs search|count|counts|export`: the inventory's grammar as flags. Search and counts go
 * through the admin API (the running server's socket, or this process) like every data command; an export
 * streams to standard output — from the server's socket as it arrives, or straight from the database when
 * no server holds the data directory — so its memory is one page whatever its size (DESIGN.md rule 9).
 */
export async function certsSearchCommand(config: Config, args: string[]): Promise<void> {
  const [verb, ...rest] = args;
  const { parameters, own } = flags(rest);
  if (verb === 'export') return exportCommand(config, parameters, own);
  const admin = await openAdminClient(config);
  try {
    if (verb === 'count') {
      const result = await admin.call<{ count: number; capped: boolean; cap: number }>('GET', `/certificates/count${queryString(parameters)}`);
      process.stdout.write(result.capped ? `more than ${result.cap.toLocaleString('en')}\n` : `${result.count}\n`);
      return;
    }
    if (verb === 'counts') {
      const result = await admin.call<{ at: string; groups: Record<string, string | number>[] }>('GET', `/certificates/counts${queryString(parameters)}`);
      const columns = ['valid', 'expired', 'revoked', 'expiringWithin7Days', 'expiringWithin30Days', 'expiringWithin90Days'];
      process.stdout.write(`# at ${result.at}\ngroup\t${columns.join('\t')}\n`);
      for (const g of result.groups) process.stdout.write(`${g.group || '(none)'}\t${columns.map((c) => g[c]).join('\t')}\n`);
      return;
    }
    if (verb !== 'search') throw new CaError('malformed', `usage:\n${CERTS_SEARCH_USAGE}`);
    let cursor = typeof parameters.cursor === 'string' ? parameters.cursor : undefined;
    do {
      const page = await admin.call<{ items: Row[]; next?: string }>('GET', `/certificates${queryString({ ...parameters, ...(cursor ? { cursor } : {}) })}`);
      for (const c of page.items) {
        process.stdout.write(own.json ? `${JSON.stringify(c)}\n` : `${c.serial}  ${c.status.padEnd(7)}  ${c.notAfter}  ${(c.group ?? '-').padEnd(12)}  ${c.identifiers.map((i) => i.value).join(',')}\n`);
      }
      cursor = page.next;
      if (cursor !== undefined && !own.all) process.stderr.write(`more: --cursor ${cursor}\n`);
    } while (own.all && cursor !== undefined);
  } finally {
    await admin.close();
  }
}

async function exportCommand(config: Config, parameters: Record<string, string | string[]>, own: Record<string, string | boolean | undefined>): Promise<void> {
  const format = own.format;
  if (typeof format !== 'string' || !(EXPORT_FORMATS as readonly string[]).includes(format)) throw new CaError('malformed', `--format must be one of ${EXPORT_FORMATS.join(', ')}`);
  const socketPath = adminSocketPath(config.dataDir);
  if (await socketServed(socketPath)) return exportFromSocket(socketPath, `/admin/v1/certificates.${format}${queryString(parameters)}`);
  const base = await composeBase(config);
  try {
    // The local operator (as on the socket): every group.
    const inventory = inventoryOf(base.db, base.clock);
    await write(inventory.exportParameters('all', parameters, format as ExportFormat));
  } finally {
    await base.close();
  }
}

/** Writes chunks to standard output, waiting for it to drain (a slow pipe slows the reads, never grows memory). */
async function write(chunks: AsyncIterable<string>): Promise<void> {
  for await (const chunk of chunks) {
    if (!process.stdout.write(chunk)) await once(process.stdout, 'drain');
  }
}

function exportFromSocket(socketPath: string, path: string): Promise<void> {
  let user = 'unknown';
  try {
    user = userInfo().username;
  } catch {
    // an OS user without a name: the server records `unknown`
  }
  return new Promise((resolve, reject) => {
    const request = httpRequest({ socketPath, method: 'GET', path, headers: { 'x-chancery-user': user } }, (response) => {
      if (response.statusCode !== 200) {
        let text = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => (text += chunk));
        response.on('end', () => {
          let detail = text;
          try {
            detail = (JSON.parse(text) as { detail?: string }).detail ?? text;
          } catch {
            // not a problem document: shown as it came
          }
          reject(new CaError(response.statusCode === 400 ? 'malformed' : 'serverInternal', detail));
        });
        return;
      }
      response.pipe(process.stdout, { end: false });
      response.on('end', () => resolve());
      response.on('error', reject);
    });
    request.on('error', (cause) => reject(new CaError('unavailable', `the admin socket ${socketPath} did not answer: ${cause.message}`, { cause })));
    request.end();
  });
}
