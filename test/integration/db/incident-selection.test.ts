/**
 * A filter selection is counted (a preview) and recorded (a declaration) by the database in one statement
 * (IncidentRepository.selectionCounts / addSelected), on PGlite and PostgreSQL: its blast radius must be
 * what counting the same certificates one by one gives (RadiusCounter.add, the serials file's way), and
 * the incident must hold exactly the valid certificates that match — never a revoked or expired one.
 */
import t from 'tap';

import type { IssuedCertificate } from '../../../src/core/certificate.js';
import { DAY, HOUR } from '../../../src/core/clock.js';
import type { Incident } from '../../../src/core/incident.js';
import type { Database } from '../../../src/db/database.js';
import { CertificateRepository } from '../../../src/db/repositories/certificate-repository.js';
import type { SearchCriteria } from '../../../src/db/repositories/certificate-search-repository.js';
import { IncidentRepository } from '../../../src/db/repositories/incident-repository.js';
import { RadiusCounter, expiryBounds } from '../../../src/inventory/incident-selection.js';
import { builders } from '../../helpers/builders.js';
import { insertRootIssuer, withEachDatabase } from '../../helpers/databases.js';

const T0 = new Date('2026-03-01T00:00:00.000Z');
const at = (ms: number): Date => new Date(T0.getTime() + ms);
const { buildCertificate } = builders(T0);

async function store(db: Database, overrides: Partial<IssuedCertificate>): Promise<IssuedCertificate> {
  const certificate = buildCertificate(overrides);
  await new CertificateRepository(db).reserveSerial(certificate.serial, certificate.issuerId, certificate.createdAt);
  await new CertificateRepository(db).insert(certificate);
  return certificate;
}

/** The radius of `certificates` counted one by one in JavaScript (no sample: the statement does not make it). */
function countedOneByOne(certificates: IssuedCertificate[], now: Date): ReturnType<RadiusCounter['finish']> {
  const counter = new RadiusCounter(now);
  counter.add({
    members: certificates.map((c) => ({ serial: c.serial, group: c.group ?? '', issuerId: c.issuerId, notAfter: c.notAfter, shortLived: c.noRevAvail === true })),
    excluded: { revoked: 0, expired: 0 },
  });
  return { ...counter.finish(new Map()), sample: [] };
}

await withEachDatabase(t, async (t, db) => {
  await insertRootIssuer(db, at(-400 * DAY));
  const now = at(0);
  const incidents = new IncidentRepository(db);
  // Every expiry bucket and its edges (exactly 7 and 30 days left count as within), short-lived ones, no group.
  const payments = [
    await store(db, { group: 'payments', notAfter: at(3 * DAY) }),
    await store(db, { group: 'payments', notAfter: at(7 * DAY) }),
    await store(db, { group: 'payments', notAfter: at(7 * DAY + 1) }),
    await store(db, { group: 'payments', notAfter: at(30 * DAY) }),
    await store(db, { group: 'payments', notAfter: at(60 * DAY) }),
    await store(db, { group: 'payments', notAfter: at(200 * DAY) }),
    await store(db, { group: 'payments', notAfter: at(2 * DAY), noRevAvail: true, profile: 'short' }),
    await store(db, { group: 'payments', notAfter: at(5 * DAY), noRevAvail: true, profile: 'short' }),
  ];
  const web = [await store(db, { group: 'web', notAfter: at(45 * DAY) }), await store(db, { group: 'web', notAfter: at(1 * DAY), noRevAvail: true, profile: 'short' })];
  const ungrouped = [await store(db, { notAfter: at(10 * DAY) })];
  const revoked = await store(db, { group: 'payments', notAfter: at(20 * DAY) });
  await new CertificateRepository(db).revoke(revoked.serial, at(-HOUR), 1);
  await store(db, { group: 'payments', notAfter: at(-DAY) }); // expired

  const cases: [string, SearchCriteria, IssuedCertificate[]][] = [
    ['everything valid', { status: 'valid' }, [...payments, ...web, ...ungrouped]],
    ['one group', { groups: ['payments'], status: 'valid' }, payments],
    ['a profile', { profile: 'short', status: 'valid' }, [payments[6]!, payments[7]!, web[1]!]],
    ['nothing', { groups: ['web'], profile: 'none', status: 'valid' }, []],
  ];
  for (const [name, criteria, expected] of cases) {
    await t.test(`ok/${name}: counted as one by one`, async (t) => {
      const counter = new RadiusCounter(now);
      counter.addCounts(await incidents.selectionCounts(criteria, expiryBounds(now), now));
      t.same({ ...counter.finish(new Map()), sample: [] }, countedOneByOne(expected, now));
    });
  }

  await t.test('ok/a declaration records exactly the valid certificates that match, counted as a preview counts them', async (t) => {
    const incident: Incident = {
      id: 'inc_selected',
      name: 'selected',
      reason: 1,
      revoke: 'when-replaced',
      drill: false,
      renewBy: at(7 * DAY),
      selection: { kind: 'filter', parameters: { group: 'payments' } },
      affected: 0,
      shortLived: 0,
      blockedKeys: 0,
      declaredAt: now,
      declaredBy: 'cli:test',
    };
    await incidents.insert(incident);
    const criteria: SearchCriteria = { groups: ['payments'], status: 'valid' };
    const counts = await incidents.addSelected(incident.id, criteria, expiryBounds(now), now);
    const sorted = (list: typeof counts): typeof counts => [...list].sort((x, y) => (JSON.stringify(x) < JSON.stringify(y) ? -1 : 1));
    t.same(sorted(counts), sorted(await incidents.selectionCounts(criteria, expiryBounds(now), now)), 'the counts of what was recorded are what a preview counts');
    const { rows } = await db.query<{ serial: string; group_name: string; issuer_id: string; not_after: Date; short_lived: boolean }>(
      `SELECT serial, group_name, issuer_id, not_after, short_lived FROM incident_certificates WHERE incident_id = $1 ORDER BY serial`,
      [incident.id],
    );
    t.same(
      rows.map((r) => ({ serial: r.serial, group: r.group_name, issuerId: r.issuer_id, notAfter: new Date(r.not_after).toISOString(), shortLived: r.short_lived })),
      payments
        .map((c) => ({ serial: c.serial, group: 'payments', issuerId: c.issuerId, notAfter: c.notAfter.toISOString(), shortLived: c.noRevAvail === true }))
        .sort((x, y) => (x.serial < y.serial ? -1 : 1)),
    );
    const none = await incidents.addSelected(incident.id, { groups: ['web'], profile: 'none', status: 'valid' }, expiryBounds(now), now);
    t.same(none, [], 'an empty selection records nothing');
  });
});
