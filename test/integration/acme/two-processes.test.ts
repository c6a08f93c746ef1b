import { createServer } from 'node:http';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { makeAccountKey } from '../../helpers/acme-jws.js';
import { freePort, startChancery } from '../../helpers/chancery-process.js';
import { freshPgDatabase } from '../../helpers/databases.js';
import { startDnsServer } from '../../helpers/dns-server.js';
import { HttpsAcmeClient } from '../../helpers/https-acme-client.js';
import { makeCsr, requireOpenssl } from '../../helpers/openssl.js';

/**
 * DESIGN.md rule 7: two `chancery serve` processes on one PostgreSQL behave as one CA. A client whose
 * requests alternate between them (as behind a load balancer) completes an order: every nonce it spends
 * was issued by the other process.
 */
requireOpenssl();
const database = await freshPgDatabase(t);
if (database) {
  const dns = await startDnsServer({ a: new Map([['two.test', '127.0.0.1']]) });
  t.teardown(() => dns.close());
  const answers = new Map<string, string>();
  const responder = createServer((request, response) => {
    const token = request.url?.split('/').pop() ?? '';
    response.statusCode = answers.has(token) ? 200 : 404;
    response.end(answers.get(token) ?? '');
  });
  const http01Port = await freePort();
  await new Promise<void>((resolve) => responder.listen(http01Port, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => responder.close(() => resolve())));

  const portA = await freePort();
  const portB = await freePort();
  const base = `https://127.0.0.1:${portA}`;
  const root = await mkdtemp(join(tmpdir(), 'chancery-two-'));
  const shared = {
    CHANCERY_DATABASE_URL: database.url,
    CHANCERY_KEY_PASSPHRASE: 'two-processes-share-this-passphrase',
    CHANCERY_ACME_URL: base,
    CHANCERY_PUBLIC_LISTEN: '127.0.0.1:0',
    CHANCERY_HTTP01_PORT: String(http01Port),
    CHANCERY_DNS_RESOLVERS: dns.resolver,
    CHANCERY_LOG_LEVEL: 'warn',
  };
  const a = await startChancery('start', { ...shared, CHANCERY_DATA_DIR: join(root, 'a'), CHANCERY_ACME_LISTEN: `127.0.0.1:${portA}` });
  t.teardown(() => a.stop());
  const b = await startChancery('serve', { ...shared, CHANCERY_DATA_DIR: join(root, 'b'), CHANCERY_ACME_LISTEN: `127.0.0.1:${portB}` });
  t.teardown(() => b.stop());

  await t.test('ok/alternating requests between two processes complete an order', async (t) => {
    const rootA = await readFile(join(root, 'a', 'ca', 'root.pem'), 'utf8');
    t.equal(await readFile(join(root, 'b', 'ca', 'root.pem'), 'utf8'), rootA, 'both processes serve the same CA');
    const client = new HttpsAcmeClient({ base, targets: [`https://127.0.0.1:${portA}`, `https://127.0.0.1:${portB}`], ca: rootA, key: await makeAccountKey() });

    const account = await client.post(`${base}/acme/new-account`, { termsOfServiceAgreed: true });
    t.equal(account.status, 201, account.body);
    client.kid = String(account.headers.location);
    const order = await client.post(`${base}/acme/new-order`, { identifiers: [{ type: 'dns', value: 'two.test' }] });
    t.equal(order.status, 201, order.body);
    const orderUrl = String(order.headers.location);
    const { authorizations, finalize } = JSON.parse(order.body) as { authorizations: string[]; finalize: string };
    const authz = JSON.parse((await client.post(authorizations[0]!, '')).body) as { challenges: { type: string; url: string; token: string }[] };
    const challenge = authz.challenges.find((c) => c.type === 'http-01')!;
    answers.set(challenge.token, client.keyAuthorization(challenge.token));
    t.equal((await client.post(challenge.url, {})).status, 200);

    let status = 'pending';
    for (let i = 0; i < 50 && status !== 'ready' && status !== 'invalid'; i += 1) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      status = (JSON.parse((await client.post(orderUrl, '')).body) as { status: string }).status;
    }
    t.equal(status, 'ready', 'validated by whichever process claimed it');
    const csr = await makeCsr({ keyType: 'ec-p256', sans: ['DNS:two.test'] });
    const finalized = await client.post(finalize, { csr: csr.der.toString('base64url') });
    t.equal(finalized.status, 200, finalized.body);
    const certificateUrl = (JSON.parse(finalized.body) as { certificate: string }).certificate;
    const download = await client.post(certificateUrl, '');
    t.equal(download.status, 200);
    t.match(download.body, /BEGIN CERTIFICATE/);
    t.ok(client.sentTo.includes(`https://127.0.0.1:${portA}`) && client.sentTo.includes(`https://127.0.0.1:${portB}`), 'both processes served requests');
  });
}
