import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pino, type Logger } from 'pino';
import { parseCsr } from './ca/csr.js';
import { caCertificateFactory } from './ca/ca-certificate-factory.js';
import { buildIssuerContext } from './ca/issuer-context.js';
import { LeafCertificateBuilder } from './ca/leaf-certificate.js';
import type { Config } from './config/config.js';
import type { IssuerRecord } from './core/certificate.js';
import { DAY, HOUR, MINUTE, systemClock, type Clock } from './core/clock.js';
import { CaError } from './core/errors.js';
import { DEFAULT_PROFILE, type CertificateProfile } from './core/profile.js';
import { publicUrls, type PublicUrls } from './core/url-scheme.js';
import type { Database } from './db/database.js';
import { migrate } from './db/migrate.js';
import { openDatabase } from './db/open-database.js';
import { CertificateRepository } from './db/repositories/certificate-repository.js';
import { IssuerRepository } from './db/repositories/issuer-repository.js';
import { KeyBlobRepository } from './db/repositories/key-blob-repository.js';
import type { KeyStore } from './keys/signer.js';
import { resolvePassphrase, type PassphraseSource } from './keys/software/passphrase.js';
import { SoftwareKeyStore } from './keys/software/software-key-store.js';
import { runCeremony, type CeremonyResult } from './ra/ca-ceremony.js';
import { parseCertificate } from './ca/certificate-parser.js';
import { nonceKeyFromPassphrase, SignedNonceStore, type NonceStore } from './acme/nonce-store.js';
import type { Queryable } from './db/database.js';
import { AccountRepository } from './db/repositories/account-repository.js';
import { AuthorizationRepository } from './db/repositories/authorization-repository.js';
import { ChallengeRepository } from './db/repositories/challenge-repository.js';
import { EabRepository } from './db/repositories/eab-repository.js';
import { NonceRepository } from './db/repositories/nonce-repository.js';
import { StatementBatcher } from './db/statement-batcher.js';
import { OrderRepository } from './db/repositories/order-repository.js';
import { AccountService } from './ra/account-service.js';
import { AcmeRa } from './ra/acme-registration-authority.js';
import type { AcmeStoreAccess, AcmeStores, FirstOcspResponse } from './ra/acme-stores.js';
import { EabService } from './ra/eab-service.js';
import { OrderService } from './ra/order-service.js';
import { RenewalInfoService } from './ra/renewal-info.js';
import { RevocationService } from './ra/revocation-service.js';
import { SecretBox } from './ra/secret-box.js';
import { DEFAULT_SCHEDULER, ValidationScheduler } from './ra/validation-scheduler.js';
import { createValidationAuthority } from './va/validation-authority.js';
import type { Validator } from './va/validator.js';
import { randomBytes } from 'node:crypto';
import { ocspResponderCertificateFactory } from './ca/ocsp-responder-certificate.js';
import { ocspCodec } from './ca/ocsp-response.js';
import type { IssuedCertificate } from './core/certificate.js';
import type { Subscription } from './db/database.js';
import { listen, notify } from './db/notifications.js';
import { OcspResponderRepository, OcspResponseRepository } from './db/repositories/ocsp-repository.js';
import { OcspRefresher, type OcspRefresherSettings } from './revocation/ocsp-refresher.js';
import { OcspResponderKeys, type ServedIssuer } from './revocation/ocsp-responder-keys.js';
import { OCSP_CHANNEL, OcspSource } from './revocation/ocsp-source.js';
import { CrlBuilder } from './ca/crl-builder.js';
import { CrlRepository } from './db/repositories/crl-repository.js';
import { CrlPublisher, type CrlSettings, type CrlSigner } from './revocation/crl-publisher.js';
import type { AcmeAppDeps } from './http/acme-app.js';
import { CertificateIssuance } from './ra/certificate-issuance.js';

/**
 * The composition root (DESIGN.md rule 5): config -> clock -> db -> keys -> repositories -> ca -> ra.
 * Every command and every test that needs the whole system goes through here; constructors below take
 * only the slice they use.
 */
