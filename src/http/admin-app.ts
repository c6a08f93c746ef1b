import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import fastifySwagger from '@fastify/swagger';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { AdminApi, AdminResponse } from '../admin/admin-api.js';
import { badRequest, PROBLEM_CONTENT_TYPE, type RenderedProblem } from '../admin/problem.js';
import { ADMIN_PREFIX, type AdminRoute } from '../admin/route.js';
import { problemSchema } from '../admin/schemas.js';
import type { AdminPrincipal } from '../core/principal.js';
import { canonicalSerial } from '../core/serial-number.js';
import { applyConnectionLimit, limitOptions, type HttpLimits } from './listener-limits.js';
import type { TlsServerOptions } from './tls-policy.js';

export const OPENAPI_PATH = `${ADMIN_PREFIX}/openapi.json`;
/** The header the local CLI names its (self-reported) OS user in, on the Unix socket only. */
export const LOCAL_USER_HEADER = 'x-chancery-user';

export interface AdminAppDeps {
  api: AdminApi;
  logger: FastifyBaseLogger;
  /**
   * `https`: the admin listener (tokens or operator client certificates; `clientCa` verifies the latter).
   * `local`: the Unix socket in the data directory, whose 0600 mode is the authentication: every request
   * is the local operator's.
   */
  transport: { kind: 'https'; tls: TlsServerOptions; clientCa: string[] } | { kind: 'local' } | { kind: 'plain' };
  limits?: HttpLimits;
  /** Largest accepted body (a policy document is the largest); default 1 MiB. */
  bodyLimit?: number;
}

declare module 'fastify' {
  interface FastifyRequest {
    adminPrincipal?: AdminPrincipal;
  }
}

/**
 * The admin listener (/admin/v1): Fastify carries bytes, admin/ decides (authentication, RBAC, handlers,
 * problems). Routes are registered from admin/'s table with their schemas, so requests are validated
 * against exactly what the OpenAPI document (@fastify/swagger, OpenAPI 3.1) at /admin/v1/openapi.json says.
 */
export async function buildAdminApp(deps: AdminAppDeps): Promise<FastifyInstance> {
  const { api, transport } = deps;
  const https =
    transport.kind === 'https'
      ? // Client certificates are asked for but not required: a token works without one. A certificate that
        // does not chain to our CA is refused by the handshake itself.
        { ...transport.tls, requestCert: true, rejectUnauthorized: false, ca: transport.clientCa }
      : undefined;
  const options = {
    loggerInstance: deps.logger,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: deps.bodyLimit ?? 1024 * 1024,
    exposeHeadRoutes: false,
    // Unknown members are refused, not silently dropped: bad input gets a precise problem.
    ajv: { customOptions: { removeAdditional: false, coerceTypes: 'array' as const, useDefaults: true, allErrors: false } },
  };
  const listener = limitOptions(deps.limits, https);
  const app = (listener.https ? Fastify({ ...options, ...listener, https: listener.https }) : Fastify({ ...options, ...listener })) as unknown as FastifyInstance;
  applyConnectionLimit(app, deps.limits);

  await app.register(fastifySwagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Chancery admin API',
        version: '1',
        description:
          'Administration of a Chancery CA. Roles: admin (everything), group-admin (its own groups), auditor (reads everything, changes nothing). ' +
          'Errors are RFC 9457 problem documents (application/problem+json): 401 no or bad credential, 403 not allowed, 404 not found (also another group\'s resource), 429 too many failed authentications.',
      },
      components: {
        securitySchemes: {
          token: { type: 'http', scheme: 'bearer', description: 'an admin token, chy_<id>_<secret>' },
          // OpenAPI 3.1 §4.8.27: mutualTLS (openapi-types describes 3.0, which lacks it).
          operatorCertificate: { type: 'mutualTLS', description: 'a client certificate of the operator profile, bound to a role by an admin' } as unknown as { type: 'openIdConnect'; openIdConnectUrl: string },
        },
      },
      security: [{ token: [] }, { operatorCertificate: [] }],
    },
  });

  app.get(OPENAPI_PATH, { schema: { hide: true } }, async (_request, reply) => reply.type('application/json').send(app.swagger()));

  app.addHook('onRequest', async (request, reply) => {
    if (request.url === OPENAPI_PATH || !request.url.startsWith(`${ADMIN_PREFIX}/`)) return;
    const outcome = await api.authenticate(credentialsOf(request, transport.kind));
    if ('problem' in outcome) return sendProblem(reply, outcome.problem);
    request.adminPrincipal = outcome.principal;
  });

  for (const route of api.routes) registerRoute(app, api, route);

  app.setNotFoundHandler((request, reply) => sendProblem(reply, badRequest(404, `no route ${request.method} ${request.url.split('?')[0]!.slice(0, 100)}`)));
  app.setErrorHandler((error: Error & { statusCode?: number; validation?: unknown; validationContext?: string }, request, reply) => {
    const status = error.statusCode ?? 500;
    if (error.validation !== undefined) return sendProblem(reply, badRequest(400, `${error.validationContext ?? 'request'} ${error.message.replace(/^(body|querystring|params)\s*/, '')}`));
    if (status === 413) return sendProblem(reply, badRequest(413, 'request body too large'));
    if (status >= 400 && status < 500) return sendProblem(reply, badRequest(status, `request could not be read: ${error.message}`));
    deps.logger.error({ err: error, url: request.url }, 'admin API request failed');
    return sendProblem(reply, { status: 500, problem: { type: 'urn:chancery:admin:problem:server-error', title: 'Internal server error', status: 500, detail: 'The server experienced an internal error' }, headers: {}, internal: true });
  });
  return app;
}

