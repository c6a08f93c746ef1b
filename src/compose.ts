import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { hostname, networkInterfaces } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { pino, type Logger as PinoLogger } from 'pino';
import { acmeLinker } from './acme/linker.js';
import { NONCE_LIFETIME_MS, nonceKeyFromPassphrase, SignedNonceStore } from './acme/nonce-store.js';
import { caCertificateFactory } from './ca/ca-certificate-factory.js';
import { runCeremony } from './ca/ceremony.js';
import { parseCertificate } from './ca/certificate-parser.js';
import { CrlBuilder } from './ca/crl-builder.js';
import { parseCsr } from './ca/csr.js';
import { buildIssuerContext } from './ca/issuer-context.js';
import { LeafCertificateBuilder } from './ca/leaf-certificate.js';
import { ocspResponderCertificateFactory } from './ca/ocsp-responder-certificate.js';
import { ocspCodec } from './ca/ocsp-response.js';
import { acmeExternalUrl, type Config } from './config/config.js';
import { localOperator } from './core/audit.js';
import type { IssuerRecord } from './core/certificate.js';
import { DAY, HOUR, MINUTE, systemClock, type Clock } from './core/clock.js';
import { CaError } from './core/errors.js';
import { DomainEvents, type DomainEvent } from './core/events.js';
import { JobRunner } from './core/jobs.js';
import { toPem } from './core/pem.js';
import { canonicalSerial } from './core/serial-number.js';
import { publicUrls, type PublicUrls } from './core/url-scheme.js';
import type { Database, Queryable, Subscription } from './db/database.js';
import { migrate } from './db/migrate.js';
import { listen, notify } from './db/notifications.js';
import { openDatabase } from './db/open-database.js';
import { AccountRepository } from './db/repositories/account-repository.js';
import { AuditRepository } from './db/repositories/audit-repository.js';
import { AuthorizationRepository } from './db/repositories/authorization-repository.js';
import { CertificateRepository } from './db/repositories/certificate-repository.js';
import { COUNTS_FOLD_INTERVAL_MS, foldCertificateCounts } from './db/repositories/certificate-search-repository.js';
import { ChallengeRepository } from './db/repositories/challenge-repository.js';
import { CrlRepository } from './db/repositories/crl-repository.js';
import { EabRepository } from './db/repositories/eab-repository.js';
import { GroupRepository } from './db/repositories/group-repository.js';
import { IssuerRepository } from './db/repositories/issuer-repository.js';
import { KeyBlobRepository } from './db/repositories/key-blob-repository.js';
import { LeaseRepository } from './db/repositories/lease-repository.js';
import { NonceRepository } from './db/repositories/nonce-repository.js';
import { OcspResponderRepository, OcspResponseRepository } from './db/repositories/ocsp-repository.js';
import { OrderRepository } from './db/repositories/order-repository.js';
import { StatementBatcher } from './db/statement-batcher.js';
import { buildAcmeApp } from './http/acme-app.js';
import { buildPublicApp } from './http/public-app.js';
import { ServerCertificate } from './http/server-certificate.js';
import { closeGracefully } from './http/graceful-close.js';
import { renewAdminTls } from './http/admin-app.js';
import { buildHttpsAdminApp, buildLocalAdminApp, composeAdmin, type AdminWiring } from './compose-admin.js';
import { composeInventory, type InventoryWiring } from './compose-inventory.js';
import type { InventoryServices } from './inventory/inventory-services.js';
import { httpLimits } from './http/listener-limits.js';
import { renewTls, tlsServerOptions } from './http/tls-policy.js';
import { SecretBox } from './keys/secret-box.js';
import { SignerHealth } from './keys/signer-health.js';
import type { KeyStore } from './keys/signer.js';
import { resolvePassphrase, type PassphraseSource } from './keys/software/passphrase.js';
import { SoftwareKeyStore } from './keys/software/software-key-store.js';
import { profileRegistryFromConfig, type ProfileRegistry } from './policy/profiles.js';
import { ceilingOf } from './policy/group-policy.js';
import { DEFAULT_KEY_POLICY } from './policy/key-policy.js';
import { AccountService } from './ra/account-service.js';
import { AcmeRa } from './ra/acme-ra.js';
import type { AcmeStoreAccess, AcmeStores } from './ra/acme-stores.js';
import { CertificateIssuance } from './ra/certificate-issuance.js';
import { EabService } from './ra/eab-service.js';
import { GroupDirectory, GROUPS_CHANNEL } from './ra/group-directory.js';
import { GroupService } from './ra/group-service.js';
import { OrderRecovery } from './ra/order-recovery.js';
import { OrderService } from './ra/order-service.js';
import { RenewalInfoService } from './ra/renewal-info.js';
import { DEFAULT_SCHEDULER, ValidationScheduler, type SchedulerSettings } from './ra/validation-scheduler.js';
import { CrlPublisher, type CrlSettings, type CrlSigner } from './revocation/crl-publisher.js';
import { OcspRefresher, type OcspRefresherSettings } from './revocation/ocsp-refresher.js';
import { OcspResponderKeys } from './revocation/ocsp-responder-keys.js';
import { OCSP_CHANNEL, OcspSource } from './revocation/ocsp-source.js';
import { Revoker } from './revocation/revoker.js';
import type { BulkRevoker } from './revocation/bulk-revoker.js';
import { composeIncidentDirectory, composeIncidents } from './compose-incidents.js';
import type { IncidentService } from './inventory/incident-service.js';
import type { IncidentSweep } from './inventory/incident-sweep.js';
import type { IncidentDirectory } from './ra/incident-directory.js';
import { servedIssuers } from './revocation/served-issuers.js';
import { AuditLog, AUDIT_SEAL_INTERVAL_MS } from './inventory/audit-log.js';
import { CheckpointFile } from './inventory/audit-checkpoint-file.js';
import { recordAuditEntries } from './inventory/audit-entries.js';
import { createNetworkPolicy, type ListenerAddress } from './va/network-policy.js';
import { createCaaChecker } from './va/caa.js';
import { createValidationAuthority } from './va/validation-authority.js';
import type { Validator } from './va/validator.js';

