import { generateKeyPairSync, sign } from 'node:crypto';
import t from 'tap';
import type { AuditEntry } from '../../../src/core/audit.js';
import { canonicalEntry, checkpointPayload, checkpointSignatureValid, entryHash, ZERO_HASH } from '../../../src/inventory/audit-chain.js';

/**
 * The chain's arithmetic is a format: logs sealed today must verify with tomorrow's code, and anyone with an
 * export can recompute it. Known-answer vectors pin it (the first one recomputed independently:
 * python3 hashlib.sha256(bytes(32) + json.dumps([...], separators=(',', ':'), ensure_ascii=False))).
 */
const entry: AuditEntry = {
  id: 42,
  at: new Date('2026-03-01T12:34:56.789Z'),
  actor: 'account:abc',
  action: 'certificate.issue',
  subject: 'certificate:01ab',
  outcome: 'ok',
  group: 'payments',
  details: '{"identifiers":["dns:a.example"]}',
};

t.test('ok/canonical form and hashes are stable', async (t) => {
  t.equal(
    canonicalEntry(7, entry),
    '["chancery-audit-entry-v1",7,42,"2026-03-01T12:34:56.789Z","account:abc","certificate.issue","certificate:01ab","ok",null,"payments","{\\"identifiers\\":[\\"dns:a.example\\"]}"]',
  );
  t.equal(entryHash(ZERO_HASH, 1, entry), 'b0ac2d033bb1145a5d142ad8a20c50d4d97ea14a8dfdac1d6c459fd182dbdc98');
  t.equal(entryHash('ab'.repeat(32), 7, { ...entry, requestId: 'req-1' }), 'c8728e1d75d898286a929a87844710d9c54e49dcd89ffca82b35bc132b259c87');
  t.equal(
    checkpointPayload({ seq: 7, hash: 'cd'.repeat(32), at: new Date('2026-03-01T12:35:00Z') }).toString(),
    `chancery-audit-checkpoint-v1\n7\n${'cd'.repeat(32)}\n2026-03-01T12:35:00.000Z\n`,
  );
});

t.test('fail/every field, the position and the previous hash change the hash', async (t) => {
  const base = entryHash(ZERO_HASH, 1, entry);
  const variants: [string, string][] = [
    ['position', entryHash(ZERO_HASH, 2, entry)],
    ['previous hash', entryHash('01'.repeat(32), 1, entry)],
    ['id', entryHash(ZERO_HASH, 1, { ...entry, id: 43 })],
    ['time (1 ms)', entryHash(ZERO_HASH, 1, { ...entry, at: new Date(entry.at.getTime() + 1) })],
    ['actor', entryHash(ZERO_HASH, 1, { ...entry, actor: 'cli:abc' })],
    ['action', entryHash(ZERO_HASH, 1, { ...entry, action: 'certificate.revoke' })],
    ['subject', entryHash(ZERO_HASH, 1, { ...entry, subject: 'certificate:01ac' })],
    ['outcome', entryHash(ZERO_HASH, 1, { ...entry, outcome: 'refused' })],
    ['request id', entryHash(ZERO_HASH, 1, { ...entry, requestId: 'x' })],
    ['group removed', entryHash(ZERO_HASH, 1, { ...entry, group: undefined })],
    ['details', entryHash(ZERO_HASH, 1, { ...entry, details: '{"identifiers":["dns:b.example"]}' })],
  ];
  for (const [what, hash] of variants) t.not(hash, base, what);
});

t.test('ok/checkpoint signatures: ECDSA (DER) and RSA from a Signer-shaped key; fail/anything else', async (t) => {
  const checkpoint = { seq: 7, hash: 'cd'.repeat(32), at: new Date('2026-03-01T12:35:00Z') };
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const ecKey = { publicKey: ec.publicKey.export({ type: 'spki', format: 'der' }), algorithm: 'ecdsa-with-SHA256' as const };
  const ecSignature = sign('sha256', checkpointPayload(checkpoint), { key: ec.privateKey, dsaEncoding: 'der' }).toString('hex');
  t.ok(checkpointSignatureValid({ ...checkpoint, signature: ecSignature }, ecKey));
  t.notOk(checkpointSignatureValid({ ...checkpoint, seq: 8, signature: ecSignature }, ecKey), 'another position');
  t.notOk(checkpointSignatureValid({ ...checkpoint, hash: 'ce'.repeat(32), signature: ecSignature }, ecKey), 'another head');
  t.notOk(checkpointSignatureValid({ ...checkpoint, at: new Date('2026-03-01T12:35:01Z'), signature: ecSignature }, ecKey), 'another time');
  t.notOk(checkpointSignatureValid({ ...checkpoint, signature: '00' }, ecKey), 'not a signature at all');
  const other = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  t.notOk(checkpointSignatureValid({ ...checkpoint, signature: ecSignature }, { ...ecKey, publicKey: other.publicKey.export({ type: 'spki', format: 'der' }) }), 'another key');

  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const rsaKey = { publicKey: rsa.publicKey.export({ type: 'spki', format: 'der' }), algorithm: 'sha256WithRSAEncryption' as const };
  const rsaSignature = sign('sha256', checkpointPayload(checkpoint), rsa.privateKey).toString('hex');
  t.ok(checkpointSignatureValid({ ...checkpoint, signature: rsaSignature }, rsaKey));
  t.notOk(checkpointSignatureValid({ ...checkpoint, signature: rsaSignature }, { ...rsaKey, algorithm: 'rsassa-pss-sha256' }), 'PKCS#1 is not PSS');
});
