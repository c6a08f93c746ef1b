import type { Clock } from '../core/clock.js';
import type { AdminPrincipal } from '../core/principal.js';
import type { AccountAdmin } from '../inventory/account-admin.js';
import type { AdminAccess } from '../inventory/admin-access.js';
import type { AdminTokenService } from '../inventory/admin-tokens.js';
import type { CertificateAdmin } from '../inventory/certificate-admin.js';
import type { EabAdmin } from '../inventory/eab-admin.js';
import type { OperatorService } from '../inventory/operators.js';
import type { PolicyAdmin } from '../inventory/policy-admin.js';
import type { InventoryServices } from '../inventory/inventory-services.js';
import type { AdminAction, Scope } from '../inventory/admin-access.js';
import type { CertificateInventory } from '../inventory/certificate-inventory.js';
import type { IncidentAdmin } from '../inventory/incident-service.js';
import type { AuditLog } from '../inventory/audit-log.js';
import type { RenderedProblem } from './problem.js';

/** The services the admin API's handlers work on (compose.ts wires them; DESIGN.md rule 5). */
export interface AdminServices {
  access: AdminAccess;
  tokens: AdminTokenService;
  operators: OperatorService;
  /** Absent until groups exist in this database's services: the group and policy routes answer 503. */
  policy: PolicyAdmin;
  eab: EabAdmin;
  certificates: CertificateAdmin;
  accounts: AccountAdmin;
  /** Lineage, labels, renewal health, the key inventory, account activity and webhooks. */
  inventory: InventoryServices;
  /** Certificate search, counts and exports over the inventory's one filter grammar. */
  search: CertificateInventory;
  /** Incidents: preview, declare, status, close (inventory/incident-service.ts). */
  incidents: IncidentAdmin;
  /** The audit log, read only (GET /admin/v1/audit). */
  audit: Pick<AuditLog, 'query'>;
  clock: Clock;
}

/** One request, authenticated and authorized: what a handler sees. */
export interface AdminCall {
  principal: AdminPrincipal;
  /** What the principal's role grants for this route's action: every group, or these. */
  scope: Scope;
  params: Record<string, string>;
  query: Record<string, unknown>;
  body: unknown;
}

/** A handler's answer: 200 with a JSON body, or a problem (a policy refused, with its issues). */
export type AdminOutcome = { body: unknown } | { problem: RenderedProblem } | AdminStream;

/**
 * 200 with a body streamed as it is produced (exports: DESIGN.md rule 9, bounded memory); the listener
 * writes each chunk when the client has taken the previous ones.
 */
export interface AdminStream {
  stream: AsyncIterable<string>;
  contentType: string;
  /** Offered to the client as the file's name (Content-Disposition). */
  filename: string;
}

type Schema = Record<string, unknown>;

/**
 * One route of /admin/v1: its place, its schemas (what the listener validates and the OpenAPI document
 * shows), the RBAC action it performs, and its handler. Every success is 200 with a JSON body.
 */
export interface AdminRoute {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  url: string;
  operationId: string;
  summary: string;
  tag: string;
  action: AdminAction;
  /** The success's media type when it is not JSON (a streamed export); `response` then describes its body. */
  produces?: string;
  /** Largest accepted body when larger than the listener's (an incident's serials file). */
  bodyLimit?: number;
  schema: { params?: Schema; querystring?: Schema; body?: Schema; response: Schema };
  handle(call: AdminCall, services: AdminServices): Promise<AdminOutcome>;
}

export const ADMIN_PREFIX = '/admin/v1';
