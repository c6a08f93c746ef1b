import { CaError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { AdminPrincipal } from '../core/principal.js';
import type { AdminCredentials } from '../inventory/admin-access.js';
import { problemFromError, tooManyFailures, unauthenticated, type RenderedProblem } from './problem.js';
import type { AdminRoute, AdminServices, AdminStream } from './route.js';
import { ADMIN_ROUTES } from './routes.js';

export type AdminResponse = { status: 200; body: unknown } | ({ status: 200 } & AdminStream) | RenderedProblem;

/**
 * The admin wire protocol, apart from any HTTP framework (as acme/ is): authentication (401, 429), the RBAC
 * decision (403) and the handlers; http/admin-app.ts carries bytes to and from it.
 */
export class AdminApi {
  readonly routes: readonly AdminRoute[] = ADMIN_ROUTES;

  constructor(private readonly deps: { services: AdminServices; logger: Logger }) {}

  /** A principal, or the problem that refuses the request (401, or 429 for a source failing too often). */
  async authenticate(credentials: AdminCredentials): Promise<{ principal: AdminPrincipal } | { problem: RenderedProblem }> {
    try {
      const outcome = await this.deps.services.access.authenticate(credentials);
      if ('principal' in outcome) return outcome;
      return { problem: outcome.refused === 'rate-limited' ? tooManyFailures(outcome.retryAfterSeconds) : unauthenticated(outcome.detail) };
    } catch (error) {
      return { problem: this.failed(error, 'authentication') };
    }
  }

  /** The RBAC decision for a route: undefined when allowed, else the 403 problem. */
  forbidden(route: AdminRoute, principal: AdminPrincipal): RenderedProblem | undefined {
    if (this.deps.services.access.authorize(principal, route.action).allowed) return undefined;
    return problemFromError(forbiddenError(principal, route));
  }

  async handle(route: AdminRoute, principal: AdminPrincipal, request: { params: Record<string, string>; query: Record<string, unknown>; body: unknown }): Promise<AdminResponse> {
    const decision = this.deps.services.access.authorize(principal, route.action);
    if (!decision.allowed) return problemFromError(forbiddenError(principal, route));
    try {
      const outcome = await route.handle({ principal, scope: decision.scope, ...request }, this.deps.services);
      if ('problem' in outcome) return outcome.problem;
      return 'stream' in outcome ? { status: 200, ...outcome } : { status: 200, body: outcome.body };
    } catch (error) {
      return this.failed(error, route.operationId);
    }
  }

  private failed(error: unknown, where: string): RenderedProblem {
    const rendered = problemFromError(error);
    if (rendered.internal) this.deps.logger.error({ err: error, where }, 'admin API request failed');
    return rendered;
  }
}

function forbiddenError(principal: AdminPrincipal, route: AdminRoute): CaError {
  return new CaError('unauthorized', `the ${principal.role} role may not ${route.action} (policy/admin-rbac.ts)`);
}
