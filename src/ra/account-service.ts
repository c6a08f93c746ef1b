import type { Account } from '../core/account.js';
import type { Clock } from '../core/clock.js';
import { CaError } from '../core/errors.js';
import { newId } from '../core/ids.js';
import type { AcmeRegistrationAuthority } from './acme-ra.js';
import type { AcmeStoreAccess } from './acme-stores.js';
import type { EabService } from './eab-service.js';

/** The newAccount request as the ACME layer hands it over (see AcmeRegistrationAuthority.newAccount). */
export type NewAccountInput = Parameters<AcmeRegistrationAuthority['newAccount']>[0];

/** Accounts (RFC 8555 §7.3): creation with optional EAB, contact updates, deactivation, key rollover. */
export class AccountService {
  constructor(
    private readonly deps: { access: AcmeStoreAccess; eab: EabService; clock: Clock; eabRequired: boolean },
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
      termsOfServiceAgreed: input.termsOfServiceAgreed,
      createdAt: this.deps.clock.now(),
    };
    await this.deps.access.transaction(async (tx) => {
      await tx.accounts.insert(account);
      // Bound in the same transaction: a credential binds exactly one account, even under a race.
      if (credential && !(await tx.eab.bind(credential.kid, account.id, account.createdAt))) {
        throw new CaError('unauthorized', `externalAccountBinding kid "${credential.kid}" is already bound to an account`);
      }
    });
    return { account, created: true };
  }

  async update(account: Account, changes: { contacts?: string[]; deactivate?: boolean }): Promise<Account> {
    const accounts = this.deps.access.stores.accounts;
    let current = account;
    if (changes.contacts) current = await accounts.updateContacts(account.id, changes.contacts);
    if (changes.deactivate) current = await accounts.deactivate(account.id);
    return current;
  }

  /** §7.3.5: the new key must not belong to any account (409 conflict). */
  async changeKey(account: Account, newJwk: Record<string, string>, newThumbprint: string): Promise<Account> {
    const holder = await this.deps.access.stores.accounts.findByThumbprint(newThumbprint);
    if (holder) throw new CaError('conflict', 'the new key is already in use by an account');
    return this.deps.access.stores.accounts.updateKey(account.id, newJwk, newThumbprint);
  }
}
