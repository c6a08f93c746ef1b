import { copyFile, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import type { AuditDraft } from '../../../src/core/audit.js';
import { FakeClock, MINUTE } from '../../../src/core/clock.js';
import type { Database } from '../../../src/db/database.js';
import { AuditRepository } from '../../../src/db/repositories/audit-repository.js';
import { KeyBlobRepository } from '../../../src/db/repositories/key-blob-repository.js';
import { readLatestCheckpoint, CheckpointFile } from '../../../src/inventory/audit-checkpoint-file.js';
import { AUDIT_KEY_NAME, AuditLog } from '../../../src/inventory/audit-log.js';
import { SoftwareKeyStore } from '../../../src/keys/software/software-key-store.js';
import { expectCaError } from '../../helpers/expect-error.js';
import { withEachDatabase } from '../../helpers/databases.js';

/**
 * The audit log's core on PGlite and PostgreSQL (DESIGN.md rule 6): entries appended unsealed, sealed into
 * the hash chain in id order (also when one commits late), checkpoints signed with the audit key every N
 * entries or T seconds and copied to a 0600 file, the query's filters and keyset pages — and verification
 * failing, naming the first bad entry, after each way of tampering with the tables: an entry edited, one
 * deleted, two reordered, the last K deleted, the latest checkpoint deleted, the whole chain recomputed by
 * hand in SQL (with and without deleting the checkpoints that no longer match).
 */

const PASSPHRASE = 'audit-test-passphrase-0123456789';

function draft(clock: FakeClock, n: number, overrides: Partial<AuditDraft> = {}): AuditDraft {
  return {
    at: clock.now(),
    actor: n % 2 === 0 ? 'cli:alice' : `account:acct-${n % 3}`,
    action: n % 3 === 0 ? 'certificate.revoke' : 'certificate.issue',
    subject: `certificate:${n.toString(16).padStart(4, '0')}`,
    outcome: 'ok',
    details: { n, note: 'ünïcode ✓ "quoted"' },
    ...(n % 4 === 0 ? { group: 'payments' } : {}),
    ...overrides,
  };
}

interface Rig {
  db: Database;
  clock: FakeClock;
  audit: AuditLog;
  store: AuditRepository;
  file: string;
  dir: string;
}

async function rig(t: Test, db: Database, settings: { checkpointMs?: number; checkpointEntries?: number } = {}): Promise<Rig> {
  const dir = await mkdtemp(join(tmpdir(), 'chancery-audit-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const clock = new FakeClock('2026-03-01T00:00:00Z');
  const keys = new SoftwareKeyStore({ blobs: new KeyBlobRepository(db), passphrase: PASSPHRASE, clock });
  const file = join(dir, 'audit', 'checkpoints.jsonl');
  const store = new AuditRepository(db);
  const audit = new AuditLog({
    store,
    storeOn: (tx) => new AuditRepository(tx),
    keys,
    mirror: new CheckpointFile(file),
    clock,
    settings: { checkpointMs: settings.checkpointMs ?? MINUTE, checkpointEntries: settings.checkpointEntries ?? 10_000, sealBatch: 7 },
  });
  return { db, clock, audit, store, file, dir };
}

/** The audit tables as they are, and a way back to exactly that (tables and the checkpoint file). */
async function snapshot(r: Rig): Promise<() => Promise<void>> {
  const tables = ['audit_entries', 'audit_unsealed', 'audit_chain', 'audit_checkpoints'];
  for (const table of tables) {
    await r.db.query(`DROP TABLE IF EXISTS saved_${table}`);
    await r.db.query(`CREATE TABLE saved_${table} AS SELECT * FROM ${table}`);
  }
  await copyFile(r.file, `${r.file}.saved`);
  return async () => {
    for (const table of tables) {
      await r.db.query(`DELETE FROM ${table}`);
      const overriding = table === 'audit_entries' ? 'OVERRIDING SYSTEM VALUE' : '';
      await r.db.query(`INSERT INTO ${table} ${overriding} SELECT * FROM saved_${table}`);
    }
    await copyFile(`${r.file}.saved`, r.file);
  };
}

/**
 * What someone with the database and the algorithm (src/inventory/audit-chain.ts) does to cover an edit:
 * recompute every hash from position 1 on, in SQL alone (PostgreSQL's sha256 and json escaping reproduce
 * canonicalEntry for these entries).
 */
async function recomputeChainInSql(db: Database): Promise<void> {
  await db.query(`
    WITH RECURSIVE canonical AS (
      SELECT c.seq, convert_to(
        '["chancery-audit-entry-v1",' || c.seq || ',' || e.id || ',' ||
        to_json(to_char(e.at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'))::text || ',' ||
        to_json(e.actor)::text || ',' || to_json(e.action)::text || ',' || to_json(e.subject)::text || ',' ||
        to_json(e.outcome)::text || ',' || coalesce(to_json(e.request_id)::text, 'null') || ',' ||
        coalesce(to_json(e.group_name)::text, 'null') || ',' || coalesce(to_json(e.details)::text, 'null') || ']', 'UTF8') AS bytes
      FROM audit_chain c JOIN audit_entries e ON e.id = c.entry_id
    ), rehashed (seq, prev_hash, hash) AS (
      SELECT k.seq, decode(repeat('00', 32), 'hex'), sha256(decode(repeat('00', 32), 'hex') || k.bytes) FROM canonical k WHERE k.seq = 1
      UNION ALL
      SELECT k.seq, r.hash, sha256(r.hash || k.bytes) FROM rehashed r JOIN canonical k ON k.seq = r.seq + 1
    )
    UPDATE audit_chain c SET prev_hash = r.prev_hash, hash = r.hash FROM rehashed r WHERE r.seq = c.seq`);
}

/** Each test starts from an empty log (the audit key, once created, stays in the key store). */
async function reset(db: Database): Promise<void> {
  for (const table of ['audit_entries', 'audit_unsealed', 'audit_chain', 'audit_checkpoints']) await db.query(`DELETE FROM ${table}`);
}

async function seqOf(db: Database, entryId: number): Promise<number> {
  const { rows } = await db.query<{ seq: number | string }>('SELECT seq FROM audit_chain WHERE entry_id = $1', [entryId]);
  return Number(rows[0]!.seq);
}

await withEachDatabase(t, async (t, db) => {
  await t.test('ok/entries are sealed in id order, checkpointed every N entries or T seconds, copied to a 0600 file', async (t) => {
    await reset(db);
    const r = await rig(t, db, { checkpointEntries: 5, checkpointMs: MINUTE });
    t.same(await r.audit.seal(), { sealed: 0 }, 'nothing to seal, no checkpoint of an empty chain');
    await r.audit.write(db, [draft(r.clock, 1), draft(r.clock, 2), draft(r.clock, 3)]);
    const first = await r.audit.seal();
    // The first pass created the audit key, whose creation is an entry of its own (position 4).
    t.equal(first.sealed, 4);
    t.equal(first.checkpoint?.seq, 4, 'the first checkpoint follows the first entries');
    await r.audit.write(db, [draft(r.clock, 4), draft(r.clock, 5), draft(r.clock, 6)]);
    t.equal((await r.audit.seal()).checkpoint, undefined, '3 entries and no time since: not due');
    await r.audit.write(db, [draft(r.clock, 7), draft(r.clock, 8)]);
    t.equal((await r.audit.seal()).checkpoint?.seq, 9, '5 entries since the last: due');
    await r.audit.write(db, [draft(r.clock, 9)]);
    t.equal((await r.audit.seal()).checkpoint, undefined);
    r.clock.advance(MINUTE);
    t.equal((await r.audit.seal()).checkpoint?.seq, 10, 'a minute since the last: due');
    r.clock.advance(MINUTE);
    t.equal((await r.audit.seal()).checkpoint, undefined, 'nothing new: no checkpoint');

    const lines = (await readFile(r.file, 'utf8')).trim().split('\n').map((line) => JSON.parse(line) as { seq: number });
    t.same(lines.map((l) => l.seq), [4, 9, 10], 'every checkpoint copied outside the database, in order');
    t.equal((await stat(r.file)).mode & 0o777, 0o600, 'the copy is owner-only');
    t.equal((await stat(join(r.dir, 'audit'))).mode & 0o777, 0o700);
    t.equal((await readLatestCheckpoint(r.file))?.seq, 10);

    const chain = await r.store.chain(0, 100);
    t.same(chain.map((c) => c.seq), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    t.same(chain.map((c) => c.entryId), [...chain.map((c) => c.entryId)].sort((a, b) => a - b), 'in id order');
    t.equal(await r.store.countUnsealed(), 0);
    const report = await r.audit.verify();
    t.ok(report.ok, report.problems.map((p) => p.detail).join('; '));
    t.equal(report.sealed, 10);
    t.equal(report.checkpoints, 3);
    t.equal(report.expected.seq, 10);
    const entry = (await r.audit.query({}, { limit: 1 })).entries[0]!;
    t.equal(entry.actor, 'account:acct-1');
    t.equal(entry.details, JSON.stringify({ n: 1, note: 'ünïcode ✓ "quoted"' }), 'details stored as the exact JSON text hashed');
    t.equal(entry.seal?.seq, 1);
    t.equal(entry.seal?.prevHash, '00'.repeat(32));

    // The audit key is in the key store, and its creation is itself an entry.
    const creations = await r.audit.query({ action: 'audit-key.create' });
    t.equal(creations.entries.length, 1);
    t.equal(creations.entries[0]!.subject, `key:${AUDIT_KEY_NAME}`);
  });

  await t.test('ok/query: each filter, keyset pages both ways, a time range, group scope; bad input refused', async (t) => {
    await reset(db);
    const r = await rig(t, db);
    for (let n = 1; n <= 30; n++) {
      // Entries 11-15 share one time: pages must still cover them once each (ties broken by id).
      await r.audit.write(db, [draft(r.clock, n)]);
      if (n < 11 || n >= 15) r.clock.advance(MINUTE);
    }
    const pages = async (newestFirst: boolean, filter = {}): Promise<number[]> => {
      let cursor: string | undefined;
      const seen: number[] = [];
      do {
        const page = await r.audit.query(filter, { limit: 4, newestFirst, ...(cursor ? { cursor } : {}) });
        t.ok(page.entries.length <= 4);
        seen.push(...page.entries.map((e) => e.id));
        cursor = page.nextCursor;
      } while (cursor);
      return seen;
    };
    const seen = await pages(false);
    t.equal(seen.length, 30, 'pages cover every entry once');
    t.same(seen, [...seen].sort((a, b) => a - b), 'oldest first');
    t.equal(new Set(seen).size, 30);
    t.same(await pages(true), [...seen].reverse(), 'newest first: the same entries in reverse');
    t.same(await pages(true, { groups: ['payments', 'default', 'payments'] }), seen.filter((_, i) => (i + 1) % 4 === 0).reverse(), 'a group scope pages too');
    const ascending = await r.audit.query({}, { limit: 2 });
    await expectCaError(t, r.audit.query({}, { cursor: ascending.nextCursor!, newestFirst: true }), 'malformed', /cursor is not one this server issued/);

    const byActor = await r.audit.query({ actor: 'cli:alice' }, { limit: 100 });
    t.equal(byActor.entries.length, 15);
    t.ok(byActor.entries.every((e) => e.actor === 'cli:alice'));
    t.equal((await r.audit.query({ action: 'certificate.revoke' }, { limit: 100 })).entries.length, 10);
    t.same((await r.audit.query({ subject: 'certificate:000b' })).entries.map((e) => e.subject), ['certificate:000b']);
    const from = new Date('2026-03-01T00:10:00Z');
    const to = new Date('2026-03-01T00:12:00Z');
    const range = await r.audit.query({ from, to }, { limit: 100 });
    t.same(range.entries.map((e) => JSON.parse(e.details!).n), [11, 12, 13, 14, 15, 16], 'from inclusive, to exclusive');
    t.ok(range.entries.every((e) => e.at >= from && e.at < to));
    t.equal((await r.audit.query({ groups: ['payments'] }, { limit: 100 })).entries.length, 7, 'a group administrator sees its groups only');
    t.equal((await r.audit.query({ groups: [] }, { limit: 100 })).entries.length, 0);
    const combined = await r.audit.query({ actor: 'cli:alice', action: 'certificate.revoke', from }, { limit: 100 });
    t.ok(combined.entries.every((e) => e.actor === 'cli:alice' && e.action === 'certificate.revoke' && e.at >= from));
    await expectCaError(t, r.audit.query({}, { cursor: 'abc' }), 'malformed', /cursor is not one this server issued/);
    await expectCaError(t, r.audit.query({}, { cursor: Buffer.from(JSON.stringify(['1; DROP'])).toString('base64url') }), 'malformed', /cursor is not one this server issued/);
    await expectCaError(t, r.audit.query({}, { limit: 0 }), 'malformed', /limit must be 1-1000/);
    await expectCaError(t, r.audit.query({}, { limit: 100_000 }), 'malformed', /limit must be 1-1000/);
    await expectCaError(t, r.audit.query({ from: new Date('nonsense') }), 'malformed', /from is not a time/);
    const all: number[] = [];
    for await (const entry of r.audit.export({ from })) all.push(entry.id);
    t.equal(all.length, 20, 'export streams every entry since');
    t.same(
      (await r.audit.query({ groups: ['payments'], from: new Date('2026-03-01T00:19:00Z') }, { limit: 100 })).entries.map((e) => JSON.parse(e.details!).n),
      [24, 28],
      'a group scope with a time range',
    );
  });

  await t.test('tamper/verification fails naming the first bad entry', async (t) => {
    await reset(db);
    const r = await rig(t, db, { checkpointEntries: 10 });
    const ids: number[] = [];
    for (const count of [10, 10, 5]) {
      for (let n = 0; n < count; n++) {
        await r.audit.write(db, [draft(r.clock, ids.length + n)]);
        r.clock.advance(1000);
      }
      await r.audit.seal();
      ids.push(...(await r.audit.query({}, { limit: 100 })).entries.map((e) => e.id).filter((id) => !ids.includes(id)));
    }
    await r.audit.checkpoint();
    const untouched = await r.audit.verify();
    t.ok(untouched.ok, `untouched log passes: ${untouched.problems.map((p) => p.detail).join('; ')}`);
    t.equal(untouched.sealed, 25);
    t.same(untouched.warnings, []);
    const restore = await snapshot(r);
    const head = untouched.sealed;
    const checkpointsBefore = (await r.store.checkpoints(0, 100)).map((c) => c.seq);
    t.ok(checkpointsBefore.length >= 3, `checkpoints at ${checkpointsBefore.join(', ')}`);

    const expectFailure = async (name: string, tamper: () => Promise<number>, detail: RegExp): Promise<void> => {
      await t.test(name, async (t) => {
        const firstBad = await tamper();
        const report = await r.audit.verify();
        t.notOk(report.ok, 'verification fails');
        t.equal(report.firstBad?.seq, firstBad, `names position ${firstBad} first (${report.firstBad?.detail ?? ''})`);
        t.match(report.firstBad?.detail, detail);
        await restore();
        t.ok((await r.audit.verify()).ok, 'restored: passes again');
      });
    };

    const victim = ids[11]!;
    await expectFailure('fail/an entry edited', async () => {
      await db.query(`UPDATE audit_entries SET actor = 'cli:mallory' WHERE id = $1`, [victim]);
      return seqOf(db, victim);
    }, /entry \d+ at position \d+ was altered/);

    await expectFailure('fail/an entry edited in its details only', async () => {
      await db.query(`UPDATE audit_entries SET details = '{"n":0}' WHERE id = $1`, [victim]);
      return seqOf(db, victim);
    }, /was altered/);

    await expectFailure('fail/an entry deleted with its chain position', async () => {
      const seq = await seqOf(db, victim);
      await db.query('DELETE FROM audit_chain WHERE entry_id = $1', [victim]);
      await db.query('DELETE FROM audit_entries WHERE id = $1', [victim]);
      return seq;
    }, /positions \d+\.\.\d+ are missing/);

    await expectFailure('fail/an entry deleted, its chain position left', async () => {
      const seq = await seqOf(db, victim);
      await db.query('DELETE FROM audit_entries WHERE id = $1', [victim]);
      return seq;
    }, /is missing \(deleted\)/);

    await expectFailure('fail/two entries reordered', async () => {
      const a = await seqOf(db, ids[5]!);
      const b = await seqOf(db, ids[6]!);
      // Swap which entry each position holds (through a free value: entry_id is unique).
      await db.query('UPDATE audit_chain SET entry_id = -1 WHERE seq = $1', [a]);
      await db.query('UPDATE audit_chain SET entry_id = $1 WHERE seq = $2', [ids[5]!, b]);
      await db.query('UPDATE audit_chain SET entry_id = $1 WHERE seq = $2', [ids[6]!, a]);
      return Math.min(a, b);
    }, /was altered \(or moved\)/);

    await expectFailure('fail/two entries reordered by swapping their contents', async () => {
      const a = ids[5]!;
      const b = ids[6]!;
      await db.query(
        `UPDATE audit_entries e SET at = o.at, actor = o.actor, action = o.action, subject = o.subject, details = o.details
         FROM audit_entries o WHERE (e.id, o.id) IN (($1::bigint, $2::bigint), ($2::bigint, $1::bigint))`,
        [a, b],
      );
      return Math.min(await seqOf(db, a), await seqOf(db, b));
    }, /was altered/);

    await expectFailure('fail/the last 4 entries deleted', async () => {
      await db.query('DELETE FROM audit_entries WHERE id IN (SELECT entry_id FROM audit_chain WHERE seq > $1)', [head - 4]);
      await db.query('DELETE FROM audit_chain WHERE seq > $1', [head - 4]);
      return head - 3;
    }, /beyond the chain's head/);

    await expectFailure('fail/the latest checkpoint deleted', async () => {
      const latest = checkpointsBefore.at(-1)!;
      await db.query('DELETE FROM audit_checkpoints WHERE seq = $1', [latest]);
      return checkpointsBefore.at(-2)! + 1;
    }, /is not in the database/);

    await expectFailure('fail/an entry edited and the whole chain recomputed by hand in SQL (the signed checkpoints tell)', async () => {
      await db.query(`UPDATE audit_entries SET subject = 'certificate:ffff' WHERE id = $1`, [victim]);
      await recomputeChainInSql(db);
      const seq = await seqOf(db, victim);
      // Nothing in the chain itself is wrong any more: only a checkpoint signed before the edit tells.
      return checkpointsBefore.filter((c) => c < seq).at(-1)! + 1;
    }, /no longer has the hash signed in its checkpoint/);

    await expectFailure('fail/the chain recomputed in SQL and every checkpoint deleted (the copy outside the database tells)', async () => {
      await db.query(`UPDATE audit_entries SET subject = 'certificate:ffff' WHERE id = $1`, [victim]);
      await recomputeChainInSql(db);
      await db.query('DELETE FROM audit_checkpoints');
      return 1;
    }, /is not in the database|does not have the hash of the checkpoint kept/);

    await t.test('ok/the SQL recomputation reproduces the chain exactly when nothing was edited', async (t) => {
      await recomputeChainInSql(db);
      t.ok((await r.audit.verify()).ok, 'so the cases above are caught by the checkpoints, not by a different hash');
      await restore();
    });

    await t.test('fail/--expect-head: a checkpoint an auditor kept, against a database rolled back before it', async (t) => {
      const kept = (await readLatestCheckpoint(r.file))!;
      await db.query('DELETE FROM audit_checkpoints WHERE seq = $1', [kept.seq]);
      await db.query('DELETE FROM audit_entries WHERE id IN (SELECT entry_id FROM audit_chain WHERE seq > $1)', [kept.seq - 2]);
      await db.query('DELETE FROM audit_chain WHERE seq > $1', [kept.seq - 2]);
      const report = await r.audit.verify({ expected: { checkpoint: kept, source: 'kept.jsonl' } });
      t.notOk(report.ok);
      // Past the last checkpoint left in the database nothing is vouched for any more.
      t.equal(report.firstBad?.seq, checkpointsBefore.at(-2)! + 1);
      t.match(report.problems.map((p) => p.detail).join('\n'), /kept in kept\.jsonl vouches for position \d+, beyond the chain's head/);
      await restore();
    });

    await t.test('fail/a checkpoint whose signature is not the audit key\'s', async (t) => {
      await db.query(`UPDATE audit_checkpoints SET signature = decode('3006020101020101', 'hex') WHERE seq = $1`, [checkpointsBefore[0]!]);
      const report = await r.audit.verify();
      t.notOk(report.ok);
      t.match(report.firstBad?.detail, /signature is not the audit key's/);
      await restore();
    });

    await t.test('fail/a chain position removed from an entry that stays', async (t) => {
      await db.query('DELETE FROM audit_chain WHERE seq = $1', [head]);
      const report = await r.audit.verify();
      t.notOk(report.ok);
      t.match(report.problems.map((p) => p.detail).join('\n'), /is in no chain position and not waiting to be sealed/);
      await restore();
    });
  });

  await t.test('ok/a failing audit write fails the change that carries it', async (t) => {
    const r = await rig(t, db);
    await db.query(`ALTER TABLE audit_entries ADD CONSTRAINT refuse_test CHECK (actor <> 'cli:refused') NOT VALID`);
    t.teardown(() => db.query('ALTER TABLE audit_entries DROP CONSTRAINT refuse_test'));
    await db.query('CREATE TABLE audit_test_change (n int)');
    await t.rejects(
      db.transaction(async (tx) => {
        await tx.query('INSERT INTO audit_test_change (n) VALUES (1)');
        await r.audit.write(tx, [draft(r.clock, 1, { actor: 'cli:refused' })]);
      }),
    );
    const { rows } = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM audit_test_change');
    t.equal(rows[0]!.n, 0, 'the change rolled back with its entry');
    await db.query('DROP TABLE audit_test_change');
  });

  if (db.driver === 'pg') {
    await t.test('ok/an entry committed after a later id was sealed takes the next position: nothing skipped', async (t) => {
      await reset(db);
      const r = await rig(t, db);
      await r.audit.seal();
      let release!: () => void;
      const held = new Promise<void>((resolve) => (release = resolve));
      let appended!: () => void;
      const inside = new Promise<void>((resolve) => (appended = resolve));
      const slow = db.transaction(async (tx) => {
        await r.audit.write(tx, [draft(r.clock, 100, { subject: 'certificate:slow' })]);
        appended();
        await held;
      });
      await inside;
      await r.audit.write(db, [draft(r.clock, 101, { subject: 'certificate:fast' })]);
      const sealed = await r.audit.seal();
      t.equal(sealed.sealed, 1, 'only the committed entry is sealed');
      release();
      await slow;
      t.equal((await r.audit.seal()).sealed, 1, 'the late one is sealed by the next pass');
      const chain = await r.store.chain(0, 1000);
      const slowEntry = chain.find((c) => c.entry?.subject === 'certificate:slow')!;
      const fastEntry = chain.find((c) => c.entry?.subject === 'certificate:fast')!;
      t.ok(slowEntry.entryId < fastEntry.entryId, 'the slow entry has the lower id');
      t.ok(slowEntry.seq > fastEntry.seq, '... and the later position');
      t.ok((await r.audit.verify()).ok);
    });

    await t.test('ok/two sealers at once: one writes, the other writes nothing; every entry sealed once', async (t) => {
      await reset(db);
      const r = await rig(t, db);
      const other = await rig(t, db);
      for (let n = 0; n < 40; n++) await r.audit.write(db, [draft(r.clock, n)]);
      const results = await Promise.allSettled([r.audit.seal(), other.audit.seal(), r.audit.seal()]);
      for (const result of results) {
        // A losing sealer is refused by the chain's keys (or, racing on the same rows, by deadlock detection).
        if (result.status === 'rejected') t.ok((result.reason as { kind?: string }).kind === 'conflict' || (result.reason as { code?: string }).code === '40P01', String(result.reason));
      }
      await r.audit.seal();
      t.equal(await r.store.countUnsealed(), 0);
      const report = await r.audit.verify();
      t.ok(report.ok, report.problems.map((p) => p.detail).join('; '));
    });
  }
});
