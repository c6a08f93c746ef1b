/**
 * OrderRepository.failStuckProcessing, the statement of the orders.recover job, in the shared repository
 * suite (DESIGN.md rule 6): PGlite and PostgreSQL. Orders claimed for issuance (ready -> processing, the
 * claim time recorded with it) longer ago than the cut-off turn invalid; younger ones, and orders that
 * reached valid meanwhile, are left as they are; the serials their claims reserved stay reserved.
 */
import t, { type Test } from 'tap';

import { MINUTE, SECOND } from '../../../src/core/clock.js';
import type { Problem } from '../../../src/core/errors.js';
import type { Database } from '../../../src/db/database.js';
import { AccountRepository } from '../../../src/db/repositories/account-repository.js';
import { CertificateRepository } from '../../../src/db/repositories/certificate-repository.js';
import { OrderRepository } from '../../../src/db/repositories/order-repository.js';
import { builders, newSerial } from '../../helpers/builders.js';
import { insertRootIssuer, withEachDatabase } from '../../helpers/databases.js';

const T0 = new Date('2026-01-01T00:00:00.000Z');
const at = (ms: number): Date => new Date(T0.getTime() + ms);
const { buildAccount, buildAuthorization, buildOrderFor, buildCertificate } = builders(T0);
const ERROR: Problem = { kind: 'unavailable', detail: 'interrupted: submit a new order' };

async function suite(t: Test, db: Database): Promise<void> {
  const orders = new OrderRepository(db);
  const certs = new CertificateRepository(db);
  await insertRootIssuer(db, T0);
  const account = buildAccount();
  await new AccountRepository(db).insert(account);

  /** A ready order (its one authorization valid), claimed at `claimedAt`; its id and reserved serial. */
  async function claimed(claimedAt: Date): Promise<{ id: string; serial: string }> {
    const authorization = buildAuthorization({ accountId: account.id, status: 'valid' });
    const order = buildOrderFor([authorization], { accountId: account.id, status: 'ready' });
    await db.transaction((tx) => new OrderRepository(tx).insertWithAuthorizations(order, [authorization]));
    const serial = newSerial();
    if (!(await orders.claimForIssuance(order.id, ['ready'], claimedAt, serial, 'root'))) throw new Error('not claimed');
    return { id: order.id, serial };
  }

  await t.test('ok/orders processing past the cut-off turn invalid; younger and finished ones stay', async (t) => {
    const old = await claimed(at(MINUTE));
    const young = await claimed(at(2 * MINUTE));
    const finished = await claimed(at(MINUTE));
    const certificate = buildCertificate({ serial: finished.serial, accountId: account.id, orderId: finished.id });
    t.equal(await certs.insertForOrder(certificate, finished.id), true);

    const moved = await orders.failStuckProcessing(at(MINUTE + 30 * SECOND), ERROR, 100);
    t.same(moved.map((o) => o.id), [old.id], 'only the old processing order');
    t.equal(moved[0]?.status, 'invalid');
    t.same(moved[0]?.error, ERROR, 'with the problem the client reads');
    t.equal((await orders.findById(young.id))?.status, 'processing', 'claimed after the cut-off: left alone');
    t.equal((await orders.findById(finished.id))?.status, 'valid', 'a stored certificate wins');
    const reserved = await db.query('SELECT serial FROM serials WHERE serial = $1', [old.serial]);
    t.equal(reserved.rowCount, 1, 'the serial of the ended order stays reserved (burnt)');

    t.same(await orders.failStuckProcessing(at(MINUTE + 30 * SECOND), ERROR, 100), [], 'a second pass finds nothing');
    t.same((await orders.failStuckProcessing(at(3 * MINUTE), ERROR, 100)).map((o) => o.id), [young.id]);
  });

  await t.test('ok/at most `limit` per statement', async (t) => {
    const ids = [(await claimed(at(10 * MINUTE))).id, (await claimed(at(10 * MINUTE))).id, (await claimed(at(10 * MINUTE))).id];
    const first = await orders.failStuckProcessing(at(11 * MINUTE), ERROR, 2);
    const second = await orders.failStuckProcessing(at(11 * MINUTE), ERROR, 2);
    t.equal(first.length, 2);
    t.equal(second.length, 1);
    t.same([...first, ...second].map((o) => o.id).sort(), [...ids].sort());
  });
}

await withEachDatabase(t, suite);
