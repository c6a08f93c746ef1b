import { generateKeyPairSync } from 'node:crypto';
import { calculateJwkThumbprint } from 'jose';
import t from 'tap';
import { certIdOf } from '../../../src/ca/cert-id.js';
import type { Account } from '../../../src/core/account.js';
import { compose } from '../../../src/compose.js';
import type { ValidationOutcome, ValidationRequest, Validator } from '../../../src/va/validator.js';
import { expectCaError } from '../../helpers/expect-error.js';
import { makeCsr, requireOpenssl } from '../../helpers/openssl.js';
import { composeForTest } from '../../helpers/runtime.js';

/** The RA end to end on PGlite with a scripted validator: orders, finalize, reuse, ARI, revocation. */
requireOpenssl();

class ScriptedValidator implements Validator {
  readonly seen: ValidationRequest[] = [];
  outcome: (request: ValidationRequest) => ValidationOutcome = () => ({ valid: true });
  async validate(request: ValidationRequest): Promise<ValidationOutcome> {
    this.seen.push(request);
    return this.outcome(request);
  }
}

const validator = new ScriptedValidator();
const { chancery, config } = await composeForTest({ validator });
t.teardown(() => chancery.close());
const { hierarchy } = chancery;
const runtime = { db: chancery.db, certificates: chancery.services.certificates };
const acme = { ...chancery.services, externalUrl: chancery.acmeUrl };
const ra = acme.ra;

/** A second instance on the same database (as two processes on one PostgreSQL would be). */
async function anotherInstance(): Promise<{ ra: typeof ra; scheduler: typeof acme.scheduler; close(): Promise<void> }> {
  const other = await compose(config, { database: chancery.db, validator, listen: false, logger: chancery.logger });
  return { ...other.services, close: () => other.close() };
}

async function newAccount(): Promise<Account> {
  const jwk = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'jwk' }) as Record<string, string>;
  const { account } = await ra.newAccount({
    publicJwk: jwk,
    jwkThumbprint: await calculateJwkThumbprint(jwk as never),
    contacts: ['mailto:ops@example.internal'],
    termsOfServiceAgreed: true,
    onlyReturnExisting: false,
    newAccountUrl: `${acme.externalUrl}/acme/new-account`,
  });
  return account;
}

/** Answers every challenge of type `type` in the order and runs the scheduler once. */
async function validateOrder(account: Account, orderId: string, type = 'http-01'): Promise<void> {
  const order = await ra.getOrder(account, orderId);
  for (const authzId of order.authorizationIds) {
    const authz = await ra.getAuthorization(account, authzId);
    if (authz.status !== 'pending') continue;
    const challenge = authz.challenges.find((c) => c.type === type) ?? authz.challenges[0]!;
    await ra.respondToChallenge(account, challenge.id);
  }
  await acme.scheduler.runOnce();
}

async function issue(account: Account, names: string[]): Promise<{ serial: string; der: Uint8Array }> {
  const order = await ra.newOrder(account, { identifiers: names.map((value) => ({ type: 'dns', value })) });
  await validateOrder(account, order.id);
  const csr = await makeCsr({ keyType: 'ec-p256', sans: names.map((n) => `DNS:${n}`) });
  const done = await ra.finalizeOrder(account, order.id, csr.der);
  const chain = await ra.getCertificateChain(account, done.certificateSerial!);
  return { serial: done.certificateSerial!, der: chain.certificate };
}

const alice = await newAccount();
const mallory = await newAccount();

