import type { ExportFormat } from '../core/certificate-export.js';
import type { InventoryCounts } from '../inventory/certificate-inventory.js';
import { renderCertificate } from './render.js';
import { ADMIN_PREFIX, type AdminCall, type AdminOutcome, type AdminRoute, type AdminServices } from './route.js';
import { certificateSchema, page } from './schemas.js';

/**
 * The certificate inventory on the admin API: search, counts and exports, all over the one filter grammar
 * (inventory/certificate-filter.ts). The listener passes the query string through unvalidated
 * (additionalProperties) so that the grammar alone judges it and its problem names the parameter, exactly
 * as the CLI's flags are judged; the schema below documents the parameters for the OpenAPI document.
 */

type Schema = Record<string, unknown>;

/** Described, not constrained: the grammar checks every value, so its problem (naming the parameter) is the one sent. */
const text = (description: string): Schema => ({ type: 'string', description });

const FILTERS: Record<string, Schema> = {
  name: text('an identifier (DNS name or IP address) of the certificate, exactly'),
  suffix: text('an identifier ends with this text: .pay.internal matches the names below pay.internal'),
  group: text('the group (department) recorded with the certificate'),
  label: { type: 'array', items: { type: 'string' }, description: 'key:value, repeatable: every one must be recorded with the certificate' },
  status: text('valid, expired or revoked; expired: not revoked and notAfter passed (at the server clock)'),
  issuer: text('the issuing CA id'),
  profile: text('the certificate profile it was issued under'),
  account: text('the ACME account that ordered it'),
  spki: text('SHA-256 of the subject public key info, 64 hex digits'),
  serial: text('serial number (hex, colons allowed)'),
  expiringWithinDays: text('valid, with notAfter within this many days (1-3650)'),
  issuedAfter: text('stored after this instant (RFC 3339 date-time, or a date: midnight UTC)'),
  issuedBefore: text('stored before this instant'),
  sort: text('notAfter, -notAfter, issuedAt or -issuedAt (default: newest first); a leading - is descending'),
};

/** An export's `sort`: optional, and without it the rows come in no particular order (the fastest read). */
const EXPORT_FILTERS: Record<string, Schema> = {
  ...FILTERS,
  sort: text('notAfter, -notAfter, issuedAt or -issuedAt; a leading - is descending. Without it, no particular order (on PostgreSQL one snapshot, read in storage order: several times faster)'),
};

const PAGING: Record<string, Schema> = {
  cursor: text('the `next` of the previous page (opaque; only valid with the same filters and sort)'),
  limit: text('page size, 1-500 (default 100)'),
};

/** Documents the parameters; lets any through, for the grammar to name an unknown one precisely. */
function openQuery(properties: Record<string, Schema>): Schema {
  return { type: 'object', additionalProperties: true, properties };
}

const countSchema: Schema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    count: { type: 'integer', description: 'how many certificates match; when capped, the cap itself' },
    capped: { type: 'boolean', description: 'true: more than `cap` certificates match (counting stops there)' },
    cap: { type: 'integer' },
  },
  required: ['count', 'capped', 'cap'],
};

const bucketsSchema: Schema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    valid: { type: 'integer', description: 'not revoked, notAfter ahead' },
    expired: { type: 'integer' },
    revoked: { type: 'integer' },
    expiringWithin7Days: { type: 'integer', description: 'of the valid ones' },
    expiringWithin30Days: { type: 'integer' },
    expiringWithin90Days: { type: 'integer' },
  },
  required: ['valid', 'expired', 'revoked', 'expiringWithin7Days', 'expiringWithin30Days', 'expiringWithin90Days'],
};

const countsSchema: Schema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    at: { type: 'string', format: 'date-time', description: 'the instant the buckets are counted at' },
    groups: {
      type: 'array',
      items: { ...bucketsSchema, properties: { group: { type: 'string', description: 'empty: certificates recorded with no group' }, ...(bucketsSchema.properties as Schema) }, required: ['group', ...(bucketsSchema.required as string[])] },
    },
    total: bucketsSchema,
  },
  required: ['at', 'groups', 'total'],
};

