import { parseCertificate } from './ca/certificate-parser.js';
import type { Config } from './config/config.js';
import type { Clock } from './core/clock.js';
import type { DomainEvents } from './core/events.js';
import type { JobRunner } from './core/jobs.js';
import type { Logger } from './core/logger.js';
import type { Database, Queryable } from './db/database.js';
import { AccountActivityRepository } from './db/repositories/account-activity-repository.js';
import { CertificateLabelRepository } from './db/repositories/certificate-label-repository.js';
import { CertificateRepository } from './db/repositories/certificate-repository.js';
import { CertificateSearchRepository } from './db/repositories/certificate-search-repository.js';
import { snapshotExportOf } from './db/repositories/certificate-snapshot-export.js';
import { HealthRepository } from './db/repositories/health-repository.js';
import { LineageRepository } from './db/repositories/lineage-repository.js';
import { NotificationOutboxRepository } from './db/repositories/notification-outbox-repository.js';
import { SubjectKeyRepository } from './db/repositories/subject-key-repository.js';
import { WebhookRepository } from './db/repositories/webhook-repository.js';
import type { SecretBox } from './keys/secret-box.js';
import { AccountActivity } from './inventory/account-activity.js';
import { CertificateInventory } from './inventory/certificate-inventory.js';
import { CertificateLabels } from './inventory/certificate-labels.js';
import type { StoreAccess } from './inventory/change-with-event.js';
import { DETECT_INTERVAL_MS, HealthDetector } from './inventory/health-detector.js';
import { HealthReport } from './inventory/health-report.js';
import type { InventoryServices } from './inventory/inventory-services.js';
import { KEY_INVENTORY_INTERVAL_MS, KeyInventory } from './inventory/key-inventory.js';
import { Lineage } from './inventory/lineage.js';
import { DELIVERY_INTERVAL_MS, WebhookDeliverer } from './inventory/webhook-delivery.js';
import { webhookPost, type WebhookDialer } from './inventory/webhook-http.js';
import { WebhookAdmin } from './inventory/webhooks.js';
import { DEFAULT_KEY_POLICY } from './policy/key-policy.js';
import { createAddressResolver } from './va/attempt.js';
import { createDialer, tcpConnector } from './va/dial.js';
import { createNetworkPolicy, type NetworkPolicy } from './va/network-policy.js';

/**
 * The inventory's part of the composition root (compose.ts calls it; DESIGN.md rule 5): lineage, labels,
 * renewal health, the key inventory, account activity and webhooks over the database — what the admin API
 * needs, available without a CA (composeBase) — and, once the CA and the validation network policy exist,
 * the jobs that keep the key inventory, detect health conditions and deliver the notification outbox.
 */

function access<S>(db: Database, on: (q: Queryable) => S): StoreAccess<S> {
  return { stores: on(db), transaction: (fn) => db.transaction((tx) => fn(on(tx), tx)) };
}

/** The validation network policy as configured, for checking a webhook URL that names an address. */
function configuredPolicy(config: Config): NetworkPolicy {
  return createNetworkPolicy({
    allowNetworks: config.validation.allowNetworks,
    denyNetworks: config.validation.denyNetworks,
    allowLoopback: config.validation.allowLoopback,
  });
}

/** The inventory's services, and how its jobs are registered once the CA and the network policy exist. */
/** The certificate inventory (search, counts, exports) over `db`, with its unordered export where it has one. */
export function inventoryOf(db: Database, clock: Clock): CertificateInventory {
  const unordered = snapshotExportOf(db);
  return new CertificateInventory({ store: new CertificateSearchRepository(db), clock, ...(unordered ? { unordered } : {}) });
}

export interface InventoryWiring {
  services: InventoryServices;
  registerJobs(deps: { jobs: JobRunner; policy: NetworkPolicy; trusted: () => string[] }): { detector: HealthDetector; deliverer: WebhookDeliverer };
}

export function composeInventory(deps: {
  config: Config;
  db: Database;
  clock: Clock;
  logger: Logger;
  events: DomainEvents<Queryable>;
  /** Seals webhook secrets under the installation passphrase, as EAB keys are. */
  box: SecretBox;
  groupExists: (name: string) => Promise<boolean>;
}): InventoryWiring {
  const { config, db, clock, events } = deps;
  const services: InventoryServices = {
    lineage: new Lineage({ store: new LineageRepository(db) }),
    labels: new CertificateLabels({
      access: access(db, (q) => {
        const labels = new CertificateLabelRepository(q);
        const read = new CertificateRepository(q);
        return { findBySerial: (serial: string) => read.findBySerial(serial), replace: (serial: string, to: Record<string, string>) => labels.replace(serial, to) };
      }),
      events,
    }),
    health: new HealthReport({ store: new HealthRepository(db), clock }),
    keys: new KeyInventory({
      store: new SubjectKeyRepository(db),
      clock,
      spkiOf: (der) => parseCertificate(der).spki,
      policy: DEFAULT_KEY_POLICY,
    }),
    activity: new AccountActivity({ store: new AccountActivityRepository(db), clock, logger: deps.logger }),
    webhooks: new WebhookAdmin({
      access: access(db, (q) => new WebhookRepository(q)),
      events,
      clock,
      box: deps.box,
      policy: configuredPolicy(config),
      allowHttp: config.notifications.allowHttp,
      groupExists: deps.groupExists,
    }),
  };
  return { services, registerJobs: (more) => registerInventoryJobs({ ...deps, ...more, inventory: services }) };
}

/**
 * The inventory's background work, each job on one instance at a time (src/core/jobs.ts): the key inventory's
 * walk, health detection into the outbox, and delivery of the outbox. Webhook targets are reached through
 * the validation network policy (`policy`, the one validation uses): resolved, checked, and connected to at
 * the checked address (va/dial.ts). `trusted`: the CA certificates a receiver's HTTPS certificate may chain
 * to besides the system's (this CA's own root).
 */
function registerInventoryJobs(deps: {
  config: Config;
  db: Database;
  clock: Clock;
  logger: Logger;
  jobs: JobRunner;
  box: SecretBox;
  inventory: InventoryServices;
  policy: NetworkPolicy;
  trusted: () => string[];
}): { detector: HealthDetector; deliverer: WebhookDeliverer } {
  const { config, db, clock, jobs } = deps;
  const outbox = new NotificationOutboxRepository(db);
  const dial: WebhookDialer = createDialer({
    resolve: createAddressResolver({ dnsResolvers: config.validation.dnsResolvers, timeoutMs: config.notifications.timeoutSeconds * 1000 }),
    policy: deps.policy,
    connector: tcpConnector,
  });
  const detector = new HealthDetector({ store: outbox, clock });
  const deliverer = new WebhookDeliverer({
    store: outbox,
    post: webhookPost({ dial, trusted: deps.trusted }),
    box: deps.box,
    clock,
    timeoutMs: config.notifications.timeoutSeconds * 1000,
    allowHttp: config.notifications.allowHttp,
    logger: deps.logger,
  });
  jobs.register({ name: 'inventory.keys', intervalMs: KEY_INVENTORY_INTERVAL_MS, run: async ({ signal }) => void (await deps.inventory.keys.sync(signal)) });
  jobs.register({ name: 'notifications.detect', intervalMs: DETECT_INTERVAL_MS, run: async ({ signal }) => void (await detector.run(signal)) });
  jobs.register({ name: 'notifications.deliver', intervalMs: DELIVERY_INTERVAL_MS, run: async ({ signal }) => void (await deliverer.run(signal)) });
  return { detector, deliverer };
}
