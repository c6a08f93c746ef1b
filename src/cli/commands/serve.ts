import type { Server as TlsServer } from 'node:tls';
import type { Config } from '../../config/config.js';
import { CaError } from '../../core/errors.js';
import { toPem } from '../../core/pem.js';
import { buildAcmeApp } from '../../http/acme-app.js';
import { buildPublicApp } from '../../http/public-app.js';
import { acmeAppDeps, initCa, loadHierarchy, openAcme, openCrlPublisher, openOcsp, openRuntime, type Runtime } from '../../main.js';
import { ServerCertificate } from '../../ra/server-certificate.js';
import { writeCaFiles } from '../ca-files.js';

export interface ServeOptions {
  /** `npm start`: run the ceremony first when no CA exists. */
  initIfNeeded: boolean;
}

/**
 * `chancery serve` (and `chancery start` = init-if-needed + serve): loads the CA from the database and its
 * keys from the KeyStore, checks that the intermediate's key matches its certificate, and serves the
 * public listener until SIGINT/SIGTERM.
 */
export async function serveCommand(config: Config, options: ServeOptions): Promise<void> {
  const started = process.hrtime.bigint();
  const runtime = await openRuntime(config);
  // Everything started is closed in reverse order: on SIGINT/SIGTERM, or when start-up fails half way
  // (a port in use must not leave timers, LISTEN connections or the database open).
  const closers: (() => Promise<void> | void)[] = [() => runtime.close()];
  const closeAll = async (): Promise<void> => {
    for (const close of closers.splice(0).reverse()) await close();
  };
  try {
    await serve(runtime, options, started, closers);
  } catch (error) {
    await closeAll();
    throw error;
  }
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    runtime.logger.info({ signal }, 'shutting down');
    void closeAll();
  };
  process.once('SIGINT', () => stop('SIGINT'));
  process.once('SIGTERM', () => stop('SIGTERM'));
}

async function serve(runtime: Runtime, options: ServeOptions, started: bigint, closers: (() => Promise<void> | void)[]): Promise<void> {
  const { config, logger } = runtime;
  let hierarchy = await loadHierarchy(runtime);
  if (!hierarchy && options.initIfNeeded) {
    hierarchy = await initCa(runtime);
    logger.info({ root: hierarchy.root.id, intermediate: hierarchy.intermediate.id }, 'created a new CA');
  }
  if (!hierarchy) throw new CaError('caState', 'no CA in this database: run `chancery init` first (or `npm start`)');
  // Loads the intermediate key (proving it matches its certificate) and starts the validation scheduler.
  const acme = await openAcme(runtime, hierarchy);
  closers.push(() => acme.close());
  // OCSP: responder keys, pre-signed responses (signed at issuance, re-signed in the revocation's
  // transaction), the refresher, and LISTEN so every instance drops a revoked certificate from its cache.
  const ocsp = await openOcsp(runtime, hierarchy);
  closers.push(() => ocsp.close());
  ocsp.attach(acme.revocation);
  // An ACME issuance stores its first OCSP response in the certificate's own statement; any other path
  // pre-signs and stores it right after. One that could not be signed is left to the refresher's backfill.
  acme.issuance.presignOcspWith((certificate) => ocsp.presign(certificate));
  acme.issuance.onIssued(async (certificate, outcome) => {
    if (outcome === 'stored') ocsp.issuedWithResponse(certificate);
    else if (outcome === 'not-attempted') await ocsp.onIssued(certificate);
  });
  // CRLs: regenerated on a schedule and right after each revocation (coalesced), stored in the database.
  const crl = openCrlPublisher(runtime);
  acme.revocation.onRevoked((certificate) => crl.onRevoked(certificate));
  crl.start();
  closers.push(() => crl.stop());
  const files = await writeCaFiles(config.dataDir, hierarchy);
  const rootPem = toPem(hierarchy.root.der); // what writeCaFiles just wrote, without reading it back
  const known = new Map([hierarchy.root, hierarchy.intermediate].map((i) => [i.id, i.der]));

  const app = buildPublicApp({
    logger,
    issuerCertificate: async (id) => known.get(id) ?? (await runtime.issuers.findById(id))?.der,
    rootPem: async () => rootPem,
    ready: async () => (await runtime.db.query('SELECT 1 AS ok')).rowCount === 1,
    ocsp: { ocsp: ocsp.source, clock: runtime.clock, logger },
    crl: {
      latest: (issuerId, shard) => crl.latest(issuerId, shard),
      rootCrl: () => crl.rootCrl(),
      clock: runtime.clock,
      maxAgeSeconds: Math.floor(crl.refreshMs / 1000),
    },
  });
  closers.push(() => app.close());
  const address = await app.listen({ host: config.public.listen.host, port: config.public.listen.port });

  const directoryUrl = `${acme.externalUrl}/acme/directory`;
  const serverCertificate = new ServerCertificate({
    issuance: acme.issuance,
    clock: runtime.clock,
    hosts: [new URL(acme.externalUrl).hostname.replace(/^\[|\]$/g, '')],
    chain: [hierarchy.intermediate.der],
  });
  closers.push(() => serverCertificate.stop());
  const tls = config.acme.tls ? await serverCertificate.issue() : undefined;
  const acmeApp = buildAcmeApp({ ...acmeAppDeps(runtime, hierarchy, acme), ...(tls ? { https: { key: tls.key, cert: tls.cert } } : {}) });
  closers.push(() => acmeApp.close());
  await acmeApp.listen({ host: config.acme.listen.host, port: config.acme.listen.port });
  if (tls) {
    serverCertificate.renewing(
      tls,
      (material) => (acmeApp.server as unknown as TlsServer).setSecureContext({ key: material.key, cert: material.cert }),
      (error) => logger.error({ err: error }, 'ACME server certificate renewal failed; retrying'),
    );
  }
  const elapsedMs = Number(process.hrtime.bigint() - started) / 1e6;

  process.stdout.write(
    [
      `Chancery is serving (started in ${elapsedMs.toFixed(0)} ms)`,
      `  ACME directory:                ${directoryUrl}`,
      `  root certificate (trust this): ${files.rootPem}`,
      `  issuing chain:                 ${files.chainPem}`,
      `  public listener:               ${address} (CA certificates, CRLs, OCSP, /livez, /readyz)`,
      `  certificates name:             ${config.public.url} (AIA, CRL DP)`,
      `  database: ${runtime.db.driver}; keys: ${runtime.keys.backend}; issuer: ${hierarchy.intermediate.id}`,
      '',
    ].join('\n'),
  );
}
