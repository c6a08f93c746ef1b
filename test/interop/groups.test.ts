import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { canonicalSerial } from '../../src/core/serial-number.js';
import { openPgDatabase } from '../../src/db/pg-database.js';
import { CertificateRepository } from '../../src/db/repositories/certificate-repository.js';
import { freshPgDatabase } from '../helpers/databases.js';
import {
  certificateFileText,
  describeResult,
  parseEabOutput,
  requireTools,
  runCommand,
  startChalltestsrv,
  startInteropChancery,
  verifyChain,
  type CommandResult,
} from '../helpers/interop.js';
import { openssl } from '../helpers/openssl.js';

/**
 * The self-service story with a real client: the central team applies a policy (`chancery policy apply`)
 * giving the payments department the suffix pay.internal, ECDSA keys only, 7 days at most and one
 * pre-approved host, and makes it an EAB key (`chancery eab create --group payments --label ...`); lego,
 * registering with that key, gets a certificate for api.pay.internal and is refused db.hr.internal
 * (rejectedIdentifier naming the rule) and an RSA key (badPublicKey naming the limit); the certificate lasts
 * the group's 7 days and its inventory record carries the group and the labels. The pre-approved host is
 * issued without a challenge (lego's only solver fails whenever it is asked), another host of the group is
 * not. PostgreSQL underneath, so the test reads the records while the server runs.
 */
