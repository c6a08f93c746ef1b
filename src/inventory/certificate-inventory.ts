import type { IssuedCertificate } from '../core/certificate.js';
import { CSV_HEADER, type ExportFormat } from '../core/certificate-export.js';
import { DAY, type Clock } from '../core/clock.js';
import type { Scope } from '../policy/admin-rbac.js';
import { CaError } from '../core/errors.js';
import {
  type CertificateFilter,
  type CertificateSearch,
  type CertificateSort,
  DEFAULT_SORT,
  encodeSearchCursor,
  type FilterParameters,
  parseFilter,
  parseSearch,
} from './certificate-filter.js';

/**
 * The certificate inventory: search, counts and exports over one filter grammar (certificate-filter.ts),
 * scoped by the caller's RBAC scope in the query itself (DESIGN.md rule 8: a group-admin's search never
 * reads another group's rows), paged by keyset (rule 9).
 */

/** What the store is asked: the filter resolved against the clock and the scope (db/ implements it). */
export interface InventoryCriteria {
  name?: string;
  suffix?: string;
  groups?: readonly string[];
  labels?: readonly { key: string; value: string }[];
  status?: 'valid' | 'expired' | 'revoked';
  issuer?: string;
  profile?: string;
  account?: string;
  spki?: string;
  serial?: string;
  expiringBy?: Date;
  issuedAfter?: Date;
  issuedBefore?: Date;
}

export interface InventoryCounts {
  /** '' for certificates recorded with no group (issued outside ACME or before groups existed). */
  group: string;
  valid: number;
  expired: number;
  revoked: number;
  expiring7: number;
  expiring30: number;
  expiring90: number;
}

export interface InventoryStore {
  search(page: {
    criteria: InventoryCriteria;
    now: Date;
    order: { by: 'notAfter' | 'issuedAt'; descending: boolean };
    limit: number;
    after?: { at: Date; serial: string };
    withoutDer?: boolean;
  }): Promise<{ items: IssuedCertificate[]; more: boolean }>;
  count(criteria: InventoryCriteria, now: Date, cap: number): Promise<{ count: number; capped: boolean }>;
  counts(now: Date, groups?: readonly string[]): Promise<InventoryCounts[]>;
  /**
   * One page of an export as finished lines (core/certificate-export.ts), rendered by the store: `last` is
   * the last line's sort key when there is more.
   */
  exportLines(page: {
    criteria: InventoryCriteria;
    now: Date;
    order: { by: 'notAfter' | 'issuedAt'; descending: boolean };
    limit: number;
    after?: { at: Date; serial: string };
    format: ExportFormat;
  }): Promise<{ lines: string[]; last?: { at: Date; serial: string }; more: boolean }>;
}

/**
 * An export in no particular order, in one snapshot (db/ CertificateSnapshotExport, PostgreSQL only): what
 * an export without `sort` reads when the store has it.
 */
export interface UnorderedExport {
  lines(query: { criteria: InventoryCriteria; now: Date; format: ExportFormat }): AsyncIterable<string>;
}

/** Counts of an arbitrary filter stop here: "more than 10,000" is what an operator needs to know. */
export const COUNT_CAP = 10_000;
/** An export reads this many rows per statement: memory stays bounded whatever the export's size. */
export const EXPORT_PAGE = 1000;

export interface SearchResult {
  items: IssuedCertificate[];
  nextCursor?: string;
}

export class CertificateInventory {
  constructor(private readonly deps: { store: InventoryStore; clock: Clock; unordered?: UnorderedExport }) {}

  /**
   * The wire layers' entry points: parameters as received (query string, command-line flags), parsed by the
   * one grammar here, so the admin API and the CLI cannot drift apart.
   */
  async searchParameters(scope: Scope, parameters: FilterParameters, options: { maxLimit?: number } = {}): Promise<SearchResult> {
    return this.search(scope, parseSearch(parameters, options));
  }

  async countParameters(scope: Scope, parameters: FilterParameters): Promise<{ count: number; capped: boolean; cap: number }> {
    return this.count(scope, parseFilter(parameters, { allowSort: false }).filter);
  }

  /** Counts by group x status x bucket: the only parameter is `group`. */
  async countsParameters(scope: Scope, parameters: FilterParameters): Promise<{ at: Date; groups: InventoryCounts[] }> {
    for (const name of Object.keys(parameters)) {
      if (name !== 'group' && parameters[name] !== undefined) throw new CaError('malformed', `parameter "${name}": unknown; the counts take only group`);
    }
    return this.counts(scope, parseFilter({ group: parameters.group }, { allowSort: false }).filter.group);
  }

  /**
   * An export's chunks; the parameters are checked before the first chunk is asked for. Without `sort`, in
   * no particular order (export).
   */
  exportParameters(scope: Scope, parameters: FilterParameters, format: ExportFormat): AsyncGenerator<string> {
    const { filter, sort } = parseFilter(parameters);
    return this.export(scope, filter, parameters.sort === undefined ? undefined : sort, format);
  }

  async search(scope: Scope, search: CertificateSearch): Promise<SearchResult> {
    const now = this.deps.clock.now();
    const criteria = criteriaOf(search.filter, scope, now);
    if (criteria === undefined) return { items: [] };
    const page = await this.deps.store.search({ criteria, now, order: orderOf(search.sort), limit: search.limit, ...(search.after ? { after: search.after } : {}) });
    const last = page.items.at(-1);
    if (!page.more || last === undefined) return { items: page.items };
    return { items: page.items, nextCursor: encodeSearchCursor(search.filter, search.sort, positionOf(last, search.sort)) };
  }