function registerRoute(app: FastifyInstance, api: AdminApi, route: AdminRoute): void {
  const problem = { description: 'RFC 9457 problem document', content: { [PROBLEM_CONTENT_TYPE]: { schema: problemSchema } } };
  app.route({
    method: route.method,
    url: route.url,
    ...(route.bodyLimit === undefined ? {} : { bodyLimit: route.bodyLimit }),
    schema: {
      operationId: route.operationId,
      summary: route.summary,
      tags: [route.tag],
      ...(route.schema.params ? { params: route.schema.params } : {}),
      ...(route.schema.querystring ? { querystring: route.schema.querystring } : {}),
      ...(route.schema.body ? { body: route.schema.body } : {}),
      response: { 200: { description: 'OK', content: { [route.produces?.split(';')[0] ?? 'application/json']: { schema: route.schema.response } } }, '4xx': problem, '5xx': problem },
    },
    // RBAC before the body is validated: a principal that may not call the route learns nothing of its input.
    preValidation: async (request, reply) => {
      const forbidden = api.forbidden(route, request.adminPrincipal!);
      if (forbidden !== undefined) return sendProblem(reply, forbidden);
    },
    handler: async (request: FastifyRequest, reply: FastifyReply) => {
      const response: AdminResponse = await api.handle(route, request.adminPrincipal!, {
        params: (request.params ?? {}) as Record<string, string>,
        query: (request.query ?? {}) as Record<string, unknown>,
        body: request.body,
      });
      if (response.status !== 200) return sendProblem(reply, response as RenderedProblem);
      if ('stream' in response) {
        // Readable.from pulls the next chunk only when the socket has taken the last: memory stays one chunk.
        return reply.code(200).type(response.contentType).header('content-disposition', `attachment; filename="${response.filename}"`).send(Readable.from(response.stream));
      }
      return reply.code(200).type('application/json').send(JSON.stringify((response as { body: unknown }).body));
    },
  });
}

function sendProblem(reply: FastifyReply, rendered: RenderedProblem): FastifyReply {
  return reply.code(rendered.status).headers(rendered.headers).type(PROBLEM_CONTENT_TYPE).send(JSON.stringify(rendered.problem));
}

function credentialsOf(request: FastifyRequest, transport: AdminAppDeps['transport']['kind']): Parameters<AdminApi['authenticate']>[0] {
  const header = request.headers.authorization;
  const bearer = header === undefined ? undefined : /^Bearer\s+(\S+)\s*$/i.exec(header)?.[1] ?? '';
  if (transport === 'local') {
    const user = request.headers[LOCAL_USER_HEADER];
    return { source: 'local', local: { user: typeof user === 'string' && /^[\w.@-]{1,64}$/.test(user) ? user : 'unknown' }, ...(bearer === undefined ? {} : { bearer }) };
  }
  const source = request.socket.remoteAddress ?? 'unknown';
  const certificate = transport === 'https' ? presentedCertificate(request.raw.socket as TLSSocket) : undefined;
  return { source, ...(bearer === undefined ? {} : { bearer }), ...(certificate ? { certificate } : {}) };
}

/** The client certificate, when the handshake verified it against our CA (the socket is then `authorized`). */
function presentedCertificate(socket: TLSSocket): { serial: string; spkiSha256: string } | undefined {
  if (!socket.authorized) return undefined;
  const certificate = socket.getPeerX509Certificate();
  if (certificate === undefined) return undefined;
  const spki = certificate.publicKey.export({ type: 'spki', format: 'der' });
  return { serial: canonicalSerial(certificate.serialNumber), spkiSha256: createHash('sha256').update(spki).digest('hex') };
}

/**
 * Installs a renewed certificate on the listening admin app: the TLS policy and the client CA go with it
 * (setSecureContext builds a whole new context; without `ca` operator certificates would stop verifying).
 */
export function renewAdminTls(app: FastifyInstance, tls: TlsServerOptions, clientCa: string[]): void {
  (app.server as unknown as import('node:tls').Server).setSecureContext({ ...tls, ca: clientCa });
}
