import { readFile } from 'node:fs/promises';
import t from 'tap';
import { toPem } from '../../../src/core/pem.js';
import type { Validator } from '../../../src/va/validator.js';
import { InjectClient, makeAccountKey } from '../../helpers/acme-jws.js';
import { makeCsr, openssl, requireOpenssl, writeTemp } from '../../helpers/openssl.js';
import { composeForTest } from '../../helpers/runtime.js';

/**
 * Certificate profiles (draft-ietf-acme-profiles) through the wire protocol: the directory lists them, an
 * order names one (or gets tls-server), and the certificate is what the profile says — judged by openssl:
 * its EKUs, its validity and, for short-lived, RFC 9608 noRevAvail with no CRL DP and no OCSP URL. A
 * short-lived certificate's revocation is accepted and recorded, and published nowhere.
 */
requireOpenssl();
const validator: Validator = { validate: async () => ({ valid: true }) };
const { chancery } = await composeForTest({
  validator,
  env: { CHANCERY_PROFILE_MTLS_VALIDITY: '12h', CHANCERY_PROFILE_SHORT_LIVED_VALIDITY: '90m' },
});
t.teardown(() => chancery.close());
const app = (await chancery.apps()).acme;
const client = new InjectClient(app, chancery.acmeUrl);
const key = await makeAccountKey('ES256');
const account = await client.post('/acme/new-account', key, { payload: { termsOfServiceAgreed: true } });
const kid = String(account.headers.location);
const rootFile = await writeTemp('root.pem', toPem(chancery.hierarchy.root.der));
const chainFile = await writeTemp('chain.pem', toPem(chancery.hierarchy.intermediate.der));

/** A whole issuance through the ACME app; `profile` undefined sends none, as lego and certbot do. */
async function issue(name: string, profile?: string): Promise<{ order: Record<string, unknown>; pemFile: string; text: string; serial: string; der: Buffer }> {
  const created = await client.post('/acme/new-order', key, { kid, payload: { identifiers: [{ type: 'dns', value: name }], ...(profile ? { profile } : {}) } });
  if (created.statusCode !== 201) throw new Error(`newOrder: ${created.statusCode} ${created.body}`);
  const order = JSON.parse(created.body) as Record<string, unknown>;
  for (const url of order.authorizations as string[]) {
    const authz = JSON.parse((await client.post(url, key, { kid, payload: '' })).body) as { challenges: { type: string; url: string }[] };
    await client.post(authz.challenges.find((c) => c.type === 'http-01')!.url, key, { kid, payload: {} });
  }
  await chancery.services.scheduler.runOnce();
  const csr = await makeCsr({ keyType: 'ec-p256', sans: [`DNS:${name}`] });
  const finalized = await client.post(String(order.finalize), key, { kid, payload: { csr: csr.der.toString('base64url') } });
  if (finalized.statusCode !== 200) throw new Error(`finalize: ${finalized.statusCode} ${finalized.body}`);
  const valid = JSON.parse(finalized.body) as Record<string, unknown>;
  const download = await client.post(String(valid.certificate), key, { kid, payload: '' });
  const leafPem = download.body.split(/(?<=-----END CERTIFICATE-----\n)/)[0]!;
  const pemFile = await writeTemp('leaf.pem', leafPem);
  const text = (await openssl(['x509', '-in', pemFile, '-noout', '-text'])).stdout;
  const serial = (await openssl(['x509', '-in', pemFile, '-noout', '-serial'])).stdout.trim().replace(/^serial=/, '').toLowerCase();
  const der = Buffer.from(leafPem.replace(/-----[A-Z ]+-----|\s/g, ''), 'base64');
  return { order: valid, pemFile, text, serial, der };
}

/** Validity span in seconds as openssl reads it. */
async function spanSeconds(pemFile: string): Promise<number> {
  const out = (await openssl(['x509', '-in', pemFile, '-noout', '-startdate', '-enddate'])).stdout;
  const start = Date.parse(/notBefore=(.*)/.exec(out)![1]!);
  const end = Date.parse(/notAfter=(.*)/.exec(out)![1]!);
  return (end - start) / 1000;
}

await t.test('ok/the directory lists every profile with its description', async (t) => {
  const directory = JSON.parse((await app.inject({ method: 'GET', url: '/acme/directory' })).body) as { meta: { profiles: Record<string, string> } };
  t.same(Object.keys(directory.meta.profiles), ['tls-server', 'tls-client', 'mtls', 'short-lived', 'operator']);
  t.match(directory.meta.profiles.operator, /admin API/, 'operators order their client certificate over ACME');
  t.match(directory.meta.profiles['short-lived'], /noRevAvail/);
});

