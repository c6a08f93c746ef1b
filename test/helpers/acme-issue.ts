import { createServer, type Server } from 'node:http';
import { once } from 'node:events';
import { type HttpsAcmeClient } from './https-acme-client.js';
import { makeCsr } from './openssl.js';

/** A local http-01 responder: answers /.well-known/acme-challenge/<token> from a map. */
export async function startHttp01Responder(port: number): Promise<{ answers: Map<string, string>; server: Server; close(): Promise<void> }> {
  const answers = new Map<string, string>();
  const server = createServer((request, response) => {
    const token = request.url?.split('/').pop() ?? '';
    response.statusCode = answers.has(token) ? 200 : 404;
    response.end(answers.get(token) ?? '');
  });
  server.listen(port, '127.0.0.1');
  await once(server, 'listening');
  return { answers, server, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

/**
 * Runs one whole ACME issuance (account if needed, order, http-01, finalize, download) with `client`.
 * Returns the PEM chain (leaf first) and the leaf's private key.
 */
export async function issueOverAcme(
  client: HttpsAcmeClient,
  base: string,
  name: string,
  answers: Map<string, string>,
): Promise<{ chainPem: string; keyPem: string; orderUrl: string }> {
  if (!client.kid) {
    const account = await client.post(`${base}/acme/new-account`, { termsOfServiceAgreed: true });
    if (account.status !== 201 && account.status !== 200) throw new Error(`newAccount ${account.status}: ${account.body}`);
    client.kid = String(account.headers.location);
  }
  const order = await client.post(`${base}/acme/new-order`, { identifiers: [{ type: 'dns', value: name }] });
  if (order.status !== 201) throw new Error(`newOrder ${order.status}: ${order.body}`);
  const orderUrl = String(order.headers.location);
  const { authorizations, finalize } = JSON.parse(order.body) as { authorizations: string[]; finalize: string };
  const authz = JSON.parse((await client.post(authorizations[0]!, '')).body) as { challenges: { type: string; url: string; token: string }[] };
  const challenge = authz.challenges.find((c) => c.type === 'http-01')!;
  answers.set(challenge.token, client.keyAuthorization(challenge.token));
  await client.post(challenge.url, {});
  let status = 'pending';
  for (let i = 0; i < 100 && status !== 'ready' && status !== 'invalid'; i += 1) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    status = (JSON.parse((await client.post(orderUrl, '')).body) as { status: string }).status;
  }
  if (status !== 'ready') throw new Error(`order ${orderUrl} is ${status}`);
  const csr = await makeCsr({ keyType: 'ec-p256', sans: [`DNS:${name}`] });
  const finalized = await client.post(finalize, { csr: csr.der.toString('base64url') });
  if (finalized.status !== 200) throw new Error(`finalize ${finalized.status}: ${finalized.body}`);
  const certificateUrl = (JSON.parse(finalized.body) as { certificate: string }).certificate;
  const download = await client.post(certificateUrl, '');
  return { chainPem: download.body, keyPem: csr.keyPem, orderUrl };
}
