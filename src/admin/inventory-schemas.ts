import { HEALTH_CONDITIONS } from '../core/health.js';
import { NOTIFICATION_TYPES } from '../core/webhook.js';

/**
 * JSON Schemas of the inventory's admin routes (lineage, labels, reports, webhooks), in the dialect of
 * admin/schemas.ts: inlined, unknown members refused, so the OpenAPI document is what the server enforces.
 */
type Schema = Record<string, unknown>;

const dateTime: Schema = { type: 'string', format: 'date-time' };
const groupName: Schema = { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$' };
const actor: Schema = { type: 'string', description: 'who acted: cli:<user>, token:<id>, certificate:<name>' };
const labels: Schema = { type: 'object', additionalProperties: { type: 'string' } };
const spki: Schema = { type: 'string', pattern: '^[0-9a-f]{64}$', description: 'SHA-256 of the SubjectPublicKeyInfo, hex' };

function object(properties: Record<string, Schema>, required: string[]): Schema {
  return { type: 'object', additionalProperties: false, properties, required };
}

export const daysQuery: Schema = { type: 'integer', minimum: 1, maximum: 3650, description: 'N: expiring within / expired in the last N days (default 14)' };

/** A certificate as the reports list it: no PEM (GET /certificates/{serial} has it). */
export const certificateSummarySchema = object(
  {
    serial: { type: 'string' },
    status: { type: 'string', enum: ['valid', 'revoked', 'expired'] },
    identifiers: { type: 'array', items: { type: 'string', description: 'type:value' } },
    notBefore: dateTime,
    notAfter: dateTime,
    createdAt: dateTime,
    issuerId: { type: 'string' },
    profile: { type: 'string' },
    group: groupName,
    labels,
    accountId: { type: 'string' },
    spkiSha256: spki,
    replaces: { type: 'string', description: 'the serial it replaces (RFC 9773 §5), as its order said' },
    predecessor: { type: 'string', description: 'the serial it renews: `replaces`, or the previous certificate of its account for the same identifiers' },
    revokedAt: dateTime,
  },
  ['serial', 'status', 'identifiers', 'notBefore', 'notAfter', 'createdAt', 'issuerId', 'spkiSha256'],
);

export const lineageSchema = object(
  {
    serial: { type: 'string' },
    items: {
      type: 'array',
      description: 'oldest first; position 0 is the certificate asked about',
      items: object({ position: { type: 'integer' }, certificate: certificateSummarySchema }, ['position', 'certificate']),
    },
    moreBefore: { type: 'boolean', description: 'older certificates exist: ask for the lineage of the first item' },
    moreAfter: { type: 'boolean', description: 'newer certificates exist: ask for the lineage of the last item' },
  },
  ['serial', 'items', 'moreBefore', 'moreAfter'],
);

export const lineageQuery = object(
  {
    before: { type: 'integer', minimum: 0, maximum: 500, default: 100 },
    after: { type: 'integer', minimum: 0, maximum: 500, default: 100 },
  },
  [],
);

export const labelsBodySchema = object({ labels: { ...labels, maxProperties: 32 } }, ['labels']);
export const labelsChangeSchema = object({ serial: { type: 'string' }, labels, previous: labels }, ['serial', 'labels', 'previous']);

const groupHealth = object(
  {
    group: { type: 'string', description: "'' for certificates recorded with no group" },
    owners: { type: 'array', items: { type: 'string' } },
    renewalOverdue: { type: 'integer' },
    expiring: { type: 'integer' },
    expiredUnreplaced: { type: 'integer' },
    accounts: { type: 'integer' },
  },
  ['group', 'owners', 'renewalOverdue', 'expiring', 'expiredUnreplaced', 'accounts'],
);

export const healthSummarySchema = object(
  {
    at: dateTime,
    days: { type: 'integer' },
    asOf: { ...dateTime, description: 'how far the health detector had looked (it runs every minute)' },
    groups: { type: 'array', items: groupHealth },
  },
  ['at', 'days', 'groups'],
);

export const healthQuery = { days: daysQuery, group: groupName };
export const healthCondition: Schema = { type: 'string', enum: [...HEALTH_CONDITIONS], default: 'renewal-overdue' };

export const healthEntrySchema = object(
  {
    certificate: certificateSummarySchema,
    renewalDueAt: { ...dateTime, description: 'the end of its ARI window (RFC 9773 §4.2)' },
    accountLastSeenAt: dateTime,
  },
  ['certificate', 'renewalDueAt'],
);

export const overdueAccountSchema = object(
  {
    accountId: { type: 'string' },
    group: groupName,
    status: { type: 'string' },
    lastSeenAt: { ...dateTime, description: 'when it last authenticated an ACME request (to the hour)' },
    certificates: { type: 'integer' },
    firstNotAfter: dateTime,
  },
  ['accountId', 'certificates', 'firstNotAfter'],
);

export const keyEntrySchema = object(
  {
    spkiSha256: spki,
    kind: { type: 'string', description: 'rsa/<bits>/<exponent>, ec/<curve>, ed25519 or other/<type>' },
    firstSeenAt: dateTime,
    lastNotAfter: dateTime,
    weakness: { type: 'string', description: "why today's key policy refuses it" },
    certificateCount: { type: 'integer' },
    accounts: { type: 'integer' },
    groups: { type: 'integer' },
    certificates: { type: 'array', items: certificateSummarySchema, description: 'the newest 20' },
  },
  ['spkiSha256', 'kind', 'firstSeenAt', 'lastNotAfter', 'certificateCount', 'accounts', 'groups', 'certificates'],
);

export const inactiveAccountSchema = object(
  { id: { type: 'string' }, group: groupName, contacts: { type: 'array', items: { type: 'string' } }, createdAt: dateTime, lastSeenAt: dateTime },
  ['id', 'group', 'contacts', 'createdAt'],
);

const events: Schema = { type: 'array', items: { type: 'string', enum: [...NOTIFICATION_TYPES] }, minItems: 1, uniqueItems: true };

export const webhookSchema = object(
  {
    id: { type: 'string' },
    group: { ...groupName, description: 'absent: a global webhook (every certificate)' },
    url: { type: 'string' },
    events,
    description: { type: 'string' },
    createdAt: dateTime,
    createdBy: actor,
    removedAt: dateTime,
    removedBy: actor,
  },
  ['id', 'url', 'events', 'description', 'createdAt', 'createdBy'],
);

export const newWebhookSchema = object(
  {
    url: { type: 'string', maxLength: 2048, description: 'https (http only with notifications.allowHttp)' },
    group: { ...groupName, description: "the group whose certificates it hears of; absent: global (an admin's)" },
    events: { ...events, description: `default: all of ${NOTIFICATION_TYPES.join(', ')}` },
    description: { type: 'string', maxLength: 200 },
  },
  ['url'],
);

export const webhookCreatedSchema = object(
  {
    webhook: webhookSchema,
    secret: { type: 'string', description: 'the HMAC-SHA256 key of Chancery-Signature; shown only now: store it' },
  },
  ['webhook', 'secret'],
);

export const deliverySchema = object(
  {
    eventId: { type: 'string' },
    type: { type: 'string', enum: [...NOTIFICATION_TYPES] },
    serial: { type: 'string' },
    status: { type: 'string', enum: ['pending', 'delivered', 'failed'] },
    attempts: { type: 'integer' },
    nextAttemptAt: dateTime,
    lastAttemptAt: dateTime,
    lastError: { type: 'string' },
    deliveredAt: dateTime,
    createdAt: dateTime,
  },
  ['eventId', 'type', 'serial', 'status', 'attempts', 'createdAt'],
);
