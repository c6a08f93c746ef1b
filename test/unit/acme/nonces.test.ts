import t from 'tap';
import { isWellFormedNonce, nonceKeyFromPassphrase, SignedNonceStore, type SpentNonces } from '../../../src/acme/nonce-store.js';
import { FakeClock, MINUTE } from '../../../src/core/clock.js';
import { buildAccount } from '../../helpers/builders.js';

/**
 * SignedNonceStore (RFC 8555 §6.5): issuing is free, a nonce is good once, only for its lifetime, and only if
 * this installation issued it; spent records sort by issue time so old ones can be purged by range.
 */

class Spent implements SpentNonces {
  readonly ids: Buffer[] = [];
  async spend(id: Uint8Array): Promise<boolean> {
    const copy = Buffer.from(id);
    if (this.ids.some((existing) => existing.equals(copy))) return false;
    this.ids.push(copy);
    return true;
  }
}

function store<S extends SpentNonces = Spent>(options: { clock?: FakeClock; spent?: S; passphrase?: string; maxAgeMs?: number } = {}) {
  const clock = options.clock ?? new FakeClock('2026-03-01T12:00:00Z');
  const spent = (options.spent ?? new Spent()) as S;
  const nonces = new SignedNonceStore({
    key: nonceKeyFromPassphrase(options.passphrase ?? 'a shared passphrase'),
    clock,
    spent,
    maxAgeMs: options.maxAgeMs ?? 15 * MINUTE,
    clockSkewMs: MINUTE,
  });
  return { clock, spent, nonces };
}

await t.test('ok/a nonce is good exactly once', async (t) => {
  const { nonces } = store();
  const nonce = await nonces.issue();
  t.ok(isWellFormedNonce(nonce), 'base64url without padding (RFC 8555 §6.5.1)');
  t.equal(await nonces.consume(nonce), true);
  t.equal(await nonces.consume(nonce), false, 'second use refused');
});

await t.test('ok/nonces are distinct', async (t) => {
  const { nonces } = store();
  const issued = new Set(await Promise.all(Array.from({ length: 2000 }, () => nonces.issue())));
  t.equal(issued.size, 2000);
});

await t.test('ok/another instance with the same passphrase accepts it; with another passphrase it does not', async (t) => {
  const spent = new Spent();
  const a = store({ spent });
  const b = store({ spent, clock: a.clock });
  const stranger = store({ spent, clock: a.clock, passphrase: 'another installation' });
  const nonce = await a.nonces.issue();
  t.equal(await stranger.nonces.consume(nonce), false, 'not issued by this installation');
  t.equal(spent.ids.length, 0, 'and refused without a write');
  t.equal(await b.nonces.consume(nonce), true, 'issued by a peer instance');
  t.equal(await a.nonces.consume(nonce), false, 'spent for every instance (the shared spent set)');
});

await t.test('fail/tampered, truncated or made-up nonces', async (t) => {
  const { nonces, spent } = store();
  const nonce = await nonces.issue();
  const bytes = Buffer.from(nonce, 'base64url');
  for (const [name, value] of [
    ['flipped random bit', Buffer.from(bytes.map((b, i) => (i === 10 ? b ^ 1 : b))).toString('base64url')],
    ['flipped MAC bit', Buffer.from(bytes.map((b, i) => (i === 30 ? b ^ 1 : b))).toString('base64url')],
    ['moved issue time', Buffer.from(bytes.map((b, i) => (i === 5 ? b ^ 1 : b))).toString('base64url')],
    ['truncated', nonce.slice(0, -4)],
    ['longer', `${nonce}AAAA`],
    ['a random 128-bit value', 'AAAAAAAAAAAAAAAAAAAAAA'],
  ] as const) {
    t.equal(await nonces.consume(value), false, name);
  }
  t.equal(spent.ids.length, 0, 'nothing was written for any of them');
  t.equal(await nonces.consume(nonce), true, 'the genuine one is still good');
});

await t.test('fail/an expired nonce, and one from the future', async (t) => {
  const { nonces, clock } = store();
  const old = await nonces.issue();
  const fresh = await nonces.issue();
  clock.advance(15 * MINUTE - 1);
  t.equal(await nonces.consume(fresh), true, 'just inside its lifetime');
  clock.advance(1);
  t.equal(await nonces.consume(old), false, 'at its lifetime it is expired');

  const peer = store({ clock: new FakeClock(clock.now()) });
  const ahead = new FakeClock(clock.now());
  ahead.advance(MINUTE + 1);
  const early = store({ clock: ahead, passphrase: 'a shared passphrase' });
  t.equal(await peer.nonces.consume(await early.nonces.issue()), false, 'stamped further ahead than the allowed clock skew');
  ahead.set(new Date(clock.now().getTime() + MINUTE));
  t.equal(await peer.nonces.consume(await early.nonces.issue()), true, 'within the allowed skew');
});

await t.test('ok/consumeAndFindAccount spends and reads in one call; refuses junk without one', async (t) => {
  const calls: string[] = [];
  const account = buildAccount({ id: 'acct-1' });
  const spent = new Spent();
  const withAccounts: SpentNonces = {
    spend: (id) => spent.spend(id),
    async spendAndFindAccount(id, accountId) {
      calls.push(accountId);
      return { spent: await spent.spend(id), account: accountId === account.id ? account : undefined };
    },
  };
  const { nonces } = store({ spent: withAccounts });
  const nonce = await nonces.issue();
  t.same(await nonces.consumeAndFindAccount(nonce, 'acct-1'), { consumed: true, account });
  t.same(await nonces.consumeAndFindAccount(nonce, 'acct-1'), { consumed: false, account }, 'the account is read either way');
  t.same(await nonces.consumeAndFindAccount('AAAAAAAAAAAAAAAAAAAAAA', 'acct-1'), { consumed: false, account: undefined });
  t.same(calls, ['acct-1', 'acct-1'], 'no call for a nonce we did not issue');
});

await t.test('ok/spent records sort by issue time; the purge cutoff is below every nonce still accepted', async (t) => {
  const { nonces, spent, clock } = store();
  const first = await nonces.issue();
  clock.advance(1000);
  const second = await nonces.issue();
  await nonces.consume(second);
  await nonces.consume(first);
  const [a, b] = spent.ids;
  t.ok(Buffer.compare(b!, a!) < 0, 'the earlier nonce sorts first');
  t.ok(Buffer.compare(nonces.purgeCutoff(), b!) <= 0, 'nothing accepted now lies below the cutoff');
  clock.advance(15 * MINUTE + MINUTE + 1000 + 1);
  t.ok(Buffer.compare(nonces.purgeCutoff(), a!) > 0, 'after lifetime plus skew, both lie below it');
  t.equal(await nonces.consume(first), false, 'and neither would be accepted again');
});

await t.test('ok/the nonce key is derived, stable, and differs per passphrase', async (t) => {
  t.same(nonceKeyFromPassphrase('p'), nonceKeyFromPassphrase('p'));
  t.notSame(nonceKeyFromPassphrase('p'), nonceKeyFromPassphrase('q'));
  t.equal(nonceKeyFromPassphrase('p').length, 32);
  t.throws(() => new SignedNonceStore({ key: Buffer.alloc(16), clock: new FakeClock(), spent: new Spent(), maxAgeMs: MINUTE }));
});
