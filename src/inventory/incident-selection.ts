import type { IssuedCertificate } from '../core/certificate.js';
import { DAY } from '../core/clock.js';
import { CaError } from '../core/errors.js';
import { criteriaOf, type InventoryStore } from './certificate-inventory.js';
import type { ParsedSelection } from './incident-input.js';

/**
 * The certificates an incident covers, walked page by page from the operator's selection: the inventory's
 * one filter grammar through its keyset search (certificate-search-repository.ts, valid certificates only,
 * by notAfter), or a serials file looked up in chunks. Each page is what a declaration records and what a
 * preview counts; memory stays one page whatever the selection's size (DESIGN.md rule 9).
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
  /** Identifiers of members, when the page read them (filter selections). */
  identifiers: Map<string, string[]>;
  /** Selected but not covered: already revoked, or expired. */
  excluded: { revoked: number; expired: number };
}

/** Certificates by serial (db/ IncidentRepository.certificateFacts). */
export type FactsLookup = (serials: readonly string[]) => Promise<Map<string, Member & { status: 'valid' | 'revoked' }>>;

export const SELECTION_PAGE = 1000;

function memberOf(certificate: IssuedCertificate): Member {
  return { serial: certificate.serial, group: certificate.group ?? '', issuerId: certificate.issuerId, notAfter: certificate.notAfter, shortLived: certificate.noRevAvail === true };
}

export async function* selectionPages(
  selection: ParsedSelection,
  sources: { inventory: Pick<InventoryStore, 'search'>; facts: FactsLookup },
  now: Date,
): AsyncGenerator<MemberPage> {
  if (selection.kind === 'serials') {
    for (let at = 0; at < selection.serials.length; at += SELECTION_PAGE) {
      const chunk = selection.serials.slice(at, at + SELECTION_PAGE);
      const facts = await sources.facts(chunk.map((s) => s.serial));
      const page: MemberPage = { members: [], identifiers: new Map(), excluded: { revoked: 0, expired: 0 } };
      for (const { serial, line } of chunk) {
        const found = facts.get(serial);
        if (found === undefined) throw new CaError('malformed', `serials file line ${line}: no certificate with serial ${serial} was issued by this CA`);
        if (found.status === 'revoked') page.excluded.revoked += 1;
        else if (found.notAfter.getTime() <= now.getTime()) page.excluded.expired += 1;
        else page.members.push({ serial, group: found.group, issuerId: found.issuerId, notAfter: found.notAfter, shortLived: found.shortLived });
      }
      yield page;
    }
    return;
  }
  // Valid certificates only (not revoked, notAfter ahead), soonest expiry first on (not_after, serial).
  const criteria = criteriaOf({ ...selection.filter, status: 'valid' }, 'all', now);
  if (criteria === undefined) return;
  let after: { at: Date; serial: string } | undefined;
  for (;;) {
    const found = await sources.inventory.search({ criteria, now, order: { by: 'notAfter', descending: false }, limit: SELECTION_PAGE, withoutDer: true, ...(after ? { after } : {}) });
    if (found.items.length > 0) {
      yield {
        members: found.items.map(memberOf),
        identifiers: new Map(found.items.map((c) => [c.serial, c.identifiers.map((i) => i.value)])),
        excluded: { revoked: 0, expired: 0 },
      };
    }
    const last = found.items.at(-1);
    if (!found.more || last === undefined) return;
    after = { at: last.notAfter, serial: last.serial };
  }
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

/** Counts a selection page by page (bounded memory: a counter per group and per issuer). */
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

  add(page: MemberPage): void {
    this.excluded.revoked += page.excluded.revoked;
    this.excluded.expired += page.excluded.expired;
    const now = this.now.getTime();
    for (const member of page.members) {
      this.affected += 1;
      if (member.shortLived) {
        this.shortLived += 1;
        if (this.shortLivedUntil === undefined || member.notAfter > this.shortLivedUntil) this.shortLivedUntil = member.notAfter;
      }
      this.groups.set(member.group, (this.groups.get(member.group) ?? 0) + 1);
      this.issuers.set(member.issuerId, (this.issuers.get(member.issuerId) ?? 0) + 1);
      const left = member.notAfter.getTime() - now;
      if (left <= 7 * DAY) this.expiry.within7Days += 1;
      else if (left <= 30 * DAY) this.expiry.within30Days += 1;
      else if (left <= 90 * DAY) this.expiry.within90Days += 1;
      else this.expiry.later += 1;
      if (this.sample.length < SAMPLE) {
        const identifiers = page.identifiers.get(member.serial);
        this.sample.push({ serial: member.serial, group: member.group, issuer: member.issuerId, notAfter: member.notAfter, ...(identifiers ? { identifiers } : {}) });
      }
    }
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