await t.test('ok/no profile: tls-server, serverAuth only, the configured validity', async (t) => {
  const { order, pemFile, text } = await issue('default.profiles.test');
  t.equal(order.profile, 'tls-server');
  t.match(text, /X509v3 Extended Key Usage:\s*\n\s*TLS Web Server Authentication\s*\n/);
  t.match(text, /CRL Distribution Points/);
  t.match(text, /OCSP - URI:/);
  t.notMatch(text, /No Revocation Available/);
  t.equal(await spanSeconds(pemFile), 30 * 86400 - 1, '30 days, both ends counted (RFC 5280 §4.1.2.5)');
  const verify = await openssl(['verify', '-CAfile', rootFile, '-untrusted', chainFile, pemFile]);
  t.equal(verify.code, 0, verify.stderr);
});

await t.test('ok/tls-client: clientAuth only', async (t) => {
  const { order, text } = await issue('client.profiles.test', 'tls-client');
  t.equal(order.profile, 'tls-client');
  t.match(text, /X509v3 Extended Key Usage:\s*\n\s*TLS Web Client Authentication\s*\n/);
});

await t.test('ok/mtls: both EKUs, its own validity (12h)', async (t) => {
  const { order, pemFile, text } = await issue('mtls.profiles.test', 'mtls');
  t.equal(order.profile, 'mtls');
  t.match(text, /X509v3 Extended Key Usage:\s*\n\s*TLS Web Server Authentication, TLS Web Client Authentication/);
  t.equal(await spanSeconds(pemFile), 12 * 3600 - 1);
});

await t.test('ok/short-lived: noRevAvail, no CRL DP, no OCSP URL; a revocation is recorded and published nowhere', async (t) => {
  const { order, pemFile, text, serial, der } = await issue('short.profiles.test', 'short-lived');
  t.equal(order.profile, 'short-lived');
  t.match(text, /X509v3 No Revocation Available:/);
  t.notMatch(text, /CRL Distribution Points/);
  t.notMatch(text, /OCSP - URI:/);
  t.match(text, /CA Issuers - URI:/, 'caIssuers stays: chains can still be built');
  t.equal(await spanSeconds(pemFile), 90 * 60 - 1, 'the configured 90 minutes');
  t.equal((await openssl(['verify', '-CAfile', rootFile, '-untrusted', chainFile, pemFile])).code, 0);
  t.equal(await chancery.db.query('SELECT 1 FROM ocsp_responses WHERE serial = $1', [serial]).then((r) => r.rowCount), 0, 'no OCSP response signed');

  const revoked = await client.post('/acme/revoke-cert', key, { kid, payload: { certificate: der.toString('base64url'), reason: 1 } });
  t.equal(revoked.statusCode, 200, `revokeCert accepted: ${revoked.body}`);
  const stored = await chancery.services.certificates.findBySerial(serial);
  t.equal(stored?.status, 'revoked', 'recorded');
  t.equal(stored?.noRevAvail, true);
  await chancery.services.crl.settled();
  const crl = await chancery.services.crl.generate(chancery.hierarchy.intermediate.id, 0);
  const crlFile = await writeTemp('crl.der', (await chancery.services.crl.latest(chancery.hierarchy.intermediate.id, 0))!.der);
  const crlText = (await openssl(['crl', '-inform', 'DER', '-in', crlFile, '-noout', '-text'])).stdout;
  t.notMatch(crlText.toLowerCase(), new RegExp(`serial number: ${serial}`), 'not on the CRL');
  t.ok(crl.number > 0);
  const requestFile = await writeTemp('req.der', '');
  const made = await openssl(['ocsp', '-issuer', chainFile, '-cert', pemFile, '-no_nonce', '-reqout', requestFile]);
  t.equal(made.code, 0, made.stderr);
  const reply = await chancery.services.ocsp.respond(await readFile(requestFile));
  t.equal(reply.status, 'unauthorized', 'OCSP does not answer for it (RFC 9608, RFC 6960 §2.3)');
});

await t.test('fail/an unknown profile is invalidProfile and stores nothing', async (t) => {
  const before = (await chancery.db.query<{ n: number }>('SELECT count(*)::int AS n FROM orders')).rows[0]!.n;
  for (const profile of ['gold', 'tls server', '']) {
    const response = await client.post('/acme/new-order', key, { kid, payload: { identifiers: [{ type: 'dns', value: 'x.profiles.test' }], profile } });
    t.equal(response.statusCode, 400, `${JSON.stringify(profile)}: ${response.body}`);
    const problem = JSON.parse(response.body) as { type: string; detail: string };
    t.equal(problem.type, 'urn:ietf:params:acme:error:invalidProfile');
  }
  t.equal((await chancery.db.query<{ n: number }>('SELECT count(*)::int AS n FROM orders')).rows[0]!.n, before);
});

await t.test('fail/notAfter beyond the named profile is refused at newOrder', async (t) => {
  const notAfter = new Date(Date.now() + 3 * 3600_000).toISOString();
  const response = await client.post('/acme/new-order', key, { kid, payload: { identifiers: [{ type: 'dns', value: 'y.profiles.test' }], profile: 'short-lived', notAfter } });
  t.equal(response.statusCode, 400);
  t.match(JSON.parse(response.body), { type: 'urn:ietf:params:acme:error:malformed', detail: /exceeds the profile "short-lived"/ });
});