export interface Runtime {
  config: Config;
  clock: Clock;
  logger: Logger;
  db: Database;
  keys: KeyStore;
  urls: PublicUrls;
  issuers: IssuerRepository;
  certificates: CertificateRepository;
  /**
   * The installation passphrase (CHANCERY_KEY_PASSPHRASE or the generated file), resolved once: it encrypts
   * software keys, seals EAB keys and keys the nonce MAC. A secret: never logged or sent.
   */
  passphrase: string;
  close(): Promise<void>;
}

export interface OpenRuntimeOptions {
  clock?: Clock;
  logger?: Logger;
}

export function createLogger(config: Config): Logger {
  // Secrets are never passed to the logger; redact covers accidental structured fields too.
  return pino({ level: config.log.level, redact: ['pin', 'passphrase', 'password', '*.pin', '*.passphrase'] });
}

export async function openRuntime(config: Config, options: OpenRuntimeOptions = {}): Promise<Runtime> {
  const clock = options.clock ?? systemClock;
  const logger = options.logger ?? createLogger(config);
  const db = await openDatabase({ url: config.database.url, dataDir: config.dataDir });
  try {
    const applied = await migrate(db, clock);
    if (applied.length > 0) logger.info({ applied }, 'database migrations applied');
    const passphrase = await resolvePassphrase(config.keys.passphrase || undefined, join(config.dataDir, 'keys', 'passphrase'));
    const keys = await openKeyStore(config, db, clock, logger, passphrase);
    return {
      config,
      clock,
      logger,
      db,
      keys,
      urls: publicUrls(config.public.url),
      issuers: new IssuerRepository(db),
      certificates: new CertificateRepository(db),
      passphrase: passphrase.passphrase,
      async close() {
        await keys.close();
        await db.close();
      },
    };
  } catch (error) {
    await db.close();
    throw error;
  }
}

