import { CaError } from '../core/errors.js';
import type { HealthCondition } from '../core/health.js';
import { parseSerialText } from '../core/serial-number.js';
import type { DeliveryStatus } from '../core/webhook.js';
import {
  daysQuery,
  deliverySchema,
  healthCondition,
  healthEntrySchema,
  healthQuery,
  healthSummarySchema,
  inactiveAccountSchema,
  keyEntrySchema,
  labelsBodySchema,
  labelsChangeSchema,
  lineageQuery,
  lineageSchema,
  newWebhookSchema,
  overdueAccountSchema,
  webhookCreatedSchema,
  webhookSchema,
} from './inventory-schemas.js';
import {
  renderDelivery,
  renderGroupHealth,
  renderHealthEntry,
  renderInactiveAccount,
  renderKeyEntry,
  renderLinked,
  renderOverdueAccount,
  renderWebhook,
} from './inventory-render.js';
import { renderPage } from './render.js';
import { ADMIN_PREFIX, type AdminCall, type AdminRoute } from './route.js';
import { groupNameSchema, page, params, query, serialParam } from './schemas.js';

function pageOf(q: Record<string, unknown>): { cursor?: string; limit: number } {
  return { ...(typeof q.cursor === 'string' ? { cursor: q.cursor } : {}), limit: typeof q.limit === 'number' ? q.limit : 100 };
}

function serialOf(call: AdminCall): string {
  const serial = parseSerialText(call.params.serial ?? '');
  if (serial === undefined) throw new CaError('malformed', 'not a serial number');
  return serial;
}

function groupOf(call: AdminCall): { group?: string } {
  return typeof call.query.group === 'string' ? { group: call.query.group } : {};
}

function daysOf(call: AdminCall): { days?: number } {
  return typeof call.query.days === 'number' ? { days: call.query.days } : {};
}

const webhookId = { id: { type: 'string', pattern: '^wh_[A-Za-z0-9_-]{1,64}$' } };