const tools = requireTools(t, ['lego', 'pebble-challtestsrv', 'openssl']);
const database = tools ? await freshPgDatabase(t) : undefined;
if (tools && database) {
  const scratch = await mkdtemp(join(tmpdir(), 'chancery-groups-interop-'));
  t.teardown(() => rm(scratch, { recursive: true, force: true }));
  const policyFile = join(scratch, 'policy.yaml');
  await writeFile(
    policyFile,
    [
      'groups:',
      '  default: {}',
      '  payments:',
      '    contacts: [pki-payments@example.com]',
      '    identifiers:',
      '      - suffix: pay.internal',
      '    keyTypes: [ecdsa]',
      '    maxValidity: 7d',
      '    labels: { owner: payments, criticality: high }',
      '    preapproved: [legacy-hsm.pay.internal]',
      '  hr:',
      '    identifiers:',
      '      - suffix: hr.internal',
      '',
    ].join('\n'),
  );
  const dns = await startChalltestsrv(tools['pebble-challtestsrv'], t);
  const chancery = await startInteropChancery(t, {
    dnsResolver: dns.resolver,
    env: { CHANCERY_DATABASE_URL: database.url, CHANCERY_EAB_REQUIRED: 'true' },
    setup: [
      ['policy', 'apply', policyFile],
      ['eab', 'create', '--group', 'payments', '--label', 'application=ledger', '--label', 'environment=production'],
    ],
  });
  const eab = parseEabOutput(chancery.setupOutput[1]!);
  const legoPath = join(chancery.workDir, 'lego');
  // A DNS solver that fails whenever lego asks it: an issuance that gets through needed no challenge.
  const refusingSolver = join(chancery.workDir, 'refusing-solver.sh');
  await writeFile(refusingSolver, '#!/bin/sh\necho "no challenge expected for $2" >&2\nexit 1\n');
  await chmod(refusingSolver, 0o755);

  function lego(domains: string[], keyType: 'ec256' | 'rsa2048', solver: 'http' | 'refusing'): Promise<CommandResult> {
    const solverArgs = solver === 'http' ? ['--http', '--http.port', `127.0.0.1:${chancery.http01Port}`] : ['--dns', 'exec', '--dns.disable-cp'];
    return runCommand(
      tools!.lego,
      [
        '--server', chancery.directory,
        '--path', legoPath,
        '--email', 'ops@pay.example',
        '--accept-tos',
        '--eab', '--kid', eab.kid, '--hmac', eab.hmacKey,
        '--key-type', keyType,
        ...domains.flatMap((d) => ['-d', d]),
        ...solverArgs,
        'run',
      ],
      { env: { LEGO_CA_CERTIFICATES: chancery.rootPem, EXEC_PATH: refusingSolver, EXEC_PROPAGATION_TIMEOUT: '5', EXEC_POLLING_INTERVAL: '1' }, timeoutMs: 120_000 },
    );
  }
  const report = (result: CommandResult): string => `${describeResult(result)}\n--- chancery output (tail) ---\n${chancery.output().slice(-3000)}`;
  const crt = (domain: string): string => join(legoPath, 'certificates', `${domain}.crt`);

  const db = await openPgDatabase(database.url, { poolSize: 1 });
  t.teardown(() => db.close());
  const record = async (certFile: string) => {
    const serial = canonicalSerial((await openssl(['x509', '-in', certFile, '-noout', '-serial'])).stdout.trim().replace(/^serial=/, ''));
    return new CertificateRepository(db).findBySerial(serial);
  };

  await t.test('ok/lego with the payments EAB key gets api.pay.internal: 7 days, the group and labels on record', async (t) => {
    const result = await lego(['api.pay.internal'], 'ec256', 'http');
    if (result.code !== 0 || result.timedOut) return void t.fail('lego run exits 0', { report: report(result) });
    const verdict = await verifyChain(chancery.rootPem, join(legoPath, 'certificates', 'api.pay.internal.issuer.crt'), crt('api.pay.internal'));
    t.ok(verdict.ok, 'openssl verifies it against our root', { output: verdict.output });
    const text = await certificateFileText(crt('api.pay.internal'));
    t.match(text, /DNS:api\.pay\.internal/);
    t.notMatch(text, /payments|ledger|production/, 'no group or label inside the X.509 certificate');
    const dates = (await openssl(['x509', '-in', crt('api.pay.internal'), '-noout', '-startdate', '-enddate'])).stdout;
    const span = (Date.parse(/notAfter=(.*)/.exec(dates)![1]!) - Date.parse(/notBefore=(.*)/.exec(dates)![1]!)) / 1000;
    t.equal(span, 7 * 86400 - 1, "the group's maximum validity, 7 days (lego asks for none)");
    const stored = await record(crt('api.pay.internal'));
    t.equal(stored?.group, 'payments', 'the record names the group');
    t.same(stored?.labels, { owner: 'payments', criticality: 'high', application: 'ledger', environment: 'production' }, "the group's labels with the EAB key's");
  });

  await t.test('fail/db.hr.internal is refused with rejectedIdentifier naming the rule', async (t) => {
    const result = await lego(['db.hr.internal'], 'ec256', 'http');
    t.not(result.code, 0, 'lego fails');
    const output = `${result.stdout}${result.stderr}`;
    t.match(output, /rejectedIdentifier/, 'rejectedIdentifier', { output: describeResult(result) });
    t.match(output, /db\.hr\.internal is outside the identifier scopes of group "payments" \(policy identifiers: suffix pay\.internal\)/);
  });

  await t.test('fail/an RSA key is refused with badPublicKey naming the limit', async (t) => {
    const result = await lego(['rsa.pay.internal'], 'rsa2048', 'http');
    t.not(result.code, 0, 'lego fails');
    const output = `${result.stdout}${result.stderr}`;
    t.match(output, /badPublicKey/, 'badPublicKey', { output: describeResult(result) });
    t.match(output, /group "payments" allows only ECDSA certificate keys \(policy keyTypes\)/);
  });

  await t.test('ok/the pre-approved host is issued without a challenge; fail/another host of the group needs one', async (t) => {
    const preapproved = await lego(['legacy-hsm.pay.internal'], 'ec256', 'refusing');
    t.equal(preapproved.code, 0, 'lego never asks its (failing) solver', { report: report(preapproved) });
    t.equal((await record(crt('legacy-hsm.pay.internal')))?.group, 'payments');
    const other = await lego(['other-hsm.pay.internal'], 'ec256', 'refusing');
    t.not(other.code, 0, 'a host the group does not list needs a challenge, and the solver refuses');
    t.match(`${other.stdout}${other.stderr}`, /no challenge expected for .*other-hsm\.pay\.internal/, { output: describeResult(other) });
  });
}