/** The CA certificates an instance serves: the root and the active issuing intermediate. */
export interface CaHierarchy {
  root: IssuerRecord;
  intermediate: IssuerRecord;
}

export interface ComposeOptions {
  clock?: Clock;
  logger?: PinoLogger;
  /** The validation authority; the configured network VA otherwise (tests pass one that answers at once). */
  validator?: Validator;
  /**
   * When the database holds no CA: 'existing' refuses (serve, revoke, ...), 'create-if-missing' runs the
   * ceremony (npm start), 'create' runs it and refuses when a CA exists (init).
   */
  ca?: 'existing' | 'create' | 'create-if-missing';
  /**
   * LISTEN for other instances' revocations (default true): the OCSP cache is kept only while every change
   * is heard (DESIGN.md rule 7). One-shot commands pass false: they cache nothing.
   */
  listen?: boolean;
  /**
   * An open database to use instead of opening the configured one (a second instance on the same embedded
   * database in tests). The caller keeps it open and closes it; migrations still run.
   */
  database?: Database;
  /**
   * Wraps the opened key store: tests count and stall signatures through it (a crash between finalize's
   * steps), as they pass a database or a validator.
   */
  wrapKeyStore?: (keys: KeyStore) => KeyStore;
  /** Settings that are not configuration (tests shorten timers). */
  tuning?: {
    crl?: Partial<CrlSettings>;
    ocspRefresher?: Partial<OcspRefresherSettings>;
    scheduler?: Partial<SchedulerSettings>;
  };
}

/** The Fastify instances, built and not listening: `serve` listens, tests use app.inject(). */
export interface ChanceryApps {
  acme: FastifyInstance;
  public: FastifyInstance;
  /** The admin API over HTTPS (admin.listen), and the same API on the data directory's Unix socket. */
  admin: FastifyInstance;
  adminLocal: FastifyInstance;
}

export interface ChanceryServices {
  issuers: IssuerRepository;
  certificates: CertificateRepository;
  issuance: CertificateIssuance;
  revoker: Revoker<Queryable>;
  /** Bulk revocation (revocation/bulk-revoker.ts) and incidents (compose-incidents.ts). */
  bulk: BulkRevoker<Queryable>;
  incidents: IncidentService;
  incidentSweep: IncidentSweep;
  incidentDirectory: IncidentDirectory;
  ra: AcmeRa;
  eab: EabService;
  nonces: SignedNonceStore;
  scheduler: ValidationScheduler;
  ocsp: OcspSource;
  responders: OcspResponderKeys;
  refresher: OcspRefresher;
  crl: CrlPublisher;
  jobs: JobRunner;
  audit: AuditLog;
  /** Groups and their policy as a whole (policy as code: export, apply). */
  groups: GroupService;
  /** Lineage, labels, renewal health, the key inventory, account activity and webhooks (compose-inventory.ts). */
  inventory: InventoryServices;
}

/**
 * What needs no CA: the database (migrated), the key store, and the services over them alone — what a
 * command such as `chancery eab create` needs before the first start.
 */
export interface ChanceryBase {
  readonly config: Config;
  readonly clock: Clock;
  readonly logger: PinoLogger;
  readonly db: Database;
  readonly keys: KeyStore;
  readonly urls: PublicUrls;
  readonly events: DomainEvents<Queryable>;
  readonly services: Pick<ChanceryServices, 'issuers' | 'certificates' | 'eab' | 'audit' | 'groups' | 'inventory'>;
  /** The admin API's services and wire layer (compose-admin.ts). */
  readonly admin: AdminWiring;
  /**
   * The admin API as the local operator sees it, built on first call, not listening: what a CLI command
   * injects its request into when no server holds the data directory (the same routes, checks and
   * handlers as the Unix socket).
   */
  localAdmin(): Promise<FastifyInstance>;
  /** Closes the key store and the database (unless it was given). Safe to call twice. */
  close(): Promise<void>;
}

/** Everything one Chancery process runs, wired once (DESIGN.md rule 5). */
export interface Chancery {
  readonly config: Config;
  readonly clock: Clock;
  readonly logger: PinoLogger;
  readonly db: Database;
  readonly keys: KeyStore;
  readonly urls: PublicUrls;
  readonly hierarchy: CaHierarchy;
  /** True when this call ran the ceremony (a new CA). */
  readonly createdCa: boolean;
  readonly events: DomainEvents<Queryable>;
  readonly admin: AdminWiring;
  /** See ChanceryBase.localAdmin. */
  localAdmin(): Promise<FastifyInstance>;
  /** The base of every ACME URL (CHANCERY_ACME_URL, or derived from the listener). */
  readonly acmeUrl: string;
  readonly services: ChanceryServices;
  /**
   * The apps, built on the first call: the ACME listener's TLS certificate is issued then (by the CA, for the
   * host of the ACME URL), so commands that serve nothing never issue one.
   */
  apps(): Promise<ChanceryApps>;
  /** Starts the background work: jobs (each on one instance at a time), validation, TLS certificate renewal. */
  start(): void;
  /** Stops everything started and closes the database and key store. Safe to call twice. */
  close(): Promise<void>;
}

export function createLogger(config: Config): PinoLogger {
  // Secrets are never passed to the logger; redact covers accidental structured fields too.
  return pino({ level: config.log.level, redact: ['pin', 'passphrase', 'password', '*.pin', '*.passphrase'] });
}

/** How long a revocation waits for its CRL (a 1M-entry shard regenerates in seconds; see docs/benchmarks.md). */
const CRL_WAIT_MS = 30_000;

