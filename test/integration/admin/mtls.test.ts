import { execFile } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { pino } from 'pino';
import t from 'tap';
import { compose } from '../../../src/compose.js';
import type { Group } from '../../../src/core/group.js';
import { toPem } from '../../../src/core/pem.js';
import { issueFor } from '../../helpers/admin-api.js';
import { testConfig } from '../../helpers/runtime.js';

/**
 * mTLS on the admin listener: curl (on loopback) with a client certificate of the operator profile reads
 * what the role its key is bound to allows; an unbound or revoked certificate, or one of another profile,
 * gets 401.
 */
const run = promisify(execFile);
const dir = await mkdtemp(join(tmpdir(), 'chancery-mtls-'));
const config = testConfig(dir, { CHANCERY_ADMIN_LISTEN: '127.0.0.1:0' });
const chancery = await compose(config, { ca: 'create-if-missing', logger: pino({ level: 'silent' }) });
t.teardown(() => chancery.close());
const group = (name: string): Group => ({ name, contacts: [], policy: {} });
await chancery.services.groups.apply([group('default'), group('alpha')], { actor: 'cli:test' });
const apps = await chancery.apps();
const address = await apps.admin.listen({ host: '127.0.0.1', port: 0 });
const local = await chancery.localAdmin();
const rootFile = join(dir, 'root.pem');
await writeFile(rootFile, toPem(chancery.hierarchy.root.der));

async function credential(name: string, profile: string, bind?: { role: string; groups?: string[] }): Promise<{ cert: string; key: string; serial: string }> {
  const { certificate, keyPem } = await issueFor(chancery, { name, profile });
  const cert = join(dir, `${name}.pem`);
  const key = join(dir, `${name}.key`);
  await writeFile(cert, toPem(certificate.der) + toPem(chancery.hierarchy.intermediate.der));
  await writeFile(key, keyPem, { mode: 0o600 });
  if (bind) {
    const response = await local.inject({ method: 'POST', url: '/admin/v1/operators', headers: { 'x-chancery-user': 'test', 'content-type': 'application/json' }, payload: JSON.stringify({ serial: certificate.serial, ...bind }) });
    if (response.statusCode !== 200) throw new Error(response.body);
  }
  return { cert, key, serial: certificate.serial };
}

async function curl(who: { cert: string; key: string }, method: string, path: string, body?: string): Promise<{ status: number; body: string }> {
  const args = ['-sS', '--cacert', rootFile, '--cert', who.cert, '--key', who.key, '-X', method, '-w', '\n%{http_code}', `${address}${path}`];
  if (body !== undefined) args.push('-H', 'content-type: application/json', '--data', body);
  const { stdout } = await run('curl', args);
  const lines = stdout.split('\n');
  return { status: Number(lines.pop()), body: lines.join('\n') };
}

const auditor = await credential('ops-auditor.example.test', 'operator', { role: 'auditor' });
const groupAdmin = await credential('ops-alpha.example.test', 'operator', { role: 'group-admin', groups: ['alpha'] });

await t.test('ok/an operator certificate reads what its role allows', async (t) => {
  const me = await curl(auditor, 'GET', '/admin/v1/me');
  t.equal(me.status, 200, me.body);
  t.match(JSON.parse(me.body), { actor: 'certificate:ops-auditor.example.test', role: 'auditor', via: 'certificate' });
  t.equal((await curl(auditor, 'GET', '/admin/v1/certificates')).status, 200, 'an auditor reads certificates');
  t.equal((await curl(auditor, 'POST', '/admin/v1/eab', '{}')).status, 403, 'and changes nothing');
  const groups = await curl(groupAdmin, 'GET', '/admin/v1/groups');
  t.equal(groups.status, 200);
  t.same((JSON.parse(groups.body) as { items: { name: string }[] }).items.map((g) => g.name), ['alpha'], 'a group-admin sees its group');
  t.equal((await curl(groupAdmin, 'POST', '/admin/v1/eab', '{"group":"alpha"}')).status, 200, 'and acts on it');
});

await t.test('fail/unbound, other-profile and revoked certificates get 401', async (t) => {
  const unbound = await credential('ops-unbound.example.test', 'operator');
  t.equal((await curl(unbound, 'GET', '/admin/v1/me')).status, 401, 'not bound');
  const server = await credential('web.example.test', 'tls-client');
  t.equal((await curl(server, 'GET', '/admin/v1/me')).status, 401, 'a certificate of another profile');
  const bindServer = await local.inject({ method: 'POST', url: '/admin/v1/operators', headers: { 'x-chancery-user': 'test', 'content-type': 'application/json' }, payload: JSON.stringify({ serial: server.serial, role: 'admin' }) });
  t.equal(bindServer.statusCode, 400, 'only operator-profile certificates can be bound');
  await chancery.services.revoker.revoke(auditor.serial, 1, { actor: 'cli:test' });
  t.equal((await curl(auditor, 'GET', '/admin/v1/me')).status, 401, 'revoked: refused at once');
});