function renderBuckets(counts: Omit<InventoryCounts, 'group'>): Record<string, number> {
  return {
    valid: counts.valid,
    expired: counts.expired,
    revoked: counts.revoked,
    expiringWithin7Days: counts.expiring7,
    expiringWithin30Days: counts.expiring30,
    expiringWithin90Days: counts.expiring90,
  };
}

/**
 * The export's first chunk is read before the answer starts, so a refused filter or an unreachable
 * database is still a problem document with its status; later failures can only cut the stream.
 */
async function primed(chunks: AsyncGenerator<string>): Promise<AsyncIterable<string>> {
  const first = await chunks.next();
  return (async function* () {
    if (first.done) return;
    yield first.value;
    yield* chunks;
  })();
}

function exportRoute(format: ExportFormat, contentType: string): AdminRoute {
  return {
    method: 'GET',
    url: `${ADMIN_PREFIX}/certificates.${format}`,
    operationId: format === 'csv' ? 'exportCertificatesCsv' : 'exportCertificatesJsonl',
    summary:
      format === 'csv'
        ? 'Every matching certificate as CSV, streamed (cells starting with = + - @ are prefixed with an apostrophe)'
        : 'Every matching certificate as JSON lines, streamed',
    tag: 'certificates',
    action: 'certificate.list',
    produces: contentType,
    schema: { querystring: openQuery(EXPORT_FILTERS), response: { type: 'string' } },
    handle: async (call: AdminCall, s: AdminServices): Promise<AdminOutcome> => ({
      stream: await primed(s.search.exportParameters(call.scope, call.query, format)),
      contentType,
      filename: `certificates.${format}`,
    }),
  };
}

/** Search (the full grammar, keyset pages), counts and exports of certificates. */
export const certificateSearchRoutes: AdminRoute[] = [
  {
    method: 'GET',
    url: `${ADMIN_PREFIX}/certificates`,
    operationId: 'listCertificates',
    summary: 'Search certificates: every filter of the inventory grammar, keyset pages (`next`), a group-admin sees its groups only',
    tag: 'certificates',
    action: 'certificate.list',
    schema: { querystring: openQuery({ ...FILTERS, ...PAGING }), response: page(certificateSchema) },
    handle: async (call, s) => {
      const result = await s.search.searchParameters(call.scope, call.query);
      const now = s.clock.now();
      return { body: { items: result.items.map((c) => renderCertificate(c, now)), ...(result.nextCursor ? { next: result.nextCursor } : {}) } };
    },
  },
  {
    method: 'GET',
    url: `${ADMIN_PREFIX}/certificates/count`,
    operationId: 'countCertificates',
    summary: 'How many certificates match the filters: exact up to 10,000, else capped ("more than 10,000")',
    tag: 'certificates',
    action: 'certificate.list',
    schema: { querystring: openQuery(Object.fromEntries(Object.entries(FILTERS).filter(([name]) => name !== 'sort'))), response: countSchema },
    handle: async (call, s) => ({ body: await s.search.countParameters(call.scope, call.query) }),
  },
  {
    method: 'GET',
    url: `${ADMIN_PREFIX}/certificates/counts`,
    operationId: 'certificateCounts',
    summary: 'Exact counts by group x status x expiry bucket (within 7, 30, 90 days), for the groups in scope',
    tag: 'certificates',
    action: 'certificate.list',
    schema: { querystring: openQuery({ group: FILTERS.group! }), response: countsSchema },
    handle: async (call, s) => {
      const { at, groups } = await s.search.countsParameters(call.scope, call.query);
      const total = { valid: 0, expired: 0, revoked: 0, expiring7: 0, expiring30: 0, expiring90: 0 };
      for (const g of groups) for (const key of Object.keys(total) as (keyof typeof total)[]) total[key] += g[key];
      return { body: { at: at.toISOString(), groups: groups.map((g) => ({ group: g.group, ...renderBuckets(g) })), total: renderBuckets(total) } };
    },
  },
  exportRoute('csv', 'text/csv; charset=utf-8'),
  exportRoute('jsonl', 'application/jsonl; charset=utf-8'),
];
