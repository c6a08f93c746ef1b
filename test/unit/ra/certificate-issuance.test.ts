import { generateKeyPairSync } from 'node:crypto';
import t from 'tap';
import { systemClock } from '../../../src/core/clock.js';
import { SoftwareKeyStore } from '../../../src/keys/software/software-key-store.js';
import type { FirstOcspResponse } from '../../../src/ra/acme-stores.js';
import type { FirstOcspOutcome } from '../../../src/ra/certificate-issuance.js';
import { MemoryKeyBlobs } from '../../helpers/memory-stores.js';
import { createTestCa } from '../../helpers/test-ca.js';

/**
 * The first OCSP response of an issuance (issue #4): signed between the certificate's signature and its
 * storage when the issuance stores through `persist`, handed to it, and reported to the onIssued
 * listeners, which pre-sign it themselves only when that was not attempted.
 */
const keys = new SoftwareKeyStore({ blobs: new MemoryKeyBlobs(), passphrase: 'test-passphrase-0123456789', clock: systemClock });
const ca = await createTestCa(keys);
const outcomes: FirstOcspOutcome[] = [];
ca.issuance.onIssued(async (_certificate, outcome) => {
  outcomes.push(outcome);
});
const spki = (): Uint8Array => generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'der' });
const names = [{ type: 'dns' as const, value: 'first-ocsp.example.internal' }];

await t.test('without a pre-signer: persist gets none, listeners pre-sign', async (t) => {
  const persisted: (FirstOcspResponse | undefined)[] = [];
  await ca.issuance.issueForKey(spki(), names, { persist: async (_c, ocsp) => void persisted.push(ocsp) });
  t.same(persisted, [undefined]);
  t.same(outcomes.splice(0), ['not-attempted']);
});

await t.test('with a pre-signer: signed after the certificate, stored with it', async (t) => {
  const signedFor: string[] = [];
  const response = (serial: string): FirstOcspResponse => ({
    der: Buffer.from(serial, 'hex'),
    thisUpdate: new Date(0),
    nextUpdate: new Date(1000),
    refreshAfter: new Date(500),
    updatedAt: new Date(0),
  });
  ca.issuance.presignOcspWith(async (certificate) => {
    t.ok(certificate.der.length > 0, 'the certificate is signed before its response is');
    signedFor.push(certificate.serial);
    return signedFor.length === 2 ? undefined : response(certificate.serial);
  });
  const persisted: [string, FirstOcspResponse | undefined][] = [];
  const persist = async (certificate: { serial: string }, ocsp?: FirstOcspResponse): Promise<void> => void persisted.push([certificate.serial, ocsp]);

  const first = await ca.issuance.issueForKey(spki(), names, { persist });
  t.same(persisted.splice(0), [[first.serial, response(first.serial)]], 'persist stores the response with the certificate');
  t.same(outcomes.splice(0), ['stored']);

  const second = await ca.issuance.issueForKey(spki(), names, { persist });
  t.same(persisted.splice(0), [[second.serial, undefined]], 'a response that could not be signed is not stored');
  t.same(outcomes.splice(0), ['unsigned'], 'and listeners do not sign it again (the refresher backfills it)');

  await ca.issuance.issueForKey(spki(), names);
  t.same(signedFor.length, 2, 'the plain store path does not pre-sign');
  t.same(outcomes.splice(0), ['not-attempted']);
});
