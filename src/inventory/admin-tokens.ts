import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Clock } from '../core/clock.js';
import { MINUTE } from '../core/clock.js';
import { CaError } from '../core/errors.js';
import type { AdminAuthFailure, DomainEvents } from '../core/events.js';
import { GROUP_NAME } from '../core/group.js';
import type { Page } from '../core/page.js';
import { tokenActor, type AdminPrincipal, type AdminRole, type AdminToken } from '../core/principal.js';
import type { Queryable } from '../db/database.js';
import { inScope, MAX_TOKEN_LIFETIME_MS, tokenEscalation, type Scope } from '../policy/admin-rbac.js';
import { changeWithEvent, type StoreAccess } from './change-with-event.js';

/** What the token service stores (db/ AdminTokenRepository). */
export interface AdminTokenStore {
  insert(token: AdminToken, sha256: Uint8Array): Promise<void>;
  findForAuthentication(id: string): Promise<{ token: AdminToken; sha256: Uint8Array } | undefined>;
  findById(id: string): Promise<AdminToken | undefined>;
  list(filter: { groupsWithin?: readonly string[] }, page: { cursor?: string; limit: number }): Promise<Page<AdminToken>>;
  revoke(id: string, at: Date, by: AdminPrincipal['actor']): Promise<AdminToken | undefined>;
  recordUse(id: string, at: Date, unlessAfter: Date): Promise<void>;
}

export interface AdminTokenSettings {
  /** A token's lifetime when its creator names none. */
  defaultLifetimeMs: number;
  /** The longest a creator may ask for (never beyond MAX_TOKEN_LIFETIME_MS). */
  maxLifetimeMs: number;
}

/**
 * A token is `chy_<id>_<secret>`: a recognisable prefix (secret scanners and people can tell what leaked),
 * the public id (16 hex digits: what lists and audit entries name) and 256 random bits. Only its SHA-256 is
 * stored; a presented token's row is found by the id and its hash compared in constant time.
 */
export const TOKEN_PREFIX = 'chy_';
const TOKEN_FORMAT = /^chy_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/;
/** Last use is written at most this often per token: a request costs no write. */
export const LAST_USE_INTERVAL_MS = MINUTE;

export type TokenAuthentication = { principal: AdminPrincipal } | { failure: AdminAuthFailure };

export interface NewTokenRequest {
  role: AdminRole;
  groups?: readonly string[];
  /** From now; the configured default when absent. */
  lifetimeMs?: number;
  description?: string;
}

export class AdminTokenService {
  constructor(
    private readonly deps: {
      access: StoreAccess<AdminTokenStore>;
      events: DomainEvents<Queryable>;
      clock: Clock;
      settings: AdminTokenSettings;
      /** Whether a group exists (a token for a group that does not is refused). */
      groupExists: (name: string) => Promise<boolean>;
    },
  ) {}

