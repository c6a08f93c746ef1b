import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { fromPem, toPem } from '../../../src/core/pem.js';
import { makeAccountKey } from '../../helpers/acme-jws.js';
import { issueOverAcme, startHttp01Responder } from '../../helpers/acme-issue.js';
import { freePort, startChancery, type RunningChancery } from '../../helpers/chancery-process.js';
import { startDnsServer } from '../../helpers/dns-server.js';
import { HttpsAcmeClient } from '../../helpers/https-acme-client.js';
import { openssl, requireOpenssl } from '../../helpers/openssl.js';

/**
 * Revocation end to end against a running `chancery start`, with openssl as the judge: OCSP says good, then
 * revoked (reason, time) the moment revokeCert returns, and so does the CRL; every CRL served verifies and `openssl verify
 * -crl_check_all` follows them; and a SIGKILL right after a revoke loses nothing.
 */
requireOpenssl();
const dir = await mkdtemp(join(tmpdir(), 'chancery-revocation-'));
const dataDir = join(dir, 'data');
const dns = await startDnsServer({ a: new Map([['good.test', '127.0.0.1'], ['revoked.test', '127.0.0.1'], ['killed.test', '127.0.0.1']]) });
t.teardown(() => dns.close());
const http01 = await startHttp01Responder(await freePort());
t.teardown(() => http01.close());
const publicPort = await freePort();
const acmePort = await freePort();
const publicUrl = `http://127.0.0.1:${publicPort}`;
const base = `https://127.0.0.1:${acmePort}`;
const env = {
  CHANCERY_DATA_DIR: dataDir,
  CHANCERY_PUBLIC_LISTEN: `127.0.0.1:${publicPort}`,
  CHANCERY_PUBLIC_URL: publicUrl,
  CHANCERY_ACME_LISTEN: `127.0.0.1:${acmePort}`,
  CHANCERY_HTTP01_PORT: String((http01.server.address() as { port: number }).port),
  CHANCERY_DNS_RESOLVERS: dns.resolver,
  CHANCERY_LOG_LEVEL: 'warn',
};
let server: RunningChancery = await startChancery('start', env);
t.teardown(() => server.stop());
const rootPem = join(dataDir, 'ca', 'root.pem');
const chainPem = join(dataDir, 'ca', 'chain.pem');
const client = new HttpsAcmeClient({ base, targets: [base], ca: await readFile(rootPem, 'utf8'), key: await makeAccountKey() });

async function issue(name: string): Promise<{ leafPath: string; der: Buffer }> {
  const { chainPem: pem } = await issueOverAcme(client, base, name, http01.answers);
  const der = fromPem(pem)[0]!;
  const leafPath = join(dir, `${name}.pem`);
  await writeFile(leafPath, toPem(der));
  return { leafPath, der };
}

async function ocspStatus(leafPath: string): Promise<string> {
  const result = await openssl(['ocsp', '-issuer', chainPem, '-cert', leafPath, '-url', `${publicUrl}/ocsp`, '-CAfile', rootPem]);
  if (result.code !== 0) throw new Error(`openssl ocsp: ${result.stderr}`);
  return result.stdout;
}

/** Downloads the leaf's CRL (from its CRL DP) and the root CRL as PEM files for openssl. */
async function fetchCrls(leafDer: Buffer): Promise<{ leafCrl: string; rootCrl: string; leafCrlText: string }> {
  const text = (await openssl(['x509', '-inform', 'DER', '-noout', '-text'], leafDer)).stdout;
  const dp = /URI:(http:\/\/\S+\.crl)/.exec(text)?.[1];
  if (!dp) throw new Error('leaf has no CRL DP');
  const files: string[] = [];
  for (const url of [dp, `${publicUrl}/crl/root.crl`]) {
    const response = await fetch(url);
    if (response.status !== 200) throw new Error(`${url}: ${response.status}`);
    if (response.headers.get('content-type') !== 'application/pkix-crl') throw new Error(`${url}: ${response.headers.get('content-type')}`);
    const der = join(dir, `${files.length}-${Date.now()}.crl`);
    await writeFile(der, Buffer.from(await response.arrayBuffer()));
    const pem = `${der}.pem`;
    const converted = await openssl(['crl', '-inform', 'DER', '-in', der, '-out', pem]);
    if (converted.code !== 0) throw new Error(converted.stderr);
    files.push(pem);
  }
  const leafCrlText = (await openssl(['crl', '-in', files[0]!, '-noout', '-text'])).stdout;
  return { leafCrl: files[0]!, rootCrl: files[1]!, leafCrlText };
}

