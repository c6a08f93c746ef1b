import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { EabCredential } from '../core/account.js';
import type { Actor } from '../core/audit.js';
import type { DomainEvent, DomainEvents } from '../core/events.js';
import type { Queryable } from '../db/database.js';
import type { Clock } from '../core/clock.js';
import { CaError } from '../core/errors.js';
import { GROUP_NAME, type Group, type Labels } from '../core/group.js';
import { newId } from '../core/ids.js';
import { labelsProblem } from '../policy/labels.js';
import type { EabStore } from './acme-stores.js';
import { sameJwk } from '../core/jwk.js';
import type { SecretBox } from '../keys/secret-box.js';

const HMAC_ALGORITHMS: Record<string, string> = { HS256: 'sha256', HS384: 'sha384', HS512: 'sha512' };

/**
 * External Account Binding (RFC 8555 §7.3.4). Operators create credentials (`chancery eab create`); the
 * HMAC key is shown once and stored sealed, because verifying a binding needs the key itself.
 */
export class EabService {
  /**
   * `events` and `transaction` (the store inside one transaction) raise `eab.created`, whose audit entry
   * commits with the credential (DESIGN.md rule 8).
   */
  constructor(
    private readonly deps: {
      store: EabStore;
      box: SecretBox;
      clock: Clock;
      events?: DomainEvents<Queryable>;
      transaction?: <T>(fn: (store: EabStore, tx: Queryable) => Promise<T>) => Promise<T>;
      /** Where a credential's group is looked up (db/ GroupRepository): it must exist. */
      groups?: { find(name: string): Promise<Group | undefined> };
    },
  ) {}

  /** `actor`: who creates it (DESIGN.md rule 8); Chancery itself when absent. */
  async create(options: { group?: string; labels?: Labels; actor?: Actor } = {}): Promise<{ credential: EabCredential; hmacKey: string }> {
    // Checked before anything is stored (DESIGN.md rule 3): the group named must exist (the `default` group
    // when none is), and the labels, which every certificate of the account will carry, must be acceptable.
    const { group } = options;
    if (group !== undefined) {
      if (!GROUP_NAME.test(group)) throw new CaError('malformed', `group "${group.slice(0, 80)}" must be 1-64 letters, digits, dots, dashes or underscores`);
      if (this.deps.groups !== undefined && (await this.deps.groups.find(group)) === undefined) {
        throw new CaError('notFound', `group "${group}" does not exist: add it to the policy first (chancery policy export > policy.yaml, edit, chancery policy apply policy.yaml)`);
      }
    }
    const labels = options.labels && Object.keys(options.labels).length > 0 ? { ...options.labels } : undefined;
    const problem = labels && labelsProblem(labels);
    if (problem) throw new CaError('malformed', problem);
    const kid = `kid-${newId(12)}`;
    const key = randomBytes(32);
    const createdAt = this.deps.clock.now();
    const stored = { kid, hmacKeyEncrypted: this.deps.box.seal(key, kid), group, ...(labels ? { labels } : {}), createdAt };
    const event: DomainEvent = { type: 'eab.created', kid, ...(options.group === undefined ? {} : { group: options.group }), actor: options.actor ?? 'system:chancery' };
    const { events, transaction } = this.deps;
    if (events?.hasCommitting('eab.created')) {
      if (transaction === undefined) throw new CaError('badConfig', 'EabService needs a transaction to record eab.created with the credential');
      await transaction(async (store, tx) => {
        await store.insert(stored);
        await events.committing(event, tx);
      });
    } else {
      await this.deps.store.insert(stored);
    }
    await events?.committed(event);
    return { credential: { kid, group, ...(labels ? { labels } : {}), createdAt }, hmacKey: key.toString('base64url') };
  }

  /**
   * Checks a binding JWS: protected header {alg HS*, kid, url = newAccount URL}, no nonce, payload = the
   * outer JWK, MAC valid under the credential's key, credential not yet bound. Returns the credential.
   */
  async verify(
    binding: { protected: string; payload: string; signature: string },
    outerJwk: Record<string, string>,
    newAccountUrl: string,
  ): Promise<EabCredential> {
    const header = decodeJson(binding.protected, 'protected header') as Record<string, unknown>;
    const hash = HMAC_ALGORITHMS[String(header.alg)];
    if (!hash) throw new CaError('malformed', `externalAccountBinding alg must be one of ${Object.keys(HMAC_ALGORITHMS).join(', ')}`);
    if (typeof header.kid !== 'string') throw new CaError('malformed', 'externalAccountBinding protected header needs a kid');
    if ('nonce' in header) throw new CaError('malformed', 'externalAccountBinding must not carry a nonce (RFC 8555 §7.3.4)');
    if (header.url !== newAccountUrl) throw new CaError('unauthorized', 'externalAccountBinding url must be the newAccount URL');
    const payloadJwk = decodeJson(binding.payload, 'payload') as Record<string, unknown>;
    if (!sameJwk(payloadJwk, outerJwk)) throw new CaError('malformed', 'externalAccountBinding payload must be the account key (the outer jwk)');

    const found = await this.deps.store.find(header.kid);
    if (!found) throw new CaError('unauthorized', `unknown externalAccountBinding kid "${header.kid.slice(0, 64)}"`);
    if (found.credential.revokedAt) throw new CaError('unauthorized', `externalAccountBinding kid "${header.kid}" has been revoked`);
    if (found.credential.boundAccountId) throw new CaError('unauthorized', `externalAccountBinding kid "${header.kid}" is already bound to an account`);
    const key = this.deps.box.open(found.hmacKeyEncrypted, found.credential.kid);
    const expected = createHmac(hash, key).update(`${binding.protected}.${binding.payload}`).digest();
    const given = Buffer.from(binding.signature, 'base64url');
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
      throw new CaError('unauthorized', 'externalAccountBinding MAC is invalid');
    }
    return found.credential;
  }
}

function decodeJson(part: string, what: string): unknown {
  if (typeof part !== 'string' || !/^[A-Za-z0-9_-]*$/.test(part)) throw new CaError('malformed', `externalAccountBinding ${what} is not base64url`);
  try {
    const value: unknown = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
    if (typeof value !== 'object' || value === null) throw new Error('not an object');
    return value;
  } catch (cause) {
    throw new CaError('malformed', `externalAccountBinding ${what} is not a JSON object`, { cause });
  }
}
