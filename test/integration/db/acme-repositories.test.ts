/**
 * The ACME repositories (0002_acme) in the shared repository suite (DESIGN.md rule 6): the same cases
 * against PGlite and PostgreSQL.
 */
import { randomBytes } from 'node:crypto';

import t, { type Test } from 'tap';

import type { IssuedCertificate } from '../../../src/core/certificate.js';
import { DAY, HOUR, MINUTE } from '../../../src/core/clock.js';
import type { Identifier } from '../../../src/core/identifier.js';
import type { Authorization, Order } from '../../../src/core/order.js';
import type { CaError } from '../../../src/core/errors.js';
import type { Database } from '../../../src/db/database.js';
import { AccountRepository } from '../../../src/db/repositories/account-repository.js';
import { AuthorizationRepository } from '../../../src/db/repositories/authorization-repository.js';
import { CertificateRepository, type FirstOcspRow } from '../../../src/db/repositories/certificate-repository.js';
import { OcspResponseRepository } from '../../../src/db/repositories/ocsp-repository.js';
import { ChallengeRepository } from '../../../src/db/repositories/challenge-repository.js';
import { EabRepository } from '../../../src/db/repositories/eab-repository.js';
import { GroupRepository } from '../../../src/db/repositories/group-repository.js';
import { NonceRepository } from '../../../src/db/repositories/nonce-repository.js';
import { OrderRepository } from '../../../src/db/repositories/order-repository.js';
import { builders, newSerial } from '../../helpers/builders.js';
import { insertRootIssuer, withEachDatabase } from '../../helpers/databases.js';
import { expectCaError } from '../../helpers/expect-error.js';

const T0 = new Date('2026-01-01T00:00:00.000Z');
const at = (ms: number): Date => new Date(T0.getTime() + ms);

const DNS: Identifier = { type: 'dns', value: 'web01.example.internal' };
const IP: Identifier = { type: 'ip', value: '10.0.0.7' };

// What the cases below lean on: two contacts, times off the whole second (milliseconds must survive a round
// trip), orders for a name and an address that expire 3 ms after their authorizations.
const { buildAccount, buildAuthorization, buildOrder, buildOrderFor, buildCertificate } = builders(T0, {
  account: { contacts: ['mailto:ops@example.internal', 'mailto:pki@example.internal'], createdAt: at(17) },
  authorization: { createdAt: at(1) },
  order: { identifiers: [DNS, IP], expires: at(7 * DAY + 3), createdAt: at(5) },
  certificate: { createdAt: at(9) },
});