/** Waits for `promise` at most `ms`; calls `late` if it had to stop waiting. */
async function withinMs(promise: Promise<void>, ms: number, late: () => void): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(true), ms);
    timer.unref();
  });
  if (await Promise.race([promise.then(() => false), timedOut])) late();
  clearTimeout(timer);
}

/** How often spent nonces older than any acceptable nonce are deleted (the `nonces.purge` job). */
const NONCE_PURGE_INTERVAL_MS = MINUTE;

/**
 * The composition root (DESIGN.md rule 5): config -> clock -> db -> keys -> the CA -> repositories -> ca ->
 * ocsp -> ra -> revocation -> events wired once -> jobs -> apps. Every command and every test that needs the
 * whole system calls this; constructors take only the slice they use. On failure half way, whatever was
 * opened is closed before the error propagates.
 */
export async function compose(config: Config, options: ComposeOptions = {}): Promise<Chancery> {
  return withCleanup((closers, closeAll) => build(config, options, closers, closeAll));
}

/** The part of compose() that needs no CA (see ChanceryBase); compose() builds on it. */
export async function composeBase(config: Config, options: Pick<ComposeOptions, 'clock' | 'logger' | 'database' | 'wrapKeyStore'> = {}): Promise<ChanceryBase> {
  return withCleanup(async (closers, closeAll) => {
    const base = await buildBase(config, options, closers);
    return { ...base, close: closeAll };
  });
}

type Closers = (() => Promise<void> | void)[];

/** Runs a build; whatever it opened (pushed on `closers`) is closed if it fails, or by the close it returns. */
async function withCleanup<T>(build: (closers: Closers, closeAll: () => Promise<void>) => Promise<T>): Promise<T> {
  const closers: Closers = [];
  const closeAll = async (): Promise<void> => {
    for (const close of closers.splice(0).reverse()) await close();
  };
  try {
    return await build(closers, closeAll);
  } catch (error) {
    await closeAll();
    throw error;
  }
}

async function buildBase(
  config: Config,
  options: Pick<ComposeOptions, 'clock' | 'logger' | 'database' | 'wrapKeyStore'>,
  closers: Closers,
): Promise<Omit<ChanceryBase, 'close'> & { passphrase: string; inventory: InventoryWiring }> {
  const clock = options.clock ?? systemClock;
  const logger = options.logger ?? createLogger(config);
  const db = options.database ?? (await openDatabase({ url: config.database.url, dataDir: config.dataDir }));
  if (options.database === undefined) closers.push(() => db.close());
  const applied = await migrate(db, clock);
  if (applied.length > 0) logger.info({ applied }, 'database migrations applied');
  const passphraseFile = join(config.dataDir, 'keys', 'passphrase');
  const passphrase = await resolvePassphrase(config.keys.passphrase || undefined, passphraseFile);
  const opened = await openKeyStore(config, db, clock, logger, passphrase, passphraseFile);
  closers.push(() => opened.close());
  const keys = options.wrapKeyStore?.(opened) ?? opened;
  const urls = publicUrls(config.public.url);
  const issuers = new IssuerRepository(db);
  const certificates = new CertificateRepository(db);
  // EAB keys are sealed under the installation passphrase, the one software CA keys use.
  // The audit log (DESIGN.md rule 8): every change's entry written with it, through the events' record writer.
  const audit = new AuditLog({
    store: new AuditRepository(db),
    storeOn: (tx) => new AuditRepository(tx),
    keys,
    mirror: new CheckpointFile(join(config.dataDir, 'audit', 'checkpoints.jsonl')),
    clock,
    settings: { checkpointMs: config.audit.checkpointSeconds * 1000, checkpointEntries: config.audit.checkpointEntries },
    logger,
  });
  const events = new DomainEvents<Queryable>({ writeRecords: (tx, records) => audit.write(tx, records) });
  recordAuditEntries(events, clock);
  // Groups (departments): their policy narrows the configuration's limits, the ceiling.
  const groupStore = new GroupRepository(db);
  const groups = new GroupService({
    store: groupStore,
    transaction: (fn) => db.transaction((tx) => fn(new GroupRepository(tx), tx)),
    events,
    clock,
    ceiling: ceilingOf(profileRegistryFromConfig(config), DEFAULT_KEY_POLICY),
  });
  // Announced in the change's transaction, so every instance's GroupDirectory drops its snapshot once it
  // commits (DESIGN.md rule 7).
  events.onCommitting('group.changed', (event, tx) => notify(tx, GROUPS_CHANNEL, event.group));
  const eab = new EabService({
    store: new EabRepository(db),
    box: new SecretBox(passphrase.passphrase),
    clock,
    events,
    transaction: (fn) => db.transaction((tx) => fn(new EabRepository(tx), tx)),
    groups: groupStore,
  });
  // The inventory's services (compose-inventory.ts); webhook secrets are sealed like EAB keys, under the
  // installation passphrase. Sightings not yet written are written when the process closes.
  const inventory = composeInventory({
    config,
    db,
    clock,
    logger,
    events,
    box: new SecretBox(passphrase.passphrase),
    groupExists: async (name) => (await groups.list()).some((group) => group.name === name),
  });
  closers.push(() => inventory.services.activity.stop());
  // The admin API (tokens, operators, EAB, certificates, accounts, policy) over the same services.
  const admin = composeAdmin({ config, db, clock, logger, events, eab, groups, inventory: inventory.services, audit });
  closers.push(() => admin.stop());
  let localAdmin: Promise<FastifyInstance> | undefined;
  const buildLocalAdmin = async (): Promise<FastifyInstance> => {
    const app = await buildLocalAdminApp(admin.api, logger);
    // Closed by the graceful close when it was served; closing again is then a no-op.
    closers.push(() => app.close().then(() => undefined, () => undefined));
    return app;
  };
  return {
    config,
    clock,
    logger,
    db,
    keys,
    urls,
    events,
    admin,
    localAdmin: () => (localAdmin ??= buildLocalAdmin()),
    services: { issuers, certificates, eab, audit, groups, inventory: inventory.services },
    inventory,
    passphrase: passphrase.passphrase,
  };
}