await t.test('ok/order -> challenge -> ready -> finalize -> valid with certificate and chain', async (t) => {
  const order = await ra.newOrder(alice, { identifiers: [{ type: 'dns', value: 'web.example.internal' }, { type: 'dns', value: '*.apps.example.internal' }] });
  t.equal(order.status, 'pending');
  const [plain, wildcard] = await Promise.all(order.authorizationIds.map((id) => ra.getAuthorization(alice, id)));
  t.same(plain!.challenges.map((c) => c.type).sort(), ['dns-01', 'http-01', 'tls-alpn-01']);
  t.same(wildcard!.challenges.map((c) => c.type), ['dns-01'], 'wildcards only by dns-01');
  t.equal(wildcard!.identifier.value, 'apps.example.internal', 'authorization names the base domain');
  t.ok(wildcard!.wildcard);

  await expectCaError(t, ra.finalizeOrder(alice, order.id, Buffer.from('x')), 'orderNotReady', /must be ready/);
  await validateOrder(alice, order.id, 'dns-01');
  const keyAuth = validator.seen.at(-1)!.keyAuthorization;
  t.equal(keyAuth, `${validator.seen.at(-1)!.token}.${alice.jwkThumbprint}`, 'key authorization = token.thumbprint');
  t.equal((await ra.getOrder(alice, order.id)).status, 'ready');

  const wrongCsr = await makeCsr({ keyType: 'ec-p256', sans: ['DNS:web.example.internal', 'DNS:evil.example.internal'] });
  await expectCaError(t, ra.finalizeOrder(alice, order.id, wrongCsr.der), 'badCSR', /not in the order/);
  t.equal((await ra.getOrder(alice, order.id)).status, 'ready', 'a bad CSR leaves the order ready');

  const csr = await makeCsr({ keyType: 'ec-p256', sans: ['DNS:web.example.internal', 'DNS:*.apps.example.internal'] });
  const done = await ra.finalizeOrder(alice, order.id, csr.der);
  t.equal(done.status, 'valid');
  const chain = await ra.getCertificateChain(alice, done.certificateSerial!);
  t.equal(chain.chain.length, 1, 'chain is the intermediate only');
  t.same(Buffer.from(chain.chain[0]!), Buffer.from(hierarchy.intermediate.der));
  await expectCaError(t, ra.getCertificateChain(mallory, done.certificateSerial!), 'unauthorized', /another account/);
});

await t.test('ok/the download of a certificate this instance just issued skips the database; another instance reads it', async (t) => {
  const { serial, der } = await issue(alice, ['fresh.example.internal']);
  const other = await anotherInstance();
  t.teardown(() => other.close());
  t.same(Buffer.from((await other.ra.getCertificateChain(alice, serial)).certificate), Buffer.from(der), 'another instance reads the stored bytes');
  await expectCaError(t, ra.getCertificateChain(mallory, serial), 'unauthorized', /another account/);
  await expectCaError(t, other.ra.getCertificateChain(mallory, serial), 'unauthorized', /another account/);
  // Only a test changes a stored certificate: the issuing instance still answers with what it issued, so its
  // download did not read the row; the other instance reads the row.
  const altered = Buffer.from('altered behind the instance');
  await runtime.db.query('UPDATE certificates SET der = $1 WHERE serial = $2', [altered, serial]);
  try {
    t.same(Buffer.from((await ra.getCertificateChain(alice, serial)).certificate), Buffer.from(der));
    t.same(Buffer.from((await other.ra.getCertificateChain(alice, serial)).certificate), altered);
  } finally {
    await runtime.db.query('UPDATE certificates SET der = $1 WHERE serial = $2', [Buffer.from(der), serial]);
  }
});

await t.test('ok/concurrent finalize calls: exactly one issues, nothing else is stored', async (t) => {
  const order = await ra.newOrder(alice, { identifiers: [{ type: 'dns', value: 'race.example.internal' }] });
  await validateOrder(alice, order.id);
  const csr = await makeCsr({ keyType: 'ec-p256', sans: ['DNS:race.example.internal'] });
  const results = await Promise.allSettled(Array.from({ length: 4 }, () => ra.finalizeOrder(alice, order.id, csr.der)));
  const won = results.filter((r): r is PromiseFulfilledResult<Awaited<ReturnType<typeof ra.finalizeOrder>>> => r.status === 'fulfilled');
  t.equal(won.length, 1, 'one finalize issues');
  for (const r of results) if (r.status === 'rejected') t.match((r.reason as { kind?: string }).kind, 'orderNotReady');
  const final = await ra.getOrder(alice, order.id);
  t.equal(final.status, 'valid');
  t.equal(final.certificateSerial, won[0]!.value.certificateSerial, 'the order names the one certificate');
  t.ok(await runtime.certificates.findBySerial(final.certificateSerial!), 'stored with the order in one statement');
});

