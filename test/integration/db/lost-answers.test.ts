/**
 * When the answer to a write is lost with its connection (ConnectionLost 'unknown'), the repositories on the
 * finalize path read back what happened instead of repeating a compare-and-set (shared repository suite:
 * PGlite and PostgreSQL). The loss is injected around the real statement: it either ran and its answer was
 * lost, or it never ran.
 */
import t, { type Test } from 'tap';

import type { Database, Queryable, QueryOptions, QueryResult } from '../../../src/db/database.js';
import { ConnectionLost, isOutcomeUnknown } from '../../../src/db/errors.js';
import { AccountRepository } from '../../../src/db/repositories/account-repository.js';
import { CertificateRepository } from '../../../src/db/repositories/certificate-repository.js';
import { OrderRepository } from '../../../src/db/repositories/order-repository.js';
import { StatementBatcher } from '../../../src/db/statement-batcher.js';
import { builders, newSerial } from '../../helpers/builders.js';
import { insertRootIssuer, withEachDatabase } from '../../helpers/databases.js';

const T0 = new Date('2026-01-01T00:00:00.000Z');
const { buildAccount, buildAuthorization, buildOrderFor, buildCertificate } = builders(T0);

/** Statements matching `match` lose their answer: after running ('ran') or instead of running ('never'). */
class LosingQueryable implements Queryable {
  lose: { match: (sql: string) => boolean; when: 'ran' | 'never'; times: number } | undefined;
  sent = new Map<string, number>();
  constructor(private readonly db: Database) {}
  async query<R>(sql: string, params?: readonly unknown[], options?: QueryOptions): Promise<QueryResult<R>> {
    const lose = this.lose !== undefined && this.lose.times > 0 && this.lose.match(sql) ? this.lose : undefined;
    if (lose !== undefined) lose.times -= 1;
    if (lose?.when === 'never') throw new ConnectionLost('unknown', new Error('Connection terminated unexpectedly'));
    const result = await this.db.query<R>(sql, params, options);
    this.sent.set(kindOf(sql), (this.sent.get(kindOf(sql)) ?? 0) + 1);
    if (lose?.when === 'ran') throw new ConnectionLost('unknown', new Error('Connection terminated unexpectedly'));
    return result;
  }
}

const isClaim = (sql: string): boolean => sql.includes('UPDATE orders') && sql.includes('INSERT INTO serials');
const isStore = (sql: string): boolean => sql.includes('INSERT INTO certificates') && sql.includes('for_order');
const isOrderInsert = (sql: string): boolean => sql.includes('INSERT INTO orders');
const kindOf = (sql: string): string => (isClaim(sql) ? 'claim' : isStore(sql) ? 'store' : isOrderInsert(sql) ? 'newOrder' : 'other');

async function suite(t: Test, db: Database): Promise<void> {
  await insertRootIssuer(db, T0);
  const account = buildAccount();
  await new AccountRepository(db).insert(account);
  const losing = new LosingQueryable(db);
  const orders = new OrderRepository(losing, { batch: true });
  const certificates = new CertificateRepository(losing, { batch: true });

  async function readyOrder(): Promise<string> {
    const authorization = buildAuthorization({ accountId: account.id, status: 'valid' });
    const order = buildOrderFor([authorization], { accountId: account.id, status: 'ready' });
    await db.transaction((tx) => new OrderRepository(tx).insertWithAuthorizations(order, [authorization]));
    return order.id;
  }
  const statusOf = async (id: string): Promise<string | undefined> => (await new OrderRepository(db).findById(id))?.status;

  await t.test('ok/a claim that ran and lost its answer is read back: claimed, sent once', async (t) => {
    const id = await readyOrder();
    const serial = newSerial();
    losing.sent.clear();
    losing.lose = { match: isClaim, when: 'ran', times: 1 };
    t.equal(await orders.claimForIssuance(id, ['ready'], T0, serial, 'root'), true, 'the serial says it happened');
    t.equal(losing.sent.get('claim'), 1, 'the compare-and-set was not sent again');
    t.equal(await statusOf(id), 'processing');
  });

  await t.test('ok/a claim that never ran: ConnectionLost, the order still ready', async (t) => {
    const id = await readyOrder();
    losing.lose = { match: isClaim, when: 'never', times: 1 };
    const error = await orders.claimForIssuance(id, ['ready'], T0, newSerial(), 'root').catch((e: unknown) => e);
    t.ok(isOutcomeUnknown(error), 'a 503 for the client, not a false "already being finalized"');
    t.equal(await statusOf(id), 'ready', 'the client finalizes again');
  });

  await t.test('ok/a certificate store that ran and lost its answer is read back: stored, order valid', async (t) => {
    const id = await readyOrder();
    const serial = newSerial();
    t.equal(await orders.claimForIssuance(id, ['ready'], T0, serial, 'root'), true);
    losing.sent.clear();
    losing.lose = { match: isStore, when: 'ran', times: 1 };
    const cert = buildCertificate({ serial, accountId: account.id, orderId: id });
    t.equal(await certificates.insertForOrder(cert, id), true);
    t.equal(losing.sent.get('store'), 1, 'not stored twice');
    t.equal(await statusOf(id), 'valid');
  });

  await t.test('ok/a certificate store that never ran is stored once more: the certificate is on record', async (t) => {
    const id = await readyOrder();
    const serial = newSerial();
    t.equal(await orders.claimForIssuance(id, ['ready'], T0, serial, 'root'), true);
    losing.lose = { match: isStore, when: 'never', times: 1 };
    const cert = buildCertificate({ serial, accountId: account.id, orderId: id });
    t.equal(await certificates.insertForOrder(cert, id), true);
    t.equal(await statusOf(id), 'valid');
    t.ok(await new CertificateRepository(db).findBySerial(serial));
  });

  await t.test('ok/a new order whose answer was lost is found by its id', async (t) => {
    const authorization = buildAuthorization({ accountId: account.id });
    const order = buildOrderFor([authorization], { accountId: account.id });
    losing.lose = { match: isOrderInsert, when: 'ran', times: 1 };
    await orders.insertWithAuthorizations(order, [authorization]);
    t.equal(await statusOf(order.id), 'pending');
  });
}

await withEachDatabase(t, suite);

await t.test('ok/a batch that lost its connection is not retried item by item', async (t) => {
  let calls = 0;
  const batcher = new StatementBatcher<number, number>(
    async (items) => {
      calls += 1;
      if (items.length > 1) throw new ConnectionLost('unknown', new Error('Connection terminated unexpectedly'));
      return items;
    },
    { retryAlone: true, holdMs: 0 },
  );
  const results = await Promise.allSettled([batcher.submit(1), batcher.submit(2), batcher.submit(3)]);
  t.equal(calls, 1, 'one statement, not one per item after it');
  t.ok(results.every((r) => r.status === 'rejected' && r.reason instanceof ConnectionLost), 'each caller decides by reading back');
});