async function build(config: Config, options: ComposeOptions, closers: Closers, closeAll: () => Promise<void>): Promise<Chancery> {
  const base = await buildBase(config, options, closers);
  const { clock, logger, db, keys, urls, events, passphrase } = base;
  const { issuers, certificates, eab, audit, groups } = base.services;

  // ---- the CA ----
  const { hierarchy, created } = await loadOrCreateCa(config, options.ca ?? 'existing', { db, keys, issuers, clock, urls, events });
  const rsaScheme = config.ca.rsaScheme;
  const intermediateSigner = await keys.load(hierarchy.intermediate.keyName, { rsaScheme });
  if (!intermediateSigner) throw missingKey(hierarchy.intermediate, keys);
  const crlShards = config.issuance.crlShards;
  const profiles = profileRegistryFromConfig(config);
  const profile = profiles.resolve(undefined);
  const builder = new LeafCertificateBuilder(
    buildIssuerContext({ id: hierarchy.intermediate.id, certificateDer: hierarchy.intermediate.der, signer: intermediateSigner, urls, crlShards }),
    profile,
    crlShards,
  );

  // ---- OCSP: responder keys (rotated), the source and its cache, LISTEN so every instance's cache stays honest ----
  const served = await servedIssuers({ issuers: await issuers.list(), keys, rsaScheme, activeIntermediateId: hierarchy.intermediate.id, now: clock.now(), logger });
  const responders = new OcspResponderKeys({
    keys,
    store: new OcspResponderRepository(db),
    certificates: ocspResponderCertificateFactory,
    codec: ocspCodec,
    reserveSerial: (serial, issuerId, at) => certificates.reserveSerial(serial, issuerId, at),
    issuers: served,
    clock,
    settings: { validityMs: config.ocsp.responderValidityDays * DAY, keyAlgorithm: 'ecdsa-p256', organization: config.ca.organization },
    logger,
    events,
    transaction: (fn) => db.transaction((tx) => fn(new OcspResponderRepository(tx), tx)),
  });
  await responders.ensureCurrent();
  const listening = options.listen !== false;
  const responses = new OcspResponseRepository(db, { batch: true });
  const ocsp = new OcspSource({
    ...(listening ? { instance: { id: randomBytes(8).toString('hex'), announce: (payload: string) => notify(db, OCSP_CHANNEL, payload) } } : {}),
    codec: ocspCodec,
    store: responses,
    responders,
    issuers: served,
    clock,
    settings: { validityMs: config.ocsp.validityHours * HOUR, nonce: config.ocsp.nonce },
    logger,
  });
  closers.push(() => ocsp.stop());
  if (listening) {
    const subscription: Subscription = await listen(db, OCSP_CHANNEL, (payload) => ocsp.handleNotification(payload), {
      onState: (state, error) => {
        if (state === 'lost') logger.warn({ err: error }, 'OCSP revocation notifications lost; serving without a cache until they resume');
        else logger.info({}, 'OCSP revocation notifications resumed');
        ocsp.setListening(state === 'listening');
      },
    });
    closers.push(() => subscription.close());
    ocsp.setListening(true);
  }
  // ---- group policy: every group compiled in memory, dropped on every change heard (rule 7) ----
  const groupDirectory = new GroupDirectory({ source: new GroupRepository(db), clock });
  events.onCommitted('group.changed', () => groupDirectory.invalidate());
  if (listening) {
    const subscription = await listen(db, GROUPS_CHANNEL, () => groupDirectory.invalidate(), {
      onState: (state, error) => {
        if (state === 'lost') logger.warn({ err: error }, 'group policy notifications lost; group policies are read again every few seconds until they resume');
        groupDirectory.setListening(state === 'listening');
      },
    });
    closers.push(() => subscription.close());
    groupDirectory.setListening(true);
  }
  const refresher = new OcspRefresher({ store: responses, source: ocsp, responders, clock, settings: options.tuning?.ocspRefresher, logger });
  closers.push(() => refresher.stop());
  // ---- incidents: open ones and blocked keys in memory, dropped on every change heard (rule 7) ----
  const incidentDirectory = await composeIncidentDirectory({ db, clock, logger, events, listening, onClose: (close) => void closers.push(close) });

  // ---- issuance and revocation ----
  const access = acmeStoreAccess(db);
  const issuance = new CertificateIssuance({
    signer: builder,
    parseCsr,
    store: { reserveSerial: (serial, issuerId, at) => certificates.reserveSerial(serial, issuerId, at), insertCertificate: (c) => certificates.insert(c) },
    transaction: (fn) => db.transaction((tx) => fn(tx, { insertCertificate: (c) => new CertificateRepository(tx).insert(c) })),
    events,
    // An ACME issuance stores its first OCSP response in the certificate's own statement.
    firstOcsp: async (certificate) => {
      const record = await ocsp.presign(certificate);
      if (record?.der === undefined) return undefined;
      const { der, thisUpdate, nextUpdate, refreshAfter, responderGeneration, updatedAt } = record;
      return { der, thisUpdate, nextUpdate, refreshAfter, updatedAt, ...(responderGeneration === undefined ? {} : { responderGeneration }) };
    },
    clock,
    profile,
    blockedKeys: incidentDirectory,
  });
  const revoker = new Revoker<Queryable>({
    certificates: access.stores.certificates,
    clock,
    transaction: (fn) => db.transaction((tx) => fn({ tx, certificates: new CertificateRepository(tx) })),
    events,
  });
  base.admin.setRevoker(revoker);
  const crl = openCrlPublisher({ db, keys, issuers, urls, clock, logger, config, settings: options.tuning?.crl });
  closers.push(() => crl.stop());

  // ---- the ACME RA ----
  const issuerKeyIds = (await issuers.list()).filter((i) => i.role === 'intermediate').map((i) => caCertificateFactory.parse(i.der).keyId);
  // What validation may connect to, on every hop (va/network-policy.ts); newOrder refuses ip identifiers it
  // denies. Our listeners are read at each check, so one on port 0 is known once it listens.
  let builtApps: ChanceryApps | undefined;
  const networkPolicy = createNetworkPolicy({
    allowNetworks: config.validation.allowNetworks,
    denyNetworks: config.validation.denyNetworks,
    allowLoopback: config.validation.allowLoopback,
    ownListeners: () => ownListeners(config, builtApps),
    localAddresses,
  });
  const caaIdentities = config.acme.caaIdentities.split(',').map((s) => s.trim()).filter(Boolean);
  if (config.validation.caa.enabled && caaIdentities.length === 0) {
    throw new CaError('badConfig', 'validation.caa.enabled (CHANCERY_VALIDATION_CAA) needs acme.caaIdentities (CHANCERY_ACME_CAA_IDENTITIES): the issuer domain names CAA records name this CA by');
  }
  const caa = config.validation.caa.enabled
    ? createCaaChecker({ identities: caaIdentities, dnsResolvers: config.validation.dnsResolvers, timeoutMs: config.validation.timeoutSeconds * 1000 })
    : undefined;
  const accountUri = (accountId: string): string => acmeLinker(acmeExternalUrl(config)).account(accountId);
  const validator =
    options.validator ??
    createValidationAuthority(
      {
        http01Port: config.validation.http01Port,
        tlsAlpn01Port: config.validation.tlsAlpn01Port,
        dnsResolvers: config.validation.dnsResolvers,
        timeoutMs: config.validation.timeoutSeconds * 1000,
      },
      { policy: networkPolicy, ...(caa ? { caa } : {}) },
    );
  const schedulerSettings: SchedulerSettings = { ...DEFAULT_SCHEDULER, maxAttempts: config.validation.maxAttempts, ...options.tuning?.scheduler };
  const scheduler = new ValidationScheduler({ stores: access.stores, validator, events, clock, settings: schedulerSettings, logger, accountUri });
  // Whether the HSM can sign, without signing: asked by finalize before it claims an order, and by /readyz.
  const signerHealth = new SignerHealth({ health: keys.health, clock, cacheMs: config.keys.healthCacheSeconds * 1000, logger });
  closers.push(() => scheduler.stop());
  const orders = new OrderService({
    access,
    issuance,
    clock,
    events,
    settings: {
      orderLifetimeMs: config.acme.orderLifetimeHours * HOUR,
      authorizationLifetimeMs: Math.max(config.acme.authorizationReuseDays * DAY, config.acme.orderLifetimeHours * HOUR),
      profiles,
      issuerKeyIds,
    },
    validation: scheduler,
    identifierNetworkCheck: (identifier) => networkPolicy.refusesIdentifier(identifier),
    signing: signerHealth,
    groups: groupDirectory,
    ...(caa ? { caa: { recheckMs: config.validation.caa.recheckHours * HOUR, check: (request) => caa.check(request), accountUri } } : {}),
  });
  const ra = new AcmeRa({
    access,
    accounts: new AccountService({ access, eab, clock, events, eabRequired: config.acme.eabRequired }),
    orders,
    revocation: revoker,
    renewal: new RenewalInfoService({ certificates: access.stores.certificates, issuerKeyIds, clock, retryAfterSeconds: config.ari.retryAfterSeconds, incidents: incidentDirectory }),
    readCertificate: (der) => {
      const parsed = parseCertificate(der);
      return { serialHex: canonicalSerial(parsed.serialHex), spki: parsed.spki };
    },
    issuers: () => issuers.list(),
    clock,
    eabRequired: config.acme.eabRequired,
    activity: base.services.inventory.activity,
    blockedKeys: incidentDirectory,
  });
  const nonceRepository = new NonceRepository(db);
  // RFC 8555 §6.5: issuing a nonce writes nothing (its MAC proves it is ours, under a key every instance
  // derives from the shared installation passphrase); spending one is one INSERT into the shared spent set
  // (rule 7) — one INSERT for all the requests that spend one at the same moment.
  const spends = new StatementBatcher((items: { id: Uint8Array; accountId?: string }[]) => nonceRepository.spendMany(items));
  const nonces = new SignedNonceStore({
    key: nonceKeyFromPassphrase(passphrase),
    clock,
    maxAgeMs: NONCE_LIFETIME_MS,
    spent: {
      spend: async (id) => (await spends.submit({ id })).spent,
      spendAndFindAccount: (id, accountId) => spends.submit({ id, accountId }),
    },
  });

  // ---- consequences of changes, wired once (DESIGN.md rule 5) ----
  events.onCommitted('certificate.issued', async ({ certificate, firstOcsp }) => {
    // Stored with the certificate: only this instance's bookkeeping. Not attempted (any path other than an
    // ACME finalize): pre-sign and store it now. Unsigned: left to live signing and the refresher's backfill.
    if (firstOcsp === 'stored') ocsp.issuedWithResponse(certificate.serial);
    else if (firstOcsp === 'not-attempted') await ocsp.onIssued(certificate);
  });
  // The revoked OCSP response is signed and stored, and the NOTIFY sent, in the revocation's transaction:
  // no instance can read `good` from the database once the revocation is visible.
  // A noRevAvail certificate's revocation is recorded and never published (RFC 9608): no OCSP, no CRL.
  events.onCommitting('certificate.revoked', async ({ certificate }, tx) => {
    if (certificate.noRevAvail) return;
    await ocsp.beforeRevocationCommit({ store: new OcspResponseRepository(tx), notify: (payload) => notify(tx, OCSP_CHANNEL, payload) }, certificate);
  });
  events.onCommitted('certificate.revoked', async ({ certificate }) => {
    if (certificate.noRevAvail) return;
    await ocsp.afterRevocation(certificate);
    // The revocation returns once the CRL listing it is published (shared by concurrent revocations), so a
    // cache fetching the CRL right after cannot keep the old one. Bounded: with the HSM away the revocation
    // (committed, OCSP re-signed) still answers; the CRL follows when signing works again.
    await withinMs(crl.onRevoked(certificate), CRL_WAIT_MS, () =>
      logger.warn({ serial: certificate.serial, issuerId: certificate.issuerId, shard: certificate.crlShard }, 'the CRL listing a revocation is not published yet; it is retried'),
    );
  });

  // ---- periodic work, each job on one instance at a time across instances ----
  const jobs = new JobRunner({
    leases: new LeaseRepository(db),
    clock,
    holder: `${hostname()}/${process.pid}/${randomBytes(4).toString('hex')}`,
    leaseMs: config.jobs.leaseSeconds * 1000,
    logger,
  });
  closers.push(() => jobs.stop());
  jobs.register({ name: 'crl.regenerate', intervalMs: crl.checkEveryMs, run: async () => void (await crl.regenerateDue()) });
  jobs.register({ name: 'ocsp.refresh', intervalMs: refresher.intervalMs, run: async () => void (await refresher.runScheduled()) });
  jobs.register({ name: 'validation.retries', intervalMs: schedulerSettings.pollMs, run: ({ signal }) => scheduler.poll(signal) });
  // A finalize that died between claiming its order and storing the certificate left it processing.
  const recovery = new OrderRecovery({ access, events, clock, settings: { processingTimeoutMs: config.acme.processingTimeoutSeconds * 1000 } });
  jobs.register({ name: 'orders.recover', intervalMs: recovery.intervalMs, run: async ({ signal }) => void (await recovery.run(signal)) });
  // Entries are appended unsealed by the changes they record; one instance links them into the hash chain
  // and signs its head now and then (src/inventory/audit-log.ts).
  jobs.register({ name: 'audit.seal', intervalMs: AUDIT_SEAL_INTERVAL_MS, run: async ({ signal }) => void (await audit.seal(signal)) });
  // The inventory's counts by group x status x expiry bucket stay exact without it; folding keeps their
  // reads short (certificate-search-repository.ts).
  jobs.register({ name: 'certificates.counts.fold', intervalMs: COUNTS_FOLD_INTERVAL_MS, run: async () => void (await foldCertificateCounts(db, clock.now())) });
  jobs.register({
    name: 'nonces.purge',
    intervalMs: NONCE_PURGE_INTERVAL_MS,
    run: async () => void (await nonceRepository.purgeSpent(nonces.purgeCutoff())),
  });
  // The key inventory's walk, health detection into the notification outbox, and its delivery to webhooks,
  // whose targets the validation network policy judges as it judges validation's.
  const rootPem = toPem(hierarchy.root.der);
  base.inventory.registerJobs({ jobs, policy: networkPolicy, trusted: () => [rootPem] });
  // Bulk revocation and incidents: their jobs, and the consequences of their events (compose-incidents.ts).
  const { bulk, incidents, sweep: incidentSweep } = composeIncidents({
    config,
    db,
    clock,
    logger,
    events,
    jobs,
    ocsp,
    crl,
    directory: incidentDirectory,
    groupNames: async () => (await groups.list()).map((group) => group.name),
    onClose: (close) => void closers.push(close),
  });
  base.admin.setIncidents(incidents);

  const acmeUrl = acmeExternalUrl(config);
  const services: ChanceryServices = { issuers, certificates, issuance, revoker, ra, eab, nonces, scheduler, ocsp, responders, refresher, crl, jobs, audit, groups, inventory: base.services.inventory, bulk, incidents, incidentSweep, incidentDirectory };
  const serverCertificate = new ServerCertificate({
    // Chancery issues its own ACME listener's certificate: recorded as such (DESIGN.md rule 8).
    issuance: { issueForKey: (publicKey, identifiers) => issuance.issueForKey(publicKey, identifiers, { actor: 'system:acme-tls' }) },
    clock,
    hosts: [new URL(acmeUrl).hostname.replace(/^\[|\]$/g, '')],
    chain: [hierarchy.intermediate.der],
  });
  closers.push(() => serverCertificate.stop());

  let apps: Promise<ChanceryApps> | undefined;
  let started = false;
  // The admin listener's own certificate, like the ACME listener's: for its host, 127.0.0.1 and localhost.
  const adminCertificate = new ServerCertificate({ issuance, clock, hosts: [config.admin.listen.host], chain: [hierarchy.intermediate.der] });
  closers.push(() => adminCertificate.stop());
  const buildApps = async (): Promise<ChanceryApps> => {
    const tls = config.acme.tls ? await serverCertificate.issue() : undefined;
    const acmeAndPublic = buildApplications({ config, logger, clock, db, urls, hierarchy, issuers, ra, nonces, ocsp, crl, acmeUrl, profiles, tls, signerHealth });
    // Operator client certificates chain to our root through an issuing intermediate (any still served).
    const clientCa = (await issuers.list()).map((issuer) => toPem(issuer.der));
    const adminTls = await adminCertificate.issue();
    const built: ChanceryApps = {
      ...acmeAndPublic,
      admin: await buildHttpsAdminApp(base.admin.api, config, logger, adminTls, clientCa),
      adminLocal: await base.localAdmin(),
    };
    adminCertificate.renewing(
      adminTls,
      (material) => renewAdminTls(built.admin, tlsServerOptions(config.tls, material), clientCa),
      (error) => logger.error({ err: error }, 'admin listener certificate renewal failed; retrying'),
    );
    closers.push(() => closeGracefully([built.acme, built.public, built.admin, built.adminLocal], config.shutdownGraceSeconds * 1000, logger));
    builtApps = built;
    if (tls) {
      serverCertificate.renewing(
        tls,
        (material) => renewTls(built.acme, config.tls, material),
        (error) => logger.error({ err: error }, 'ACME server certificate renewal failed; retrying'),
      );
    }
    return built;
  };

  return {
    config,
    clock,
    logger,
    db,
    keys,
    urls,
    hierarchy,
    createdCa: created,
    admin: base.admin,
    localAdmin: base.localAdmin,
    events,
    acmeUrl,
    services,
    apps: () => (apps ??= buildApps()),
    start() {
      if (started) return;
      started = true;
      scheduler.start();
      jobs.start();
      base.services.inventory.activity.start();
      // Catch-up at start, whoever holds the job's lease: a process killed between a revocation's commit
      // and its CRL's regeneration leaves a revocation no CRL lists, and the next start publishes it now
      // rather than after the dead holder's lease runs out. Safe beside the job: CRL numbers are drawn in
      // the database, and a scope already current is skipped.
      crl.regenerateDue().catch((error: unknown) => logger.error({ err: error }, 'CRL catch-up at start failed; the crl.regenerate job retries'));
    },
    close: closeAll,
  };
}

