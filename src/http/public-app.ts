import { registerCrlRoutes, type CrlRouteDeps } from './crl-routes.js';
import { applyConnectionLimit, limitOptions, type HttpLimits } from './listener-limits.js';
import { ocspFrameworkErrors, registerOcspRoutes, type OcspRoutesDeps } from './ocsp-routes.js';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';

/** /readyz's answer: not ready says why (one line, no secrets). */
export interface Readiness {
  ready: boolean;
  reason?: string;
}

/** What the public listener needs to know; compose.ts wires it to the stores. */
export interface PublicAppDeps {
  logger: FastifyBaseLogger;
  /** DER of a CA certificate by issuer id (root or intermediate), or undefined. */
  issuerCertificate(id: string): Promise<Uint8Array | undefined>;
  rootPem(): Promise<string>;
  /** True when this instance can serve: database reachable, keys loaded. */
  ready(): Promise<boolean | Readiness>;
  /** OCSP responder (RFC 6960 / RFC 5019) at /ocsp. */
  ocsp?: OcspRoutesDeps;
  /** CRLs (RFC 5280 §5) at /crl/<issuer>/<shard>.crl and /crl/root.crl. */
  crl?: CrlRouteDeps;
  /** Timeouts and the connection cap (listener-limits.ts); Node's and Fastify's defaults without them. */
  limits?: HttpLimits;
}

/**
 * The plain-HTTP listener of DESIGN.md "URLs" (RFC 5280/6960 relying parties fetch over HTTP): CA
 * certificates for AIA caIssuers and for people to download, CRLs, OCSP, and health probes. Returned
 * without listening so tests drive it with app.inject().
 */
export function buildPublicApp(deps: PublicAppDeps): FastifyInstance {
  const app = Fastify({
    loggerInstance: deps.logger,
    logController: new LogController({ disableRequestLogging: true }),
    ...(deps.ocsp ? { frameworkErrors: ocspFrameworkErrors } : {}),
    ...limitOptions(deps.limits),
  });
  applyConnectionLimit(app, deps.limits);

  app.get('/livez', async (_request, reply) => reply.type('text/plain').send('ok\n'));

  app.get('/readyz', async (_request, reply) => {
    const answer = await deps.ready().catch((): Readiness => ({ ready: false }));
    const { ready, reason } = typeof answer === 'boolean' ? { ready: answer, reason: undefined } : answer;
    if (ready) return reply.code(200).type('text/plain').send('ready\n');
    // The reason names the failing dependency (database, signer and its CKR_* code): what an operator
    // looking at a failing probe needs first.
    return reply.code(503).type('text/plain').send(reason === undefined ? 'not ready\n' : `not ready: ${reason}\n`);
  });

  app.get('/ca/root.pem', async (_request, reply) =>
    reply.type('application/x-pem-file').header('cache-control', 'public, max-age=3600').send(await deps.rootPem()),
  );

  // RFC 5280 §4.2.2.1: caIssuers over HTTP points at a single DER certificate (application/pkix-cert).
  app.get<{ Params: { file: string } }>('/ca/:file', async (request, reply) => {
    const match = /^([a-z0-9]{1,32})\.der$/.exec(request.params.file);
    const der = match ? await deps.issuerCertificate(match[1]!) : undefined;
    if (!der) return reply.code(404).type('text/plain').send('no such CA certificate\n');
    return reply.type('application/pkix-cert').header('cache-control', 'public, max-age=3600').send(Buffer.from(der));
  });

  if (deps.ocsp) registerOcspRoutes(app, deps.ocsp);
  if (deps.crl) registerCrlRoutes(app, deps.crl);
  return app;
}