async function revoke(der: Buffer, reason: number): Promise<number> {
  return (await client.post(`${base}/acme/revoke-cert`, { certificate: der.toString('base64url'), reason })).status;
}

const serialOf = async (der: Buffer): Promise<string> => (await openssl(['x509', '-inform', 'DER', '-noout', '-serial'], der)).stdout.trim().replace('serial=', '');

await t.test('ok/OCSP good, then revoked the moment revokeCert returns; CRLs verify and are followed', async (t) => {
  const good = await issue('good.test');
  const bad = await issue('revoked.test');
  t.match(await ocspStatus(bad.leafPath), /: good/);

  t.equal(await revoke(bad.der, 1), 200);
  const status = await ocspStatus(bad.leafPath);
  t.match(status, /: revoked/);
  t.match(status, /Reason: keyCompromise/);
  t.match(status, /Revocation Time: /);
  t.match(await ocspStatus(good.leafPath), /: good/, 'the other certificate stays good');

  // revokeCert returned after the CRL listing it was published: the very first fetch lists it, and a cache
  // may keep it for CHANCERY_CRL_CACHE_MAX_AGE_SECONDS (300 by default), not half a nextUpdate.
  const crls = await fetchCrls(bad.der);
  const dp = /URI:(http:\/\/\S+\.crl)/.exec((await openssl(['x509', '-inform', 'DER', '-noout', '-text'], bad.der)).stdout)![1]!;
  t.equal((await fetch(dp)).headers.get('cache-control'), 'public, max-age=300');
  t.match(crls.leafCrlText, new RegExp(`Serial Number: ${await serialOf(bad.der)}`, 'i'));
  t.match(crls.leafCrlText, /Key Compromise/);
  const bundle = join(dir, 'bundle.pem');
  await writeFile(bundle, (await readFile(rootPem, 'utf8')) + (await readFile(chainPem, 'utf8')));
  for (const crl of [crls.leafCrl, crls.rootCrl]) {
    const verified = await openssl(['crl', '-in', crl, '-CAfile', bundle, '-noout', '-verify']);
    t.match(verified.stderr + verified.stdout, /verify OK/, `openssl crl -verify accepts ${crl}`);
  }
  const check = (leaf: string) => openssl(['verify', '-crl_check_all', '-CRLfile', crls.leafCrl, '-CRLfile', crls.rootCrl, '-CAfile', rootPem, '-untrusted', chainPem, leaf]);
  const rejected = await check(bad.leafPath);
  t.not(rejected.code, 0);
  t.match(rejected.stderr + rejected.stdout, /certificate revoked/);
  const accepted = await check(good.leafPath);
  t.equal(accepted.code, 0, accepted.stderr);
});

await t.test('ok/SIGKILL right after the revoke response loses nothing', async (t) => {
  const victim = await issue('killed.test');
  t.equal(await revoke(victim.der, 4), 200);
  server.child.kill('SIGKILL');
  await server.stop();
  server = await startChancery('serve', env);
  const status = await ocspStatus(victim.leafPath);
  t.match(status, /: revoked/);
  t.match(status, /Reason: superseded/);
  let crls = await fetchCrls(victim.der);
  for (let i = 0; i < 50 && !crls.leafCrlText.includes(await serialOf(victim.der)); i += 1) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    crls = await fetchCrls(victim.der);
  }
  t.match(crls.leafCrlText, new RegExp(`Serial Number: ${await serialOf(victim.der)}`, 'i'), 'the restarted server publishes it');
});