/** The two listeners' apps (DESIGN.md URLs): ACME over HTTPS, and the public plain-HTTP one. */
function buildApplications(deps: {
  config: Config;
  logger: PinoLogger;
  clock: Clock;
  db: Database;
  urls: PublicUrls;
  hierarchy: CaHierarchy;
  issuers: IssuerRepository;
  ra: AcmeRa;
  nonces: SignedNonceStore;
  ocsp: OcspSource;
  crl: CrlPublisher;
  acmeUrl: string;
  profiles: ProfileRegistry;
  tls: { key: string; cert: string } | undefined;
  signerHealth: SignerHealth;
}): Pick<ChanceryApps, 'acme' | 'public'> {
  const { config, logger, clock, hierarchy, urls, crl } = deps;
  const rootPem = toPem(hierarchy.root.der);
  const known = new Map([hierarchy.root, hierarchy.intermediate].map((i) => [i.id, i.der]));
  const publicApp = buildPublicApp({
    logger,
    issuerCertificate: async (id) => known.get(id) ?? (await deps.issuers.findById(id))?.der,
    rootPem: async () => rootPem,
    ready: () => readiness(deps.db, deps.signerHealth),
    ocsp: { ocsp: deps.ocsp, clock, logger },
    crl: {
      latest: (issuerId, shard) => crl.latest(issuerId, shard),
      rootCrl: () => crl.rootCrl(),
      clock,
      // A revocation is in the CRL when it returns; a cache may still hold the older CRL this long.
      maxAgeSeconds: Math.min(config.crl.cacheMaxAgeSeconds, Math.floor(crl.refreshMs / 1000)),
    },
    limits: httpLimits(config.http),
  });
  const caaIdentities = config.acme.caaIdentities.split(',').map((s) => s.trim()).filter(Boolean);
  const acmeApp = buildAcmeApp({
    ra: deps.ra,
    nonces: deps.nonces,
    clock,
    logger,
    externalUrl: deps.acmeUrl,
    meta: {
      ...(config.acme.termsOfService ? { termsOfService: config.acme.termsOfService } : {}),
      ...(config.acme.website ? { website: config.acme.website } : {}),
      ...(caaIdentities.length ? { caaIdentities } : {}),
      profiles: Object.fromEntries(deps.profiles.all().map((p) => [p.name, p.description])),
    },
    ...(deps.tls ? { https: tlsServerOptions(config.tls, deps.tls) } : {}),
    limits: httpLimits(config.http),
  });
  return { acme: acmeApp, public: publicApp };
}

