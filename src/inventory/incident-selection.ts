import { DAY } from '../core/clock.js';
import { CaError } from '../core/errors.js';
import type { ExpiryBounds, SelectionCount } from '../core/incident.js';
import { criteriaOf, type InventoryCriteria, type InventoryStore } from './certificate-inventory.js';
import type { ParsedSelection } from './incident-input.js';

/**
 * The certificates an incident covers, from the operator's selection: the inventory's one filter grammar
 * (valid certificates only), counted — and recorded, when declaring — by the database in one statement
 * (certificate-search-repository.ts selectMatchingSql), or a serials file looked up in pages, each line
 * checked. A preview and a declaration count the same way, so a preview's radius is what the declaration
 * covers at that moment.
 */

/** A certificate an incident covers (group '' for none). */
export interface Member {
  serial: string;
  group: string;
  issuerId: string;
  notAfter: Date;
  shortLived: boolean;
}

export interface MemberPage {
  members: Member[];
  /** Selected but not covered: already revoked, or expired. */
  excluded: { revoked: number; expired: number };
}

/** Certificates by serial (db/ IncidentRepository.certificateFacts). */
export type FactsLookup = (serials: readonly string[]) => Promise<Map<string, Member & { status: 'valid' | 'revoked' }>>;

/** Serials looked up per statement. */
const SELECTION_PAGE = 1000;

/** Expiry buckets of a radius, as instants: notAfter at or before each (RadiusCounter, and SQL through the store). */
export function expiryBounds(now: Date): ExpiryBounds {
  const at = (days: number): Date => new Date(now.getTime() + days * DAY);
  return { within7Days: at(7), within30Days: at(30), within90Days: at(90) };
}

/**
 * Counts (a preview) or records and counts (a declaration) the valid certificates matching `criteria` in one
 * statement: the database walks the selection, not pages read into Node and written back — renewalInfo
 * reflects an incident only once its declaration commits, and at 100,000 certificates the pages took ~5 s,
 * the one statement 0.8 (docs/benchmarks.md, bench:revoke's drill).
 */
export type SelectionCounter = (criteria: InventoryCriteria, bounds: ExpiryBounds, now: Date) => Promise<SelectionCount[]>;

/** What counting a selection reads and, when declaring, writes. */
export interface SelectionSources {
  inventory: Pick<InventoryStore, 'search'>;
  facts: FactsLookup;
  /** A filter selection: counted, and recorded when declaring. */
  count: SelectionCounter;
  /** A serials file's covered certificates, a page at a time, when declaring. */
  record?: (members: Member[]) => Promise<void>;
}

/**
 * Counts what `selection` covers into `counter`: a filter's valid certificates (not revoked, notAfter
 * ahead) through `count`, with a sample of the first SAMPLE by notAfter; a serials file looked up page by
 * page, each line's certificate checked. Memory stays one page whatever the selection's size (DESIGN.md
 * rule 9).
 */
export async function countSelection(selection: ParsedSelection, sources: SelectionSources, now: Date, counter: RadiusCounter): Promise<void> {
  if (selection.kind === 'serials') {
    for (let at = 0; at < selection.serials.length; at += SELECTION_PAGE) {
      const chunk = selection.serials.slice(at, at + SELECTION_PAGE);
      const facts = await sources.facts(chunk.map((s) => s.serial));
      const page: MemberPage = { members: [], excluded: { revoked: 0, expired: 0 } };
      for (const { serial, line } of chunk) {
        const found = facts.get(serial);
        if (found === undefined) throw new CaError('malformed', `serials file line ${line}: no certificate with serial ${serial} was issued by this CA`);
        if (found.status === 'revoked') page.excluded.revoked += 1;
        else if (found.notAfter.getTime() <= now.getTime()) page.excluded.expired += 1;
        else page.members.push({ serial, group: found.group, issuerId: found.issuerId, notAfter: found.notAfter, shortLived: found.shortLived });
      }
      counter.add(page);
      if (sources.record !== undefined && page.members.length > 0) await sources.record(page.members);
    }
    return;
  }
  const criteria = criteriaOf({ ...selection.filter, status: 'valid' }, 'all', now);
  if (criteria === undefined) return;
  counter.addCounts(await sources.count(criteria, expiryBounds(now), now));
  if (counter.count === 0) return;
  const first = await sources.inventory.search({ criteria, now, order: { by: 'notAfter', descending: false }, limit: SAMPLE, withoutDer: true });
  counter.addSample(first.items.map((c) => ({ serial: c.serial, group: c.group ?? '', issuer: c.issuerId, notAfter: c.notAfter, identifiers: c.identifiers.map((i) => i.value) })));
}

