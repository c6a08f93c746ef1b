import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import tls from 'node:tls';
import * as acme from 'acme-client';
import t, { type Test } from 'tap';
import { startDnsServer } from '../helpers/dns-server.js';
import { instrumentAcmeClient, requireTools, startHttp01Responder, startInteropChancery, waitFor } from '../helpers/interop.js';
import { openssl } from '../helpers/openssl.js';

/**
 * "Validation really validates": a running Chancery, driven by acme-client's low-level calls, must mark a
 * challenge (and its authorization and order) invalid with the right problem type when the proof is wrong:
 * - http-01 serving a wrong key authorization           -> incorrectResponse (RFC 8555 §8.3)
 * - dns-01 without a TXT record                          -> dns (RFC 8555 §8.4)
 * - tls-alpn-01 with a NON-critical acmeIdentifier ext.  -> incorrectResponse (RFC 8737 §3: it MUST be critical)
 * Each failing case has a control case, same set-up with the right proof, that must end valid: the failure
 * is then the server's judgement, not a broken harness. CHANCERY_VALIDATION_MAX_ATTEMPTS=1: no retries.
 */
const ERR = 'urn:ietf:params:acme:error:';
const ACME_IDENTIFIER_OID = '1.3.6.1.5.5.7.1.31';
const tools = requireTools(t, ['openssl']);
if (tools) {
  const dns = await startDnsServer();
  t.teardown(() => dns.close());
  const chancery = await startInteropChancery(t, {
    dnsResolver: dns.resolver,
    env: { CHANCERY_VALIDATION_MAX_ATTEMPTS: '1', CHANCERY_VALIDATION_TIMEOUT_SECONDS: '5' },
  });
  const recorder = instrumentAcmeClient(acme, chancery.rootPemText);
  const http01 = await startHttp01Responder(chancery.http01Port, t);

  // tls-alpn-01 responder: one certificate per SNI name, ALPN "acme-tls/1" only (RFC 8737 §3).
  const contexts = new Map<string, tls.SecureContext>();
  let defaultContext: { key: string; cert: string } | undefined;
  const tlsServer = tls.createServer({
    ALPNProtocols: ['acme-tls/1'],
    SNICallback: (servername, callback) => callback(null, contexts.get(servername.toLowerCase())),
  });
  tlsServer.on('tlsClientError', () => undefined);
  await new Promise<void>((resolve, reject) => {
    tlsServer.once('error', reject);
    tlsServer.listen(chancery.tlsAlpn01Port, '127.0.0.1', () => resolve());
  });
  t.teardown(() => new Promise<void>((resolve) => tlsServer.close(() => resolve())));

  /** A self-signed tls-alpn-01 certificate for `name` made by openssl, with the acmeIdentifier critical or not. */
  async function alpnCertificate(name: string, keyAuthorization: string, critical: boolean): Promise<{ key: string; cert: string }> {
    const digest = createHash('sha256').update(keyAuthorization, 'utf8').digest('hex');
    // The extension value is the DER OCTET STRING (04 20 ...) holding the SHA-256 digest.
    const der = `DER:04:20:${digest.match(/../g)!.join(':')}`;
    const keyFile = join(chancery.workDir, `${name}.key.pem`);
    const certFile = join(chancery.workDir, `${name}.cert.pem`);
    const args = [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1',
      '-keyout', keyFile, '-out', certFile, '-subj', '/',
      '-addext', `subjectAltName=DNS:${name}`,
      '-addext', `${ACME_IDENTIFIER_OID}=${critical ? 'critical,' : ''}${der}`,
    ];
    const result = await openssl(args);
    if (result.code !== 0) throw new Error(`openssl req failed: ${result.stderr}`);
    const text = await openssl(['x509', '-in', certFile, '-noout', '-text']);
    // openssl prints unknown extensions as "<oid>: critical" or "<oid>:" — make sure we built what we meant.
    const line = text.stdout.split('\n').find((l) => l.includes(ACME_IDENTIFIER_OID)) ?? '';
    if (line.includes('critical') !== critical) throw new Error(`openssl made the acmeIdentifier ${critical ? 'non-' : ''}critical:\n${text.stdout}`);
    return { key: await readFile(keyFile, 'utf8'), cert: await readFile(certFile, 'utf8') };
  }

  const client = new acme.Client({
    directoryUrl: chancery.directory,
    accountKey: await acme.crypto.createPrivateEcdsaKey('P-256'),
    backoffAttempts: 40,
    backoffMin: 200,
    backoffMax: 1_000,
  });
  await client.createAccount({ termsOfServiceAgreed: true, contact: ['mailto:ops@example.internal'] });

  type Respond = (challenge: { token: string }, keyAuthorization: string, name: string) => Promise<void>;

  /** One order for `name`, the `type` challenge answered by `respond`; resolves with the final objects. */
  async function attempt(name: string, type: 'http-01' | 'dns-01' | 'tls-alpn-01', respond: Respond) {
    dns.setA(name, '127.0.0.1');
    const order = await client.createOrder({ identifiers: [{ type: 'dns', value: name }] });
    const [authz] = await client.getAuthorizations(order);
    const challenge = authz!.challenges.find((c) => c.type === type);
    if (!challenge) throw new Error(`no ${type} challenge offered: ${JSON.stringify(authz)}`);
    await respond(challenge, await client.getChallengeKeyAuthorization(challenge), name);
    await client.completeChallenge(challenge);
    // Bounded by the backoff options above (<= ~40 s); an invalid challenge aborts the wait at once.
    await client.waitForValidStatus(challenge).catch(() => undefined);
    let final = authz!;
    await waitFor(`authorization for ${name} to leave pending`, async () => {
      [final] = (await client.getAuthorizations(order)) as [typeof final];
      return final.status !== 'pending';
    }, 30_000, 250);
    const finalChallenge = final.challenges.find((c) => c.type === type)!;
    const finalOrder = await client.getOrder(order);
    return { authz: final, challenge: finalChallenge as typeof finalChallenge & { error?: { type?: string; detail?: string } }, order: finalOrder };
  }

  async function expectValid(tt: Test, name: string, type: 'http-01' | 'dns-01' | 'tls-alpn-01', respond: Respond): Promise<void> {
    const { authz, challenge, order } = await attempt(name, type, respond);
    const report = { challenge, exchanges: recorder.describe(3) };
    tt.equal(challenge.status, 'valid', `control: the ${type} challenge is valid`, report);
    tt.equal(authz.status, 'valid', 'control: the authorization is valid');
    tt.equal(order.status, 'ready', 'control: the order is ready');
  }

  async function expectInvalid(tt: Test, name: string, type: 'http-01' | 'dns-01' | 'tls-alpn-01', problem: string, respond: Respond): Promise<void> {
    const { authz, challenge, order } = await attempt(name, type, respond);
    const report = { challenge, exchanges: recorder.describe(3) };
    tt.equal(challenge.status, 'invalid', `the ${type} challenge is invalid`, report);
    tt.equal(challenge.error?.type, ERR + problem, `with error type ${problem}`, report);
    tt.ok(typeof challenge.error?.detail === 'string' && challenge.error.detail.length > 0, 'and a detail', { detail: challenge.error?.detail });
    tt.equal(authz.status, 'invalid', 'the authorization is invalid');
    tt.equal(order.status, 'invalid', 'the order is invalid (RFC 8555 §7.1.6)');
  }

  await t.test('http-01', async (tt) => {
    await expectValid(tt, 'http-ok.test', 'http-01', async (challenge, keyAuthorization) => {
      http01.answers.set(challenge.token, keyAuthorization);
    });
    await expectInvalid(tt, 'http-wrong.test', 'http-01', 'incorrectResponse', async (challenge, keyAuthorization) => {
      // Right token, wrong thumbprint: what a client with another account key would serve.
      const [token] = keyAuthorization.split('.');
      http01.answers.set(challenge.token, `${token!}.${Buffer.alloc(32, 1).toString('base64url')}`);
    });
    tt.ok(http01.requests.some((p) => p.includes('/.well-known/acme-challenge/')), 'the validator did fetch the resource');
  });

  await t.test('dns-01', async (tt) => {
    await expectValid(tt, 'dns-ok.test', 'dns-01', async (_challenge, digest, name) => {
      dns.setTxt(`_acme-challenge.${name}`, [digest]);
    });
    await expectInvalid(tt, 'dns-missing.test', 'dns-01', 'dns', async () => {
      // No TXT record at all: _acme-challenge.dns-missing.test does not exist.
    });
    tt.ok(dns.queries.includes('TXT _acme-challenge.dns-missing.test'), 'the validator did ask for the TXT record', { queries: dns.queries });
  });

  await t.test('tls-alpn-01', async (tt) => {
    const serve = (critical: boolean): Respond => async (_challenge, keyAuthorization, name) => {
      const pair = await alpnCertificate(name, keyAuthorization, critical);
      contexts.set(name, tls.createSecureContext(pair));
      if (!defaultContext) {
        defaultContext = pair;
        tlsServer.setSecureContext(pair);
      }
    };
    await expectValid(tt, 'alpn-ok.test', 'tls-alpn-01', serve(true));
    await expectInvalid(tt, 'alpn-noncritical.test', 'tls-alpn-01', 'incorrectResponse', serve(false));
  });
}
