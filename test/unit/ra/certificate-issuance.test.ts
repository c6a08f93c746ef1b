import { generateKeyPairSync } from 'node:crypto';
import t from 'tap';
import { systemClock } from '../../../src/core/clock.js';
import { DomainEvents, type FirstOcspOutcome } from '../../../src/core/events.js';
import type { Queryable } from '../../../src/db/database.js';
import { SoftwareKeyStore } from '../../../src/keys/software/software-key-store.js';
import type { FirstOcspResponse } from '../../../src/ra/acme-stores.js';
import { MemoryKeyBlobs } from '../../helpers/memory-stores.js';
import { createTestCa } from '../../helpers/test-ca.js';

/**
 * The first OCSP response of an issuance: signed between the certificate's signature and its storage when
 * the issuance stores through `persist`, handed to it, and reported in the `certificate.issued` event, whose
 * handlers pre-sign it themselves only when that was not attempted. And the event's two phases.
 */
const keys = new SoftwareKeyStore({ blobs: new MemoryKeyBlobs(), passphrase: 'test-passphrase-0123456789', clock: systemClock });
const spki = (): Uint8Array => generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'der' });
const names = [{ type: 'dns' as const, value: 'first-ocsp.example.internal' }];

function recordOutcomes(events: DomainEvents<Queryable>): FirstOcspOutcome[] {
  const outcomes: FirstOcspOutcome[] = [];
  events.onCommitted('certificate.issued', ({ firstOcsp }) => void outcomes.push(firstOcsp));
  return outcomes;
}

await t.test('without a first-OCSP signer: persist gets none, the event says not attempted', async (t) => {
  const events = new DomainEvents<Queryable>();
  const outcomes = recordOutcomes(events);
  const ca = await createTestCa(keys, { events });
  const persisted: (FirstOcspResponse | undefined)[] = [];
  await ca.issuance.issueForKey(spki(), names, { persist: async (_c, ocsp) => void persisted.push(ocsp) });
  t.same(persisted, [undefined]);
  t.same(outcomes, ['not-attempted']);
});

await t.test('with a first-OCSP signer: signed after the certificate, stored with it', async (t) => {
  const events = new DomainEvents<Queryable>();
  const outcomes = recordOutcomes(events);
  const signedFor: string[] = [];
  const response = (serial: string): FirstOcspResponse => ({
    der: Buffer.from(serial, 'hex'),
    thisUpdate: new Date(0),
    nextUpdate: new Date(1000),
    refreshAfter: new Date(500),
    updatedAt: new Date(0),
  });
  const ca = await createTestCa(keys, {
    events,
    firstOcsp: async (certificate) => {
      t.ok(certificate.der.length > 0, 'the certificate is signed before its response is');
      signedFor.push(certificate.serial);
      return signedFor.length === 2 ? undefined : response(certificate.serial);
    },
  });
  const persisted: [string, FirstOcspResponse | undefined][] = [];
  const persist = async (certificate: { serial: string }, ocsp?: FirstOcspResponse): Promise<void> => void persisted.push([certificate.serial, ocsp]);

  const first = await ca.issuance.issueForKey(spki(), names, { persist });
  t.same(persisted.splice(0), [[first.serial, response(first.serial)]], 'persist stores the response with the certificate');
  t.same(outcomes.splice(0), ['stored']);

  const second = await ca.issuance.issueForKey(spki(), names, { persist });
  t.same(persisted.splice(0), [[second.serial, undefined]], 'a response that could not be signed is not stored');
  t.same(outcomes.splice(0), ['unsigned'], 'and handlers do not sign it again (the refresher backfills it)');

  await ca.issuance.issueForKey(spki(), names);
  t.same(signedFor.length, 2, 'the plain store path does not pre-sign');
  t.same(outcomes.splice(0), ['not-attempted']);
});

await t.test('the in-transaction phase: given to persist only when a handler needs it, run before the committed phase', async (t) => {
  const events = new DomainEvents<Queryable>();
  const seen: string[] = [];
  events.onCommitted('certificate.issued', ({ certificate }) => void seen.push(`committed ${certificate.serial}`));
  const ca = await createTestCa(keys, { events });
  let handed: unknown = 'unset';
  await ca.issuance.issueForKey(spki(), names, { persist: async (_c, _o, committing) => void (handed = committing) });
  t.equal(handed, undefined, 'no in-transaction handler: persist stays one statement');
  t.equal(seen.splice(0).length, 1, 'the committed phase ran');

  events.onCommitting('certificate.issued', async ({ certificate }) => void seen.push(`committing ${certificate.serial}`));
  const viaPersist = await ca.issuance.issueForKey(spki(), names, {
    persist: async (_c, _o, committing) => {
      seen.push('stored');
      await committing?.({ query: async () => ({ rows: [], rowCount: 0 }) });
    },
  });
  t.same(seen.splice(0), ['stored', `committing ${viaPersist.serial}`, `committed ${viaPersist.serial}`], 'persist runs it after storing, before the committed phase');

  const plain = await ca.issuance.issueForKey(spki(), names);
  t.same(seen.splice(0), [`committing ${plain.serial}`, `committed ${plain.serial}`], 'the plain path runs it inside its transaction');
  t.ok(ca.store.certificates.get(plain.serial), 'and stores the certificate');
});

await t.test('fail/an in-transaction handler that throws fails the issuance; nothing follows it', async (t) => {
  const events = new DomainEvents<Queryable>();
  const committed: string[] = [];
  events.onCommitted('certificate.issued', ({ certificate }) => void committed.push(certificate.serial));
  events.onCommitting('certificate.issued', async () => {
    throw new Error('audit entry refused');
  });
  const ca = await createTestCa(keys, { events });
  await t.rejects(ca.issuance.issueForKey(spki(), names, { persist: async (_c, _o, committing) => committing?.({ query: async () => ({ rows: [], rowCount: 0 }) }) }), /audit entry refused/);
  t.same(committed, [], 'no committed handler ran');
});