await t.test('ok/a signing failure after the claim leaves the order invalid and no certificate', async (t) => {
  const order = await ra.newOrder(alice, { identifiers: [{ type: 'dns', value: 'fails.example.internal' }] });
  await validateOrder(alice, order.id);
  const csr = await makeCsr({ keyType: 'ec-p256', sans: ['DNS:fails.example.internal'] });
  const issuance = acme.issuance as unknown as { deps: { signer: { sign: (prepared: unknown) => Promise<Buffer> } } };
  const sign = issuance.deps.signer.sign;
  issuance.deps.signer.sign = async () => {
    throw new Error('HSM unplugged');
  };
  try {
    await t.rejects(ra.finalizeOrder(alice, order.id, csr.der), { message: 'HSM unplugged' });
  } finally {
    issuance.deps.signer.sign = sign;
  }
  const failed = await ra.getOrder(alice, order.id);
  t.equal(failed.status, 'invalid', 'RFC 8555 §7.1.6: processing -> invalid');
  t.equal(failed.certificateSerial, undefined);
});

await t.test('fail/another account cannot read or finalize your order', async (t) => {
  const order = await ra.newOrder(alice, { identifiers: [{ type: 'dns', value: 'private.example.internal' }] });
  await expectCaError(t, ra.getOrder(mallory, order.id), 'unauthorized', /another account/);
  await expectCaError(t, ra.getAuthorization(mallory, order.authorizationIds[0]!), 'unauthorized', /another account/);
});

await t.test('ok/valid authorizations are reused by the same account only', async (t) => {
  await issue(alice, ['reuse.example.internal']);
  const again = await ra.newOrder(alice, { identifiers: [{ type: 'dns', value: 'reuse.example.internal' }] });
  t.equal(again.status, 'ready', 'second order is ready at once');
  const other = await ra.newOrder(mallory, { identifiers: [{ type: 'dns', value: 'reuse.example.internal' }] });
  t.equal(other.status, 'pending', "another account does not inherit alice's authorization");
});

await t.test('ok/failed validation makes the challenge, authorization and order invalid', async (t) => {
  validator.outcome = () => ({ valid: false, problem: { kind: 'incorrectResponse', detail: 'wrong key authorization' }, retryable: false });
  const order = await ra.newOrder(alice, { identifiers: [{ type: 'dns', value: 'bad.example.internal' }] });
  await validateOrder(alice, order.id);
  const authz = await ra.getAuthorization(alice, order.authorizationIds[0]!);
  t.equal(authz.status, 'invalid');
  t.equal(authz.challenges.find((c) => c.status === 'invalid')?.error?.kind, 'incorrectResponse');
  const failed = await ra.getOrder(alice, order.id);
  t.equal(failed.status, 'invalid');
  t.match(failed.error?.detail, /wrong key authorization/);
  validator.outcome = () => ({ valid: true });
});

await t.test('ok/retryable failures back off, then give up after maxAttempts', async (t) => {
  validator.outcome = () => ({ valid: false, problem: { kind: 'connection', detail: 'connection refused' }, retryable: true });
  const order = await ra.newOrder(alice, { identifiers: [{ type: 'dns', value: 'flaky.example.internal' }] });
  await validateOrder(alice, order.id);
  const authz = await ra.getAuthorization(alice, order.authorizationIds[0]!);
  t.equal(authz.status, 'pending', 'still pending after one retryable failure');
  const challenge = authz.challenges.find((c) => c.status === 'processing')!;
  t.equal(challenge.attempts, 1);
  t.equal(await acme.scheduler.runOnce(), 0, 'not due again before its backoff');
  validator.outcome = () => ({ valid: true });
});

