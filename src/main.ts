import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pino, type Logger } from 'pino';
import { parseCsr } from './ca/csr.js';
import { caCertificateFactory } from './ca/ca-certificate-factory.js';
import { buildIssuerContext } from './ca/issuer-context.js';
import { LeafCertificateBuilder } from './ca/leaf-certificate.js';
import type { Config } from './config/config.js';
import type { IssuerRecord } from './core/certificate.js';
import { DAY, HOUR, systemClock, type Clock } from './core/clock.js';
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
import { resolvePassphrase } from './keys/software/passphrase.js';
import { SoftwareKeyStore } from './keys/software/software-key-store.js';
import { runCeremony, type CeremonyResult } from './ra/ca-ceremony.js';
import { parseCertificate } from './ca/certificate-parser.js';
import { generateNonce, type NonceStore } from './acme/nonce-store.js';
import type { Queryable } from './db/database.js';
import { AccountRepository } from './db/repositories/account-repository.js';
import { AuthorizationRepository } from './db/repositories/authorization-repository.js';
import { ChallengeRepository } from './db/repositories/challenge-repository.js';
import { EabRepository } from './db/repositories/eab-repository.js';
import { NonceRepository } from './db/repositories/nonce-repository.js';
import { OrderRepository } from './db/repositories/order-repository.js';
import { AccountService } from './ra/account-service.js';
import { AcmeRa } from './ra/acme-registration-authority.js';
import type { AcmeStoreAccess, AcmeStores } from './ra/acme-stores.js';
import { EabService } from './ra/eab-service.js';
import { OrderService } from './ra/order-service.js';
import { RenewalInfoService } from './ra/renewal-info.js';
import { RevocationService } from './ra/revocation-service.js';
import { SecretBox } from './ra/secret-box.js';
import { DEFAULT_SCHEDULER, ValidationScheduler } from './ra/validation-scheduler.js';
import { createValidationAuthority } from './va/validation-authority.js';
import type { Validator } from './va/validator.js';
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
    const keys = await openKeyStore(config, db, clock, logger);
    return {
      config,
      clock,
      logger,
      db,
      keys,
      urls: publicUrls(config.public.url),
      issuers: new IssuerRepository(db),
      certificates: new CertificateRepository(db),
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

async function openKeyStore(config: Config, db: Database, clock: Clock, logger: Logger): Promise<KeyStore> {
  if (config.keys.backend === 'pkcs11') {
    const { library, tokenLabel, sessions, pinFile } = config.keys.pkcs11;
    const pin = config.keys.pkcs11.pin || (await readPinFile(pinFile));
    // graphene-pk11 (a native addon) loads only when an HSM is configured.
    const { openPkcs11KeyStore } = await import('./keys/pkcs11/pkcs11-key-store.js');
    return openPkcs11KeyStore({ library, tokenLabel, pin, sessions });
  }
  const source = await resolvePassphrase(config.keys.passphrase || undefined, join(config.dataDir, 'keys', 'passphrase'));
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
  revocation: RevocationService;
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
  const on = (q: Queryable): AcmeStores => ({
    accounts: new AccountRepository(q),
    eab: new EabRepository(q),
    orders: new OrderRepository(q),
    authorizations: new AuthorizationRepository(q),
    challenges: new ChallengeRepository(q),
    certificates: new CertificateRepository(q),
  });
  return { stores: on(db), transaction: (fn) => db.transaction((tx) => fn(on(tx))) };
}

/** The passphrase that seals stored secrets (EAB keys), the same one software CA keys use. */
async function secretBox(config: Config): Promise<SecretBox> {
  const source = await resolvePassphrase(config.keys.passphrase || undefined, join(config.dataDir, 'keys', 'passphrase'));
  return new SecretBox(source.passphrase);
}

export async function openEab(runtime: Runtime): Promise<EabService> {
  return new EabService({ store: new EabRepository(runtime.db), box: await secretBox(runtime.config), clock: runtime.clock });
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
  const eab = await openEab(runtime);
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
  const revocation = new RevocationService({ certificates: access.stores.certificates, clock });
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
    onChallengeReady: () => scheduler.kick(),
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
  const nonces: NonceStore = {
    // RFC 8555 §6.5: nonces are single-use; kept in the database so any instance accepts any other's.
    async issue() {
      const value = generateNonce();
      await nonceRepository.insert(value, new Date(clock.now().getTime() + NONCE_LIFETIME_MS));
      return value;
    },
    consume: (value) => nonceRepository.consume(value, clock.now()),
  };
  const purge = setInterval(() => void nonceRepository.purgeExpired(clock.now()).catch(() => undefined), 10 * 60 * 1000);
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

const NONCE_LIFETIME_MS = HOUR;

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