  /** How many certificates match: exact up to COUNT_CAP, else `capped` (more than COUNT_CAP). */
  async count(scope: Scope, filter: CertificateFilter): Promise<{ count: number; capped: boolean; cap: number }> {
    const now = this.deps.clock.now();
    const criteria = criteriaOf(filter, scope, now);
    const result = criteria === undefined ? { count: 0, capped: false } : await this.deps.store.count(criteria, now, COUNT_CAP);
    return { ...result, cap: COUNT_CAP };
  }

  /** Exact counts by group x status x expiry bucket (7/30/90 days), for the groups in scope; and when. */
  async counts(scope: Scope, group?: string): Promise<{ at: Date; groups: InventoryCounts[] }> {
    const at = this.deps.clock.now();
    const groups = scopedGroups(scope, group);
    if (groups !== undefined && groups.length === 0) return { at, groups: [] };
    return { at, groups: await this.deps.store.counts(at, groups) };
  }

  /**
   * Every matching certificate, as CSV or JSON lines, in chunks; the consumer's pace drives the reads.
   *
   * Without `sort`, and with an UnorderedExport (PostgreSQL), in no particular order from one snapshot: the
   * rows read as the database finds cheapest, about four times the rate of a sorted export at ten million
   * certificates (docs/benchmarks.md), which is what a dump for a spreadsheet or a CMDB wants. Otherwise
   * in `sort` order (DEFAULT_SORT when none is given):
   * one chunk per page of EXPORT_PAGE rows read by keyset, so memory is one page whatever the size. Each page is a
   * statement of its own (no transaction held open for the export's length); a row that existed when the
   * export started and still matches is written exactly once (rule 9's cursor rule). The store renders the
   * lines (the database: see certificate-search-repository.ts for why), so a page is joined, not built.
   * The next page's statement is sent as soon as this page's last row is known, so the database reads it
   * while this one is written out (two pages in memory at most).
   */
  async *export(scope: Scope, filter: CertificateFilter, sort: CertificateSort | undefined, format: ExportFormat): AsyncGenerator<string> {
    const now = this.deps.clock.now();
    const criteria = criteriaOf(filter, scope, now);
    if (format === 'csv') yield CSV_HEADER;
    if (criteria === undefined) return;
    if (sort === undefined && this.deps.unordered !== undefined) {
      yield* this.deps.unordered.lines({ criteria, now, format });
      return;
    }
    sort ??= DEFAULT_SORT;
    const fetch = (after?: { at: Date; serial: string }): Promise<{ lines: string[]; last?: { at: Date; serial: string }; more: boolean }> =>
      this.deps.store.exportLines({ criteria, now, order: orderOf(sort), limit: EXPORT_PAGE, format, ...(after ? { after } : {}) });
    let pending = fetch();
    for (;;) {
      const page = await pending;
      const more = page.more && page.last !== undefined;
      if (more) pending = fetch(page.last);
      if (page.lines.length > 0) yield page.lines.join('');
      if (!more) return;
    }
  }
}

function orderOf(sort: CertificateSort): { by: 'notAfter' | 'issuedAt'; descending: boolean } {
  return { by: sort.endsWith('notAfter') ? 'notAfter' : 'issuedAt', descending: sort.startsWith('-') };
}

function positionOf(certificate: IssuedCertificate, sort: CertificateSort): { at: Date; serial: string } {
  return { at: sort.endsWith('notAfter') ? certificate.notAfter : certificate.createdAt, serial: certificate.serial };
}

/** The groups a read may touch: the scope, narrowed by a group filter (outside the scope: none). */
function scopedGroups(scope: Scope, group: string | undefined): readonly string[] | undefined {
  if (scope === 'all') return group === undefined ? undefined : [group];
  return group === undefined ? scope : scope.includes(group) ? [group] : [];
}

/** The filter as the store takes it; undefined when the scope excludes everything it could match. */
export function criteriaOf(filter: CertificateFilter, scope: Scope, now: Date): InventoryCriteria | undefined {
  const groups = scopedGroups(scope, filter.group);
  if (groups !== undefined && groups.length === 0) return undefined;
  const criteria: InventoryCriteria = {};
  if (groups !== undefined) criteria.groups = groups;
  if (filter.name !== undefined) criteria.name = filter.name;
  if (filter.suffix !== undefined) criteria.suffix = filter.suffix;
  if (filter.labels !== undefined) criteria.labels = filter.labels;
  if (filter.status !== undefined) criteria.status = filter.status;
  if (filter.issuer !== undefined) criteria.issuer = filter.issuer;
  if (filter.profile !== undefined) criteria.profile = filter.profile;
  if (filter.account !== undefined) criteria.account = filter.account;
  if (filter.spki !== undefined) criteria.spki = filter.spki;
  if (filter.serial !== undefined) criteria.serial = filter.serial;
  if (filter.expiringWithinDays !== undefined) criteria.expiringBy = new Date(now.getTime() + filter.expiringWithinDays * DAY);
  if (filter.issuedAfter !== undefined) criteria.issuedAfter = filter.issuedAfter;
  if (filter.issuedBefore !== undefined) criteria.issuedBefore = filter.issuedBefore;
  return criteria;
}
