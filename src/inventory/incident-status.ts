import type { BulkRun } from '../core/bulk-revocation.js';
import type { Clock } from '../core/clock.js';
import type { Incident } from '../core/incident.js';

/** The reads status makes (db/ IncidentRepository). */
export interface StatusStore {
  groupCounts(incidentId: string, now: Date): Promise<GroupCounts[]>;
  series(incidentId: string, from: Date, bucketMs: number): Promise<{ kind: 'replaced' | 'revoked' | 'blocked'; bucket: number; count: number }[]>;
  owners(groups: readonly string[]): Promise<Map<string, string[]>>;
}

/** One group's certificates of an incident (group '' holds those recorded with no group). */
export interface GroupCounts {
  group: string;
  affected: number;
  shortLived: number;
  /** A replacement was issued (RFC 9773 `replaces`, or the lineage successor). */
  replaced: number;
  revoked: number;
  /** Neither replaced nor revoked, and expired meanwhile: no longer a risk. */
  expired: number;
  /** Neither replaced nor revoked nor expired: what still needs its owner. */
  outstanding: number;
  /** Renewals refused for presenting a blocked key. */
  blocked: number;
}

type Totals = Omit<GroupCounts, 'group'>;

/** Cumulative counts at the end of each bucket since the declaration. */
export interface SeriesPoint {
  at: Date;
  replaced: number;
  revoked: number;
  blocked: number;
}

export interface IncidentStatus {
  incident: Incident;
  at: Date;
  state: 'open' | 'closed';
  /** The deadline passed (revocations of the rest are due unless it is a drill). */
  deadlinePassed: boolean;
  totals: Totals;
  byGroup: (GroupCounts & { owners: string[] })[];
  revocation: { runs: BulkRun[]; planned: number; revoked: number; running: boolean };
  /** The time series: bucket width and the cumulative points (the replacement curve of a drill). */
  series: { bucketSeconds: number; points: SeriesPoint[] };
  /** How long after the declaration half, 90 % and all of the affected certificates had been replaced (bucket precision). */
  replacedWithin: { half?: number; ninetyPercent?: number; all?: number };
  ariRetryAfterSeconds: number;
}

const BUCKETS_S = [10, 60, 300, 900, 3600, 6 * 3600, 86_400];
const MAX_POINTS = 60;

/** The bucket width that shows `spanMs` in at most MAX_POINTS points. */
export function bucketFor(spanMs: number): number {
  const seconds = BUCKETS_S.find((b) => spanMs / (b * 1000) <= MAX_POINTS) ?? Math.ceil(spanMs / 1000 / MAX_POINTS);
  return seconds * 1000;
}

export async function incidentStatus(
  incident: Incident,
  deps: { store: StatusStore; runs: { ofIncident(id: string): Promise<BulkRun[]> }; clock: Clock; ariRetryAfterSeconds: number },
): Promise<IncidentStatus> {
  const now = deps.clock.now();
  const end = incident.closedAt ?? now;
  const spanMs = Math.max(0, end.getTime() - incident.declaredAt.getTime());
  const bucketMs = bucketFor(spanMs);
  const [groups, rows, runs] = await Promise.all([
    deps.store.groupCounts(incident.id, now),
    deps.store.series(incident.id, incident.declaredAt, bucketMs),
    deps.runs.ofIncident(incident.id),
  ]);
  const owners = await deps.store.owners(groups.map((g) => g.group).filter((g) => g !== ''));
  const totals: Totals = { affected: 0, shortLived: 0, replaced: 0, revoked: 0, expired: 0, outstanding: 0, blocked: 0 };
  for (const g of groups) for (const key of Object.keys(totals) as (keyof Totals)[]) totals[key] += g[key];

  const last = Math.floor(spanMs / bucketMs);
  const per = { replaced: new Array<number>(last + 1).fill(0), revoked: new Array<number>(last + 1).fill(0), blocked: new Array<number>(last + 1).fill(0) };
  for (const row of rows) per[row.kind][Math.min(row.bucket, last)]! += row.count;
  const points: SeriesPoint[] = [];
  const running = { replaced: 0, revoked: 0, blocked: 0 };
  const replacedWithin: IncidentStatus['replacedWithin'] = {};
  for (let b = 0; b <= last; b += 1) {
    running.replaced += per.replaced[b]!;
    running.revoked += per.revoked[b]!;
    running.blocked += per.blocked[b]!;
    const at = Math.min(incident.declaredAt.getTime() + (b + 1) * bucketMs, end.getTime());
    points.push({ at: new Date(at), ...running });
    const seconds = Math.round((at - incident.declaredAt.getTime()) / 1000);
    if (totals.affected > 0) {
      if (replacedWithin.half === undefined && running.replaced * 2 >= totals.affected) replacedWithin.half = seconds;
      if (replacedWithin.ninetyPercent === undefined && running.replaced * 10 >= totals.affected * 9) replacedWithin.ninetyPercent = seconds;
      if (replacedWithin.all === undefined && running.replaced >= totals.affected) replacedWithin.all = seconds;
    }
  }
  return {
    incident,
    at: now,
    state: incident.closedAt === undefined ? 'open' : 'closed',
    deadlinePassed: now.getTime() >= incident.renewBy.getTime(),
    totals,
    byGroup: groups.map((g) => ({ ...g, owners: owners.get(g.group) ?? [] })),
    revocation: {
      runs,
      planned: runs.reduce((n, r) => n + r.total, 0),
      revoked: runs.reduce((n, r) => n + r.revoked, 0),
      running: runs.some((r) => r.state !== 'done'),
    },
    series: { bucketSeconds: bucketMs / 1000, points },
    replacedWithin,
    ariRetryAfterSeconds: deps.ariRetryAfterSeconds,
  };
}
