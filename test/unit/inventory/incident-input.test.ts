import { generateKeyPairSync } from 'node:crypto';
import t from 'tap';
import { isCaError } from '../../../src/core/errors.js';
import { incidentWindow } from '../../../src/core/incident.js';
import { toPem } from '../../../src/core/pem.js';
import { parseDeclare, parseSelection, parseSerialsFile } from '../../../src/inventory/incident-input.js';
import { bucketFor } from '../../../src/inventory/incident-status.js';

const now = new Date('2026-12-01T12:00:00Z');
const noCertificates = (): Uint8Array => {
  throw new Error('not a certificate');
};
const spki = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'der' });

function refused(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    if (isCaError(error, 'malformed')) return error.detail;
    throw error;
  }
  throw new Error('accepted');
}

t.test('serials files', async (t) => {
  const cases: [string, string, RegExp | string[]][] = [
    ['ok/one per line, colons, 0x, comments and blank lines', '# affected\n3A:F0:01\n\n0x0b0c  # the db host\r\n3af001\n', ['3af001', '0b0c']],
    ['fail/a bad line is named by its number', 'aa\nbb\nnot-hex\n', /^serials file line 3: "not-hex" is not a serial number/],
    ['fail/longer than 20 octets', `${'ab'.repeat(22)}\n`, /line 1: .* is not a serial number \(hex, up to 20 octets\)/],
    ['fail/nothing in it', '# only a comment\n\n', /no serial in it/],
  ];
  for (const [name, text, expected] of cases) {
    if (Array.isArray(expected)) t.same(parseSerialsFile(text).map((s) => s.serial), expected, name);
    else t.match(refused(() => parseSerialsFile(text)), expected, name);
  }
});

t.test('selections', async (t) => {
  t.match(parseSelection({ select: 'group=payments&label=env:prod&label=app:ledger' }, noCertificates), { kind: 'filter', filter: { group: 'payments', labels: [{ key: 'env', value: 'prod' }, { key: 'app', value: 'ledger' }] } }, 'ok/a query string, repeated label');
  t.match(parseSelection({ select: { issuer: 'int-a' } }, noCertificates), { kind: 'filter', filter: { issuer: 'int-a' } }, 'ok/parameters');
  t.match(parseSelection({ key: toPem(spki, 'PUBLIC KEY') }, noCertificates), { kind: 'key', spkiSha256: /^[0-9a-f]{64}$/ }, 'ok/a PEM public key');
  const fails: [string, Parameters<typeof parseSelection>[0], RegExp][] = [
    ['fail/none', {}, /the selection is missing/],
    ['fail/two', { select: 'group=a', serials: 'aa' }, /give one selection, not select and serials/],
    ['fail/an empty filter never means everything', { select: '' }, /select: empty/],
    ['fail/an unknown parameter, named', { select: 'colour=blue' }, /select: parameter "colour": unknown/],
    ['fail/revoked certificates are never covered', { select: 'status=revoked' }, /an incident covers valid certificates/],
    ['fail/a PEM that is neither key nor certificate', { key: '-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n' }, /expected a PEM "PUBLIC KEY"/],
    ['fail/a public key that is not one', { key: toPem(Buffer.from('not a key'), 'PUBLIC KEY') }, /the PEM public key cannot be read/],
  ];
  for (const [name, input, detail] of fails) t.match(refused(() => parseSelection(input, noCertificates)), detail, name);
});

t.test('declarations', async (t) => {
  const base = { name: 'pay-key-2026', reason: 'keyCompromise', renewBy: '7d', select: 'group=payments' };
  const ok = parseDeclare(base, now, noCertificates);
  t.match(ok, { name: 'pay-key-2026', reason: 1, revoke: 'when-replaced', drill: false }, 'ok/when-replaced by default');
  t.equal(ok.renewBy.toISOString(), '2026-12-08T12:00:00.000Z', 'ok/a duration counts from now');
  t.equal(parseDeclare({ ...base, renewBy: '2026-12-31' }, now, noCertificates).renewBy.toISOString(), '2026-12-31T00:00:00.000Z', 'ok/a date');
  t.equal(parseDeclare({ ...base, explanationUrl: 'https://pki.example.test/i/1' }, now, noCertificates).explanationUrl, 'https://pki.example.test/i/1');
  const fails: [string, Record<string, unknown>, RegExp][] = [
    ['fail/a name with a space', { name: 'pay key' }, /name: "pay key" is not an incident name/],
    ['fail/no deadline', { renewBy: undefined }, /renewBy: the deadline is missing/],
    ['fail/a deadline in the past', { renewBy: '2026-12-01T11:59:59Z' }, /renewBy: 2026-12-01T11:59:59.000Z is not in the future \(now 2026-12-01T12:00:00.000Z\)/],
    ['fail/a deadline beyond any certificate', { renewBy: '400d' }, /more than 398 days ahead/],
    ['fail/not a date', { renewBy: 'tomorrow' }, /renewBy: "tomorrow" is not a date/],
    ['fail/certificateHold is not an incident', { reason: 'certificateHold' }, /reason: must be one of/],
    ['fail/an explanation that is not a URL', { explanationUrl: 'see wiki' }, /explanationUrl: an absolute https/],
    ['fail/drill must be a boolean', { drill: 'yes' }, /drill: true or false/],
  ];
  for (const [name, change, detail] of fails) t.match(refused(() => parseDeclare({ ...base, ...change }, now, noCertificates)), detail, name);
});

t.test('the incident window (RFC 9773 §4.2)', async (t) => {
  const declaredAt = new Date('2026-12-01T00:00:00Z');
  const renewBy = new Date('2026-12-08T00:00:00Z');
  const own = { start: new Date('2026-12-10T00:00:00Z'), end: new Date('2026-12-20T00:00:00Z') };
  t.same(incidentWindow(own, { declaredAt, renewBy }), { start: declaredAt, end: new Date('2026-12-04T12:00:00Z') }, 'ok/begins at the declaration, ends half way to the deadline');
  const due = { start: new Date('2026-11-20T00:00:00Z'), end: new Date('2026-11-30T00:00:00Z') };
  t.same(incidentWindow(due, { declaredAt, renewBy }), due, 'ok/a certificate already due keeps its earlier window');
  const soon = { start: new Date('2026-11-25T00:00:00Z'), end: new Date('2026-12-02T00:00:00Z') };
  t.same(incidentWindow(soon, { declaredAt, renewBy }), soon, 'ok/never ends later than the certificate’s own window');
});

t.test('time series buckets', async (t) => {
  t.equal(bucketFor(0), 10_000, 'ok/ten seconds at first');
  t.equal(bucketFor(60 * 60_000), 60_000, 'ok/minutes for an hour');
  t.equal(bucketFor(7 * 86_400_000), 6 * 3_600_000, 'ok/six hours for a week');
  t.ok(bucketFor(400 * 86_400_000) * 60 >= 400 * 86_400_000, 'ok/never more than 60 points');
});
