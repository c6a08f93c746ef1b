import type { Account } from '../core/account.js';
import { CaError } from '../core/errors.js';
import type { DomainEvents } from '../core/events.js';
import { DEFAULT_GROUP } from '../core/group.js';
import type { Page } from '../core/page.js';
import type { AdminPrincipal } from '../core/principal.js';
import type { Queryable } from '../db/database.js';
import { inScope, type Scope } from '../policy/admin-rbac.js';
import { changeWithEvent, type StoreAccess } from './change-with-event.js';

export interface AdminAccountStore {
  findById(id: string): Promise<Account | undefined>;
  list(filter: { status?: Account['status']; groups?: readonly string[] }, page: { cursor?: string; limit: number }): Promise<Page<Account>>;
  /** valid -> deactivated; throws 'notFound', or 'unauthorized' when the account is not valid. */
  deactivate(id: string): Promise<Account>;
}

/** ACME accounts as administrators see them: listed and deactivated within the caller's scope. */
export class AccountAdmin {
  constructor(private readonly deps: { access: StoreAccess<AdminAccountStore>; events: DomainEvents<Queryable> }) {}

  list(scope: Scope, filter: { status?: Account['status']; group?: string }, page: { cursor?: string; limit: number }): Promise<Page<Account>> {
    return this.deps.access.stores.list({ ...filter, ...groupsFilter(scope, filter.group) }, page);
  }

  /** An account in scope; another group's answers like one that does not exist. */
  async get(id: string, scope: Scope): Promise<Account> {
    const account = await this.deps.access.stores.findById(id);
    if (account === undefined || !inScope(scope, account.group ?? DEFAULT_GROUP)) throw new CaError('notFound', `no account ${id.slice(0, 64)}`);
    return account;
  }

  /** RFC 8555 §7.3.6 deactivation, by an administrator: final, and the account's orders stop. */
  async deactivate(by: AdminPrincipal, scope: Scope, id: string): Promise<Account> {
    const account = await this.get(id, scope);
    if (account.status !== 'valid') throw new CaError('conflict', `account ${id} is already ${account.status}`);
    return changeWithEvent(
      this.deps,
      'account.deactivated',
      (store) => store.deactivate(id),
      (deactivated) => ({ type: 'account.deactivated', account: deactivated, actor: by.actor }),
    ).catch((error: unknown) => {
      // Deactivated by someone else between the read and the compare-and-set.
      if (error instanceof CaError && error.kind === 'unauthorized') throw new CaError('conflict', `account ${id} is no longer valid`);
      throw error;
    });
  }
}

/** The groups a list reads: the filter within the scope; a filter outside it reads nothing (never reveals). */
export function groupsFilter(scope: Scope, group: string | undefined): { groups?: readonly string[] } {
  if (group === undefined) return scope === 'all' ? {} : { groups: scope };
  return { groups: inScope(scope, group) ? [group] : [] };
}
