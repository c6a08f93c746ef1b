/**
 * LeaseRepository (migrations/0006) against PGlite and PostgreSQL (DESIGN.md rule 6): the lease decisions
 * JobRunner relies on, each one statement, with times given by the caller (rule 4).
 */
import t from 'tap';

import { SECOND } from '../../../src/core/clock.js';
import { LeaseRepository } from '../../../src/db/repositories/lease-repository.js';
import { withEachDatabase } from '../../helpers/databases.js';

const T0 = new Date('2026-01-01T00:00:00.000Z');
const at = (ms: number): Date => new Date(T0.getTime() + ms);
const LEASE = 30 * SECOND;

await withEachDatabase(t, async (t, db) => {
  const leases = new LeaseRepository(db);

  t.test('ok/the first acquisition creates the lease with token 1', async (t) => {
    t.same(await leases.acquire('crl', 'a', at(0), at(LEASE)), { token: 1 });
    const [row] = (await leases.list()).filter((lease) => lease.name === 'crl');
    t.same(row, { name: 'crl', holder: 'a', token: 1, acquiredAt: at(0), renewedAt: undefined, expiresAt: at(LEASE) });
  });

  t.test('fail/another holder cannot take a lease that has not expired', async (t) => {
    await leases.acquire('held', 'a', at(0), at(LEASE));
    t.equal(await leases.acquire('held', 'b', at(LEASE - 1), at(2 * LEASE)), undefined, 'one millisecond before expiry');
    t.equal((await leases.list()).find((lease) => lease.name === 'held')?.holder, 'a', 'unchanged');
  });

  t.test('ok/another holder takes an expired lease, from its expiry instant on, with the next token', async (t) => {
    await leases.acquire('expiring', 'a', at(0), at(LEASE));
    t.same(await leases.acquire('expiring', 'b', at(LEASE), at(2 * LEASE)), { token: 2 });
    const row = (await leases.list()).find((lease) => lease.name === 'expiring');
    t.same(row, { name: 'expiring', holder: 'b', token: 2, acquiredAt: at(LEASE), renewedAt: undefined, expiresAt: at(2 * LEASE) });
  });

  t.test('ok/the holder re-acquires its own lease, and the token still increments', async (t) => {
    await leases.acquire('mine', 'a', at(0), at(LEASE));
    t.same(await leases.acquire('mine', 'a', at(1000), at(1000 + LEASE)), { token: 2 });
  });

  t.test('renew', async (t) => {
    await leases.acquire('renewed', 'a', at(0), at(LEASE));
    t.equal(await leases.renew('renewed', 'a', 1, at(10 * SECOND), at(10 * SECOND + LEASE)), true, 'ok/by its holder with its token');
    const row = (await leases.list()).find((lease) => lease.name === 'renewed');
    t.same([row?.renewedAt, row?.expiresAt, row?.token], [at(10 * SECOND), at(10 * SECOND + LEASE), 1], 'extended, token kept');
    t.equal(await leases.renew('renewed', 'b', 1, at(11 * SECOND), at(11 * SECOND + LEASE)), false, 'fail/by another holder');
    t.equal(await leases.renew('renewed', 'a', 2, at(11 * SECOND), at(11 * SECOND + LEASE)), false, 'fail/with another token');
    t.equal(await leases.renew('renewed', 'a', 1, at(10 * SECOND + LEASE), at(10 * SECOND + 2 * LEASE)), false, 'fail/once expired');
    t.equal(await leases.renew('unknown', 'a', 1, at(0), at(LEASE)), false, 'fail/a lease never taken');

    // The expired lease is taken over; its former holder's renewal, however late, is refused.
    t.same(await leases.acquire('renewed', 'b', at(10 * SECOND + LEASE), at(10 * SECOND + 2 * LEASE)), { token: 2 });
    t.equal(await leases.renew('renewed', 'a', 1, at(10 * SECOND + LEASE - 1), at(10 * SECOND + 2 * LEASE)), false, 'fail/an old holder, whatever its clock says');
  });

  t.test('release', async (t) => {
    await leases.acquire('released', 'a', at(0), at(LEASE));
    await leases.release('released', 'b', 1);
    await leases.release('released', 'a', 2);
    t.equal(await leases.acquire('released', 'b', at(1), at(LEASE)), undefined, 'fail/a release by another holder or token changes nothing');

    await leases.release('released', 'a', 1);
    const row = (await leases.list()).find((lease) => lease.name === 'released');
    t.same([row?.holder, row?.token, row?.expiresAt], ['a', 1, undefined], 'ok/released: no expiry, row and token kept');
    t.equal(await leases.renew('released', 'a', 1, at(2), at(LEASE)), false, 'fail/a released lease cannot be renewed');
    t.same(await leases.acquire('released', 'b', at(2), at(2 + LEASE)), { token: 2 }, 'ok/another holder takes it at once, the token continues');
  });

  t.test('ok/leases of different jobs are independent', async (t) => {
    t.same(await leases.acquire('job-x', 'a', at(0), at(LEASE)), { token: 1 });
    t.same(await leases.acquire('job-y', 'b', at(0), at(LEASE)), { token: 1 });
  });

  t.test('ok/of many holders acquiring at once exactly one gets the lease', async (t) => {
    for (let round = 0; round < 5; round += 1) {
      const now = at(round * 2 * LEASE);
      const results = await Promise.all(
        Array.from({ length: 8 }, (_, i) => leases.acquire('contended', `holder-${i}`, now, new Date(now.getTime() + LEASE))),
      );
      const winners = results.filter((result) => result !== undefined);
      t.equal(winners.length, 1, `round ${round}: one winner`);
      t.same(winners[0], { token: round + 1 }, `round ${round}: token ${round + 1}`);
    }
  });

  t.test('ok/tokens beyond 2^31 survive', async (t) => {
    // token is bigint: a lease re-acquired every few seconds for decades stays exact.
    await db.query('INSERT INTO job_leases (name, holder, token, expires_at) VALUES ($1, $2, $3, $4)', ['big', 'a', 2 ** 31 + 5, at(0)]);
    t.same(await leases.acquire('big', 'b', at(0), at(LEASE)), { token: 2 ** 31 + 6 });
    t.equal(await leases.renew('big', 'b', 2 ** 31 + 6, at(1), at(LEASE + 1)), true);
  });
});
