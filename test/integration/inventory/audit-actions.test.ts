import { createPrivateKey, generateKeyPairSync } from 'node:crypto';
import { calculateJwkThumbprint, type JWK } from 'jose';
import t, { type Test } from 'tap';
import type { Account } from '../../../src/core/account.js';
import { cliActor, localOperator, type AuditEntry, type AuditFilter } from '../../../src/core/audit.js';
import type { Chancery } from '../../../src/compose.js';
import type { ValidationOutcome, Validator } from '../../../src/va/validator.js';
import { eabJws } from '../../helpers/acme-jws.js';
import { freshPgDatabase } from '../../helpers/databases.js';
import { expectCaError } from '../../helpers/expect-error.js';
import { makeCsr, requireOpenssl } from '../../helpers/openssl.js';
import { composeForTest } from '../../helpers/runtime.js';

/**
 * Every action Chancery performs today leaves its audit entry, written with the change (DESIGN.md rule 8),
 * through the whole composition root on PGlite and PostgreSQL: the CA ceremony, the OCSP responder
 * certificate issued at start, EAB credentials created and
 * used, accounts created, changed (contacts, key) and deactivated, certificates issued over ACME (the entry
 * in the certificate's own batched statement) and revoked by the account, by the certificate's key and by an
 * operator. A refused request changes nothing and leaves no entry; a failing audit write rolls its change
 * back. The audit.seal job then chains everything and the log verifies.
 */
requireOpenssl();

const validator: Validator = { validate: async (): Promise<ValidationOutcome> => ({ valid: true }) };

