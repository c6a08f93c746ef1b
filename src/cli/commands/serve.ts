import { compose, type Chancery } from '../../compose.js';
import type { Config } from '../../config/config.js';
import { writeCaFiles } from '../ca-files.js';
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
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    chancery.logger.info({ signal }, 'shutting down');
    void chancery.close();
  };
  process.once('SIGINT', () => stop('SIGINT'));
  process.once('SIGTERM', () => stop('SIGTERM'));
}

async function serve(chancery: Chancery, started: bigint): Promise<void> {
  const { config, logger, hierarchy } = chancery;
  if (chancery.createdCa) logger.info({ root: hierarchy.root.id, intermediate: hierarchy.intermediate.id }, 'created a new CA');
  const files = await writeCaFiles(config.dataDir, hierarchy);
  const apps = await chancery.apps();
  chancery.start();
  const address = await apps.public.listen({ host: config.public.listen.host, port: config.public.listen.port });
  await apps.acme.listen({ host: config.acme.listen.host, port: config.acme.listen.port });
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
      `  database: ${chancery.db.driver}; keys: ${chancery.keys.backend}; issuer: ${hierarchy.intermediate.id}`,
      ...warnings,
      '',
    ].join('\n'),
  );
}