  /** The new token (shown once: the caller hands `secret` to its requester and forgets it). */
  async create(by: AdminPrincipal, scope: Scope, request: NewTokenRequest): Promise<{ token: AdminToken; secret: string }> {
    const now = this.deps.clock.now();
    const groups = [...new Set(request.groups ?? [])];
    for (const group of groups) {
      if (!GROUP_NAME.test(group)) throw new CaError('malformed', `group "${group.slice(0, 64)}" is not a group name (1-64 letters, digits, dots, dashes, underscores)`);
    }
    if (request.role === 'group-admin' && groups.length === 0) throw new CaError('malformed', 'a group-admin token needs at least one group');
    if (request.role !== 'group-admin' && groups.length > 0) throw new CaError('malformed', `an ${request.role} token acts on every group: give it no groups`);
    const maxMs = Math.min(this.deps.settings.maxLifetimeMs, MAX_TOKEN_LIFETIME_MS);
    const lifetimeMs = request.lifetimeMs ?? this.deps.settings.defaultLifetimeMs;
    if (!Number.isInteger(lifetimeMs) || lifetimeMs < MINUTE || lifetimeMs > maxMs) {
      throw new CaError('malformed', `a token's lifetime must be from 1 minute to ${Math.floor(maxMs / 86_400_000)} days`);
    }
    // Another group's name answers as if it did not exist (never reveal it), and so does a missing one.
    for (const group of groups) {
      if (!inScope(scope, group) || !(await this.deps.groupExists(group))) throw new CaError('notFound', `no group "${group}"`);
    }
    const expiresAt = new Date(now.getTime() + lifetimeMs);
    const escalation = tokenEscalation(by, { role: request.role, groups, expiresAt });
    if (escalation !== undefined) throw new CaError('unauthorized', escalation);
    const id = randomBytes(8).toString('hex');
    const secret = `${TOKEN_PREFIX}${id}_${randomBytes(32).toString('base64url')}`;
    const token: AdminToken = {
      id,
      role: request.role,
      groups,
      description: (request.description ?? '').slice(0, 200),
      createdAt: now,
      createdBy: by.actor,
      expiresAt,
    };
    await changeWithEvent(
      this.deps,
      'admin.token.created',
      (store) => store.insert(token, sha256(secret)),
      () => ({ type: 'admin.token.created', token, actor: by.actor }),
    );
    return { token, secret };
  }

  list(scope: Scope, page: { cursor?: string; limit: number }): Promise<Page<AdminToken>> {
    return this.deps.access.stores.list(scope === 'all' ? {} : { groupsWithin: scope }, page);
  }

  /** A token in scope: an admin's or auditor's any token, a group-admin's only the tokens of its groups. */
  async get(id: string, scope: Scope): Promise<AdminToken> {
    const token = /^[0-9a-f]{16}$/.test(id) ? await this.deps.access.stores.findById(id) : undefined;
    if (token === undefined || !tokenInScope(token, scope)) throw new CaError('notFound', `no admin token ${id.slice(0, 40)}`);
    return token;
  }

  async revoke(by: AdminPrincipal, scope: Scope, id: string): Promise<AdminToken> {
    await this.get(id, scope);
    const revoked = await changeWithEvent(
      this.deps,
      'admin.token.revoked',
      (store) => store.revoke(id, this.deps.clock.now(), by.actor),
      (token) => (token === undefined ? undefined : { type: 'admin.token.revoked', token, actor: by.actor }),
    );
    if (revoked === undefined) throw new CaError('conflict', `admin token ${id} is already revoked`);
    return revoked;
  }

  /** Checks a presented token; records its use at most once a minute. */
  async authenticate(presented: string): Promise<TokenAuthentication> {
    const match = TOKEN_FORMAT.exec(presented);
    if (match === null) return { failure: 'malformed' };
    const found = await this.deps.access.stores.findForAuthentication(match[1]!);
    // Compared in constant time whether or not the id exists, so timing tells nothing about the secret.
    const equal = timingSafeEqual(sha256(presented), found?.sha256.length === 32 ? found.sha256 : new Uint8Array(32));
    if (found === undefined) return { failure: 'unknown' };
    if (!equal) return { failure: 'mismatch' };
    const { token } = found;
    const now = this.deps.clock.now();
    if (token.revokedAt !== undefined) return { failure: 'revoked' };
    if (token.expiresAt.getTime() <= now.getTime()) return { failure: 'expired' };
    if (token.lastUsedAt === undefined || now.getTime() - token.lastUsedAt.getTime() >= LAST_USE_INTERVAL_MS) {
      await this.deps.access.stores.recordUse(token.id, now, new Date(now.getTime() - LAST_USE_INTERVAL_MS));
    }
    return { principal: { actor: tokenActor(token.id), role: token.role, groups: token.groups, via: 'token', expiresAt: token.expiresAt } };
  }
}

export function tokenInScope(token: AdminToken, scope: Scope): boolean {
  return scope === 'all' || (token.groups.length > 0 && token.groups.every((group) => scope.includes(group)));
}

function sha256(text: string): Uint8Array {
  return new Uint8Array(createHash('sha256').update(text, 'utf8').digest());
}
