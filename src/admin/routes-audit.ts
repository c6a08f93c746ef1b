import { auditEntryFields, type AuditEntry, type AuditFilter } from '../core/audit.js';
import { CaError } from '../core/errors.js';
import { ADMIN_PREFIX, type AdminCall, type AdminRoute } from './route.js';
import { page, query } from './schemas.js';

type Schema = Record<string, unknown>;

const dateTime: Schema = { type: 'string', format: 'date-time' };

/** One audit entry on the wire: what the chain hashed (details as stored text) and its seal, if sealed yet. */
const auditEntrySchema: Schema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    id: { type: 'integer' },
    at: dateTime,
    actor: { type: 'string' },
    action: { type: 'string' },
    subject: { type: 'string' },
    outcome: { type: 'string', enum: ['ok', 'refused'] },
    requestId: { type: 'string' },
    group: { type: 'string' },
    details: { type: 'object', additionalProperties: true },
    seal: {
      type: 'object',
      additionalProperties: false,
      properties: { seq: { type: 'integer' }, prevHash: { type: 'string' }, hash: { type: 'string' } },
      required: ['seq', 'prevHash', 'hash'],
    },
  },
  required: ['id', 'at', 'actor', 'action', 'subject', 'outcome'],
};

function renderAuditEntry(entry: AuditEntry): Record<string, unknown> {
  return { ...auditEntryFields(entry), ...(entry.seal === undefined ? {} : { seal: { seq: entry.seal.seq, prevHash: entry.seal.prevHash, hash: entry.seal.hash } }) };
}

function timeParameter(call: AdminCall, name: 'from' | 'to'): Date | undefined {
  const value = call.query[name];
  if (typeof value !== 'string') return undefined;
  const at = new Date(value);
  if (Number.isNaN(at.getTime())) throw new CaError('malformed', `${name}: ${JSON.stringify(value)} is not an RFC 3339 date-time`);
  return at;
}

/**
 * The filter of one request: auditors and admins read every entry, a group administrator its groups'
 * entries only (entries of no group — the CA's own operations, other principals' tokens — stay hidden).
 */
function filterOf(call: AdminCall): AuditFilter {
  const text = (name: 'actor' | 'action' | 'subject'): Partial<AuditFilter> => (typeof call.query[name] === 'string' ? { [name]: call.query[name] } : {});
  const from = timeParameter(call, 'from');
  const to = timeParameter(call, 'to');
  return {
    ...text('actor'),
    ...text('action'),
    ...text('subject'),
    ...(from === undefined ? {} : { from }),
    ...(to === undefined ? {} : { to }),
    ...(call.scope === 'all' ? {} : { groups: call.scope }),
  };
}

/** The audit log, read: filtered by actor, action, subject and time, keyset pages, oldest or newest first. */
export const auditRoutes: AdminRoute[] = [
  {
    method: 'GET',
    url: `${ADMIN_PREFIX}/audit`,
    operationId: 'listAuditEntries',
    summary: 'Audit entries (who did what, when, with what outcome), filtered by actor, action, subject and time; a group-admin sees its groups\' entries',
    tag: 'audit',
    action: 'audit.read',
    schema: {
      querystring: query({
        actor: { type: 'string', maxLength: 300, description: 'exactly: account:<id>, token:<id>, certificate:<name>, cli:<user>, source:<address>, system:<what>' },
        action: { type: 'string', maxLength: 100, description: 'exactly, e.g. certificate.issue, eab.create, admin.authenticate' },
        subject: { type: 'string', maxLength: 300, description: 'exactly, e.g. certificate:<serial>, group:<name>' },
        from: { ...dateTime, description: 'entries at or after this time' },
        to: { ...dateTime, description: 'entries before this time' },
        order: { type: 'string', enum: ['oldest', 'newest'], default: 'oldest' },
      }),
      response: page(auditEntrySchema),
    },
    handle: async (call, s) => {
      const result = await s.audit.query(filterOf(call), {
        ...(typeof call.query.cursor === 'string' ? { cursor: call.query.cursor } : {}),
        limit: typeof call.query.limit === 'number' ? call.query.limit : 100,
        newestFirst: call.query.order === 'newest',
      });
      return { body: { items: result.entries.map(renderAuditEntry), ...(result.nextCursor === undefined ? {} : { next: result.nextCursor }) } };
    },
  },
];