async function openKeyStore(config: Config, db: Database, clock: Clock, logger: Logger, source: PassphraseSource): Promise<KeyStore> {
  if (config.keys.backend === 'pkcs11') {
    const { library, tokenLabel, sessions, pinFile } = config.keys.pkcs11;
    const pin = config.keys.pkcs11.pin || (await readPinFile(pinFile));
    // graphene-pk11 (a native addon) loads only when an HSM is configured.
    const { openPkcs11KeyStore } = await import('./keys/pkcs11/pkcs11-key-store.js');
    return openPkcs11KeyStore({ library, tokenLabel, pin, sessions });
  }
  if (source.origin === 'file') {
    logger.warn(
      { file: join(config.dataDir, 'keys', 'passphrase'), generated: source.generated },
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

/** `chancery init`: the ceremony, with the runtime's stores. Refuses when a CA exists. */
export function initCa(runtime: Runtime): Promise<CeremonyResult> {
  const { config, db } = runtime;
  return runCeremony(
    {
      keys: runtime.keys,
      issuers: {
        findRoot: () => runtime.issuers.findRoot(),
        saveAll: (records) =>
          db.transaction(async (tx) => {
            const repository = new IssuerRepository(tx);
            for (const record of records) await repository.insert(record);
          }),
      },
      certificates: caCertificateFactory,
      clock: runtime.clock,
      urls: runtime.urls,
    },
    config.ca,
  );
}

export interface CaHierarchy {
  root: IssuerRecord;
  intermediate: IssuerRecord;
}

export async function loadHierarchy(runtime: Runtime): Promise<CaHierarchy | undefined> {
  const root = await runtime.issuers.findRoot();
  if (!root) return undefined;
  const intermediate = await runtime.issuers.findActiveIntermediate();
  if (!intermediate) throw new CaError('caState', `root ${root.id} exists but no intermediate: the ceremony did not complete`);
  return { root, intermediate };
}

export function profileFrom(config: Config): CertificateProfile {
  return { ...DEFAULT_PROFILE, validityMs: config.issuance.validityDays * DAY };
}

/** The leaf issuance pipeline for the active intermediate, its key loaded from the KeyStore. */
export async function openIssuance(runtime: Runtime, hierarchy: CaHierarchy): Promise<{ builder: LeafCertificateBuilder; issuance: CertificateIssuance }> {
  const { intermediate } = hierarchy;
  const signer = await runtime.keys.load(intermediate.keyName, { rsaScheme: runtime.config.ca.rsaScheme });
  if (!signer) throw new CaError('caState', `key "${intermediate.keyName}" of issuer ${intermediate.id} is not in the ${runtime.keys.backend} key store`);
  const context = buildIssuerContext({
    id: intermediate.id,
    certificateDer: intermediate.der,
    signer,
    urls: runtime.urls,
    crlShards: runtime.config.issuance.crlShards,
  });
  const profile = profileFrom(runtime.config);
  const builder = new LeafCertificateBuilder(context, profile, runtime.config.issuance.crlShards);
  const issuance = new CertificateIssuance({
    signer: builder,
    parseCsr,
    store: {
      reserveSerial: (serial, issuerId, at) => runtime.certificates.reserveSerial(serial, issuerId, at),
      insertCertificate: (certificate) => runtime.certificates.insert(certificate),
    },
    clock: runtime.clock,
    profile,
  });
  return { builder, issuance };
}

// ---------------------------------------------------------------------------------------------------
// ACME (issue #3): RA services over the database, the VA, the scheduler and the nonce store.

export interface AcmeRuntime {
  ra: AcmeRa;
  nonces: NonceStore;
  scheduler: ValidationScheduler;
  eab: EabService;
  revocation: RevocationService<Queryable>;
  issuance: CertificateIssuance;
  externalUrl: string;
  close(): Promise<void>;
}

/** CHANCERY_ACME_URL, or derived from the listen address and TLS setting. */
export function acmeExternalUrl(config: Config): string {
  if (config.acme.url) return config.acme.url;
  const { host, port } = config.acme.listen;
  const shown = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;
  return `${config.acme.tls ? 'https' : 'http'}://${shown}:${port}`;
}

export function acmeStoreAccess(db: Database): AcmeStoreAccess {
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
  return { stores: on(db, true), transaction: (fn) => db.transaction((tx) => fn(on(tx, false))) };
}

/** EAB keys are sealed under the installation passphrase, the same one software CA keys use. */
export function openEab(runtime: Runtime): EabService {
  return new EabService({ store: new EabRepository(runtime.db), box: new SecretBox(runtime.passphrase), clock: runtime.clock });
}

export async function openAcme(
  runtime: Runtime,
  hierarchy: CaHierarchy,
  options: { validator?: Validator; startScheduler?: boolean } = {},
): Promise<AcmeRuntime> {
  const { config, clock, db } = runtime;
  const { issuance } = await openIssuance(runtime, hierarchy);
  const access = acmeStoreAccess(db);
  const issuers = await runtime.issuers.list();
  const issuerKeyIds = issuers.filter((i) => i.role === 'intermediate').map((i) => caCertificateFactory.parse(i.der).keyId);
  const eab = openEab(runtime);
  const validator =
    options.validator ??
    createValidationAuthority({
      http01Port: config.validation.http01Port,
      tlsAlpn01Port: config.validation.tlsAlpn01Port,
      dnsResolvers: config.validation.dnsResolvers,
      timeoutMs: config.validation.timeoutSeconds * 1000,
    });
  const scheduler = new ValidationScheduler({
    stores: access.stores,
    validator,
    clock,
    settings: { ...DEFAULT_SCHEDULER, maxAttempts: config.validation.maxAttempts },
    logger: runtime.logger,
  });
  // Revocation commits in one transaction with whatever must change with it (the OCSP response, issue #4).
  const revocation = new RevocationService<Queryable>({
    certificates: access.stores.certificates,
    clock,
    transaction: (fn) => db.transaction((tx) => fn({ tx, certificates: new CertificateRepository(tx) })),
  });
  const orders = new OrderService({
    access,
    issuance,
    clock,
    settings: {
      orderLifetimeMs: config.acme.orderLifetimeHours * HOUR,
      authorizationLifetimeMs: Math.max(config.acme.authorizationReuseDays * DAY, config.acme.orderLifetimeHours * HOUR),
      profile: profileFrom(config),
      issuerKeyIds,
    },
    validation: scheduler,
  });
  const ra = new AcmeRa({
    access,
    accounts: new AccountService({ access, eab, clock, eabRequired: config.acme.eabRequired }),
    orders,
    revocation,
    renewal: new RenewalInfoService({ certificates: access.stores.certificates, issuerKeyIds, clock }),
    readCertificate: (der) => {
      const parsed = parseCertificate(der);
      return { serialHex: parsed.serialHex.replace(/^(00)+(?=.)/, ''), spki: parsed.spki };
    },
    issuers: () => runtime.issuers.list(),
    clock,
    eabRequired: config.acme.eabRequired,
  });
  const nonceRepository = new NonceRepository(db);
  // RFC 8555 §6.5: issuing a nonce writes nothing (its MAC proves it is ours, under a key every instance
  // derives from the shared installation passphrase, as the EAB SecretBox does); spending one is one INSERT
  // into the shared spent set (rule 7) — one INSERT for all the requests that spend one at the same moment.
  const spends = new StatementBatcher((items: { id: Uint8Array; accountId?: string }[]) => nonceRepository.spendMany(items));
  const nonces = new SignedNonceStore({
    key: nonceKeyFromPassphrase(runtime.passphrase),
    clock,
    maxAgeMs: NONCE_LIFETIME_MS,
    spent: {
      spend: async (id) => (await spends.submit({ id })).spent,
      spendAndFindAccount: (id, accountId) => spends.submit({ id, accountId }),
    },
  });
  const purge = setInterval(() => void nonceRepository.purgeSpent(nonces.purgeCutoff()).catch(() => undefined), NONCE_PURGE_INTERVAL_MS);
  purge.unref();
  if (options.startScheduler !== false) scheduler.start();
  return {
    ra,
    nonces,
    scheduler,
    eab,
    revocation,
    issuance,
    externalUrl: acmeExternalUrl(config),
    async close() {
      clearInterval(purge);
      await scheduler.stop();
    },
  };
}

/**
 * How long an issued nonce stays good. RFC 8555 §6.5 sets no lifetime; clients use the nonce of the previous
 * response and retry on badNonce with the fresh one it carries (§6.5), so a stale nonce costs one round trip.
 * The lifetime bounds the spent set: about (requests per second) x (lifetime + clock skew) rows.
 */
const NONCE_LIFETIME_MS = 15 * MINUTE;
const NONCE_PURGE_INTERVAL_MS = MINUTE;

/** What buildAcmeApp needs besides TLS, from the runtime and config: one place for serve and tests. */
export function acmeAppDeps(runtime: Runtime, hierarchy: CaHierarchy, acme: AcmeRuntime): AcmeAppDeps {
  const { config } = runtime;
  const caaIdentities = config.acme.caaIdentities.split(',').map((s) => s.trim()).filter(Boolean);
  return {
    ra: acme.ra,
    nonces: acme.nonces,
    clock: runtime.clock,
    logger: runtime.logger,
    externalUrl: acme.externalUrl,
    meta: {
      ...(config.acme.termsOfService ? { termsOfService: config.acme.termsOfService } : {}),
      ...(config.acme.website ? { website: config.acme.website } : {}),
      ...(caaIdentities.length ? { caaIdentities } : {}),
    },
    // RFC 8555 §7.4.2 Link rel="up": where the issuer's certificate can be fetched (the AIA caIssuers URL).
    issuerCertificateUrl: (der) => {
      const issuer = [hierarchy.root, hierarchy.intermediate].find((i) => Buffer.from(i.der).equals(Buffer.from(der)));
      return issuer ? runtime.urls.caIssuer(issuer.id) : undefined;
    },
  };
}

// ---------------------------------------------------------------------------------------------------
/**
 * Config keys `ocsp.*` (CHANCERY_OCSP_NONCE, CHANCERY_OCSP_VALIDITY_HOURS, CHANCERY_OCSP_RESPONDER_VALIDITY_DAYS).
 * Shipped defaults: 3-day responses refreshed after 1.5 days (CA/B BR 4.9.10: at least 8 hours, at most
 * 10 days), signed by 7-day responder certificates rotated after 3.5 days.
 */
export type OcspSettings = Config['ocsp'];

export interface OcspRuntime {
  source: OcspSource;
  responders: OcspResponderKeys;
  refresher: OcspRefresher;
  /** Call after a certificate is stored: pre-signs its `good` response and stores it. Never throws. */
  onIssued(certificate: IssuedCertificate): Promise<void>;
  /**
   * Signs the `good` response of a certificate about to be stored, to be stored in the same statement
   * (CertificateIssuance.presignOcspWith); undefined when it could not. Never throws.
   */
  presign(certificate: IssuedCertificate): Promise<FirstOcspResponse | undefined>;
  /** Call after a certificate was stored together with its presigned response. */
  issuedWithResponse(certificate: IssuedCertificate): void;
  /**
   * Hooks OCSP into a RevocationService built with a transaction runner on the database: the revoked
   * response is signed and stored, and NOTIFY sent, in the revocation's transaction; this instance's
   * cache is dropped after commit.
   */
  attach(revocation: RevocationService<Queryable>): void;
  close(): Promise<void>;
}

export interface OpenOcspOptions {
  settings?: OcspSettings;
  /** LISTEN for revocations of other instances (default true). Without it nothing is cached. */
  listen?: boolean;
  /** Start the background refresher (default true). */
  startRefresher?: boolean;
  refresher?: Partial<OcspRefresherSettings>;
}

/**
 * OCSP (issue #4): responder keys (rotated), the source with its cache, the refresher, and the LISTEN that
 * keeps every instance's cache honest after a revocation (DESIGN.md rule 7).
 */
export async function openOcsp(runtime: Runtime, hierarchy: CaHierarchy, options: OpenOcspOptions = {}): Promise<OcspRuntime> {
  const { config, clock, db, logger } = runtime;
  const settings = options.settings ?? config.ocsp;
  const issuers = await servedIssuers(runtime, hierarchy);
  const responses = new OcspResponseRepository(db, { batch: true });
  const responders = new OcspResponderKeys({
    keys: runtime.keys,
    store: new OcspResponderRepository(db),
    certificates: ocspResponderCertificateFactory,
    codec: ocspCodec,
    reserveSerial: (serial, issuerId, at) => runtime.certificates.reserveSerial(serial, issuerId, at),
    issuers,
    clock,
    settings: { validityMs: settings.responderValidityDays * DAY, keyAlgorithm: 'ecdsa-p256', organization: config.ca.organization },
    logger,
  });
  await responders.ensureCurrent();
  const listening = options.listen !== false;
  const source = new OcspSource({
    ...(listening
      ? { instance: { id: randomBytes(8).toString('hex'), announce: (payload: string) => notify(db, OCSP_CHANNEL, payload) } }
      : {}),
    codec: ocspCodec,
    store: responses,
    responders,
    issuers,
    clock,
    settings: { validityMs: settings.validityHours * HOUR, nonce: settings.nonce },
    logger,
  });
  let subscription: Subscription | undefined;
  if (listening) {
    subscription = await listen(db, OCSP_CHANNEL, (payload) => source.handleNotification(payload), {
      onState: (state, error) => {
        if (state === 'lost') logger.warn({ err: error }, 'OCSP revocation notifications lost; serving without a cache until they resume');
        else logger.info('OCSP revocation notifications resumed');
        source.setListening(state === 'listening');
      },
    });
    source.setListening(true);
  }
  const refresher = new OcspRefresher({ store: responses, source, responders, clock, settings: options.refresher, logger });
  if (options.startRefresher !== false) refresher.start();
  return {
    source,
    responders,
    refresher,
    onIssued: (certificate) => source.onIssued(certificate),
    async presign(certificate) {
      const record = await source.presign(certificate);
      if (record?.der === undefined) return undefined;
      const { der, thisUpdate, nextUpdate, refreshAfter, responderGeneration, updatedAt } = record;
      return { der, thisUpdate, nextUpdate, refreshAfter, updatedAt, ...(responderGeneration === undefined ? {} : { responderGeneration }) };
    },
    issuedWithResponse: (certificate) => source.issuedWithResponse(certificate.serial),
    attach(revocation) {
      revocation.beforeCommit((tx, certificate) =>
        source.beforeRevocationCommit(
          { store: new OcspResponseRepository(tx), notify: (payload) => notify(tx, OCSP_CHANNEL, payload) },
          certificate,
        ),
      );
      revocation.onRevoked((certificate) => source.afterRevocation(certificate));
    },
    async close() {
      await refresher.stop();
      await source.stop();
      await subscription?.close();
    },
  };
}

/** The intermediates OCSP answers for: the active one, and older ones whose keys are still in the KeyStore. */
async function servedIssuers(runtime: Runtime, hierarchy: CaHierarchy): Promise<ServedIssuer[]> {
  const now = runtime.clock.now();
  const rsaScheme = runtime.config.ca.rsaScheme;
  const served: ServedIssuer[] = [];
  for (const issuer of await runtime.issuers.list()) {
    if (issuer.role !== 'intermediate' || issuer.notAfter.getTime() <= now.getTime()) continue;
    const signer = await runtime.keys.load(issuer.keyName, { rsaScheme });
    if (signer === undefined) {
      if (issuer.id === hierarchy.intermediate.id) {
        throw new CaError('caState', `key "${issuer.keyName}" of issuer ${issuer.id} is not in the ${runtime.keys.backend} key store`);
      }
      runtime.logger.warn({ issuer: issuer.id }, 'no key for an older intermediate: OCSP answers unauthorized for its certificates');
      continue;
    }
    served.push({ id: issuer.id, certificateDer: issuer.der, signer });
  }
  return served;
}

// ---------------------------------------------------------------------------------------------------
// CRLs (issue #4)

/**
 * The CRL publisher over a runtime's database, key store and URLs: the composition-root wiring of
 * revocation/ CrlPublisher to db/ CrlRepository and ca/ CrlBuilder. `settings` defaults to the runtime's
 * CRL shards and CHANCERY_CRL_NEXT_UPDATE_HOURS.
 */
export function openCrlPublisher(runtime: Runtime, settings: Partial<CrlSettings> = {}): CrlPublisher {
  const builders = new Map<string, Promise<CrlSigner>>();
  const loadBuilder = async (issuerId: string): Promise<CrlSigner> => {
    const record = await runtime.issuers.findById(issuerId);
    if (!record) throw new CaError('notFound', `no issuer ${issuerId}`);
    const signer = await runtime.keys.load(record.keyName, { rsaScheme: runtime.config.ca.rsaScheme });
    if (!signer) throw new CaError('caState', `key "${record.keyName}" of issuer ${issuerId} is not in the ${runtime.keys.backend} key store`);
    // crlShards 0: a CRL needs the issuer's Name, AKI and algorithm, not the CRL DP extensions of its leaves.
    return new CrlBuilder(buildIssuerContext({ id: issuerId, certificateDer: record.der, signer, urls: runtime.urls, crlShards: 0 }));
  };
  return new CrlPublisher({
    store: new CrlRepository(runtime.db),
    issuers: { list: () => runtime.issuers.list() },
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
    urls: runtime.urls,
    clock: runtime.clock,
    logger: runtime.logger,
    settings: { shards: runtime.config.issuance.crlShards, nextUpdateMs: runtime.config.crl.nextUpdateHours * HOUR, ...settings },
  });
}
