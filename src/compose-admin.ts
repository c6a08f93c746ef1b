import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { Logger as PinoLogger } from 'pino';
import { AdminApi } from './admin/admin-api.js';
import type { AdminServices } from './admin/route.js';
import type { AuditLog } from './inventory/audit-log.js';
import type { Config } from './config/config.js';
import type { Clock } from './core/clock.js';
import { CaError } from './core/errors.js';
import type { DomainEvents } from './core/events.js';
import type { Database, Queryable } from './db/database.js';
import { AccountRepository } from './db/repositories/account-repository.js';
import { AdminOperatorRepository } from './db/repositories/admin-operator-repository.js';
import { AdminTokenRepository } from './db/repositories/admin-token-repository.js';
import { CertificateRepository } from './db/repositories/certificate-repository.js';
import { EabRepository } from './db/repositories/eab-repository.js';
import { buildAdminApp } from './http/admin-app.js';
import { httpLimits } from './http/listener-limits.js';
import { tlsServerOptions, type TlsMaterial } from './http/tls-policy.js';
import { AccountAdmin } from './inventory/account-admin.js';
import { AdminAccess } from './inventory/admin-access.js';
import { AdminTokenService } from './inventory/admin-tokens.js';
import { AuthFailureLimiter } from './inventory/auth-failures.js';
import { CertificateAdmin, type AdminRevoker } from './inventory/certificate-admin.js';
import { inventoryOf } from './compose-inventory.js';
import type { StoreAccess } from './inventory/change-with-event.js';
import { EabAdmin } from './inventory/eab-admin.js';
import type { IncidentService } from './inventory/incident-service.js';
import { LateIncidents } from './compose-incidents.js';
import { OperatorService } from './inventory/operators.js';
import { PolicyAdmin, type GroupPolicyService } from './inventory/policy-admin.js';
import type { InventoryServices } from './inventory/inventory-services.js';
import type { EabService } from './ra/eab-service.js';

/**
 * The admin API's part of the composition root (compose.ts calls it; DESIGN.md rule 5): its services over
 * the database, and its two apps — the HTTPS listener and the data directory's Unix socket for the CLI.
 */

/** The local CLI's way in while a server holds the data directory (mode 0600, in the 0700 data dir). */
export function adminSocketPath(dataDir: string): string {
  return join(dataDir, 'admin.sock');
}

function access<S>(db: Database, on: (q: Queryable) => S): StoreAccess<S> {
  return { stores: on(db), transaction: (fn) => db.transaction((tx) => fn(on(tx), tx)) };
}

export interface AdminWiring {
  api: AdminApi;
  /** Called once the CA exists (compose(), not composeBase()): until then revocation answers caState. */
  setRevoker(revoker: AdminRevoker): void;
  /** Called once the CA exists: until then the incident routes answer caState. */
  setIncidents(incidents: IncidentService): void;
  stop(): void;
}

export function composeAdmin(deps: {
  config: Config;
  db: Database;
  clock: Clock;
  logger: PinoLogger;
  events: DomainEvents<Queryable>;
  eab: Pick<EabService, 'create'>;
  groups: GroupPolicyService;
  /** Lineage, labels, renewal health, keys, account activity and webhooks (compose-inventory.ts). */
  inventory: InventoryServices;
  audit: Pick<AuditLog, 'query'>;
}): AdminWiring {
  const { config, db, clock, events, logger } = deps;
  const groupExists = async (name: string): Promise<boolean> => (await deps.groups.list()).some((group) => group.name === name);
  const certificates = new CertificateRepository(db);
  let revoker: AdminRevoker | undefined;
  const incidents = new LateIncidents();
  const tokens = new AdminTokenService({
    access: access(db, (q) => new AdminTokenRepository(q)),
    events,
    clock,
    settings: { defaultLifetimeMs: config.admin.tokens.defaultLifetime, maxLifetimeMs: config.admin.tokens.maxLifetime },
    groupExists,
  });
  const operators = new OperatorService({ access: access(db, (q) => new AdminOperatorRepository(q)), certificates, events, clock, groupExists });
  const limiter = new AuthFailureLimiter({ clock, events, transaction: (fn) => db.transaction(fn), maxPerMinute: config.admin.authFailuresPerMinute, logger });
  const services: AdminServices = {
    access: new AdminAccess({ tokens, operators, limiter }),
    tokens,
    operators,
    policy: new PolicyAdmin({ groups: deps.groups }),
    eab: new EabAdmin({ access: access(db, (q) => new EabRepository(q)), eab: deps.eab, events, clock, groupExists }),
    certificates: new CertificateAdmin({
      certificates,
      revoker: {
        revoke: (serial, reason, options) => {
          if (revoker === undefined) throw new CaError('caState', 'no CA in this database: run `chancery init` first (or `npm start`)');
          return revoker.revoke(serial, reason, options);
        },
      },
      clock,
    }),
    accounts: new AccountAdmin({ access: access(db, (q) => new AccountRepository(q)), events }),
    inventory: deps.inventory,
    search: inventoryOf(db, clock),
    incidents,
    audit: deps.audit,
    clock,
  };
  return {
    api: new AdminApi({ services, logger }),
    setRevoker: (given) => void (revoker = given),
    setIncidents: (given) => incidents.set(given),
    stop: () => limiter.stop(),
  };
}

/** The Unix-socket app (the local CLI's; also what an in-process CLI command injects requests into). */
export function buildLocalAdminApp(api: AdminApi, logger: PinoLogger): Promise<FastifyInstance> {
  return buildAdminApp({ api, logger, transport: { kind: 'local' } });
}

/**
 * The HTTPS admin listener: `tls` is its own certificate from the CA; operator client certificates are
 * verified against `clientCa` (the root and the issuing intermediates).
 */
export function buildHttpsAdminApp(api: AdminApi, config: Config, logger: PinoLogger, tls: TlsMaterial, clientCa: string[]): Promise<FastifyInstance> {
  return buildAdminApp({ api, logger, transport: { kind: 'https', tls: tlsServerOptions(config.tls, tls), clientCa }, limits: httpLimits(config.http) });
}