async function suite(t: Test, db: Database): Promise<void> {
  const accounts = new AccountRepository(db);
  const eab = new EabRepository(db);
  const nonces = new NonceRepository(db);
  const orders = new OrderRepository(db);
  const authorizations = new AuthorizationRepository(db);
  const challenges = new ChallengeRepository(db);
  const certs = new CertificateRepository(db);

  // Certificates to replace and to finalize orders with.
  await insertRootIssuer(db, T0);
  async function storedCertificate(overrides: Partial<IssuedCertificate> = {}): Promise<IssuedCertificate> {
    const cert = buildCertificate(overrides);
    await certs.reserveSerial(cert.serial, cert.issuerId, cert.createdAt);
    await certs.insert(cert);
    return cert;
  }
  async function insertOrder(o: Order, fresh: Authorization[]): Promise<void> {
    await db.transaction((tx) => new OrderRepository(tx).insertWithAuthorizations(o, fresh));
  }

  // ---- accounts -----------------------------------------------------------------------------------------

  const alice = buildAccount();
  const bob = buildAccount({ contacts: [], termsOfServiceAgreed: false });

  await t.test('ok/account insert and find by id and by key', async (t) => {
    t.equal(await accounts.findById(alice.id), undefined);
    await accounts.insert(alice);
    await accounts.insert(bob);
    t.same(await accounts.findById(alice.id), alice, 'every field survives');
    t.same(await accounts.findByThumbprint(alice.jwkThumbprint), alice);
    t.same(await accounts.findById(bob.id), bob, 'empty contacts, no terms agreed');
    t.notOk('eabKid' in ((await accounts.findById(alice.id)) ?? {}), 'no eabKid key without EAB');
    t.equal(await accounts.findByThumbprint('nope'), undefined);
  });

  await t.test('fail/a second account with the same key is a conflict', async (t) => {
    const twin = buildAccount({ jwkThumbprint: alice.jwkThumbprint });
    await expectCaError(t, accounts.insert(twin), 'conflict', /^an account with this key already exists$/);
    t.equal(await accounts.findById(twin.id), undefined, 'nothing stored');
  });

  await t.test('ok/update contacts', async (t) => {
    const updated = await accounts.updateContacts(alice.id, ['mailto:new@example.internal']);
    t.same(updated.contacts, ['mailto:new@example.internal']);
    t.same(await accounts.findById(alice.id), updated);
    t.same((await accounts.updateContacts(alice.id, [])).contacts, [], 'contacts can be removed');
  });

  await t.test('ok/key rollover', async (t) => {
    const carol = buildAccount();
    await accounts.insert(carol);
    const newJwk = { kty: 'OKP', crv: 'Ed25519', x: randomBytes(32).toString('base64url') };
    const updated = await accounts.updateKey(carol.id, newJwk, 'carol-new-thumbprint');
    t.same(updated.publicJwk, newJwk);
    t.equal(updated.jwkThumbprint, 'carol-new-thumbprint');
    t.equal((await accounts.findByThumbprint('carol-new-thumbprint'))?.id, carol.id);
    t.equal(await accounts.findByThumbprint(carol.jwkThumbprint), undefined, 'the old key no longer finds it');
  });

  await t.test('fail/key rollover to a key another account holds is a conflict', async (t) => {
    await expectCaError(t, accounts.updateKey(bob.id, alice.publicJwk, alice.jwkThumbprint), 'conflict', /^an account with this key already exists$/);
    t.same(await accounts.findById(bob.id), bob, 'key unchanged');
  });

  await t.test('ok/deactivate, then the account takes no more changes', async (t) => {
    const dave = buildAccount();
    await accounts.insert(dave);
    const deactivated = await accounts.deactivate(dave.id);
    t.equal(deactivated.status, 'deactivated');
    t.equal((await accounts.findById(dave.id))?.status, 'deactivated');
    await expectCaError(t, accounts.deactivate(dave.id), 'unauthorized', /is deactivated/);
    await expectCaError(t, accounts.updateContacts(dave.id, ['mailto:x@example.internal']), 'unauthorized', /is deactivated/);
    await expectCaError(t, accounts.updateKey(dave.id, dave.publicJwk, 'another'), 'unauthorized', /is deactivated/);
    t.same((await accounts.findById(dave.id))?.contacts, dave.contacts, 'contacts unchanged');
  });

  const unknownAccountCases: { name: string; call: () => Promise<unknown> }[] = [
    { name: 'fail/deactivate an unknown account', call: () => accounts.deactivate('ghost') },
    { name: 'fail/update contacts of an unknown account', call: () => accounts.updateContacts('ghost', []) },
    { name: 'fail/rollover of an unknown account', call: () => accounts.updateKey('ghost', { kty: 'EC' }, 'ghost-tp') },
  ];
  for (const c of unknownAccountCases) {
    await t.test(c.name, async (t) => {
      await expectCaError(t, c.call(), 'notFound', /ghost does not exist/);
    });
  }

  // ---- EAB credentials ----------------------------------------------------------------------------------

  await t.test('ok/EAB credential insert, find and list', async (t) => {
    const key = new Uint8Array(randomBytes(48));
    // A credential names an existing group (0009_groups).
    await new GroupRepository(db).insert({ name: 'web-team', contacts: [], policy: {} }, at(1));
    await eab.insert({ kid: 'kid-web', hmacKeyEncrypted: key, group: 'web-team', createdAt: at(2) });
    await eab.insert({ kid: 'kid-plain', hmacKeyEncrypted: new Uint8Array([0, 255, 1]), createdAt: at(3) });
    const found = await eab.find('kid-web');
    t.same(found?.credential, { kid: 'kid-web', group: 'web-team', createdAt: at(2) });
    t.ok(found !== undefined && Buffer.from(found.hmacKeyEncrypted).equals(Buffer.from(key)), 'key bytes equal');
    t.equal(found?.hmacKeyEncrypted.constructor, Uint8Array, 'a plain Uint8Array');
    t.equal(await eab.find('nope'), undefined);
    t.same(await eab.list(), [
      { kid: 'kid-web', group: 'web-team', createdAt: at(2) },
      { kid: 'kid-plain', createdAt: at(3) },
    ]);
  });

  await t.test('fail/duplicate EAB kid keeps the first', async (t) => {
    await expectCaError(t, eab.insert({ kid: 'kid-web', hmacKeyEncrypted: new Uint8Array([9]), createdAt: at(4) }), 'conflict', /kid-web already exists/);
    t.equal((await eab.find('kid-web'))?.hmacKeyEncrypted.length, 48);
  });

  await t.test('ok/EAB binds once: account and binding in one transaction', async (t) => {
    const erin = buildAccount({ eabKid: 'kid-web', group: 'web-team' });
    const bound = await db.transaction(async (tx) => {
      await new AccountRepository(tx).insert(erin);
      return new EabRepository(tx).bind('kid-web', erin.id, at(60));
    });
    t.equal(bound, true);
    t.same(await accounts.findById(erin.id), erin, 'eabKid and group survive');
    t.same((await eab.find('kid-web'))?.credential, { kid: 'kid-web', group: 'web-team', createdAt: at(2), boundAccountId: erin.id, boundAt: at(60) });

    t.equal(await eab.bind('kid-web', bob.id, at(61)), false, 'a second bind is refused');
    t.equal((await eab.find('kid-web'))?.credential.boundAccountId, erin.id, 'still bound to the first');
    t.equal(await eab.bind('kid-unknown', bob.id, at(61)), false, 'an unknown kid binds nothing');
  });

  await t.test('fail/a second account naming a used credential', async (t) => {
    const frank = buildAccount({ eabKid: 'kid-web' });
    await expectCaError(t, accounts.insert(frank), 'unauthorized', /kid-web is already used/);
    t.equal(await accounts.findById(frank.id), undefined);
  });

  await t.test('fail/an account naming an unknown credential', async (t) => {
    const gina = buildAccount({ eabKid: 'kid-ghost' });
    await expectCaError(t, accounts.insert(gina), 'unauthorized', /kid-ghost does not exist/);
    t.equal(await accounts.findById(gina.id), undefined);
  });

  await t.test('fail/losing the bind race rolls the account back', async (t) => {
    const ivan = buildAccount();
    await eab.bind('kid-plain', bob.id, at(70));
    await t.rejects(
      db.transaction(async (tx) => {
        await new AccountRepository(tx).insert(ivan);
        if (!(await new EabRepository(tx).bind('kid-plain', ivan.id, at(71)))) throw new Error('already bound');
      }),
      { message: 'already bound' },
    );
    t.equal(await accounts.findById(ivan.id), undefined, 'no account without its binding');
  });

  // ---- nonces -------------------------------------------------------------------------------------------

  // Spent-nonce ids are issuedAt (6 bytes, big-endian ms) || random (16 bytes): see SignedNonceStore.
  const spentId = (issuedAtMs: number): Buffer => {
    const id = Buffer.alloc(22);
    id.writeUIntBE(T0.getTime() + issuedAtMs, 0, 6);
    randomBytes(16).copy(id, 6);
    return id;
  };
  const cutoff = (ms: number): Buffer => spentId(ms).subarray(0, 6);

  await t.test('ok/a nonce is spent once', async (t) => {
    const id = spentId(MINUTE);
    t.equal(await nonces.spend(id), true);
    t.equal(await nonces.spend(id), false, 'second use refused');
    t.equal(await nonces.spend(spentId(MINUTE)), true, 'another nonce of the same millisecond is another nonce');
  });

  await t.test('ok/concurrent spenders: exactly one wins', async (t) => {
    const id = spentId(2 * MINUTE);
    const results = await Promise.all(Array.from({ length: 6 }, () => nonces.spend(id)));
    t.equal(results.filter(Boolean).length, 1);
  });

  await t.test('ok/spend and read the account in one statement', async (t) => {
    const id = spentId(3 * MINUTE);
    const stored = await accounts.findById(alice.id);
    const first = await nonces.spendAndFindAccount(id, alice.id);
    t.equal(first.spent, true);
    t.same(first.account, stored, 'the account as stored');
    const again = await nonces.spendAndFindAccount(id, alice.id);
    t.equal(again.spent, false, 'a spent nonce stays spent');
    t.same(again.account, stored, 'the account is read either way');
    const nobody = await nonces.spendAndFindAccount(spentId(3 * MINUTE), 'no-such-account');
    t.same(nobody, { spent: true, account: undefined });
  });

  await t.test('ok/one statement spends several nonces, in order, each once', async (t) => {
    const [a, b] = [spentId(4 * MINUTE), spentId(4 * MINUTE)];
    t.equal(await nonces.spend(b), true, 'b spent beforehand');
    const stored = await accounts.findById(alice.id);
    const results = await nonces.spendMany([{ id: a, accountId: alice.id }, { id: b }, { id: a, accountId: 'no-such-account' }, { id: spentId(4 * MINUTE) }]);
    t.same(
      results.map((r) => r.spent),
      [true, false, false, true],
      'fresh, already spent, the same nonce again in the batch (refused), fresh',
    );
    t.same(results[0]!.account, stored, 'the account named with the first item');
    t.same(results.slice(1).map((r) => r.account), [undefined, undefined, undefined], 'no account asked for, or none by that id');
    t.equal(await nonces.spend(a), false, 'the batch recorded its spends');
    t.same(await nonces.spendMany([]), []);
  });

  await t.test('ok/concurrent batches sharing nonces: each nonce spent exactly once', async (t) => {
    const ids = Array.from({ length: 8 }, () => spentId(5 * MINUTE));
    // Two batches with the same nonces in opposite orders (two instances racing): no deadlock, one winner each.
    const [forward, backward] = await Promise.all([
      nonces.spendMany(ids.map((id) => ({ id }))),
      nonces.spendMany([...ids].reverse().map((id) => ({ id }))),
    ]);
    const wins = ids.map((_, i) => Number(forward[i]!.spent) + Number(backward[ids.length - 1 - i]!.spent));
    t.same(wins, ids.map(() => 1));
  });

  await t.test('fail/a malformed id is refused by the table', async (t) => {
    await t.rejects(nonces.spend(Buffer.alloc(5)));
  });

  await t.test('ok/purge removes records below the cutoff only', async (t) => {
    const old = spentId(-HOUR);
    const recent = spentId(HOUR);
    t.equal(await nonces.spend(old), true);
    t.equal(await nonces.spend(recent), true);
    t.equal(await nonces.purgeSpent(cutoff(0)), 1, 'the one issued before T0');
    t.equal(await nonces.spend(recent), false, 'records at or after the cutoff stay');
    t.equal(await nonces.purgeSpent(cutoff(HOUR)), 16, 'the sixteen spent at one to five minutes');
    t.equal(await nonces.spend(recent), false);
  });

  // ---- orders -------------------------------------------------------------------------------------------

  const reusedAuthz = buildAuthorization({ accountId: alice.id, identifier: IP, status: 'valid', createdAt: at(2) });

  await t.test('ok/order with new and reused authorizations round trip', async (t) => {
    const first = buildOrder({ accountId: alice.id, authorizationIds: [reusedAuthz.id], identifiers: [IP] });
    await insertOrder(first, [reusedAuthz]);

    const fresh = buildAuthorization({ accountId: alice.id, identifier: DNS });
    const second = buildOrder({
      accountId: alice.id,
      authorizationIds: [fresh.id, reusedAuthz.id],
      notBefore: at(HOUR),
      notAfter: at(30 * DAY),
      createdAt: at(6),
    });
    await insertOrder(second, [fresh]);

    t.same(await orders.findById(second.id), second, 'every field survives');
    t.same((await orders.findById(second.id))?.authorizationIds, [fresh.id, reusedAuthz.id], 'ids in the order given');
    t.same((await orders.findById(first.id))?.authorizationIds, [reusedAuthz.id]);
    t.same(await authorizations.findById(fresh.id), fresh, 'new authorization and challenges stored');
    t.same(await authorizations.findById(reusedAuthz.id), reusedAuthz, 'reused one unchanged');
    t.equal(await orders.findById('nope'), undefined);
  });

  await t.test('fail/an order leaning on another account\'s authorization stores nothing', async (t) => {
    const fresh = buildAuthorization({ accountId: bob.id, identifier: DNS });
    const o = buildOrder({ accountId: bob.id, authorizationIds: [fresh.id, reusedAuthz.id] });
    await expectCaError(t, insertOrder(o, [fresh]), 'serverInternal', /do not exist for account/);
    t.equal(await orders.findById(o.id), undefined);
    t.equal(await authorizations.findById(fresh.id), undefined, 'the new authorization rolled back too');
  });

  await t.test('fail/a new authorization of another account is refused', async (t) => {
    const fresh = buildAuthorization({ accountId: alice.id, identifier: DNS });
    const o = buildOrder({ accountId: bob.id, authorizationIds: [fresh.id] });
    await expectCaError(t, insertOrder(o, [fresh]), 'serverInternal', /belongs to another account/);
    t.equal(await authorizations.findById(fresh.id), undefined);
  });

  await t.test('fail/an order of an unknown account', async (t) => {
    const o = buildOrder({ accountId: 'ghost' });
    await expectCaError(t, insertOrder(o, []), 'notFound', /account ghost does not exist/);
  });

  await t.test('ok/list order ids newest first, paged', async (t) => {
    const paul = buildAccount();
    await accounts.insert(paul);
    // Two share a created_at: the id breaks the tie, and paging neither repeats nor skips one.
    const created = [at(10), at(20), at(20), at(30), at(40)];
    const ids: string[] = [];
    for (const createdAt of created) {
      const o = buildOrder({ accountId: paul.id, createdAt });
      await insertOrder(o, []);
      ids.push(o.id);
    }
    const all = await orders.listIdsByAccount(paul.id, undefined, 100);
    t.equal(all.ids.length, 5);
    t.notOk('nextCursor' in all, 'no cursor when everything fits');
    t.same(all.ids.slice(0, 1), [ids[4]], 'newest first');
    t.same(all.ids.slice(2, 4).sort(), [ids[1], ids[2]].sort(), 'ties together');
    t.same(all.ids[4], ids[0], 'oldest last');

    const seen: string[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const page = await orders.listIdsByAccount(paul.id, cursor, 2);
      t.ok(page.ids.length <= 2);
      seen.push(...page.ids);
      cursor = page.nextCursor;
      pages++;
    } while (cursor !== undefined && pages < 10);
    t.equal(pages, 3);
    t.same(seen, all.ids, 'the pages put together are the whole list in order');

    // An order added after the first page was read does not disturb the pages that follow.
    const first = await orders.listIdsByAccount(paul.id, undefined, 2);
    await insertOrder(buildOrder({ accountId: paul.id, createdAt: at(50) }), []);
    const rest = await orders.listIdsByAccount(paul.id, first.nextCursor, 10);
    t.same([...first.ids, ...rest.ids], all.ids);

    t.same(await orders.listIdsByAccount('nobody', undefined, 2), { ids: [] });
  });

  for (const cursor of ['%%%', 'bm90LWEtY3Vyc29y', Buffer.from('x.id').toString('base64url')]) {
    await t.test(`fail/a malformed cursor ${cursor}`, async (t) => {
      await expectCaError(t, orders.listIdsByAccount(alice.id, cursor, 2), 'malformed', /cursor/);
    });
  }

  await t.test('ok/order status compare-and-set', async (t) => {
    const o = buildOrder({ accountId: alice.id, authorizationIds: [reusedAuthz.id], identifiers: [IP] });
    await insertOrder(o, []);
    const ready = await orders.updateStatus(o.id, ['pending'], 'ready');
    t.equal(ready?.status, 'ready');
    t.same(ready?.authorizationIds, [reusedAuthz.id], 'authorization ids come back with the update');
    t.equal(await orders.updateStatus(o.id, ['pending'], 'ready'), undefined, 'wrong from: undefined');
    t.equal((await orders.findById(o.id))?.status, 'ready', 'unchanged');
    t.equal(await orders.updateStatus('ghost', ['pending'], 'ready'), undefined, 'unknown order: undefined');

    const cert = await storedCertificate();
    t.ok(await orders.updateStatus(o.id, ['ready'], 'processing'));
    const valid = await orders.updateStatus(o.id, ['processing'], 'valid', { certificateSerial: cert.serial });
    t.equal(valid?.status, 'valid');
    t.equal(valid?.certificateSerial, cert.serial);
    t.same(await orders.findById(o.id), valid);
  });

  await t.test('ok/an invalid order keeps its problem', async (t) => {
    const o = buildOrder({ accountId: alice.id, authorizationIds: [reusedAuthz.id], identifiers: [IP] });
    await insertOrder(o, []);
    const problem = {
      kind: 'rejectedIdentifier' as const,
      detail: 'one identifier is not allowed',
      subproblems: [{ kind: 'rejectedIdentifier' as const, detail: 'not ours', identifier: { type: 'dns', value: 'evil.example' } }],
    };
    const invalid = await orders.updateStatus(o.id, ['pending', 'ready'], 'invalid', { error: problem });
    t.same(invalid?.error, problem);
    t.same((await orders.findById(o.id))?.error, problem);
  });

  await t.test('fail/an order cannot turn valid without a stored certificate', async (t) => {
    const o = buildOrder({ accountId: alice.id, status: 'processing' });
    await insertOrder(o, []);
    await expectCaError(t, orders.updateStatus(o.id, ['processing'], 'valid', { certificateSerial: 'abcdef' }), 'serverInternal', /abcdef/);
    await expectCaError(t, orders.updateStatus(o.id, ['processing'], 'valid'), 'serverInternal', /cannot become valid/);
    t.equal((await orders.findById(o.id))?.status, 'processing');
  });

  await t.test('ok/a certificate is replaced once; a failed replacement frees it', async (t) => {
    const old = await storedCertificate();
    t.equal(await orders.findActiveByReplaces(old.serial), undefined);
    const r1 = buildOrder({ accountId: alice.id, replacesSerial: old.serial });
    await insertOrder(r1, []);
    t.same(await orders.findActiveByReplaces(old.serial), r1);

    const fresh = buildAuthorization({ accountId: alice.id, identifier: DNS });
    const r2 = buildOrder({ accountId: alice.id, authorizationIds: [fresh.id], replacesSerial: old.serial });
    await expectCaError(t, insertOrder(r2, [fresh]), 'alreadyReplaced', new RegExp(`^certificate ${old.serial} has already been replaced$`));
    t.equal(await orders.findById(r2.id), undefined, 'second order not stored');
    t.equal(await authorizations.findById(fresh.id), undefined, 'nor its authorization');

    await orders.updateStatus(r1.id, ['pending'], 'invalid', { error: { kind: 'unauthorized', detail: 'challenge failed' } });
    t.equal(await orders.findActiveByReplaces(old.serial), undefined, 'the invalid order no longer counts');
    const r3 = buildOrder({ accountId: alice.id, replacesSerial: old.serial });
    await insertOrder(r3, []);
    t.equal((await orders.findActiveByReplaces(old.serial))?.id, r3.id);
  });

  await t.test('ok/concurrent replacements of one certificate: exactly one succeeds', async (t) => {
    const old = await storedCertificate();
    const attempts = Array.from({ length: 4 }, () => buildOrder({ accountId: alice.id, replacesSerial: old.serial }));
    const results = await Promise.allSettled(attempts.map((o) => insertOrder(o, [])));
    t.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
    for (const r of results) {
      if (r.status === 'rejected') t.equal((r.reason as { kind?: string }).kind, 'alreadyReplaced');
    }
  });

  await t.test('ok/batched new orders: stored together; a replacement conflict fails only its own order', async (t) => {
    const batched = new OrderRepository(db, { batch: true });
    const old = await storedCertificate();
    const made = Array.from({ length: 4 }, (_, i) => {
      const fresh = buildAuthorization({ accountId: alice.id, identifier: { type: 'dns', value: `batch${i}.example.internal` } });
      return { o: buildOrder({ accountId: alice.id, authorizationIds: [fresh.id], identifiers: [fresh.identifier], replacesSerial: i >= 2 ? old.serial : undefined }), fresh };
    });
    const results = await Promise.allSettled(made.map(({ o, fresh }) => batched.insertWithAuthorizations(o, [fresh])));
    const outcomes = results.map((r) => (r.status === 'fulfilled' ? 'ok' : (r.reason as CaError).kind));
    t.same(outcomes.slice(0, 2), ['ok', 'ok'], 'orders without a replacement are stored');
    t.same([...outcomes.slice(2)].sort(), ['alreadyReplaced', 'ok'], 'of two replacing one certificate, one is stored');
    for (const [i, { o, fresh }] of made.entries()) {
      const stored = outcomes[i] === 'ok';
      t.same((await orders.findById(o.id))?.authorizationIds, stored ? [fresh.id] : undefined, `order ${i} ${stored ? 'stored with its authorization' : 'not stored'}`);
      t.equal((await authorizations.findById(fresh.id))?.challenges.length, stored ? 3 : undefined);
    }
  });

  await t.test('fail/replacing an unknown certificate', async (t) => {
    await expectCaError(t, insertOrder(buildOrder({ accountId: alice.id, replacesSerial: 'abc123' }), []), 'notFound', /certificate abc123 does not exist/);
  });

  // ---- authorizations -----------------------------------------------------------------------------------

  await t.test('ok/authorization reuse lookup', async (t) => {
    const rita = buildAccount();
    await accounts.insert(rita);
    const name: Identifier = { type: 'dns', value: 'reuse.example.internal' };
    const validOld = buildAuthorization({ accountId: rita.id, identifier: name, status: 'valid', createdAt: at(1), expires: at(10 * DAY) });
    const pendingNew = buildAuthorization({ accountId: rita.id, identifier: name, createdAt: at(2), expires: at(10 * DAY) });
    const validSoon = buildAuthorization({ accountId: rita.id, identifier: name, status: 'valid', createdAt: at(3), expires: at(DAY) });
    const invalid = buildAuthorization({ accountId: rita.id, identifier: name, status: 'invalid', createdAt: at(4), expires: at(10 * DAY) });
    const wildcard = buildAuthorization({ accountId: rita.id, identifier: name, wildcard: true, createdAt: at(5), expires: at(10 * DAY) });
    await db.transaction((tx) => new AuthorizationRepository(tx).insertMany([validOld, pendingNew, validSoon, invalid, wildcard]));

    t.equal((await authorizations.findReusable(rita.id, name, false, at(HOUR)))?.id, validSoon.id, 'valid preferred, newest valid first');
    t.same(await authorizations.findReusable(rita.id, name, false, at(2 * DAY)), validOld, 'one expiring too soon is skipped');
    t.equal((await authorizations.findReusable(rita.id, name, true, at(HOUR)))?.id, wildcard.id, 'wildcard only matches wildcard');
    await authorizations.updateStatus(validOld.id, ['valid'], 'deactivated');
    t.equal((await authorizations.findReusable(rita.id, name, false, at(2 * DAY)))?.id, pendingNew.id, 'then a pending one');
    t.equal(await authorizations.findReusable(rita.id, name, false, at(11 * DAY)), undefined, 'none lasts that long');
    t.equal(await authorizations.findReusable(alice.id, name, false, at(HOUR)), undefined, 'never another account\'s');
    t.equal(await authorizations.findReusable(rita.id, { type: 'ip', value: 'reuse.example.internal' }, false, at(HOUR)), undefined, 'type matters');
  });

  await t.test('ok/find authorizations by ids keeps the order asked', async (t) => {
    const a = buildAuthorization({ accountId: alice.id, identifier: { type: 'dns', value: 'a.example.internal' } });
    const b = buildAuthorization({ accountId: alice.id, identifier: { type: 'dns', value: 'b.example.internal' } });
    await authorizations.insertMany([a, b]);
    t.same(
      (await authorizations.findByIds([b.id, 'ghost', a.id])).map((x) => x.id),
      [b.id, a.id],
      'missing ids left out',
    );
    t.same(
      (await authorizations.findById(a.id))?.challenges.map((c) => c.type),
      ['dns-01', 'http-01', 'tls-alpn-01'],
      'challenges ordered by type',
    );
    t.same(await authorizations.findByIds([]), []);
    t.equal(await authorizations.findById('ghost'), undefined);

    // The pool's instance gathers concurrent reads into one statement; each caller still gets its own answer.
    const batched = new AuthorizationRepository(db, { batch: true });
    const answers = await Promise.all([
      batched.findByIds([b.id, 'ghost', a.id]),
      batched.findById(a.id),
      batched.findByIds(['ghost']),
      batched.findByIds([a.id, a.id]),
    ]);
    t.same(
      [answers[0].map((x) => x.id), answers[1]?.id, answers[2], answers[3].map((x) => x.id)],
      [[b.id, a.id], a.id, [], [a.id, a.id]],
      'batched reads answer each call in its own order',
    );
    t.same(answers[1], await authorizations.findById(a.id), 'the same authorization, challenges included');
  });

  await t.test('ok/authorization status compare-and-set and expiry sweep', async (t) => {
    const sam = buildAccount();
    await accounts.insert(sam);
    const a = buildAuthorization({ accountId: sam.id, identifier: DNS, expires: at(DAY) });
    const b = buildAuthorization({ accountId: sam.id, identifier: DNS, status: 'valid', expires: at(2 * DAY) });
    const c = buildAuthorization({ accountId: sam.id, identifier: DNS, status: 'invalid', expires: at(DAY) });
    await authorizations.insertMany([a, b, c]);
    t.equal((await authorizations.updateStatus(a.id, ['pending'], 'deactivated'))?.status, 'deactivated');
    t.equal(await authorizations.updateStatus(a.id, ['pending'], 'valid'), undefined, 'wrong from: undefined');
    const beforeOthers = await db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM authorizations WHERE status IN ('pending', 'valid') AND expires <= $1`,
      [at(2 * DAY)],
    );
    const expired = await authorizations.expireDue(at(2 * DAY));
    t.equal(expired, beforeOthers.rows[0]?.n, 'every due pending/valid one, b included');
    t.equal((await authorizations.findById(b.id))?.status, 'expired', 'valid at its expiry -> expired');
    t.equal((await authorizations.findById(a.id))?.status, 'deactivated', 'deactivated stays');
    t.equal((await authorizations.findById(c.id))?.status, 'invalid', 'invalid stays');
    t.equal(await authorizations.expireDue(at(2 * DAY)), 0, 'idempotent');
  });

  // ---- challenges ---------------------------------------------------------------------------------------

  const tom = buildAccount();
  const authzForChallenges = [DNS, IP, { type: 'dns' as const, value: 'c.example.internal' }].map((id) =>
    buildAuthorization({ accountId: tom.id, identifier: id }),
  );
  const [chDns, chIp, chThird] = authzForChallenges.map((a) => a.challenges[1]!); // http-01 of each

  await t.test('ok/challenge start processing is a compare-and-set', async (t) => {
    await accounts.insert(tom);
    await authorizations.insertMany(authzForChallenges);
    t.same(await challenges.findById(chDns!.id), chDns);
    const started = await challenges.startProcessing(chDns!.id, at(MINUTE));
    t.equal(started?.status, 'processing');
    t.same(started?.nextAttemptAt, at(MINUTE));
    t.equal(await challenges.startProcessing(chDns!.id, at(2 * MINUTE)), undefined, 'second start: undefined');
    t.same((await challenges.findById(chDns!.id))?.nextAttemptAt, at(MINUTE), 'unchanged');
    t.equal(await challenges.startProcessing('ghost', at(MINUTE)), undefined);
    t.equal(await challenges.findById('ghost'), undefined);
  });

  await t.test('ok/claim due challenges leases them', async (t) => {
    await challenges.startProcessing(chIp!.id, at(MINUTE));
    await challenges.startProcessing(chThird!.id, at(10 * MINUTE)); // not due yet
    const lease = at(MINUTE + 30_000);
    const claimed = await challenges.claimDue(at(MINUTE), lease, 10);
    t.same(claimed.map((c) => c.id).sort(), [chDns!.id, chIp!.id].sort(), 'the due ones only');
    for (const c of claimed) t.same(c.nextAttemptAt, lease, 'leased until leaseUntil');
    t.same(await challenges.claimDue(at(MINUTE + 1000), lease, 10), [], 'a second claim during the lease gets nothing');
    const again = await challenges.claimDue(lease, at(MINUTE + 60_000), 1);
    t.equal(again.length, 1, 'after the lease it is due again; limit respected');
    const rest = await challenges.claimDue(lease, at(MINUTE + 60_000), 10);
    t.equal(rest.length, 1, 'the other one');
    t.not(rest[0]?.id, again[0]?.id);
  });

  await t.test('ok/concurrent claims never hand out one challenge twice', async (t) => {
    const batch = Array.from({ length: 8 }, (_, i) => buildAuthorization({ accountId: tom.id, identifier: { type: 'dns', value: `batch${i}.example.internal` } }));
    await authorizations.insertMany(batch);
    for (const a of batch) await challenges.startProcessing(a.challenges[0]!.id, at(HOUR));
    const claims = await Promise.all(Array.from({ length: 4 }, () => challenges.claimDue(at(HOUR), at(2 * HOUR), 3)));
    const ids = claims.flat().map((c) => c.id);
    t.equal(new Set(ids).size, ids.length, 'no challenge claimed twice');
    t.ok(ids.length >= 8, 'every due one was claimed by someone');
    for (const a of batch) t.ok(ids.includes(a.challenges[0]!.id));
  });

  await t.test('ok/retry, then valid', async (t) => {
    const problem = { kind: 'connection' as const, detail: 'connection refused' };
    const retried = await challenges.recordRetry(chDns!.id, 1, at(5 * MINUTE), problem);
    t.equal(retried?.attempts, 1);
    t.same(retried?.nextAttemptAt, at(5 * MINUTE));
    t.same(retried?.error, problem);
    const again = await challenges.recordRetry(chDns!.id, 2, at(9 * MINUTE));
    t.same(again?.error, problem, 'no new error keeps the last one');
    const valid = await challenges.markValid(chDns!.id, at(6 * MINUTE));
    t.equal(valid.status, 'valid');
    t.same(valid.validatedAt, at(6 * MINUTE));
    t.notOk('error' in valid, 'a valid challenge carries no error');
    t.notOk('nextAttemptAt' in valid, 'and no schedule');
    t.equal(valid.attempts, 2);
    t.same(await challenges.findById(chDns!.id), valid);
    t.equal(await challenges.recordRetry(chDns!.id, 3, at(HOUR)), undefined, 'no retry once valid');
  });

  await t.test('fail/marking a finished challenge again', async (t) => {
    await expectCaError(t, challenges.markValid(chDns!.id, at(HOUR)), 'conflict', /is valid, not processing/);
    await expectCaError(t, challenges.markInvalid(chDns!.id, { kind: 'dns', detail: 'x' }), 'conflict', /is valid, not processing/);
    await expectCaError(t, challenges.markValid('ghost', at(HOUR)), 'notFound', /ghost does not exist/);
    t.same((await challenges.findById(chDns!.id))?.validatedAt, at(6 * MINUTE), 'unchanged');
  });

  await t.test('ok/mark invalid with a problem', async (t) => {
    const problem = { kind: 'incorrectResponse' as const, detail: 'key authorization mismatch' };
    const invalid = await challenges.markInvalid(chIp!.id, problem);
    t.equal(invalid.status, 'invalid');
    t.same(invalid.error, problem);
    t.notOk('nextAttemptAt' in invalid);
    t.same(await challenges.claimDue(at(DAY), at(DAY + 1), 10).then((c) => c.map((x) => x.id).filter((id) => id === chIp!.id)), [], 'never claimed again');
  });

  await t.test('fail/a pending challenge cannot be marked valid', async (t) => {
    const pending = authzForChallenges[0]!.challenges[0]!;
    await expectCaError(t, challenges.markValid(pending.id, at(HOUR)), 'conflict', /is pending, not processing/);
  });

  // ---- one-statement paths of the ACME hot path (issue #3) ------------------------------------------------

  const uma = buildAccount();
  const umaName = (n: string): Identifier => ({ type: 'dns', value: `${n}.uma.example.internal` });

  await t.test('ok/reusable authorizations for several names in one read', async (t) => {
    await accounts.insert(uma);
    const pendingA = buildAuthorization({ accountId: uma.id, identifier: umaName('a'), createdAt: at(3) });
    const validA = buildAuthorization({ accountId: uma.id, identifier: umaName('a'), status: 'valid', createdAt: at(2) });
    const wildA = buildAuthorization({ accountId: uma.id, identifier: umaName('a'), wildcard: true, status: 'valid' });
    const expiringB = buildAuthorization({ accountId: uma.id, identifier: umaName('b'), status: 'valid', expires: at(HOUR) });
    const pendingB = buildAuthorization({ accountId: uma.id, identifier: umaName('b') });
    const othersC = buildAuthorization({ accountId: alice.id, identifier: umaName('c'), status: 'valid' });
    await authorizations.insertMany([pendingA, validA, wildA, expiringB, pendingB]);
    await authorizations.insertMany([othersC]);
    const found = await authorizations.findReusableMany(
      uma.id,
      [
        { identifier: umaName('a'), wildcard: false },
        { identifier: umaName('a'), wildcard: true },
        { identifier: umaName('b'), wildcard: false },
        { identifier: umaName('c'), wildcard: false },
      ],
      at(DAY),
    );
    const byKey = new Map(found.map((a) => [`${a.identifier.value}/${a.wildcard}`, a]));
    t.equal(found.length, 3, 'one per name at most; none for another account\'s');
    t.same(byKey.get('a.uma.example.internal/false'), validA, 'valid preferred to a newer pending one, challenges included');
    t.equal(byKey.get('a.uma.example.internal/true')?.id, wildA.id, 'the wildcard flag is part of the key');
    t.equal(byKey.get('b.uma.example.internal/false')?.id, pendingB.id, 'one expiring before validAfter is not reused');
    t.same(await authorizations.findReusableMany(uma.id, [], at(DAY)), []);
    t.same(await authorizations.findReusable(uma.id, umaName('a'), false, at(DAY)), validA, 'findReusable agrees');
    const batched = new AuthorizationRepository(db, { batch: true });
    const lookups = await Promise.all([
      batched.findReusableMany(uma.id, [{ identifier: umaName('a'), wildcard: false }, { identifier: umaName('b'), wildcard: false }], at(DAY)),
      batched.findReusableMany(alice.id, [{ identifier: umaName('c'), wildcard: false }, { identifier: umaName('a'), wildcard: false }], at(DAY)),
      batched.findReusableMany(uma.id, [{ identifier: umaName('b'), wildcard: false }], at(2 * DAY)),
    ]);
    t.same(
      lookups.map((found) => found.map((a) => a.id).sort()),
      [[validA.id, pendingB.id].sort(), [othersC.id], [pendingB.id]],
      'batched: each call its own account, names and time',
    );
    t.same(lookups[0]!.find((a) => a.id === validA.id), validA, 'challenges included');
  });

  async function umaOrder(names: string[], overrides: Partial<Order> = {}): Promise<{ o: Order; authz: Authorization[] }> {
    const authz = names.map((n) => buildAuthorization({ accountId: uma.id, identifier: umaName(n) }));
    const o = buildOrderFor(authz, overrides);
    await orders.insertWithAuthorizations(o, authz); // one statement: no transaction needed
    return { o, authz };
  }

  await t.test('ok/an order with its authorizations\' progress in one read', async (t) => {
    const { o, authz } = await umaOrder(['p1', 'p2']);
    t.same(await orders.findWithProgress(o.id, at(MINUTE)), { order: o, progress: { total: 2, usable: 0 } });
    await authorizations.updateStatus(authz[0]!.id, ['pending'], 'valid');
    t.same((await orders.findWithProgress(o.id, at(MINUTE)))?.progress, { total: 2, usable: 1 });
    t.same((await orders.findWithProgress(o.id, at(7 * DAY)))?.progress, { total: 2, usable: 0 }, 'a valid one past its expiry is not usable');
    await authorizations.updateStatus(authz[1]!.id, ['pending'], 'deactivated');
    t.same((await orders.findWithProgress(o.id, at(MINUTE)))?.progress, { total: 2, usable: 1, failedId: authz[1]!.id });
    const none = buildOrder({ accountId: uma.id, identifiers: [umaName('none')] });
    await orders.insertWithAuthorizations(none, []);
    t.same((await orders.findWithProgress(none.id, at(MINUTE)))?.progress, { total: 0, usable: 0 });
    t.equal(await orders.findWithProgress('ghost', at(MINUTE)), undefined);

    // Batched on the pool: each call answered with its own order and its own time.
    const batched = new OrderRepository(db, { batch: true });
    const answers = await Promise.all([
      batched.findWithProgress(o.id, at(MINUTE)),
      batched.findWithProgress('ghost', at(MINUTE)),
      batched.findWithProgress(o.id, at(7 * DAY)),
      batched.findWithProgress(none.id, at(MINUTE)),
    ]);
    t.same(
      answers.map((a) => (a === undefined ? undefined : [a.order.id, a.progress])),
      [[o.id, { total: 2, usable: 1, failedId: authz[1]!.id }], undefined, [o.id, { total: 2, usable: 0, failedId: authz[1]!.id }], [none.id, { total: 0, usable: 0 }]],
    );
    t.same(answers[0], await orders.findWithProgress(o.id, at(MINUTE)), 'the same answer as an unbatched read');
  });

  /** A signed certificate for one of uma's orders, with the serial its claim reserved. */
  const certificateFor = (order: Order, s: string): IssuedCertificate =>
    buildCertificate({ serial: s, identifiers: order.identifiers, notAfter: at(DAY), createdAt: at(MINUTE), accountId: uma.id, orderId: order.id });

  await t.test('ok/claim for issuance: the order and the serial together, once', async (t) => {
    const { o, authz } = await umaOrder(['c1']);
    const s1 = newSerial();
    t.equal(await orders.claimForIssuance(o.id, ['ready'], at(MINUTE), s1, 'root'), false, 'not ready: nothing happens');
    t.equal(await certs.isSerialReserved(s1), false, 'no serial reserved for an unclaimed order');
    await authorizations.updateStatus(authz[0]!.id, ['pending'], 'valid');
    t.equal(await orders.claimForIssuance(o.id, ['pending', 'ready'], at(7 * DAY + 3), s1, 'root'), false, 'an expired order is not claimed');
    const results = await Promise.all(
      Array.from({ length: 4 }, () => orders.claimForIssuance(o.id, ['pending', 'ready'], at(MINUTE), newSerial(), 'root')),
    );
    t.equal(results.filter(Boolean).length, 1, 'concurrent claims: exactly one');
    t.equal((await orders.findById(o.id))?.status, 'processing');

    const { o: other, authz: otherAuthz } = await umaOrder(['c2']);
    await authorizations.updateStatus(otherAuthz[0]!.id, ['pending'], 'valid');
    await certs.reserveSerial(s1, 'root', at(1));
    await expectCaError(t, orders.claimForIssuance(other.id, ['pending'], at(MINUTE), s1, 'root'), 'conflict', /already been used/);
    t.equal((await orders.findById(other.id))?.status, 'pending', 'a serial collision leaves the order as it was');
    await expectCaError(t, orders.claimForIssuance(other.id, ['pending'], at(MINUTE), newSerial(), 'no-such-issuer'), 'notFound', /issuer/);
    t.equal((await orders.findById(other.id))?.status, 'pending');
    const s2 = newSerial();
    t.equal(await orders.claimForIssuance(other.id, ['pending'], at(MINUTE), s2, 'root'), true);
    t.equal(await certs.isSerialReserved(s2), true, 'the serial is reserved with the claim (rule 2)');

    const cert = certificateFor(other, s2);
    t.equal(await certs.insertForOrder(cert, other.id), true);
    t.same(await certs.findBySerial(s2), cert, 'the certificate is stored');
    const done = await orders.findById(other.id);
    t.equal(done?.status, 'valid');
    t.equal(done?.certificateSerial, s2, 'the order names it, from the same statement');

    const s3 = newSerial();
    await certs.reserveSerial(s3, 'root', at(1));
    t.equal(await certs.insertForOrder({ ...cert, serial: s3 }, other.id), false, 'an order no longer processing does not move');
    t.ok(await certs.findBySerial(s3), 'but a signed certificate is always stored');
    t.equal((await orders.findById(other.id))?.certificateSerial, s2);
    await expectCaError(t, certs.insertForOrder({ ...cert, serial: newSerial() }, other.id), 'serverInternal', /not reserved/);
  });

  await t.test('ok/batched claims and certificate stores: each its own answer, one failure fails only itself', async (t) => {
    const batchedOrders = new OrderRepository(db, { batch: true });
    const batchedCerts = new CertificateRepository(db, { batch: true });
    const made = await Promise.all(['b1', 'b2', 'b3'].map((n) => umaOrder([n])));
    for (const { authz } of made) await authorizations.updateStatus(authz[0]!.id, ['pending'], 'valid');
    const [a, b, c] = made.map((m) => m.o) as [Order, Order, Order];
    const used = newSerial();
    await certs.reserveSerial(used, 'root', at(1));
    const serials = [newSerial(), newSerial(), newSerial(), newSerial()];
    const claims = await Promise.allSettled([
      batchedOrders.claimForIssuance(a.id, ['ready', 'pending'], at(MINUTE), serials[0]!, 'root'),
      batchedOrders.claimForIssuance(b.id, ['ready', 'pending'], at(MINUTE), used, 'root'),
      batchedOrders.claimForIssuance(c.id, ['ready', 'pending'], at(MINUTE), serials[1]!, 'root'),
      batchedOrders.claimForIssuance(c.id, ['ready', 'pending'], at(MINUTE), serials[2]!, 'root'),
    ]);
    const answers = claims.map((r) => (r.status === 'fulfilled' ? r.value : (r.reason as CaError).kind));
    t.same(answers.slice(0, 2), [true, 'conflict'], 'claimed; a used serial fails alone');
    // The failed batch is retried claim by claim, concurrently: either claim of c may be the one that wins.
    t.same([...answers.slice(2)].sort(), [false, true], 'the same order twice: claimed once');
    const cSerial = answers[2] === true ? serials[1]! : serials[2]!;
    t.equal((await orders.findById(b.id))?.status, 'pending', 'the order of the failed claim is untouched');
    t.same(
      await Promise.all(serials.map((s) => certs.isSerialReserved(s))),
      serials.map((s) => s === serials[0] || s === cSerial),
      'serials reserved exactly for the claims that won',
    );

    const certA = certificateFor(a, serials[0]!);
    // A first OCSP response stored in the certificate's statement (the bytes are opaque to the store).
    const firstOcsp = (n: number): FirstOcspRow => ({
      der: Buffer.from([0x30, 0x03, 0x0a, 0x01, n]),
      thisUpdate: at(MINUTE),
      nextUpdate: at(MINUTE + 7 * DAY),
      refreshAfter: at(MINUTE + 3 * DAY),
      responderGeneration: 1,
      updatedAt: at(MINUTE),
    });
    const stores = await Promise.allSettled([
      batchedCerts.insertForOrder(certA, a.id, firstOcsp(0)),
      batchedCerts.insertForOrder(certificateFor(b, serials[3]!), b.id, firstOcsp(3)),
      batchedCerts.insertForOrder(certificateFor(c, cSerial), c.id),
    ]);
    t.same(
      stores.map((r) => (r.status === 'fulfilled' ? r.value : (r.reason as CaError).kind)),
      [true, 'serverInternal', true],
      'stored with their orders; an unreserved serial fails alone',
    );
    t.same(await certs.findBySerial(serials[0]!), certA, 'stored as given (DER, dates, ACME fields)');
    t.same(
      [(await orders.findById(a.id))?.certificateSerial, (await orders.findById(c.id))?.certificateSerial],
      [serials[0], cSerial],
      'each order names its own certificate',
    );
    t.equal(await certs.findBySerial(serials[3]!), undefined, 'nothing stored for the failed one');
    const responses = new OcspResponseRepository(db);
    t.match(
      await responses.find(serials[0]!),
      { serial: serials[0], issuerId: 'root', status: 'good', der: firstOcsp(0).der, thisUpdate: at(MINUTE), refreshAfter: at(MINUTE + 3 * DAY), responderGeneration: 1 },
      'the first OCSP response is stored with its certificate',
    );
    t.equal(await responses.find(serials[3]!), undefined, 'none for the certificate that failed');
    t.equal(await responses.find(cSerial), undefined, 'none where none was given');
  });

  await t.test('ok/respond to a challenge: checked and started in one statement', async (t) => {
    const { authz } = await umaOrder(['r1']);
    const http = authz[0]!.challenges.find((c) => c.type === 'http-01')!;
    const first = await challenges.respond(http.id, uma.id, at(MINUTE));
    t.equal(first?.started, true);
    t.same(first?.challenge, { ...http, status: 'processing', nextAttemptAt: at(MINUTE) });
    t.same(first?.authorization, { ...authz[0]!, challenges: authz[0]!.challenges.map((c) => (c.id === http.id ? first!.challenge : c)) });
    t.same(await challenges.findById(http.id), first?.challenge, 'stored as answered');
    const again = await challenges.respond(http.id, uma.id, at(2 * MINUTE));
    t.equal(again?.started, false, 'idempotent: already processing');
    t.same(again?.challenge, first?.challenge);

    const dns = authz[0]!.challenges.find((c) => c.type === 'dns-01')!;
    const foreign = await challenges.respond(dns.id, alice.id, at(MINUTE));
    t.equal(foreign?.started, false, 'another account cannot start it');
    t.equal(foreign?.authorization.accountId, uma.id, 'and the caller can tell why');
    t.equal((await challenges.findById(dns.id))?.status, 'pending');

    const { authz: late } = await umaOrder(['r2']);
    const expired = await challenges.respond(late[0]!.challenges[0]!.id, uma.id, at(7 * DAY));
    t.equal(expired?.started, false, 'not on an expired authorization');
    await authorizations.updateStatus(late[0]!.id, ['pending'], 'deactivated');
    t.equal((await challenges.respond(late[0]!.challenges[0]!.id, uma.id, at(MINUTE)))?.started, false, 'nor a deactivated one');
    t.equal(await challenges.respond('ghost', uma.id, at(MINUTE)), undefined);
  });

  await t.test('ok/batched responses and validations: each its own answer', async (t) => {
    const batched = new ChallengeRepository(db, { batch: true });
    const [{ o: o1, authz: [z1] }, { o: o2, authz: [z2] }] = await Promise.all([umaOrder(['q1']), umaOrder(['q2'])]);
    const h1 = z1!.challenges.find((c) => c.type === 'http-01')!;
    const h2 = z2!.challenges.find((c) => c.type === 'http-01')!;
    const lease = at(2 * MINUTE);
    const answers = await Promise.all([
      batched.respond(h1.id, uma.id, at(MINUTE), lease),
      batched.respond(h2.id, uma.id, at(MINUTE), lease),
      batched.respond(h2.id, uma.id, at(MINUTE), lease),
      batched.respond('ghost', uma.id, at(MINUTE), lease),
      batched.respond(h1.id, alice.id, at(MINUTE), lease),
    ]);
    t.same(
      answers.map((a) => a?.started),
      [true, true, false, undefined, false],
      'started; started; the same challenge again: not twice; unknown; another account: not started',
    );
    t.same(answers[0]?.challenge, { ...h1, status: 'processing', nextAttemptAt: lease }, 'the answer shows it processing, due at the lease');
    t.same(answers[1]?.authorization.id, z2!.id, 'with its own authorization');
    t.same(await challenges.findById(h2.id), { ...h2, status: 'processing', nextAttemptAt: lease });

    const finished = await Promise.allSettled([
      batched.markValidWithAuthorization(h1.id, at(3 * MINUTE)),
      batched.markValidWithAuthorization(h2.id, at(3 * MINUTE)),
      batched.markValidWithAuthorization(z1!.challenges.find((c) => c.type === 'dns-01')!.id, at(3 * MINUTE)),
      batched.markValidWithAuthorization('ghost', at(3 * MINUTE)),
    ]);
    t.same(
      finished.map((r) => (r.status === 'fulfilled' ? 'ok' : (r.reason as CaError).kind)),
      ['ok', 'ok', 'conflict', 'notFound'],
      'valid; valid; a pending challenge is not processing; unknown',
    );
    t.same(
      [(await challenges.findById(h1.id))?.validatedAt, (await authorizations.findById(z1!.id))?.status, (await orders.findById(o1.id))?.status],
      [at(3 * MINUTE), 'valid', 'ready'],
      'challenge valid, its authorization valid and its order ready',
    );
    t.equal((await orders.findById(o2.id))?.status, 'ready');
  });

  await t.test('ok/claim for validation brings the authorization and the account key', async (t) => {
    const { authz } = await umaOrder(['v1']);
    const http = authz[0]!.challenges.find((c) => c.type === 'http-01')!;
    await challenges.respond(http.id, uma.id, at(3 * DAY));
    const lease = at(3 * DAY + MINUTE);
    const claimed = (await challenges.claimDueForValidation(at(3 * DAY), lease, 100)).filter((c) => c.challenge.id === http.id);
    t.equal(claimed.length, 1);
    const { challenges: _c, ...withoutChallenges } = authz[0]!;
    t.same(claimed[0], { challenge: { ...http, status: 'processing', nextAttemptAt: lease }, authorization: withoutChallenges, accountThumbprint: uma.jwkThumbprint });
    t.same((await challenges.claimDueForValidation(at(3 * DAY), lease, 100)).filter((c) => c.challenge.id === http.id), [], 'leased');
  });

  await t.test('ok/a valid challenge makes its authorization valid and a waiting order ready, in one statement', async (t) => {
    const { o: single, authz: [a1] } = await umaOrder(['m1']);
    const { o: pair, authz: [b1, b2] } = await umaOrder(['m2', 'm3']);
    const start = async (a: Authorization): Promise<string> => {
      const id = a.challenges[0]!.id;
      await challenges.respond(id, uma.id, at(MINUTE));
      return id;
    };
    await challenges.markValidWithAuthorization(await start(a1!), at(2 * MINUTE));
    t.equal((await authorizations.findById(a1!.id))?.status, 'valid');
    t.same((await challenges.findById(a1!.challenges[0]!.id))?.validatedAt, at(2 * MINUTE));
    t.equal((await orders.findById(single.id))?.status, 'ready', 'its only authorization is valid: ready');

    await challenges.markValidWithAuthorization(await start(b1!), at(2 * MINUTE));
    t.equal((await orders.findById(pair.id))?.status, 'pending', 'one of two: still pending');
    await challenges.markValidWithAuthorization(await start(b2!), at(2 * MINUTE));
    t.equal((await orders.findById(pair.id))?.status, 'ready', 'both: ready');

    await expectCaError(t, challenges.markValidWithAuthorization(a1!.challenges[0]!.id, at(HOUR)), 'conflict', /is valid, not processing/);
    await expectCaError(t, challenges.markValidWithAuthorization('ghost', at(HOUR)), 'notFound', /ghost/);

    const { o: failing, authz: [f1] } = await umaOrder(['m4']);
    const problem = { kind: 'incorrectResponse' as const, detail: 'wrong key authorization' };
    await challenges.markInvalidWithAuthorization(await start(f1!), problem);
    t.same((await challenges.findById(f1!.challenges[0]!.id))?.error, problem);
    t.equal((await authorizations.findById(f1!.id))?.status, 'invalid');
    t.equal((await orders.findById(failing.id))?.status, 'pending', 'the order learns of it when next read (OrderService.refresh)');
  });

  // ---- certificates -------------------------------------------------------------------------------------

  await t.test('ok/ACME fields of a certificate round trip', async (t) => {
    const old = await storedCertificate();
    const o = buildOrder({ accountId: alice.id });
    await insertOrder(o, []);
    const cert = await storedCertificate({ accountId: alice.id, orderId: o.id, replacesSerial: old.serial });
    t.same(await certs.findBySerial(cert.serial), cert);
    t.notOk('accountId' in ((await certs.findBySerial(old.serial)) ?? {}), 'no ACME keys on a certificate without them');
    const batched = new CertificateRepository(db, { batch: true });
    t.same(
      await Promise.all([batched.findBySerial(old.serial), batched.findBySerial('ffff'), batched.findBySerial(cert.serial)]),
      [await certs.findBySerial(old.serial), undefined, cert],
      'batched reads answer each serial',
    );
  });

  await t.test('fail/a certificate of an unknown account', async (t) => {
    const s = newSerial();
    await certs.reserveSerial(s, 'root', at(1));
    const cert = buildCertificate({ serial: s, der: new Uint8Array([1, 2, 3]), notAfter: at(DAY), createdAt: at(1), accountId: 'ghost' });
    await expectCaError(t, certs.insert(cert), 'notFound', /account ghost/);
    t.equal(await certs.findBySerial(s), undefined);
  });

  await t.test('ok/revoke once', async (t) => {
    const cert = await storedCertificate({ accountId: alice.id });
    const revoked = await certs.revoke(cert.serial, at(DAY + 5), 1);
    t.same(revoked, { ...cert, status: 'revoked', revokedAt: at(DAY + 5), revocationReason: 1 });
    t.same(await certs.findBySerial(cert.serial), revoked);
    t.equal(await certs.revoke(cert.serial, at(2 * DAY), 4), undefined, 'a second revocation: undefined');
    t.same((await certs.findBySerial(cert.serial))?.revocationReason, 1, 'the first reason and time stay');
    t.equal(await certs.revoke('abcdef', at(DAY), 0), undefined, 'unknown serial: undefined');
  });

  await t.test('ok/concurrent revocations: exactly one succeeds', async (t) => {
    const cert = await storedCertificate();
    const results = await Promise.all([certs.revoke(cert.serial, at(DAY), 1), certs.revoke(cert.serial, at(DAY), 4), certs.revoke(cert.serial, at(DAY), 5)]);
    t.equal(results.filter((r) => r !== undefined).length, 1);
  });
}

await withEachDatabase(t, suite);