/**
 * The (address, port) pairs this process's listeners bind, which validation must never reach: each as
 * configured, and as bound once listening (port 0 picks the port then).
 */
function ownListeners(config: Config, apps: ChanceryApps | undefined): ListenerAddress[] {
  const listeners: ListenerAddress[] = [];
  const add = (name: string, configured: { host: string; port: number }, app: FastifyInstance | undefined): void => {
    listeners.push({ name, ...configured });
    const bound = app?.server.address();
    if (bound !== null && typeof bound === 'object') listeners.push({ name, host: bound.address, port: bound.port });
  };
  add('ACME', config.acme.listen, apps?.acme);
  add('public', config.public.listen, apps?.public);
  add('admin', config.admin.listen, apps?.admin);
  return listeners;
}

/** This machine's interface addresses: what a listener bound to 0.0.0.0 or :: accepts on. */
function localAddresses(): string[] {
  return Object.values(networkInterfaces()).flatMap((entries) => (entries ?? []).map((entry) => entry.address));
}

/** /readyz: the database answers and the signer can sign (SignerHealth: cached, never signs). */
async function readiness(db: Database, signer: SignerHealth): Promise<{ ready: boolean; reason?: string }> {
  try {
    await db.query('SELECT 1 AS ok');
  } catch {
    return { ready: false, reason: 'database unreachable' };
  }
  const signing = await signer.check();
  return signing.ok ? { ready: true } : { ready: false, reason: `signer: ${signing.reason ?? 'unavailable'}` };
}

