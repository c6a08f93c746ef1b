/**
 * The incident statements find each member's certificate by its key. incident_certificates.serial is
 * COLLATE "C" and certificates.serial is not: a plain `certificates.serial = ic.serial` compares under "C",
 * which certificates_pkey cannot answer, so every lookup was a sequential scan of certificates (bench:revoke's
 * 100,000-member incident spent over ten minutes in one outbox statement). Every statement the incident
 * repository sends that reads certificates is recorded, then planned with sequential scans disabled: a plan
 * that still scans certificates has no index it could use.
 */
import t from 'tap';

import { DAY } from '../../../src/core/clock.js';
import type { Incident } from '../../../src/core/incident.js';
import type { Queryable } from '../../../src/db/database.js';
import { openPgDatabase } from '../../../src/db/pg-database.js';
import { IncidentRepository } from '../../../src/db/repositories/incident-repository.js';
import { freshPgDatabase } from '../../helpers/databases.js';

const database = await freshPgDatabase(t, { migrated: true });
if (database !== undefined) {
  const db = await openPgDatabase(database.url, { poolSize: 1 });
  t.teardown(() => db.close());

  const sent: { sql: string; params: readonly unknown[] }[] = [];
  const recording: Queryable = {
    query: (sql, params = [], options) => {
      sent.push({ sql, params });
      return db.query(sql, params, options);
    },
  };
  const incidents = new IncidentRepository(recording);
  const now = new Date('2026-06-01T00:00:00.000Z');
  const incident: Incident = {
    id: 'inc_plans',
    name: 'plans',
    reason: 1,
    revoke: 'when-replaced',
    drill: false,
    renewBy: new Date(now.getTime() + 7 * DAY),
    selection: { kind: 'serials', count: 1 },
    affected: 1,
    shortLived: 0,
    blockedKeys: 0,
    declaredAt: now,
    declaredBy: 'cli:test',
  };
  await incidents.insert(incident);
  await incidents.addMembers(incident.id, [{ serial: '0a1b', group: 'payments', issuerId: 'i1', notAfter: new Date(now.getTime() + 30 * DAY), shortLived: false }]);
  await incidents.blockMemberKeys(incident.id);
  await incidents.replacedUnrevoked(incident.id, 100);
  await incidents.groupCounts(incident.id, now);
  await incidents.series(incident.id, now, DAY);
  await incidents.certificates(incident.id, undefined, now, { limit: 100 });
  await incidents.notifyOwners(incident, now);

  const reading = sent.filter((s) => /\bcertificates\b/.test(s.sql));
  await t.test('ok/every statement that reads certificates reaches them by key', async (t) => {
    t.ok(reading.length >= 6, `${reading.length} statements read certificates`);
    for (const statement of reading) {
      const plan = await db.transaction(async (tx) => {
        await tx.query('SET LOCAL enable_seqscan = off');
        return (await tx.query<{ 'QUERY PLAN': string }>(`EXPLAIN ${statement.sql}`, statement.params)).rows.map((row) => row['QUERY PLAN']).join('\n');
      });
      t.notMatch(plan, /Seq Scan on certificates\b/, `${statement.sql.replace(/\s+/g, ' ').slice(0, 90)}...\n${plan}`);
    }
  });
}