/** The blast radius of a selection (a preview; what a declaration covers). */
export interface BlastRadius {
  affected: number;
  /** noRevAvail certificates (RFC 9608): covered (renewalInfo, blocked keys) but never revoked; they expire by `until`. */
  shortLived: { count: number; until?: Date };
  byGroup: { group: string; count: number; owners: string[] }[];
  byIssuer: { issuer: string; count: number }[];
  byExpiry: { within7Days: number; within30Days: number; within90Days: number; later: number };
  sample: { serial: string; group: string; issuer: string; notAfter: Date; identifiers?: string[] }[];
  excluded: { revoked: number; expired: number };
}

const SAMPLE = 10;

/** The expiry bucket of a notAfter (expiryBounds). */
function expiryOf(notAfter: Date, bounds: ExpiryBounds): SelectionCount['expiry'] {
  if (notAfter <= bounds.within7Days) return 'within7Days';
  if (notAfter <= bounds.within30Days) return 'within30Days';
  if (notAfter <= bounds.within90Days) return 'within90Days';
  return 'later';
}

/** Counts a selection (bounded memory: a counter per group and per issuer). */
export class RadiusCounter {
  private affected = 0;
  private shortLived = 0;
  private shortLivedUntil: Date | undefined;
  private readonly groups = new Map<string, number>();
  private readonly issuers = new Map<string, number>();
  private readonly expiry = { within7Days: 0, within30Days: 0, within90Days: 0, later: 0 };
  private readonly sample: BlastRadius['sample'] = [];
  private readonly excluded = { revoked: 0, expired: 0 };

  constructor(private readonly now: Date) {}

  get count(): number {
    return this.affected;
  }

  get shortLivedCount(): number {
    return this.shortLived;
  }

  /** A serials file's page, member by member. */
  add(page: MemberPage): void {
    this.excluded.revoked += page.excluded.revoked;
    this.excluded.expired += page.excluded.expired;
    const bounds = expiryBounds(this.now);
    for (const member of page.members) {
      this.addCount({ group: member.group, issuerId: member.issuerId, shortLived: member.shortLived, expiry: expiryOf(member.notAfter, bounds), count: 1, latestNotAfter: member.notAfter });
      if (this.sample.length < SAMPLE) this.sample.push({ serial: member.serial, group: member.group, issuer: member.issuerId, notAfter: member.notAfter });
    }
  }

  /** A filter selection, as the database counted it. */
  addCounts(counts: readonly SelectionCount[]): void {
    for (const count of counts) this.addCount(count);
  }

  addSample(sample: BlastRadius['sample']): void {
    this.sample.push(...sample.slice(0, SAMPLE - this.sample.length));
  }

  private addCount(count: SelectionCount): void {
    this.affected += count.count;
    if (count.shortLived) {
      this.shortLived += count.count;
      if (this.shortLivedUntil === undefined || count.latestNotAfter > this.shortLivedUntil) this.shortLivedUntil = count.latestNotAfter;
    }
    this.groups.set(count.group, (this.groups.get(count.group) ?? 0) + count.count);
    this.issuers.set(count.issuerId, (this.issuers.get(count.issuerId) ?? 0) + count.count);
    this.expiry[count.expiry] += count.count;
  }

  groupNames(): string[] {
    return [...this.groups.keys()].filter((g) => g !== '');
  }

  finish(owners: Map<string, string[]>): BlastRadius {
    const sorted = <K>(map: Map<K, number>): [K, number][] => [...map.entries()].sort((a, b) => b[1] - a[1] || String(a[0]).localeCompare(String(b[0])));
    return {
      affected: this.affected,
      shortLived: { count: this.shortLived, ...(this.shortLivedUntil === undefined ? {} : { until: this.shortLivedUntil }) },
      byGroup: sorted(this.groups).map(([group, count]) => ({ group, count, owners: owners.get(group) ?? [] })),
      byIssuer: sorted(this.issuers).map(([issuer, count]) => ({ issuer, count })),
      byExpiry: { ...this.expiry },
      sample: [...this.sample],
      excluded: { ...this.excluded },
    };
  }
}
