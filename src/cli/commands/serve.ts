import { compose, type Chancery } from '../../compose.js';
import type { Config } from '../../config/config.js';
import { writeCaFiles } from '../ca-files.js';
import { listenAdminSocket } from '../admin-socket.js';
import { startWarnings } from '../start-warnings.js';

export interface ServeOptions {
  /** `npm start`: run the ceremony first when no CA exists. */
  initIfNeeded: boolean;
}

/**
 * `chancery serve` (and `chancery start` = init-if-needed + serve): compose() loads the CA and its keys
 * (proving the intermediate's key matches its certificate) and wires every service; this starts the
 * background jobs and listens on the public and ACME listeners until SIGINT/SIGTERM.
 */
export async function serveCommand(config: Config, options: ServeOptions): Promise<void> {
  const started = process.hrtime.bigint();
  const chancery = await compose(config, { ca: options.initIfNeeded ? 'create-if-missing' : 'existing' });
  try {
    await serve(chancery, started);
  } catch (error) {
    // A port in use must not leave timers, LISTEN connections or the database open.
    await chancery.close();
    throw error;
  }
  const { logger } = chancery;
  const graceSeconds = config.shutdownGraceSeconds;
  let stopping = false;
  const stop = (signal: string): void => {
    // Ctrl-C under `npm start` delivers SIGINT twice (the terminal's, and the one npm forwards): a repeat
    // must not cut the drain short, so it is ignored (the handler stays installed: Node's default would kill).
    if (stopping) return void logger.info({ signal }, 'already shutting down');
    stopping = true;
    logger.info({ signal, graceSeconds }, 'shutting down: accepting no new connections, finishing requests already received');
    // Should closing itself hang (a database that never answers), the process still ends.
    setTimeout(() => {
      logger.error({ signal }, 'shutdown did not finish in time; exiting');
      process.exit(1);
    }, (graceSeconds + SHUTDOWN_MARGIN_SECONDS) * 1000).unref();
    // close(): the listeners drain (up to the grace), then jobs stop (their leases released), then the key
    // store (HSM sessions) and the database (and its data-directory lock) close. Exit at once after: nothing
    // that is left (a client's half-open socket) may hold the process.
    chancery.close().then(
      () => {
        logger.info({ signal }, 'stopped');
        process.exit(0);
      },
      (error: unknown) => {
        logger.error({ err: error }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}

/** Beyond the grace: the time closing jobs, the key store and the database may take before the process gives up. */
const SHUTDOWN_MARGIN_SECONDS = 15;

async function serve(chancery: Chancery, started: bigint): Promise<void> {
  const { config, logger, hierarchy } = chancery;
  if (chancery.createdCa) logger.info({ root: hierarchy.root.id, intermediate: hierarchy.intermediate.id }, 'created a new CA');
  const files = await writeCaFiles(config.dataDir, hierarchy);
  const apps = await chancery.apps();
  chancery.start();
  const address = await apps.public.listen({ host: config.public.listen.host, port: config.public.listen.port });
  await apps.acme.listen({ host: config.acme.listen.host, port: config.acme.listen.port });
  const adminAddress = await apps.admin.listen({ host: config.admin.listen.host, port: config.admin.listen.port });
  const adminSocket = await listenAdminSocket(apps.adminLocal, config.dataDir);
  const elapsedMs = Number(process.hrtime.bigint() - started) / 1e6;
  const warnings = startWarnings({ allowLoopback: config.validation.allowLoopback, databaseDriver: chancery.db.driver, keysBackend: chancery.keys.backend });
  for (const warning of warnings) logger.warn(warning.trim());

  process.stdout.write(
    [
      `Chancery is serving (started in ${elapsedMs.toFixed(0)} ms)`,
      `  ACME directory:                ${chancery.acmeUrl}/acme/directory`,
      `  root certificate (trust this): ${files.rootPem}`,
      `  issuing chain:                 ${files.chainPem}`,
      `  public listener:               ${address} (CA certificates, CRLs, OCSP, /livez, /readyz)`,
      `  certificates name:             ${config.public.url} (AIA, CRL DP)`,
      `  admin API:                     ${adminAddress}/admin/v1 (OpenAPI: /admin/v1/openapi.json; local CLI: ${adminSocket})`,
      `  database: ${chancery.db.driver}; keys: ${chancery.keys.backend}; issuer: ${hierarchy.intermediate.id}`,
      ...warnings,
      '',
    ].join('\n'),
  );
}
