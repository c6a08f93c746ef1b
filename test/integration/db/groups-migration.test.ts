/**
 * 0009_groups on a database at today's migrations (those before it, and the later-numbered ones that
 * landed before it), holding credentials and accounts with
 * group names: every name becomes a group (default policy), `default` is there, credentials and accounts
 * keep working and now name existing groups; then the group repository on the migrated database. The same
 * cases on PGlite and PostgreSQL (DESIGN.md rule 6).
 */
import { randomBytes } from 'node:crypto';
import { copyFile, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { FakeClock } from '../../../src/core/clock.js';
import type { Database } from '../../../src/db/database.js';
import { defaultMigrationsDir, migrate } from '../../../src/db/migrate.js';
import { AccountRepository } from '../../../src/db/repositories/account-repository.js';
import { EabRepository } from '../../../src/db/repositories/eab-repository.js';
import { GroupRepository } from '../../../src/db/repositories/group-repository.js';
import { builders } from '../../helpers/builders.js';
import { withEachDatabase } from '../../helpers/databases.js';
import { expectCaError } from '../../helpers/expect-error.js';

const T0 = new Date('2026-01-01T00:00:00.000Z');
const GROUPS_VERSION = 9;
/**
 * Migrations with higher numbers that landed before 0009 did: an installation upgrading today has them
 * applied and 0009 not (the runner applies a missing version whatever came after it).
 */
const LANDED_BEFORE_GROUPS = [10, 12];

/** The schema an upgrading installation has today: every migration before 0009, and those that landed first. */
async function migrationsBeforeGroups(t: Test): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'chancery-migrations-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  for (const file of await readdir(defaultMigrationsDir())) {
    const version = Number(file.slice(0, 4));
    if (/^\d{4}_.*\.sql$/.test(file) && (version < GROUPS_VERSION || LANDED_BEFORE_GROUPS.includes(version))) {
      await copyFile(join(defaultMigrationsDir(), file), join(dir, file));
    }
  }
  return dir;
}

async function suite(t: Test, db: Database): Promise<void> {
  const clock = new FakeClock(T0);
  const applied = await migrate(db, clock, await migrationsBeforeGroups(t));
  t.notOk(applied.includes(GROUPS_VERSION), 'at the migrations of today, without groups');

  // Rows as the code before groups wrote them (its own columns only).
  const key = new Uint8Array(randomBytes(32));
  const insertCredential = (kid: string, group: string | null): Promise<unknown> =>
    db.query('INSERT INTO eab_credentials (kid, hmac_key_encrypted, group_name, created_at) VALUES ($1, $2, $3, $4)', [kid, key, group, T0]);
  const insertAccount = (id: string, kid: string | null, group: string | null): Promise<unknown> =>
    db.query(
      `INSERT INTO accounts (id, status, contacts, public_jwk, jwk_thumbprint, eab_kid, group_name, tos_agreed, created_at)
       VALUES ($1, 'valid', '[]', '{"kty":"EC"}', $2, $3, $4, true, $5)`,
      [id, `thumb-${id}`, kid, group, T0],
    );
  await insertCredential('kid-pay', 'payments');
  await insertCredential('kid-pay-2', 'payments');
  await insertCredential('kid-plain', null);
  await insertAccount('acct-pay', 'kid-pay', 'payments');
  // An account whose group no credential names any more (credentials of 0002 could only be made, not
  // changed, but a hand-edited database is what an upgrade meets).
  await insertAccount('acct-ops', null, 'ops');
  await insertAccount('acct-none', null, null);

  const upgraded = await migrate(db, clock);
  t.ok(upgraded.includes(GROUPS_VERSION), '0009_groups applied on top');
  const groups = new GroupRepository(db);

  await t.test('ok/every group name in use is a group with the default policy, and default exists', async (t) => {
    const all = await groups.list();
    t.same(
      all.map((g) => g.name),
      ['default', 'ops', 'payments'],
    );
    for (const group of all) {
      t.same(group.policy, {}, `${group.name}: the default (empty) policy: the configured limits`);
      t.same(group.contacts, []);
      t.equal(group.updatedAt, undefined, `${group.name}: as the migration seeded it`);
    }
  });

  await t.test('ok/credentials and accounts read as before, with no labels', async (t) => {
    const eab = new EabRepository(db);
    t.same((await eab.find('kid-pay'))?.credential, { kid: 'kid-pay', group: 'payments', createdAt: T0 });
    const account = await new AccountRepository(db).findById('acct-pay');
    t.equal(account?.group, 'payments');
    t.notOk(account && 'labels' in account, 'no labels key without labels');
    t.equal((await new AccountRepository(db).findById('acct-none'))?.group, undefined, 'no group: the default group');
  });

  await t.test('fail/a new credential or account must name an existing group', async (t) => {
    await expectCaError(t, new EabRepository(db).insert({ kid: 'kid-x', hmacKeyEncrypted: key, group: 'marketing', createdAt: T0 }), 'notFound', /group "marketing" does not exist/);
    const { buildAccount } = builders(T0);
    await expectCaError(t, new AccountRepository(db).insert(buildAccount({ group: 'marketing' })), 'unauthorized', /group "marketing"/);
  });

  await t.test('ok/labels round-trip on credentials and accounts', async (t) => {
    const eab = new EabRepository(db);
    await eab.insert({ kid: 'kid-labelled', hmacKeyEncrypted: key, group: 'payments', labels: { owner: 'payments', environment: 'production' }, createdAt: T0 });
    t.same((await eab.find('kid-labelled'))?.credential.labels, { owner: 'payments', environment: 'production' });
    const { buildAccount } = builders(T0);
    const account = buildAccount({ group: 'payments', labels: { owner: 'payments' } });
    await new AccountRepository(db).insert(account);
    t.same(await new AccountRepository(db).findById(account.id), account, 'every field survives, labels too');
  });

  await t.test('ok/groups: insert, update, find; the name is unique', async (t) => {
    const hr = { name: 'hr', contacts: ['hr-it@example.com'], policy: { identifiers: [{ type: 'suffix' as const, value: 'hr.internal', shared: true }], maxValidityMs: 86_400_000, labels: { owner: 'hr' } } };
    await groups.insert(hr, T0);
    t.same(await groups.find('hr'), { ...hr, updatedAt: T0 });
    await expectCaError(t, groups.insert(hr, T0), 'conflict', /group "hr" already exists/);
    const later = new Date(T0.getTime() + 1000);
    await groups.update({ ...hr, policy: { wildcards: false } }, later);
    t.same(await groups.find('hr'), { ...hr, policy: { wildcards: false }, updatedAt: later });
    await expectCaError(t, groups.update({ name: 'nope', contacts: [], policy: {} }, later), 'notFound', /group "nope" does not exist/);
  });

  await t.test('fail/a group accounts or credentials name cannot be removed; an unused one can', async (t) => {
    t.same([...(await groups.usage(['payments', 'ops', 'hr']))], [
      ['payments', { accounts: 2, credentials: 3 }],
      ['ops', { accounts: 1, credentials: 0 }],
    ]);
    await expectCaError(t, groups.remove('payments'), 'conflict', /still named by accounts or EAB credentials/);
    t.ok(await groups.find('payments'), 'still there');
    await groups.remove('hr');
    t.equal(await groups.find('hr'), undefined);
  });
}

await withEachDatabase(t, suite, { migrate: false });
