import * as acme from 'acme-client';
import t, { type Test } from 'tap';
import {
  instrumentAcmeClient,
  requireTools,
  startHttp01Responder,
  startInteropChancery,
  verifyPemChain,
  type AcmeClientRecorder,
  type EabCredential,
} from '../helpers/interop.js';
import { startDnsServer } from '../helpers/dns-server.js';

/**
 * The npm acme-client library against a Chancery that requires External Account Binding
 * (CHANCERY_EAB_REQUIRED=true): new-account with and without EAB (RFC 8555 §7.3.4), key rollover (§7.3.5),
 * deactivation (§7.3.6), and a whole issuance in acme-client's auto mode answering http-01 from a tiny
 * responder in this test. Names resolve through the repo's test DNS server to 127.0.0.1.
 */
const ERR = 'urn:ietf:params:acme:error:';
const tools = requireTools(t, ['openssl']);
if (tools) {
  const dns = await startDnsServer();
  t.teardown(() => dns.close());
  const chancery = await startInteropChancery(t, {
    dnsResolver: dns.resolver,
    env: { CHANCERY_EAB_REQUIRED: 'true' },
    eabCredentials: 5,
  });
  const recorder = instrumentAcmeClient(acme, chancery.rootPemText);
  // One credential per account: a CA may bind an EAB key to the first account that uses it.
  const [eabAccount, eabRollover, eabDeactivate, eabWrongMac, eabIssue] = chancery.eab as [EabCredential, EabCredential, EabCredential, EabCredential, EabCredential];
  const fast = { backoffAttempts: 30, backoffMin: 200, backoffMax: 1_000 };
  const newKey = (): Promise<Buffer> => acme.crypto.createPrivateEcdsaKey('P-256');
  const order = (name: string) => ({ identifiers: [{ type: 'dns' as const, value: name }] });

  /** Runs fn, expecting a refusal whose problem type is one of `types`; reports the exchange otherwise. */
  async function expectRefused(tt: Test, what: string, types: string[], fn: () => Promise<unknown>, rec: AcmeClientRecorder = recorder): Promise<void> {
    const before = rec.exchanges.length;
    try {
      await fn();
      tt.fail(`${what}: refused`, { exchanges: rec.describe(4) });
      return;
    } catch (error) {
      const problem = rec.exchanges.length > before ? rec.lastProblem() : undefined;
      tt.ok(
        problem?.type !== undefined && types.map((x) => ERR + x).includes(problem.type),
        `${what}: refused with ${types.join(' or ')}`,
        { got: problem, error: (error as Error).message, exchanges: rec.describe(3) },
      );
    }
  }

  await t.test('the directory says an external account is required', async (tt) => {
    const response = await acme.axios.get(chancery.directory);
    const meta = (response.data as { meta?: { externalAccountRequired?: boolean } }).meta;
    tt.equal(meta?.externalAccountRequired, true, 'meta.externalAccountRequired is true');
  });

  await t.test('new-account without EAB is refused with externalAccountRequired', async (tt) => {
    const client = new acme.Client({ directoryUrl: chancery.directory, accountKey: await newKey(), ...fast });
    await expectRefused(tt, 'createAccount without externalAccountBinding', ['externalAccountRequired'], () =>
      client.createAccount({ termsOfServiceAgreed: true, contact: ['mailto:ops@example.internal'] }),
    );
  });

  await t.test('new-account with a wrong EAB HMAC key is refused', async (tt) => {
    const client = new acme.Client({
      directoryUrl: chancery.directory,
      accountKey: await newKey(),
      externalAccountBinding: { kid: eabWrongMac.kid, hmacKey: Buffer.alloc(32, 7).toString('base64url') },
      ...fast,
    });
    await expectRefused(tt, 'createAccount with a bad EAB MAC', ['unauthorized', 'malformed'], () => client.createAccount({ termsOfServiceAgreed: true }));
  });

  await t.test('new-account with EAB succeeds', async (tt) => {
    const client = new acme.Client({ directoryUrl: chancery.directory, accountKey: await newKey(), externalAccountBinding: eabAccount, ...fast });
    try {
      const account = await client.createAccount({ termsOfServiceAgreed: true, contact: ['mailto:ops@example.internal'] });
      tt.equal(account.status, 'valid', 'the account is valid');
      tt.match(client.getAccountUrl(), /^https:\/\/127\.0\.0\.1:\d+\/acme\//, 'acme-client learned the account URL from Location');
    } catch (error) {
      tt.fail(`createAccount with EAB: ${(error as Error).message}`, { exchanges: recorder.describe(4) });
    }
  });

  await t.test('key rollover: the old key is refused, the new key works', async (tt) => {
    const oldKey = await newKey();
    const client = new acme.Client({ directoryUrl: chancery.directory, accountKey: oldKey, externalAccountBinding: eabRollover, ...fast });
    try {
      await client.createAccount({ termsOfServiceAgreed: true });
    } catch (error) {
      tt.fail(`createAccount: ${(error as Error).message}`, { exchanges: recorder.describe(4) });
      return;
    }
    const accountUrl = client.getAccountUrl();
    const rolledKey = await newKey();
    try {
      await client.updateAccountKey(rolledKey);
      tt.pass('updateAccountKey (key-change) succeeds');
    } catch (error) {
      tt.fail(`updateAccountKey: ${(error as Error).message}`, { exchanges: recorder.describe(4) });
      return;
    }

    const withOldKey = new acme.Client({ directoryUrl: chancery.directory, accountKey: oldKey, accountUrl, ...fast });
    // The account's key is now the new one, so the old key's signature does not verify: Boulder and Pebble
    // answer malformed ("JWS verification error") there, others unauthorized; any of these is a refusal.
    await expectRefused(tt, 'new-order signed with the OLD key (kid = the account)', ['unauthorized', 'accountDoesNotExist', 'malformed'], () =>
      withOldKey.createOrder(order('rollover-old.test')),
    );
    const lookupOld = new acme.Client({ directoryUrl: chancery.directory, accountKey: oldKey, ...fast });
    await expectRefused(tt, 'new-account onlyReturnExisting with the OLD key', ['accountDoesNotExist'], () => lookupOld.createAccount({ onlyReturnExisting: true }));

    const withNewKey = new acme.Client({ directoryUrl: chancery.directory, accountKey: rolledKey, accountUrl, ...fast });
    try {
      const created = await withNewKey.createOrder(order('rollover-new.test'));
      tt.equal(created.status, 'pending', 'new-order signed with the NEW key (same account URL) succeeds');
    } catch (error) {
      tt.fail(`new-order with the new key: ${(error as Error).message}`, { exchanges: recorder.describe(4) });
    }
    try {
      const created = await client.createOrder(order('rollover-same-client.test'));
      tt.equal(created.status, 'pending', 'the rolled-over client itself keeps working');
    } catch (error) {
      tt.fail(`new-order from the rolled-over client: ${(error as Error).message}`, { exchanges: recorder.describe(4) });
    }
    const lookupNew = new acme.Client({ directoryUrl: chancery.directory, accountKey: rolledKey, ...fast });
    try {
      await lookupNew.createAccount({ onlyReturnExisting: true });
      tt.equal(lookupNew.getAccountUrl(), accountUrl, 'onlyReturnExisting with the NEW key finds the same account');
    } catch (error) {
      tt.fail(`onlyReturnExisting with the new key: ${(error as Error).message}`, { exchanges: recorder.describe(4) });
    }
  });

  await t.test('deactivation: the account\'s requests are then refused', async (tt) => {
    const client = new acme.Client({ directoryUrl: chancery.directory, accountKey: await newKey(), externalAccountBinding: eabDeactivate, ...fast });
    try {
      await client.createAccount({ termsOfServiceAgreed: true });
      const account = await client.updateAccount({ status: 'deactivated' });
      tt.equal(account.status, 'deactivated', 'updateAccount({status: deactivated}) answers status deactivated');
    } catch (error) {
      tt.fail(`deactivate: ${(error as Error).message}`, { exchanges: recorder.describe(4) });
      return;
    }
    await expectRefused(tt, 'new-order from the deactivated account', ['unauthorized'], () => client.createOrder(order('deactivated.test')));
    await expectRefused(tt, 'account update from the deactivated account', ['unauthorized'], () => client.updateAccount({ contact: ['mailto:again@example.internal'] }));
  });

  await t.test('issuance in auto mode, http-01 answered by this test', async (tt) => {
    const responder = await startHttp01Responder(chancery.http01Port, tt);
    const name = 'acme-client.test';
    dns.setA(name, '127.0.0.1');
    const client = new acme.Client({ directoryUrl: chancery.directory, accountKey: await newKey(), externalAccountBinding: eabIssue, ...fast });
    const [, csr] = await acme.crypto.createCsr({ commonName: name, altNames: [name] }, await newKey());
    let chainPem: string;
    try {
      chainPem = await client.auto({
        csr,
        email: 'ops@example.internal',
        termsOfServiceAgreed: true,
        challengePriority: ['http-01'],
        // acme-client would resolve the name itself first; the name lives only in the test DNS server.
        skipChallengeVerification: true,
        challengeCreateFn: async (_authz, challenge, keyAuthorization) => {
          responder.answers.set(challenge.token, keyAuthorization);
        },
        challengeRemoveFn: async (_authz, challenge) => {
          responder.answers.delete(challenge.token);
        },
      });
    } catch (error) {
      tt.fail(`auto(): ${(error as Error).message}`, { exchanges: recorder.describe(8), log: recorder.log.slice(-30).join('\n') });
      return;
    }
    tt.ok(responder.requests.some((p) => p.startsWith('/.well-known/acme-challenge/')), 'the validator fetched the http-01 resource');
    const verdict = await verifyPemChain(chancery.rootPem, chainPem);
    tt.ok(verdict.ok, 'openssl verifies the downloaded chain against our root', { output: verdict.output });
    tt.match(verdict.leafText, /DNS:acme-client\.test/, 'the certificate names acme-client.test');
    const info = acme.crypto.readCertificateInfo(chainPem);
    tt.ok(info.notAfter.getTime() > Date.now(), 'the certificate is current');
  });
}
