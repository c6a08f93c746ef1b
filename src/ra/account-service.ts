import type { Account } from '../core/account.js';
import type { Clock } from '../core/clock.js';
import { CaError } from '../core/errors.js';
import type { DomainEvent, DomainEvents } from '../core/events.js';
import { newId } from '../core/ids.js';
import type { AcmeRegistrationAuthority } from './acme-registration-authority.js';
import type { AcmeStoreAccess } from './acme-stores.js';
import type { EabService } from './eab-service.js';
import { changeWithEvent } from './event-transaction.js';
import type { Queryable } from '../db/database.js';

/** The newAccount request as the ACME layer hands it over (see AcmeRegistrationAuthority.newAccount). */
export type NewAccountInput = Parameters<AcmeRegistrationAuthority['newAccount']>[0];

/** Accounts (RFC 8555 §7.3): creation with optional EAB, contact updates, deactivation, key rollover. */
export class AccountService {
  constructor(
    private readonly deps: { access: AcmeStoreAccess; eab: EabService; clock: Clock; events: DomainEvents<Queryable>; eabRequired: boolean },
  ) {}

  async newAccount(input: NewAccountInput): Promise<{ account: Account; created: boolean }> {
    const { stores } = this.deps.access;
    const existing = await stores.accounts.findByThumbprint(input.jwkThumbprint);
    if (existing) {
      // §7.3.1: an existing key returns its account (200 + Location); a deactivated one is refused (§7.3.6).
      if (existing.status !== 'valid') throw new CaError('unauthorized', `account ${existing.id} is ${existing.status}`);
      return { account: existing, created: false };
    }
    if (input.onlyReturnExisting) throw new CaError('accountDoesNotExist', 'no account exists with this key');
    if (this.deps.eabRequired && !input.externalAccountBinding) {
      throw new CaError('externalAccountRequired', 'this server requires an externalAccountBinding: ask the operator for an EAB kid and HMAC key');
    }
    const credential = input.externalAccountBinding
      ? await this.deps.eab.verify(input.externalAccountBinding, input.publicJwk, input.newAccountUrl)
      : undefined;
    const account: Account = {
      id: newId(),
      status: 'valid',
      contacts: input.contacts,
      publicJwk: input.publicJwk,
      jwkThumbprint: input.jwkThumbprint,
      eabKid: credential?.kid,
      group: credential?.group,
      // Credentials never change once made, so the account keeps a copy: finalize records them with each
      // certificate without reading the credential again.
      ...(credential?.labels ? { labels: credential.labels } : {}),
      termsOfServiceAgreed: input.termsOfServiceAgreed,
      createdAt: this.deps.clock.now(),
    };
    const { events } = this.deps;
    const created: DomainEvent = { type: 'account.created', account };
    const used: DomainEvent | undefined = credential && { type: 'eab.used', kid: credential.kid, accountId: account.id, group: credential.group };
    await this.deps.access.transaction(async (stores, tx) => {
      await stores.accounts.insert(account);
      // Bound in the same transaction: a credential binds exactly one account, even under a race.
      if (credential && !(await stores.eab.bind(credential.kid, account.id, account.createdAt))) {
        throw new CaError('unauthorized', `externalAccountBinding kid "${credential.kid}" is already bound to an account`);
      }
      await events.committing(created, tx);
      if (used) await events.committing(used, tx);
    });
    await events.committed(created);
    if (used) await events.committed(used);
    return { account, created: true };
  }

  async update(account: Account, changes: { contacts?: string[]; deactivate?: boolean }): Promise<Account> {
    let current = account;
    if (changes.contacts) {
      const contacts = changes.contacts;
      current = await changeWithEvent(this.deps, 'account.changed', (stores) => stores.accounts.updateContacts(account.id, contacts), (changed) => ({
        type: 'account.changed',
        account: changed,
        change: 'contacts',
      }));
    }
    if (changes.deactivate) {
      current = await changeWithEvent(this.deps, 'account.deactivated', (stores) => stores.accounts.deactivate(account.id), (changed) => ({
        type: 'account.deactivated',
        account: changed,
      }));
    }
    return current;
  }

  /** §7.3.5: the new key must not belong to any account (409 conflict). */
  async changeKey(account: Account, newJwk: Record<string, string>, newThumbprint: string): Promise<Account> {
    const holder = await this.deps.access.stores.accounts.findByThumbprint(newThumbprint);
    if (holder) throw new CaError('conflict', 'the new key is already in use by an account');
    return changeWithEvent(this.deps, 'account.changed', (stores) => stores.accounts.updateKey(account.id, newJwk, newThumbprint), (changed) => ({
      type: 'account.changed',
      account: changed,
      change: 'key',
    }));
  }
}
