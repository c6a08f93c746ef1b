import type { BulkRun } from '../core/bulk-revocation.js';
import { REASON_CODES, type RevocationReason } from '../core/certificate.js';
import type { Incident } from '../core/incident.js';
import type { IncidentPreview, IncidentCertificate } from '../inventory/incident-service.js';
import type { IncidentStatus } from '../inventory/incident-status.js';

/** Incidents, their previews, status and runs -> wire types (admin/incident-schemas.ts), field by field. */
const iso = (date: Date): string => date.toISOString();
const optional = <T>(key: string, value: T | undefined, map: (v: T) => unknown = (v) => v): Record<string, unknown> => (value === undefined ? {} : { [key]: map(value) });

function reasonName(reason: RevocationReason): string {
  return Object.entries(REASON_CODES).find(([, code]) => code === reason)?.[0] ?? String(reason);
}

export function renderIncident(incident: Incident): Record<string, unknown> {
  return {
    id: incident.id,
    name: incident.name,
    state: incident.closedAt === undefined ? 'open' : 'closed',
    reason: reasonName(incident.reason),
    revoke: incident.revoke,
    drill: incident.drill,
    renewBy: iso(incident.renewBy),
    ...optional('explanationUrl', incident.explanationUrl),
    selection: incident.selection,
    affected: incident.affected,
    shortLived: incident.shortLived,
    blockedKeys: incident.blockedKeys,
    declaredAt: iso(incident.declaredAt),
    declaredBy: incident.declaredBy,
    ...optional('closedAt', incident.closedAt, iso),
    ...optional('closedBy', incident.closedBy),
  };
}

export function renderPreview(preview: IncidentPreview): Record<string, unknown> {
  return {
    affected: preview.affected,
    shortLived: { count: preview.shortLived.count, ...optional('until', preview.shortLived.until, iso) },
    byGroup: preview.byGroup,
    byIssuer: preview.byIssuer,
    byExpiry: preview.byExpiry,
    sample: preview.sample.map((s) => ({ serial: s.serial, group: s.group, issuer: s.issuer, notAfter: iso(s.notAfter), ...optional('identifiers', s.identifiers) })),
    excluded: preview.excluded,
    ariRetryAfterSeconds: preview.ariRetryAfterSeconds,
    notes: preview.notes,
  };
}

export function renderRun(run: BulkRun): Record<string, unknown> {
  return {
    id: run.id,
    origin: run.origin,
    label: run.label,
    reason: reasonName(run.reason),
    state: run.state,
    total: run.total,
    revoked: run.revoked,
    skipped: run.skipped,
    shortLived: run.shortLived,
    ...optional('shortLivedUntil', run.shortLivedUntil, iso),
    unknown: run.unknown,
    chunks: run.chunks,
    createdAt: iso(run.createdAt),
    ...optional('finishedAt', run.finishedAt, iso),
    ...optional('publishedAt', run.publishedAt, iso),
  };
}

export function renderStatus(status: IncidentStatus): Record<string, unknown> {
  return {
    incident: renderIncident(status.incident),
    at: iso(status.at),
    deadlinePassed: status.deadlinePassed,
    totals: status.totals,
    byGroup: status.byGroup,
    revocation: { planned: status.revocation.planned, revoked: status.revocation.revoked, running: status.revocation.running, runs: status.revocation.runs.map(renderRun) },
    series: { bucketSeconds: status.series.bucketSeconds, points: status.series.points.map((p) => ({ at: iso(p.at), replaced: p.replaced, revoked: p.revoked, blocked: p.blocked })) },
    replacedWithin: status.replacedWithin,
    ariRetryAfterSeconds: status.ariRetryAfterSeconds,
  };
}

export function renderIncidentCertificate(certificate: IncidentCertificate): Record<string, unknown> {
  return {
    serial: certificate.serial,
    group: certificate.group,
    issuer: certificate.issuerId,
    notAfter: iso(certificate.notAfter),
    shortLived: certificate.shortLived,
    identifiers: certificate.identifiers,
    status: certificate.status,
    ...optional('revokedAt', certificate.revokedAt, iso),
    ...optional('replacedBy', certificate.replacedBy),
    ...optional('replacedAt', certificate.replacedAt, iso),
  };
}