await t.test('ok/ARI replaces: accepted once, 409 the second time, refused for another account', async (t) => {
  const first = await issue(alice, ['renew.example.internal']);
  const certId = certIdOf(first.der);
  const info = await ra.renewalInfo(certId);
  t.ok(info.start < info.end);
  t.equal(info.retryAfterSeconds, 3600, 'ari.retryAfterSeconds, shipped default');
  const renewal = await ra.newOrder(alice, { identifiers: [{ type: 'dns', value: 'renew.example.internal' }], replaces: certId });
  t.equal(renewal.replacesSerial, first.serial);
  await expectCaError(t, ra.newOrder(alice, { identifiers: [{ type: 'dns', value: 'renew.example.internal' }], replaces: certId }), 'alreadyReplaced', /already been replaced/);
  const other = await issue(mallory, ['mallory.example.internal']);
  await expectCaError(t, ra.newOrder(alice, { identifiers: [{ type: 'dns', value: 'mallory.example.internal' }], replaces: certIdOf(other.der) }), 'unauthorized', /another account/);
  const csr = await makeCsr({ keyType: 'ec-p256', sans: ['DNS:renew.example.internal'] });
  const done = await ra.finalizeOrder(alice, renewal.id, csr.der);
  const successor = await runtime.certificates.findBySerial(done.certificateSerial!);
  t.equal(successor?.replacesSerial, first.serial, 'the new certificate knows its predecessor');
});

await t.test('ok/revocation by the issuing account; refusals for bad reason, other account, twice', async (t) => {
  const cert = await issue(alice, ['revoke.example.internal']);
  await expectCaError(t, ra.revokeCertificate({ certificateDer: cert.der, reason: 2, by: { account: alice } }), 'badRevocationReason', /reason 2 is not allowed/);
  await expectCaError(t, ra.revokeCertificate({ certificateDer: cert.der, by: { account: mallory } }), 'unauthorized', /neither issued/);
  await ra.revokeCertificate({ certificateDer: cert.der, reason: 4, by: { account: alice } });
  const stored = await runtime.certificates.findBySerial(cert.serial);
  t.equal(stored?.status, 'revoked');
  t.equal(stored?.revocationReason, 4);
  await expectCaError(t, ra.revokeCertificate({ certificateDer: cert.der, by: { account: alice } }), 'alreadyRevoked', /already revoked/);
  const info = await ra.renewalInfo(certIdOf(cert.der));
  t.ok(info.end.getTime() < Date.now(), 'a revoked certificate gets a window in the past');
});

await t.test('ok/an account holding valid authorizations for every name may revoke', async (t) => {
  const cert = await issue(alice, ['shared.example.internal']);
  const order = await ra.newOrder(mallory, { identifiers: [{ type: 'dns', value: 'shared.example.internal' }] });
  await validateOrder(mallory, order.id);
  await ra.revokeCertificate({ certificateDer: cert.der, reason: 1, by: { account: mallory } });
  t.equal((await runtime.certificates.findBySerial(cert.serial))?.status, 'revoked');
});

await t.test('ok/a validation pending when the process stops is resumed by the next one', async (t) => {
  const order = await ra.newOrder(alice, { identifiers: [{ type: 'dns', value: 'resume.example.internal' }] });
  const authz = await ra.getAuthorization(alice, order.authorizationIds[0]!);
  const { challenge } = await ra.respondToChallenge(alice, authz.challenges.find((c) => c.type === 'http-01')!.id);
  t.equal(challenge.status, 'processing', 'answered, not yet validated');
  // "Restart": the first scheduler never runs; a new composition over the same database picks the work up.
  const next = await anotherInstance();
  t.teardown(() => next.close());
  // At least this one: the retry test's challenge may have come due too (its backoff is wall-clock time).
  t.ok((await next.scheduler.runOnce()) >= 1, 'the persisted validation is claimed');
  t.equal((await next.ra.getOrder(alice, order.id)).status, 'ready', 'and validated by the new composition');
});
