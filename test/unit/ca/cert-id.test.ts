import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { certIdOf } from '../../../src/ca/cert-id.js';
import { formatCertId, parseCertId, serialContentOctets } from '../../../src/core/cert-id.js';
import { fromPem } from '../../../src/core/pem.js';

const example = fromPem(readFileSync(join(import.meta.dirname, '../../fixtures/rfc9773-example-cert.pem'), 'utf8'))[0]!;

t.test('ok/RFC 9773 §4.1 example certificate yields the RFC certID', async (t) => {
  t.equal(certIdOf(example), 'aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE');
});

t.test('ok/parse keeps the serial as stored hex and round-trips', async (t) => {
  const parsed = parseCertId('aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE');
  t.equal(parsed.serialHex, '87654321');
  t.equal(parsed.authorityKeyId.toString('hex'), '69885b6b87464041e1b37b847ba0ae2cde01c8d4');
  t.equal(formatCertId(parsed.authorityKeyId, serialContentOctets(parsed.serialHex)), 'aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE');
});

for (const bad of ['', 'nodot', 'a.', '.b', 'a.b.c', 'aYhb.gA', 'aYhb.AAE', 'a+b.AIdlQyE']) {
  t.test(`fail/certID "${bad}" is malformed`, async (t) => {
    t.throws(() => parseCertId(bad), { kind: 'malformed', message: /certID/ });
  });
}
