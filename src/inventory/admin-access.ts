import type { AdminPrincipal } from '../core/principal.js';
import { cliActor } from '../core/audit.js';
import { decide, type AdminAction, type Decision } from '../policy/admin-rbac.js';
import type { AdminTokenService } from './admin-tokens.js';
import type { AuthFailureLimiter } from './auth-failures.js';
import type { OperatorService, PresentedCertificate } from './operators.js';

/** What a request to the admin API carries to authenticate (the listener extracts it). */
export interface AdminCredentials {
  /** Address the request came from (the limiter's key); `local` for the Unix socket. */
  source: string;
  /** The `Authorization: Bearer` value, if any. */
  bearer?: string;
  /** The client certificate the TLS handshake verified against our CA, if any. */
  certificate?: PresentedCertificate;
  /** The Unix socket in the data directory (0600): the local operator, self-reported user name. */
  local?: { user: string };
}

export type Authentication =
  | { principal: AdminPrincipal }
  | { refused: 'unauthenticated'; detail: string }
  | { refused: 'rate-limited'; retryAfterSeconds: number };

/**
 * Authentication and authorization of the admin API: a token, else a bound operator certificate, else the
 * local socket's operator (an admin: whoever can open the 0600 socket in the data directory can read the
 * database files themselves). Failures count per source address (AuthFailureLimiter); what a principal
 * may do is the pure table of policy/admin-rbac.ts.
 */
export class AdminAccess {
  constructor(private readonly deps: { tokens: AdminTokenService; operators: OperatorService; limiter: AuthFailureLimiter }) {}

  async authenticate(credentials: AdminCredentials): Promise<Authentication> {
    if (credentials.local !== undefined && credentials.bearer === undefined) {
      return { principal: { actor: cliActor(credentials.local.user), role: 'admin', groups: [], via: 'local' } };
    }
    const { limiter } = this.deps;
    if (credentials.bearer === undefined && credentials.certificate === undefined) {
      return { refused: 'unauthenticated', detail: 'send an admin token (Authorization: Bearer chy_...) or a bound operator client certificate' };
    }
    if (limiter.blocked(credentials.source)) return { refused: 'rate-limited', retryAfterSeconds: limiter.retryAfterSeconds(credentials.source) };
    const outcome =
      credentials.bearer !== undefined ? await this.deps.tokens.authenticate(credentials.bearer) : await this.deps.operators.authenticate(credentials.certificate!);
    if ('principal' in outcome) return outcome;
    await limiter.failed(credentials.source, outcome.failure);
    // One answer for every failure (unknown, wrong, expired, revoked): which one is for the audit log only.
    return { refused: 'unauthenticated', detail: credentials.bearer !== undefined ? 'the token is not valid' : 'the client certificate is not bound to an operator or not valid' };
  }

  authorize(principal: AdminPrincipal, action: AdminAction): Decision {
    return decide(principal, action);
  }
}

export type { AdminAction, Scope } from '../policy/admin-rbac.js';
