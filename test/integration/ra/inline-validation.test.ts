import { generateKeyPairSync } from 'node:crypto';
import { calculateJwkThumbprint } from 'jose';
import t from 'tap';
import type { Account } from '../../../src/core/account.js';
import type { ValidationOutcome, ValidationRequest, Validator } from '../../../src/va/validator.js';
import { composeForTest } from '../../helpers/runtime.js';

/**
 * With the scheduler running, the instance that receives a challenge response attempts it at once and the
 * response carries the outcome when it comes within the wait (ValidationScheduler.validateNow); a slower
 * attempt is answered `processing` and finishes on its own.
 */

class ScriptedValidator implements Validator {
  outcome: (request: ValidationRequest) => Promise<ValidationOutcome> = async () => ({ valid: true });
  async validate(request: ValidationRequest): Promise<ValidationOutcome> {
    return this.outcome(request);
  }
}

const validator = new ScriptedValidator();
const { chancery } = await composeForTest({ validator });
chancery.start();
t.teardown(() => chancery.close());
const acme = { ...chancery.services, externalUrl: chancery.acmeUrl };
const ra = acme.ra;

const jwk = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'jwk' }) as Record<string, string>;
const { account } = await ra.newAccount({
  publicJwk: jwk,
  jwkThumbprint: await calculateJwkThumbprint(jwk as never),
  contacts: [],
  termsOfServiceAgreed: true,
  onlyReturnExisting: false,
  newAccountUrl: `${acme.externalUrl}/acme/new-account`,
});

async function answer(who: Account, name: string): Promise<{ orderId: string; result: Awaited<ReturnType<typeof ra.respondToChallenge>> }> {
  const order = await ra.newOrder(who, { identifiers: [{ type: 'dns', value: name }] });
  const authz = await ra.getAuthorization(who, order.authorizationIds[0]!);
  const challenge = authz.challenges.find((c) => c.type === 'http-01')!;
  return { orderId: order.id, result: await ra.respondToChallenge(who, challenge.id) };
}

await t.test('a valid attempt is in the response; the order is ready', async (t) => {
  validator.outcome = async () => ({ valid: true });
  const { orderId, result } = await answer(account, 'inline-ok.example.internal');
  t.equal(result.challenge.status, 'valid');
  t.ok(result.challenge.validatedAt instanceof Date, 'with its validation time');
  t.equal(result.authorization.status, 'valid');
  t.same(await ra.getChallenge(account, result.challenge.id), result, 'as stored');
  t.equal((await ra.getOrder(account, orderId)).status, 'ready');
});

await t.test('a failed attempt is in the response with its problem', async (t) => {
  validator.outcome = async () => ({ valid: false, problem: { kind: 'incorrectResponse', detail: 'wrong key authorization' }, retryable: false });
  const { orderId, result } = await answer(account, 'inline-bad.example.internal');
  t.equal(result.challenge.status, 'invalid');
  t.equal(result.challenge.error?.kind, 'incorrectResponse');
  t.equal(result.authorization.status, 'invalid');
  t.equal((await ra.getOrder(account, orderId)).status, 'invalid');
});

await t.test('a retryable failure answers processing, with the problem and the next attempt', async (t) => {
  validator.outcome = async () => ({ valid: false, problem: { kind: 'connection', detail: 'connection refused' }, retryable: true });
  const { result } = await answer(account, 'inline-retry.example.internal');
  t.equal(result.challenge.status, 'processing');
  t.equal(result.challenge.error?.kind, 'connection');
  t.equal(result.challenge.attempts, 1);
  t.ok(result.challenge.nextAttemptAt !== undefined && result.challenge.nextAttemptAt > new Date(), 'retried after a backoff');
});

await t.test('an attempt slower than the wait answers processing and finishes afterwards', async (t) => {
  // Every attempt waits for the release (the scheduler may also retry the previous test's challenge now).
  const waiting: (() => void)[] = [];
  const release = (): void => waiting.splice(0).forEach((go) => go());
  validator.outcome = () => new Promise((resolve) => waiting.push(() => resolve({ valid: true })));
  const { orderId, result } = await answer(account, 'inline-slow.example.internal');
  t.equal(result.challenge.status, 'processing', 'not decided within the wait');
  release();
  for (let i = 0; i < 100 && (await ra.getOrder(account, orderId)).status !== 'ready'; i += 1) await new Promise((r) => setTimeout(r, 20));
  t.equal((await ra.getChallenge(account, result.challenge.id)).challenge.status, 'valid', 'the attempt went on and recorded its outcome');
  t.equal((await ra.getOrder(account, orderId)).status, 'ready');
});