/** The ACME stores on the database, and the same stores in one transaction. */
function acmeStoreAccess(db: Database): AcmeStoreAccess {
  const on = (q: Queryable, pooled: boolean): AcmeStores => ({
    accounts: new AccountRepository(q),
    eab: new EabRepository(q),
    // On the pool, concurrent requests' statements are gathered into one (StatementBatcher); in a
    // transaction they run on its connection as they come.
    orders: new OrderRepository(q, { batch: pooled }),
    authorizations: new AuthorizationRepository(q, { batch: pooled }),
    challenges: new ChallengeRepository(q, { batch: pooled }),
    certificates: new CertificateRepository(q, { batch: pooled }),
  });
  return { stores: on(db, true), transaction: (fn) => db.transaction((tx) => fn(on(tx, false), tx)) };
}

async function loadOrCreateCa(
  config: Config,
  mode: 'existing' | 'create' | 'create-if-missing',
  deps: { db: Database; keys: KeyStore; issuers: IssuerRepository; clock: Clock; urls: PublicUrls; events: DomainEvents<Queryable> },
): Promise<{ hierarchy: CaHierarchy; created: boolean }> {
  const existing = mode === 'create' ? undefined : await loadHierarchy(deps.issuers);
  if (existing) return { hierarchy: existing, created: false };
  if (mode === 'existing') throw new CaError('caState', 'no CA in this database: run `chancery init` first (or `npm start`)');
  let ceremony: DomainEvent | undefined;
  const hierarchy = await runCeremony(
    {
      keys: deps.keys,
      issuers: {
        findRoot: () => deps.issuers.findRoot(),
        saveAll: (records) =>
          deps.db.transaction(async (tx) => {
            const repository = new IssuerRepository(tx);
            for (const record of records) await repository.insert(record);
            // The ceremony's audit entry commits with the CA it records; whoever runs the process ran it.
            const root = records.find((r) => r.role === 'root');
            const intermediate = records.find((r) => r.role === 'intermediate');
            if (root && intermediate) {
              ceremony = { type: 'ca.created', root, intermediate, keyStore: deps.keys.backend, actor: localOperator() };
              await deps.events.committing(ceremony, tx);
            }
          }),
      },
      certificates: caCertificateFactory,
      clock: deps.clock,
      urls: deps.urls,
    },
    config.ca,
  );
  if (ceremony) await deps.events.committed(ceremony);
  return { hierarchy, created: true };
}

