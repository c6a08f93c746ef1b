import { generateKeyPairSync } from 'node:crypto';
import { calculateJwkThumbprint, type JWK } from 'jose';
import t from 'tap';
import { FakeClock } from '../../../src/core/clock.js';
import { isCaError } from '../../../src/core/errors.js';
import type { Group } from '../../../src/core/group.js';
import { freshPgDatabase } from '../../helpers/databases.js';
import { composeForTest } from '../../helpers/runtime.js';

/**
 * Two instances on one PostgreSQL (DESIGN.md rule 7): each keeps every group's policy in memory, so the
 * ACME hot path reads it without a round trip, and a policy applied on one instance takes effect on the
 * other as soon as its NOTIFY arrives. The second instance's clock stands still, so nothing but the
 * notification can make it read the groups again.
 */
const database = await freshPgDatabase(t);
if (database) {
  const env = { CHANCERY_DATABASE_URL: database.url };
  const { chancery: first } = await composeForTest({ env });
  t.teardown(() => first.close());
  const { chancery: second } = await composeForTest({ env, clock: new FakeClock(new Date()) });
  t.teardown(() => second.close());

  const policy = (suffixes: string[]): Group[] => [
    { name: 'default', contacts: [], policy: {} },
    { name: 'payments', contacts: [], policy: { identifiers: suffixes.map((value) => ({ type: 'suffix', value, shared: false })) } },
  ];
  const applied = await first.services.groups.apply(policy(['pay.internal']), { actor: 'cli:test' });

  const jwk = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'jwk' }) as Record<string, string>;
  const { account } = await second.services.ra.newAccount({
    publicJwk: jwk,
    jwkThumbprint: await calculateJwkThumbprint(jwk as JWK),
    contacts: [],
    termsOfServiceAgreed: true,
    onlyReturnExisting: false,
    newAccountUrl: `${second.acmeUrl}/acme/new-account`,
  });
  const refused = async (name: string): Promise<boolean> => {
    try {
      await second.services.ra.newOrder(account, { identifiers: [{ type: 'dns', value: name }] });
      return false;
    } catch (error) {
      if (isCaError(error, 'rejectedIdentifier')) return true;
      throw error;
    }
  };

  await t.test('ok/the second instance reads the groups once, then serves orders from memory', async (t) => {
    t.match(applied, { ok: true, applied: true });
    t.equal(await refused('api.pay.internal'), true, "a name in payments' scope is refused to a default-group account");
    t.equal(await refused('api.pay2.internal'), false, 'a name no group declares is not');
  });

  await t.test('ok/a policy applied on the first instance reaches the second by NOTIFY', async (t) => {
    t.match(await first.services.groups.apply(policy(['pay.internal', 'pay2.internal']), { actor: 'cli:test' }), { ok: true, applied: true });
    const deadline = Date.now() + 10_000;
    let seen = false;
    while (!seen && Date.now() < deadline) {
      seen = await refused('api.pay2.internal');
      if (!seen) await new Promise((resolve) => setTimeout(resolve, 50));
    }
    t.ok(seen, 'the second instance refuses the newly declared scope');
  });
}
