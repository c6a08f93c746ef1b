import { generateKeyPairSync } from 'node:crypto';
import type { Chancery } from '../../src/compose.js';
import type { Account } from '../../src/core/account.js';
import type { IssuedCertificate } from '../../src/core/certificate.js';
import type { Group } from '../../src/core/group.js';
import { AccountRepository } from '../../src/db/repositories/account-repository.js';
import { builders } from './builders.js';

/**
 * Fixtures of the inventory tests: groups with owners, accounts, and certificates issued by the test CA
 * for an account and group with a chosen lifetime (through CertificateIssuance, as an ACME finalize stores
 * them: the predecessor is recorded the same way).
 */
export async function applyGroups(chancery: Chancery, groups: { name: string; contacts?: string[] }[]): Promise<void> {
  const all: Group[] = [{ name: 'default', contacts: [], policy: {} }, ...groups.map((g) => ({ name: g.name, contacts: g.contacts ?? [], policy: {} }))];
  const outcome = await chancery.services.groups.apply(all, { actor: 'cli:test' });
  if (!outcome.ok) throw new Error(`groups not applied: ${JSON.stringify(outcome)}`);
}

export async function newAccount(chancery: Chancery, group: string): Promise<Account> {
  const account = builders(chancery.clock).buildAccount({ group, createdAt: chancery.clock.now() });
  await new AccountRepository(chancery.db).insert(account);
  return account;
}

export interface IssueRequest {
  account?: Account;
  group?: string;
  names: string[];
  /** Lifetime from now (notAfter = now + this - 1 s); the profile's when absent. */
  lifetimeMs?: number;
  replaces?: IssuedCertificate;
  /** The subject key (SPKI DER); a new P-256 key when absent. */
  spki?: Uint8Array;
}

export async function issue(chancery: Chancery, request: IssueRequest): Promise<IssuedCertificate> {
  const spki = request.spki ?? generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'der' });
  const now = chancery.clock.now().getTime();
  const group = request.group ?? request.account?.group;
  return chancery.services.issuance.issueForKey(
    spki,
    request.names.map((value) => ({ type: 'dns', value })),
    {
      ...(request.lifetimeMs === undefined ? {} : { notBefore: new Date(now), notAfter: new Date(now + request.lifetimeMs - 1000) }),
      metadata: {
        ...(request.account === undefined ? {} : { accountId: request.account.id }),
        ...(group === undefined ? {} : { group }),
        ...(request.replaces === undefined ? {} : { replacesSerial: request.replaces.serial }),
      },
    },
  );
}
