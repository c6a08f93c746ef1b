import t from 'tap';
import { CaError } from '../../../src/core/errors.js';
import { BASE, body, harness } from './fake-ra.js';

/**
 * A failure of ours that passes (the database connection dropped, the HSM away) is CaError('unavailable'):
 * acme/ answers 503 with Retry-After (RFC 9110 §15.6.4, §10.2.3) and a serverInternal problem whose detail
 * the client may read — never the generic 500 — and logs it as a warning with its cause.
 */
await t.test('ok/unavailable: 503, Retry-After from the error, detail shown, nonce included', async (t) => {
  const h = await harness();
  const { key, kid } = await h.register();
  h.ra.failNext.set(
    'finalizeOrder',
    new CaError('unavailable', 'the CA cannot sign right now; the order is still ready', { retryAfterSeconds: 5, cause: new Error('CKR_DEVICE_REMOVED') }),
  );
  const response = await h.client.post(`${BASE}/acme/order/order1/finalize`, key, { kid, payload: { csr: 'AAAA' } });
  t.equal(response.statusCode, 503);
  t.equal(response.headers['retry-after'], '5');
  t.equal(response.headers['content-type'], 'application/problem+json');
  t.same(body(response), { type: 'urn:ietf:params:acme:error:serverInternal', detail: 'the CA cannot sign right now; the order is still ready', status: 503 });
  t.ok(response.headers['replay-nonce'], 'a nonce to retry with');
  const logged = h.logs.find((l) => l.msg === 'ACME request answered 503: temporarily unavailable');
  t.match(JSON.stringify(logged), /CKR_DEVICE_REMOVED/, 'the cause is logged');
});

await t.test('ok/unavailable without a time: Retry-After 1; fractions round up', async (t) => {
  const h = await harness();
  const { key, kid } = await h.register();
  for (const [retryAfterSeconds, header] of [
    [undefined, '1'],
    [0.2, '1'],
    [2.5, '3'],
  ] as const) {
    h.ra.failNext.set('newOrder', new CaError('unavailable', 'database connection lost', retryAfterSeconds === undefined ? {} : { retryAfterSeconds }));
    const response = await h.client.post('/acme/new-order', key, { kid, payload: { identifiers: [{ type: 'dns', value: 'a.test' }] } });
    t.equal(response.statusCode, 503);
    t.equal(response.headers['retry-after'], header, String(retryAfterSeconds));
  }
});
