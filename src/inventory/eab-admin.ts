import type { EabCredential } from '../core/account.js';
import type { Clock } from '../core/clock.js';
import { CaError } from '../core/errors.js';
import type { DomainEvents } from '../core/events.js';
import { DEFAULT_GROUP, GROUP_NAME, type Labels } from '../core/group.js';
import type { Page } from '../core/page.js';
import type { AdminPrincipal } from '../core/principal.js';
import type { Queryable } from '../db/database.js';
import { inScope, type Scope } from '../policy/admin-rbac.js';
import type { EabService } from '../ra/eab-service.js';
import { groupsFilter } from './account-admin.js';
import { changeWithEvent, type StoreAccess } from './change-with-event.js';

export interface AdminEabStore {
  find(kid: string): Promise<{ credential: EabCredential } | undefined>;
  listPage(filter: { groups?: readonly string[] }, page: { cursor?: string; limit: number }): Promise<Page<EabCredential>>;
  revoke(kid: string, at: Date, by: string): Promise<EabCredential | undefined>;
}

/**
 * External Account Binding credentials (RFC 8555 §7.3.4) as administrators manage them: created through the
 * RA's EabService (the HMAC key is returned once, to be shown once), listed and revoked within the caller's
 * scope. A credential made without a group belongs to the default group.
 */
export class EabAdmin {
  constructor(
    private readonly deps: {
      access: StoreAccess<AdminEabStore>;
      eab: Pick<EabService, 'create'>;
      events: DomainEvents<Queryable>;
      clock: Clock;
      groupExists: (name: string) => Promise<boolean>;
    },
  ) {}

  async create(by: AdminPrincipal, scope: Scope, request: { group?: string; labels?: Labels }): Promise<{ credential: EabCredential; hmacKey: string }> {
    const group = request.group;
    if (group !== undefined && !GROUP_NAME.test(group)) throw new CaError('malformed', `group "${group.slice(0, 64)}" is not a group name (1-64 letters, digits, dots, dashes, underscores)`);
    // A group-admin names one of its groups (the first when it names none); another group is not there.
    const effective = group ?? (scope === 'all' ? undefined : scope[0]);
    if (effective !== undefined && (!inScope(scope, effective) || !(await this.deps.groupExists(effective)))) throw new CaError('notFound', `no group "${effective}"`);
    if (effective === undefined && !inScope(scope, DEFAULT_GROUP)) throw new CaError('notFound', `no group "${DEFAULT_GROUP}"`);
    return this.deps.eab.create({ ...(effective === undefined ? {} : { group: effective }), ...(request.labels ? { labels: request.labels } : {}), actor: by.actor });
  }

  list(scope: Scope, filter: { group?: string }, page: { cursor?: string; limit: number }): Promise<Page<EabCredential>> {
    return this.deps.access.stores.listPage(groupsFilter(scope, filter.group), page);
  }

  async get(kid: string, scope: Scope): Promise<EabCredential> {
    const found = await this.deps.access.stores.find(kid);
    if (found === undefined || !inScope(scope, found.credential.group ?? DEFAULT_GROUP)) throw new CaError('notFound', `no EAB credential ${kid.slice(0, 64)}`);
    return found.credential;
  }

  async revoke(by: AdminPrincipal, scope: Scope, kid: string): Promise<EabCredential> {
    const credential = await this.get(kid, scope);
    if (credential.boundAccountId !== undefined) {
      throw new CaError('conflict', `EAB credential ${kid} is already bound to account ${credential.boundAccountId}: deactivate the account instead`);
    }
    const revoked = await changeWithEvent(
      this.deps,
      'eab.revoked',
      (store) => store.revoke(kid, this.deps.clock.now(), by.actor),
      (done) => (done === undefined ? undefined : { type: 'eab.revoked', kid, ...(done.group === undefined ? {} : { group: done.group }), actor: by.actor }),
    );
    if (revoked === undefined) throw new CaError('conflict', `EAB credential ${kid} is already revoked or bound`);
    return revoked;
  }
}