/** Lineage and labels of certificates; renewal health, key and account reports; webhooks. */
export const inventoryRoutes: AdminRoute[] = [
  {
    method: 'GET',
    url: `${ADMIN_PREFIX}/certificates/:serial/lineage`,
    operationId: 'getCertificateLineage',
    summary: 'The renewal chain of a certificate: its predecessors and successors, oldest first',
    tag: 'certificates',
    action: 'certificate.read',
    schema: { params: params({ serial: serialParam }), querystring: lineageQuery, response: lineageSchema },
    handle: async (call, s) => {
      const serial = serialOf(call);
      const q = call.query as { before?: number; after?: number };
      const chain = await s.inventory.lineage.chain(serial, call.scope, { before: q.before ?? 100, after: q.after ?? 100 });
      const now = s.clock.now();
      return {
        body: {
          serial,
          items: chain.items.map((item) => ({ position: item.position, certificate: renderLinked(item, now) })),
          moreBefore: chain.moreBefore,
          moreAfter: chain.moreAfter,
        },
      };
    },
  },
  {
    method: 'PUT',
    url: `${ADMIN_PREFIX}/certificates/:serial/labels`,
    operationId: 'replaceCertificateLabels',
    summary: "Replace a certificate's labels (its inventory record; the certificate itself is unchanged)",
    tag: 'certificates',
    action: 'certificate.label',
    schema: { params: params({ serial: serialParam }), body: labelsBodySchema, response: labelsChangeSchema },
    handle: async (call, s) => {
      const { labels } = call.body as { labels: Record<string, string> };
      const change = await s.inventory.labels.replace(call.principal, call.scope, serialOf(call), labels);
      return { body: { serial: change.serial, labels: change.after, previous: change.before } };
    },
  },
  {
    method: 'GET',
    url: `${ADMIN_PREFIX}/reports/health`,
    operationId: 'getHealthReport',
    summary: 'Renewal health by group, with each group\'s owners: certificates renewal-overdue, expiring, expired unreplaced',
    tag: 'reports',
    action: 'report.read',
    schema: { querystring: { type: 'object', additionalProperties: false, properties: healthQuery }, response: healthSummarySchema },
    handle: async (call, s) => {
      const summary = await s.inventory.health.summary(call.scope, { ...daysOf(call), ...groupOf(call) });
      return {
        body: {
          at: summary.at.toISOString(),
          days: summary.days,
          ...(summary.asOf === undefined ? {} : { asOf: summary.asOf.toISOString() }),
          groups: summary.groups.map(renderGroupHealth),
        },
      };
    },
  },
  {
    method: 'GET',
    url: `${ADMIN_PREFIX}/reports/health/certificates`,
    operationId: 'listHealthCertificates',
    summary: 'The certificates in one renewal-health condition, soonest notAfter first',
    tag: 'reports',
    action: 'report.read',
    schema: { querystring: query({ ...healthQuery, condition: healthCondition }), response: page(healthEntrySchema) },
    handle: async (call, s) => {
      const condition = (call.query.condition ?? 'renewal-overdue') as HealthCondition;
      const now = s.clock.now();
      const found = await s.inventory.health.certificates(call.scope, condition, { ...daysOf(call), ...groupOf(call) }, pageOf(call.query));
      return { body: renderPage(found, (entry) => renderHealthEntry(entry, now)) };
    },
  },
  {
    method: 'GET',
    url: `${ADMIN_PREFIX}/reports/health/accounts`,
    operationId: 'listHealthAccounts',
    summary: 'Accounts whose certificates went renewal-overdue or expired unreplaced, with when each was last seen',
    tag: 'reports',
    action: 'report.read',
    schema: { querystring: query(healthQuery), response: page(overdueAccountSchema) },
    handle: async (call, s) => ({
      body: renderPage(await s.inventory.health.accounts(call.scope, { ...daysOf(call), ...groupOf(call) }, pageOf(call.query)), renderOverdueAccount),
    }),
  },
  {
    method: 'GET',
    url: `${ADMIN_PREFIX}/reports/keys/shared`,
    operationId: 'listSharedKeys',
    summary: 'Subject keys in use that several accounts or groups have certified',
    tag: 'reports',
    action: 'report.read',
    schema: { querystring: query({ group: groupNameSchema }), response: page(keyEntrySchema) },
    handle: async (call, s) => {
      const now = s.clock.now();
      return { body: renderPage(await s.inventory.keys.shared(call.scope, groupOf(call), pageOf(call.query)), (entry) => renderKeyEntry(entry, now)) };
    },
  },
  {
    method: 'GET',
    url: `${ADMIN_PREFIX}/reports/keys/weak`,
    operationId: 'listWeakKeys',
    summary: "Subject keys in use that today's key policy would refuse",
    tag: 'reports',
    action: 'report.read',
    schema: { querystring: query({ group: groupNameSchema }), response: page(keyEntrySchema) },
    handle: async (call, s) => {
      const now = s.clock.now();
      return { body: renderPage(await s.inventory.keys.weak(call.scope, groupOf(call), pageOf(call.query)), (entry) => renderKeyEntry(entry, now)) };
    },
  },
  {
    method: 'GET',
    url: `${ADMIN_PREFIX}/reports/accounts/inactive`,
    operationId: 'listInactiveAccounts',
    summary: 'Valid ACME accounts not seen for N days, least recently seen first',
    tag: 'reports',
    action: 'report.read',
    schema: { querystring: query({ days: { ...daysQuery, default: 90, description: 'not seen for this many days (default 90)' }, group: groupNameSchema }), response: page(inactiveAccountSchema) },
    handle: async (call, s) => ({
      body: renderPage(await s.inventory.activity.notSeen(call.scope, { days: typeof call.query.days === 'number' ? call.query.days : 90, ...groupOf(call) }, pageOf(call.query)), renderInactiveAccount),
    }),
  },
  {
    method: 'GET',
    url: `${ADMIN_PREFIX}/webhooks`,
    operationId: 'listWebhooks',
    summary: 'Webhooks, oldest first (never their secrets)',
    tag: 'webhooks',
    action: 'webhook.list',
    schema: { querystring: query({ group: groupNameSchema, includeRemoved: { type: 'boolean', default: false } }), response: page(webhookSchema) },
    handle: async (call, s) => ({
      body: renderPage(await s.inventory.webhooks.list(call.scope, { ...groupOf(call), includeRemoved: call.query.includeRemoved === true }, pageOf(call.query)), renderWebhook),
    }),
  },
  {
    method: 'POST',
    url: `${ADMIN_PREFIX}/webhooks`,
    operationId: 'createWebhook',
    summary: 'Create a webhook; its signing secret is in this response only',
    tag: 'webhooks',
    action: 'webhook.create',
    schema: { body: newWebhookSchema, response: webhookCreatedSchema },
    handle: async (call, s) => {
      const { webhook, secret } = await s.inventory.webhooks.create(call.principal, call.scope, call.body as { url: string; group?: string; events?: string[]; description?: string });
      return { body: { webhook: renderWebhook(webhook), secret } };
    },
  },
  {
    method: 'GET',
    url: `${ADMIN_PREFIX}/webhooks/:id`,
    operationId: 'getWebhook',
    summary: 'One webhook',
    tag: 'webhooks',
    action: 'webhook.list',
    schema: { params: params(webhookId), response: webhookSchema },
    handle: async (call, s) => ({ body: renderWebhook(await s.inventory.webhooks.get(call.params.id!, call.scope)) }),
  },
  {
    method: 'DELETE',
    url: `${ADMIN_PREFIX}/webhooks/:id`,
    operationId: 'removeWebhook',
    summary: 'Remove a webhook: nothing more is sent to it, and its pending deliveries end',
    tag: 'webhooks',
    action: 'webhook.remove',
    schema: { params: params(webhookId), response: webhookSchema },
    handle: async (call, s) => ({ body: renderWebhook(await s.inventory.webhooks.remove(call.principal, call.scope, call.params.id!)) }),
  },
  {
    method: 'GET',
    url: `${ADMIN_PREFIX}/webhooks/:id/deliveries`,
    operationId: 'listWebhookDeliveries',
    summary: "A webhook's deliveries, newest first: attempts, the last error, what is still pending",
    tag: 'webhooks',
    action: 'webhook.list',
    schema: { params: params(webhookId), querystring: query({ status: { type: 'string', enum: ['pending', 'delivered', 'failed'] } }), response: page(deliverySchema) },
    handle: async (call, s) => {
      const status = call.query.status as DeliveryStatus | undefined;
      return { body: renderPage(await s.inventory.webhooks.deliveries(call.params.id!, call.scope, status === undefined ? {} : { status }, pageOf(call.query)), renderDelivery) };
    },
  },
];