async function loadHierarchy(issuers: IssuerRepository): Promise<CaHierarchy | undefined> {
  const root = await issuers.findRoot();
  if (!root) return undefined;
  const intermediate = await issuers.findActiveIntermediate();
  if (!intermediate) throw new CaError('caState', `root ${root.id} exists but no intermediate: the ceremony did not complete`);
  return { root, intermediate };
}

function missingKey(issuer: IssuerRecord, keys: KeyStore): CaError {
  return new CaError('caState', `key "${issuer.keyName}" of issuer ${issuer.id} is not in the ${keys.backend} key store`);
}

/**
 * The CRL publisher over the database, key store and URLs: revocation/ CrlPublisher wired to db/ CrlRepository
 * and ca/ CrlBuilder. `settings` default to the configured CRL shards and CHANCERY_CRL_NEXT_UPDATE_HOURS.
 */
function openCrlPublisher(deps: {
  db: Database;
  keys: KeyStore;
  issuers: IssuerRepository;
  urls: PublicUrls;
  clock: Clock;
  logger: PinoLogger;
  config: Config;
  settings?: Partial<CrlSettings>;
}): CrlPublisher {
  const { keys, issuers, urls, config } = deps;
  const builders = new Map<string, Promise<CrlSigner>>();
  const loadBuilder = async (issuerId: string): Promise<CrlSigner> => {
    const record = await issuers.findById(issuerId);
    if (!record) throw new CaError('notFound', `no issuer ${issuerId}`);
    const signer = await keys.load(record.keyName, { rsaScheme: config.ca.rsaScheme });
    if (!signer) throw missingKey(record, keys);
    // crlShards 0: a CRL needs the issuer's Name, AKI and algorithm, not the CRL DP extensions of its leaves.
    return new CrlBuilder(buildIssuerContext({ id: issuerId, certificateDer: record.der, signer, urls, crlShards: 0 }));
  };
  return new CrlPublisher({
    store: new CrlRepository(deps.db),
    issuers: { list: () => issuers.list() },
    signers: {
      // An issuer's certificate and key never change, so its builder is kept (a failed load is retried).
      forIssuer(issuerId) {
        let builder = builders.get(issuerId);
        if (builder === undefined) {
          builder = loadBuilder(issuerId);
          builders.set(issuerId, builder);
          builder.catch(() => builders.delete(issuerId));
        }
        return builder;
      },
    },
    urls,
    clock: deps.clock,
    logger: deps.logger,
    settings: { shards: config.issuance.crlShards, nextUpdateMs: config.crl.nextUpdateHours * HOUR, ...deps.settings },
  });
}

async function openKeyStore(config: Config, db: Database, clock: Clock, logger: PinoLogger, source: PassphraseSource, passphraseFile: string): Promise<KeyStore> {
  if (config.keys.backend === 'pkcs11') {
    const { library, tokenLabel, sessions, pinFile } = config.keys.pkcs11;
    const pin = config.keys.pkcs11.pin || (await readPinFile(pinFile));
    // graphene-pk11 (a native addon) loads only when an HSM is configured.
    const { openPkcs11KeyStore } = await import('./keys/pkcs11/pkcs11-key-store.js');
    return openPkcs11KeyStore({ library, tokenLabel, pin, sessions });
  }
  if (source.origin === 'file') {
    logger.warn(
      { file: passphraseFile, generated: source.generated },
      'CA keys are encrypted with a passphrase kept in the data directory: anyone who can read it and the database holds the CA keys. Set CHANCERY_KEY_PASSPHRASE or use CHANCERY_KEYS=pkcs11 in production.',
    );
  }
  return new SoftwareKeyStore({ blobs: new KeyBlobRepository(db), passphrase: source.passphrase, clock });
}

async function readPinFile(file: string): Promise<string> {
  try {
    const pin = (await readFile(file, 'utf8')).trim();
    if (pin) return pin;
  } catch (cause) {
    throw new CaError('badConfig', `cannot read CHANCERY_PKCS11_PIN_FILE ${file}: ${(cause as NodeJS.ErrnoException).code ?? 'error'}`, { cause });
  }
  throw new CaError('badConfig', `CHANCERY_PKCS11_PIN_FILE ${file} is empty`);
}