async function scenario(t: Test, chancery: Chancery): Promise<void> {
  const { ra, eab, revoker, audit, scheduler, certificates } = chancery.services;
  const newAccountUrl = `${chancery.acmeUrl}/acme/new-account`;
  const entries = async (filter: AuditFilter): Promise<AuditEntry[]> => (await audit.query(filter, { limit: 1000 })).entries;
  const total = async (): Promise<number> => (await entries({})).length;
  const one = async (t: Test, filter: AuditFilter): Promise<AuditEntry> => {
    const found = await entries(filter);
    t.equal(found.length, 1, `one entry for ${JSON.stringify(filter)}`);
    return found[0]!;
  };
  const details = (entry: AuditEntry): Record<string, unknown> => JSON.parse(entry.details ?? '{}') as Record<string, unknown>;

  const accountKey = async (): Promise<{ jwk: Record<string, string>; thumbprint: string }> => {
    const jwk = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'jwk' }) as Record<string, string>;
    return { jwk, thumbprint: await calculateJwkThumbprint(jwk as JWK) };
  };
  const newAccount = async (binding?: { kid: string; hmacKey: string }, wrongMac = false): Promise<Account> => {
    const { jwk, thumbprint } = await accountKey();
    const externalAccountBinding = binding
      ? await eabJws({ kid: binding.kid, hmacKey: Buffer.from(wrongMac ? 'x'.repeat(32) : binding.hmacKey, wrongMac ? 'utf8' : 'base64url'), url: newAccountUrl, accountJwk: jwk })
      : undefined;
    const { account } = await ra.newAccount({
      publicJwk: jwk,
      jwkThumbprint: thumbprint,
      contacts: ['mailto:ops@example.internal'],
      termsOfServiceAgreed: true,
      onlyReturnExisting: false,
      newAccountUrl,
      ...(externalAccountBinding ? { externalAccountBinding } : {}),
    });
    return account;
  };
  const readyOrder = async (account: Account, name: string): Promise<string> => {
    const order = await ra.newOrder(account, { identifiers: [{ type: 'dns', value: name }] });
    for (const id of order.authorizationIds) {
      const authz = await ra.getAuthorization(account, id);
      await ra.respondToChallenge(account, authz.challenges.find((c) => c.type === 'http-01')!.id);
    }
    await scheduler.runOnce();
    return order.id;
  };
  const issue = async (account: Account, name: string): Promise<{ serial: string; der: Uint8Array; keyPem: string; orderId: string }> => {
    const orderId = await readyOrder(account, name);
    const csr = await makeCsr({ keyType: 'ec-p256', sans: [`DNS:${name}`] });
    const done = await ra.finalizeOrder(account, orderId, csr.der);
    const chain = await ra.getCertificateChain(account, done.certificateSerial!);
    return { serial: done.certificateSerial!, der: chain.certificate, keyPem: csr.keyPem, orderId };
  };
  /** Makes every audit entry with `action` fail to be written, for the duration of fn. */
  const refusingAudit = async (action: string, fn: () => Promise<void>): Promise<void> => {
    await chancery.db.query(`ALTER TABLE audit_entries ADD CONSTRAINT refuse_for_test CHECK (action <> '${action}') NOT VALID`);
    try {
      await fn();
    } finally {
      await chancery.db.query('ALTER TABLE audit_entries DROP CONSTRAINT refuse_for_test');
    }
  };

  const alice = await newAccount();

  await t.test('ok/the CA ceremony: ca.create by the operator who ran it', async (t) => {
    const entry = await one(t, { action: 'ca.create' });
    t.equal(entry.actor, localOperator());
    t.match(entry.actor, /^cli:./);
    t.equal(entry.subject, `issuer:${chancery.hierarchy.root.id}`);
    t.match(details(entry), { keyStore: 'software', root: { id: chancery.hierarchy.root.id }, intermediate: { id: chancery.hierarchy.intermediate.id } });
    const responder = await one(t, { action: 'ocsp-responder.issue' });
    t.equal(responder.actor, 'system:chancery', 'the OCSP responder certificate issued at the first start');
    t.match(details(responder), { issuer: chancery.hierarchy.intermediate.id, generation: 1 });
    t.ok(await chancery.services.certificates.isSerialReserved(responder.subject.replace('certificate:', '')), 'its subject is the responder certificate\'s serial');
  });

  await t.test('ok/eab.create by the CLI operator; account.create and eab.use by the new account', async (t) => {
    // `default`: a group that exists in every installation.
    const { credential, hmacKey } = await eab.create({ group: 'default', actor: cliActor('alice') });
    const created = await one(t, { action: 'eab.create', subject: `eab:${credential.kid}` });
    t.equal(created.actor, 'cli:alice');
    t.equal(created.group, 'default');
    const account = await newAccount({ kid: credential.kid, hmacKey });
    const accountEntry = await one(t, { action: 'account.create', subject: `account:${account.id}` });
    t.equal(accountEntry.actor, `account:${account.id}`);
    t.equal(accountEntry.group, 'default');
    t.match(details(accountEntry), { keyThumbprint: account.jwkThumbprint, eab: credential.kid, contacts: ['mailto:ops@example.internal'] });
    const used = await one(t, { action: 'eab.use', subject: `eab:${credential.kid}` });
    t.equal(used.actor, `account:${account.id}`);
    t.equal(used.group, 'default');
  });

  await t.test('ok/certificate.issue over ACME finalize, in the certificate\'s own statement, by the account', async (t) => {
    const { serial, orderId } = await issue(alice, 'audited.example.internal');
    const entry = await one(t, { subject: `certificate:${serial}` });
    t.equal(entry.action, 'certificate.issue');
    t.equal(entry.actor, `account:${alice.id}`);
    t.match(details(entry), { identifiers: ['dns:audited.example.internal'], order: orderId, issuer: chancery.hierarchy.intermediate.id });
    const stored = await certificates.findBySerial(serial);
    t.equal(entry.at.getTime(), stored!.createdAt.getTime(), 'at the certificate\'s own time');
  });

  await t.test('ok/certificate.issue outside ACME: Chancery itself unless an actor is named', async (t) => {
    const spki = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'der' });
    const own = await chancery.services.issuance.issueForKey(spki, [{ type: 'dns', value: 'own.example.internal' }]);
    t.equal((await one(t, { subject: `certificate:${own.serial}` })).actor, 'system:chancery');
    const named = await chancery.services.issuance.issueForKey(spki, [{ type: 'dns', value: 'named.example.internal' }], { actor: cliActor('carol') });
    t.equal((await one(t, { subject: `certificate:${named.serial}` })).actor, 'cli:carol');
  });

  await t.test('ok/certificate.revoke by the account, by the certificate\'s key, by an operator', async (t) => {
    const byAccount = await issue(alice, 'revoked-by-account.example.internal');
    await ra.revokeCertificate({ certificateDer: byAccount.der, reason: 4, by: { account: alice } });
    const entry = await one(t, { subject: `certificate:${byAccount.serial}`, action: 'certificate.revoke' });
    t.equal(entry.actor, `account:${alice.id}`);
    t.same(details(entry), { reason: 'superseded' });

    const byKey = await issue(alice, 'revoked-by-key.example.internal');
    const jwk = createPrivateKey(byKey.keyPem).export({ format: 'jwk' }) as Record<string, string>;
    const publicJwk = { kty: jwk.kty!, crv: jwk.crv!, x: jwk.x!, y: jwk.y! };
    const thumbprint = await calculateJwkThumbprint(publicJwk as JWK);
    await ra.revokeCertificate({ certificateDer: byKey.der, reason: 1, by: { jwk: publicJwk, jwkThumbprint: thumbprint } });
    const keyEntry = await one(t, { subject: `certificate:${byKey.serial}`, action: 'certificate.revoke' });
    t.equal(keyEntry.actor, `key:${thumbprint}`, 'the holder of the certificate key');
    t.same(details(keyEntry), { reason: 'keyCompromise' });

    const byOperator = await issue(alice, 'revoked-by-operator.example.internal');
    const invalidityDate = new Date(chancery.clock.now().getTime() - 3_600_000);
    await revoker.revoke(byOperator.serial, 1, { actor: cliActor('bob'), invalidityDate });
    const operatorEntry = await one(t, { subject: `certificate:${byOperator.serial}`, action: 'certificate.revoke' });
    t.equal(operatorEntry.actor, 'cli:bob');
    t.same(details(operatorEntry), { reason: 'keyCompromise', invalidityDate: invalidityDate.toISOString() });
  });

  await t.test('ok/account.change-contacts, account.change-key, account.deactivate by the account', async (t) => {
    const account = await newAccount();
    await ra.updateAccount(account, { contacts: ['mailto:new@example.internal'] });
    const contacts = await one(t, { subject: `account:${account.id}`, action: 'account.change-contacts' });
    t.equal(contacts.actor, `account:${account.id}`);
    t.same(details(contacts), { contacts: ['mailto:new@example.internal'] });
    const { jwk, thumbprint } = await accountKey();
    await ra.changeAccountKey(account, jwk, thumbprint);
    t.same(details(await one(t, { subject: `account:${account.id}`, action: 'account.change-key' })), { keyThumbprint: thumbprint });
    await ra.updateAccount(account, { deactivate: true });
    t.equal((await one(t, { subject: `account:${account.id}`, action: 'account.deactivate' })).actor, `account:${account.id}`);
  });

  await t.test('fail/refused requests change nothing and leave no entry', async (t) => {
    const before = await total();
    const { credential, hmacKey } = await eab.create({ actor: cliActor('alice') });
    const afterCreate = await total();
    t.equal(afterCreate, before + 1);
    await expectCaError(t, newAccount({ kid: credential.kid, hmacKey }, true), 'unauthorized', /MAC is invalid/);
    const orderId = await readyOrder(alice, 'refused.example.internal');
    const wrongCsr = await makeCsr({ keyType: 'ec-p256', sans: ['DNS:other.example.internal'] });
    await expectCaError(t, ra.finalizeOrder(alice, orderId, wrongCsr.der), 'badCSR', /not in the order/);
    t.equal((await ra.getOrder(alice, orderId)).status, 'ready', 'the order is still ready');
    await expectCaError(t, revoker.revoke('0badc0ffee', 1, { actor: cliActor('bob') }), 'notFound', /no certificate/);
    const mallory = await newAccount();
    const afterMallory = await total();
    const cert = await issue(alice, 'not-mallorys.example.internal');
    const afterIssue = await total();
    t.equal(afterIssue, afterMallory + 1);
    await expectCaError(t, ra.revokeCertificate({ certificateDer: cert.der, by: { account: mallory } }), 'unauthorized', /neither issued/);
    await expectCaError(t, ra.changeAccountKey(mallory, alice.publicJwk, alice.jwkThumbprint), 'conflict', /already in use/);
    await ra.revokeCertificate({ certificateDer: cert.der, reason: 0, by: { account: alice } });
    await expectCaError(t, ra.revokeCertificate({ certificateDer: cert.der, by: { account: alice } }), 'alreadyRevoked', /already revoked/);
    t.equal(await total(), afterIssue + 1, 'only the revocation that happened is recorded');
    t.equal((await entries({ actor: `account:${mallory.id}` })).length, 1, 'mallory: only its account creation');
  });

  await t.test('fail/a failing audit write rolls its change back: no change without its entry', async (t) => {
    const orderId = await readyOrder(alice, 'unaudited.example.internal');
    const csr = await makeCsr({ keyType: 'ec-p256', sans: ['DNS:unaudited.example.internal'] });
    await refusingAudit('certificate.issue', async () => {
      await t.rejects(ra.finalizeOrder(alice, orderId, csr.der), 'the issuance fails with its entry');
    });
    const stored = await chancery.db.query<{ n: number }>('SELECT count(*)::int AS n FROM certificates WHERE order_id = $1', [orderId]);
    t.equal(stored.rows[0]!.n, 0, 'no certificate stored for the order');
    t.equal((await ra.getOrder(alice, orderId)).status, 'invalid', 'the order is invalid (its serial stays burnt)');

    const cert = await issue(alice, 'kept-valid.example.internal');
    await refusingAudit('certificate.revoke', async () => {
      await t.rejects(revoker.revoke(cert.serial, 1, { actor: cliActor('bob') }));
    });
    t.equal((await certificates.findBySerial(cert.serial))?.status, 'valid', 'the certificate is still valid');
    t.equal((await entries({ subject: `certificate:${cert.serial}`, action: 'certificate.revoke' })).length, 0);

    const { jwk, thumbprint } = await accountKey();
    await refusingAudit('account.create', async () => {
      await t.rejects(
        ra.newAccount({ publicJwk: jwk, jwkThumbprint: thumbprint, contacts: [], termsOfServiceAgreed: true, onlyReturnExisting: false, newAccountUrl }),
      );
    });
    const accounts = await chancery.db.query<{ n: number }>('SELECT count(*)::int AS n FROM accounts WHERE jwk_thumbprint = $1', [thumbprint]);
    t.equal(accounts.rows[0]!.n, 0, 'no account');

    const credentialsBefore = await chancery.db.query<{ n: number }>('SELECT count(*)::int AS n FROM eab_credentials');
    await refusingAudit('eab.create', async () => {
      await t.rejects(eab.create({ actor: cliActor('alice') }));
    });
    const credentialsAfter = await chancery.db.query<{ n: number }>('SELECT count(*)::int AS n FROM eab_credentials');
    t.equal(credentialsAfter.rows[0]!.n, credentialsBefore.rows[0]!.n, 'no credential');
  });

  await t.test('ok/the audit.seal job chains every entry and signs the head; the log verifies', async (t) => {
    t.ok(await chancery.services.jobs.runNow('audit.seal'), 'this instance ran the job');
    const report = await audit.verify();
    t.ok(report.ok, report.problems.map((p) => p.detail).join('; '));
    t.equal(report.unsealed, 0);
    t.equal(report.sealed, await total(), 'every entry is in the chain');
    t.equal(report.latestCheckpoint?.seq, report.sealed, 'the first checkpoint covers the head');
    t.equal(report.expected.seq, report.sealed, 'and is kept outside the database');
  });
}

await t.test('pglite', async (t) => {
  const { chancery } = await composeForTest({ validator, listen: false });
  t.teardown(() => chancery.close());
  await scenario(t, chancery);
});

await t.test('pg', async (t) => {
  const database = await freshPgDatabase(t);
  if (database === undefined) return;
  const { chancery } = await composeForTest({ validator, listen: false, env: { CHANCERY_DATABASE_URL: database.url } });
  t.teardown(() => chancery.close());
  await scenario(t, chancery);
});
