import type { DeclareInput, SelectionInput } from '../inventory/incident-input.js';
import type { IncidentCertificateState } from '../inventory/incident-service.js';
import { renderIncident, renderIncidentCertificate, renderPreview, renderStatus } from './incident-render.js';
import {
  certificateStateSchema,
  declareBodySchema,
  declaredSchema,
  incidentCertificateSchema,
  incidentNameSchema,
  incidentSchema,
  previewSchema,
  selectionBodySchema,
  statusSchema,
} from './incident-schemas.js';
import { renderPage } from './render.js';
import { ADMIN_PREFIX, type AdminCall, type AdminRoute } from './route.js';
import { page, params, query } from './schemas.js';

/** A serials file of a large incident is megabytes of text: these bodies may be larger than the API's usual 1 MiB. */
const SELECTION_BODY_LIMIT = 64 * 1024 * 1024;

function pageOf(q: Record<string, unknown>): { cursor?: string; limit: number } {
  return { ...(typeof q.cursor === 'string' ? { cursor: q.cursor } : {}), limit: typeof q.limit === 'number' ? q.limit : 100 };
}

function nameOf(call: AdminCall): string {
  return call.params.name ?? '';
}

/** Incidents: preview a selection, declare, list, status, the affected certificates, close. */
export const incidentRoutes: AdminRoute[] = [
  {
    method: 'POST',
    url: `${ADMIN_PREFIX}/incidents/preview`,
    operationId: 'previewIncident',
    summary: 'The blast radius of a selection — counts by group (with owners), issuer and expiry, a sample — changing nothing',
    tag: 'incidents',
    action: 'incident.read',
    bodyLimit: SELECTION_BODY_LIMIT,
    schema: { body: selectionBodySchema, response: previewSchema },
    handle: async (call, s) => ({ body: renderPreview(await s.incidents.preview((call.body ?? {}) as SelectionInput)) }),
  },
  {
    method: 'POST',
    url: `${ADMIN_PREFIX}/incidents`,
    operationId: 'declareIncident',
    summary: 'Declare an incident: renewalInfo of every affected certificate moves (RFC 9773), keys are blocked (keyCompromise), owners notified, revocation as asked',
    tag: 'incidents',
    action: 'incident.declare',
    bodyLimit: SELECTION_BODY_LIMIT,
    schema: { body: declareBodySchema, response: declaredSchema },
    handle: async (call, s) => {
      const { incident, radius } = await s.incidents.declare((call.body ?? {}) as DeclareInput, call.principal.actor);
      return { body: { incident: renderIncident(incident), radius: renderPreview(radius) } };
    },
  },
  {
    method: 'GET',
    url: `${ADMIN_PREFIX}/incidents`,
    operationId: 'listIncidents',
    summary: 'Incidents, newest first',
    tag: 'incidents',
    action: 'incident.list',
    schema: { querystring: query({}), response: page(incidentSchema) },
    handle: async (call, s) => ({ body: renderPage(await s.incidents.list(pageOf(call.query)), renderIncident) }),
  },
  {
    method: 'GET',
    url: `${ADMIN_PREFIX}/incidents/:name`,
    operationId: 'getIncident',
    summary: 'Where an incident stands: affected, replaced, revoked, blocked renewals, outstanding — by group with owners — and as a time series',
    tag: 'incidents',
    action: 'incident.read',
    schema: { params: params({ name: incidentNameSchema }), response: statusSchema },
    handle: async (call, s) => ({ body: renderStatus(await s.incidents.status(nameOf(call))) }),
  },
  {
    method: 'GET',
    url: `${ADMIN_PREFIX}/incidents/:name/certificates`,
    operationId: 'listIncidentCertificates',
    summary: "An incident's certificates, by serial; `state` narrows to outstanding, replaced, revoked, expired or short-lived",
    tag: 'incidents',
    action: 'incident.read',
    schema: { params: params({ name: incidentNameSchema }), querystring: query({ state: certificateStateSchema }), response: page(incidentCertificateSchema) },
    handle: async (call, s) => {
      const state = typeof call.query.state === 'string' ? (call.query.state as IncidentCertificateState) : undefined;
      return { body: renderPage(await s.incidents.certificates(nameOf(call), state, pageOf(call.query)), renderIncidentCertificate) };
    },
  },
  {
    method: 'POST',
    url: `${ADMIN_PREFIX}/incidents/:name/close`,
    operationId: 'closeIncident',
    summary: 'Close an incident: renewalInfo answers as usual again, nothing more is revoked for it; blocked keys stay blocked',
    tag: 'incidents',
    action: 'incident.close',
    schema: { params: params({ name: incidentNameSchema }), response: incidentSchema },
    handle: async (call, s) => ({ body: renderIncident(await s.incidents.close(nameOf(call), call.principal.actor)) }),
  },
];
