import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import * as pkijs from 'pkijs';
import t, { type Test } from 'tap';
import { explicit, nullValue, octetString, oid, sequence, tlv, TAG } from '../../../src/ca/der/der-writer.js';
import { issuerCertIdHashes, ocspCodec, serialNumberOctets } from '../../../src/ca/ocsp-response.js';
import { ocspCommand } from '../../../src/cli/commands/ocsp.js';
import type { Config } from '../../../src/config/config.js';
import type { IssuedCertificate } from '../../../src/core/certificate.js';
import { DAY, FakeClock, HOUR, MINUTE, systemClock, type Clock } from '../../../src/core/clock.js';
import { CaError } from '../../../src/core/errors.js';
import { toPem } from '../../../src/core/pem.js';
import type { Database, Queryable } from '../../../src/db/database.js';
import { listen, notify } from '../../../src/db/notifications.js';
import { CertificateRepository } from '../../../src/db/repositories/certificate-repository.js';
import { IssuerRepository } from '../../../src/db/repositories/issuer-repository.js';
import { OcspResponderRepository, OcspResponseRepository } from '../../../src/db/repositories/ocsp-repository.js';
import { requestFromPath } from '../../../src/http/ocsp-routes.js';
import { buildPublicApp } from '../../../src/http/public-app.js';
import { compose, type CaHierarchy, type Chancery } from '../../../src/compose.js';
import { DomainEvents } from '../../../src/core/events.js';
import type { OcspRefresher } from '../../../src/revocation/ocsp-refresher.js';
import { Revoker } from '../../../src/revocation/revoker.js';
import { CACHE_TTL_MS, OcspSource } from '../../../src/revocation/ocsp-source.js';
import { OcspResponderKeys } from '../../../src/revocation/ocsp-responder-keys.js';
import { freshPgDatabase, withEachDatabase } from '../../helpers/databases.js';
import { builders } from '../../helpers/builders.js';
import { expectCaError } from '../../helpers/expect-error.js';
import { openssl, requireOpenssl } from '../../helpers/openssl.js';
import { composeForTest } from '../../helpers/runtime.js';

/**
 * OCSP end to end: pre-signed responses judged by `openssl ocsp` over POST and GET, revocation
 * re-signing in the revocation's transaction, nonces, bad input, refresh and responder rotation on a fake
 * clock, and cache invalidation between two runtimes on one PostgreSQL.
 */
requireOpenssl();

interface Harness {
  chancery: Chancery;
  /** The composition's parts these tests reach for. */
  runtime: Pick<Chancery, 'db' | 'clock' | 'config' | 'logger' | 'keys'> & { certificates: Chancery['services']['certificates'] };
  hierarchy: CaHierarchy;
  ocsp: { source: OcspSource; responders: OcspResponderKeys; refresher: OcspRefresher };
  revocation: Revoker<Queryable>;
  app: FastifyInstance;
  url: string;
  dir: string;
  chainPem: string;
  rootPem: string;
  /** Issues a certificate (its OCSP response pre-signed, as compose() wires it); `orphan` deletes that response. */
  issue(name?: string, options?: { orphan?: boolean }): Promise<{ certificate: IssuedCertificate; pem: string }>;
  close(): Promise<void>;
}

/** A Revoker of its own over the harness's database, with its own event seam (not compose()'s wiring). */
function revoker(runtime: Harness['runtime'], events: DomainEvents<Queryable>): Revoker<Queryable> {
  return new Revoker<Queryable>({
    certificates: runtime.certificates,
    clock: runtime.clock,
    transaction: (fn) => runtime.db.transaction((tx) => fn({ tx, certificates: new CertificateRepository(tx) })),
    events,
  });
}

async function serve(source: { respond(der: Uint8Array): Promise<import('../../../src/revocation/ocsp-source.js').OcspReply> }, clock: Clock): Promise<{ app: FastifyInstance; url: string }> {
  // The public listener as served, with only the OCSP routes backed by something.
  const app = buildPublicApp({
    logger: pino({ level: 'silent' }),
    issuerCertificate: async () => undefined,
    rootPem: async () => '',
    ready: async () => true,
    ocsp: { ocsp: source, clock },
  });
  const address = await app.listen({ host: '127.0.0.1', port: 0 });
  return { app, url: `${address}/ocsp` };
}

async function harness(options: { clock?: Clock; env?: Record<string, string>; config?: Config } = {}): Promise<Harness> {
  const chancery = options.config
    ? await compose(options.config, { clock: options.clock, logger: pino({ level: 'silent' }) })
    : (await composeForTest({ clock: options.clock, env: options.env })).chancery;
  const { hierarchy } = chancery;
  const { issuance, ocsp: source, responders, refresher, revoker: revocation, certificates } = chancery.services;
  const runtime = { db: chancery.db, clock: chancery.clock, config: chancery.config, logger: chancery.logger, keys: chancery.keys, certificates };
  const ocsp = { source, responders, refresher };
  const { app, url } = await serve(source, chancery.clock);
  const dir = await mkdtemp(join(tmpdir(), 'chancery-ocsp-'));
  const chainPem = join(dir, 'chain.pem');
  const rootPem = join(dir, 'root.pem');
  await writeFile(chainPem, toPem(hierarchy.intermediate.der));
  await writeFile(rootPem, toPem(hierarchy.root.der));
  return {
    chancery,
    runtime,
    hierarchy,
    ocsp,
    revocation,
    app,
    url,
    dir,
    chainPem,
    rootPem,
    async issue(name = `host-${randomBytes(4).toString('hex')}.example.internal`, issueOptions = {}) {
      const spki = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'der' });
      const certificate = await issuance.issueForKey(spki, [{ type: 'dns', value: name }]);
      // As a process killed between storing a certificate and signing its response would leave it.
      if (issueOptions.orphan) await chancery.db.query('DELETE FROM ocsp_responses WHERE serial = $1', [certificate.serial]);
      const pem = join(dir, `${certificate.serial}.pem`);
      await writeFile(pem, toPem(certificate.der));
      return { certificate, pem };
    },
    async close() {
      await app.close();
      await chancery.close();
    },
  };
}

/** `openssl ocsp` against the server (POST), or on a saved response (-respin). */
async function ocspClient(h: Harness, leafPem: string, extra: string[] = [], url = h.url): Promise<{ stdout: string; stderr: string; code: number }> {
  return openssl(['ocsp', '-issuer', h.chainPem, '-cert', leafPem, '-url', url, '-CAfile', h.rootPem, ...extra]);
}

async function requestFile(h: Harness, leafPem: string, extra: string[] = []): Promise<Buffer> {
  const out = join(h.dir, `req-${randomBytes(4).toString('hex')}.der`);
  const { code, stderr } = await openssl(['ocsp', ...extra, '-issuer', h.chainPem, '-cert', leafPem, '-reqout', out]);
  if (code !== 0) throw new Error(`openssl -reqout failed: ${stderr}`);
  return readFile(out);
}

async function judge(h: Harness, leafPem: string, response: Uint8Array): Promise<{ stdout: string; stderr: string; code: number }> {
  const file = join(h.dir, `resp-${randomBytes(4).toString('hex')}.der`);
  await writeFile(file, response);
  return openssl(['ocsp', '-respin', file, '-issuer', h.chainPem, '-cert', leafPem, '-CAfile', h.rootPem, '-no_nonce']);
}

async function get(h: Harness, path: string, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${h.url}/${path}`, { headers });
}

async function post(url: string, body: Uint8Array, contentType = 'application/ocsp-request'): Promise<Response> {
  return fetch(url, { method: 'POST', body: new Uint8Array(body), headers: { 'content-type': contentType } });
}

const bytes = async (response: Response): Promise<Buffer> => Buffer.from(await response.arrayBuffer());

function basic(der: Uint8Array): pkijs.BasicOCSPResponse {
  const response = pkijs.OCSPResponse.fromBER(new Uint8Array(der));
  if (!response.responseBytes) throw new Error(`no responseBytes (status ${response.responseStatus.valueBlock.valueDec})`);
  return pkijs.BasicOCSPResponse.fromBER(new Uint8Array(response.responseBytes.response.valueBlock.valueHexView));
}

function requestNonce(der: Uint8Array): Buffer | undefined {
  const request = pkijs.OCSPRequest.fromBER(new Uint8Array(der));
  const extension = request.tbsRequest.requestExtensions?.find((e) => e.extnID === '1.3.6.1.5.5.7.48.1.2');
  return extension ? Buffer.from(extension.extnValue.valueBlock.valueHexView) : undefined;
}

function responseNonce(der: Uint8Array): Buffer | undefined {
  const extension = basic(der).tbsResponseData.responseExtensions?.find((e) => e.extnID === '1.3.6.1.5.5.7.48.1.2');
  return extension ? Buffer.from(extension.extnValue.valueBlock.valueHexView) : undefined;
}

function status(der: Uint8Array): number {
  return pkijs.OCSPResponse.fromBER(new Uint8Array(der)).responseStatus.valueBlock.valueDec;
}

/** A hand-made one-certificate request: a CertID for `serial` under the given issuer hashes. */
function handRequest(issuerDer: Uint8Array, serialHex: string, options: { nonce?: Buffer; hash?: 'sha1' | 'sha256' } = {}): Buffer {
  const hash = options.hash ?? 'sha1';
  const h = issuerCertIdHashes(issuerDer)[hash];
  const certId = sequence(
    sequence(oid(hash === 'sha1' ? '1.3.14.3.2.26' : '2.16.840.1.101.3.4.2.1'), nullValue()),
    octetString(h.nameHash),
    octetString(h.keyHash),
    tlv(TAG.INTEGER, serialNumberOctets(serialHex)),
  );
  const extensions = options.nonce ? [explicit(2, sequence(sequence(oid('1.3.6.1.5.5.7.48.1.2'), octetString(octetString(options.nonce)))))] : [];
  return sequence(sequence(sequence(sequence(certId)), ...extensions));
}

/** "Nov  4 08:56:05 2026 GMT", as openssl prints times. */
function opensslTime(date: Date): string {
  const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${months[date.getUTCMonth()]} ${String(date.getUTCDate()).padStart(2, ' ')} ${pad(date.getUTCHours())}:${pad(date.getUTCMinutes())}:${pad(date.getUTCSeconds())} ${date.getUTCFullYear()} GMT`;
}

const getPath = (der: Uint8Array, mode: 'encoded' | 'slash'): string => {
  const b64 = Buffer.from(der).toString('base64');
  // 'slash' keeps '/' literal, as some clients send it; '+' and '=' must still be escaped in a path.
  return mode === 'encoded' ? encodeURIComponent(b64) : b64.replace(/\+/g, '%2B').replace(/=/g, '%3D');
};

// ---------------------------------------------------------------------------------------------------------
// One PGlite runtime on real time: what openssl sees.

await t.test('PGlite runtime judged by openssl', async (t) => {
  const h = await harness();
  t.teardown(() => h.close());
  const { certificate, pem } = await h.issue('web.example.internal');

  await t.test('ok/POST: openssl says good for a fresh leaf', async (t) => {
    const { stdout, stderr, code } = await ocspClient(h, pem);
    t.equal(code, 0, stderr);
    t.match(stdout, new RegExp(`${pem}: good`));
    t.match(stderr, /Response verify OK/);
  });

  await t.test('ok/GET /ocsp/<url-encoded base64>: good, with %2B %2F %3D and with a literal /', async (t) => {
    let request = await requestFile(h, pem);
    // Draw requests (random nonces) until the base64 holds '/' and '+', so both spellings are exercised.
    for (let i = 0; i < 50 && !/[/].*|[+]/.test(request.toString('base64')); i += 1) request = await requestFile(h, pem);
    for (const mode of ['encoded', 'slash'] as const) {
      const response = await get(h, getPath(request, mode));
      t.equal(response.status, 200);
      t.equal(response.headers.get('content-type'), 'application/ocsp-response');
      const verdict = await judge(h, pem, await bytes(response));
      t.equal(verdict.code, 0, verdict.stderr);
      t.match(verdict.stdout, new RegExp(`${pem}: good`), mode);
      t.match(verdict.stderr, /Response verify OK/);
    }
    t.same(requestFromPath(`/ocsp/${getPath(request, 'slash')}`), request, 'literal / decodes');
    t.same(requestFromPath(`/ocsp/${Buffer.from(request).toString('base64url')}?x=1`), request, 'base64url decodes, query ignored');
  });

  await t.test('ok/RFC 5019 §6.2 HTTP caching headers, ETag and 304', async (t) => {
    const request = await requestFile(h, pem, ['-no_nonce']);
    const response = await get(h, getPath(request, 'encoded'));
    const der = await bytes(response);
    const single = basic(der).tbsResponseData.responses[0]!;
    const thisUpdate = single.thisUpdate;
    const nextUpdate = single.nextUpdate!;
    t.equal(response.headers.get('last-modified'), thisUpdate.toUTCString());
    t.equal(response.headers.get('expires'), nextUpdate.toUTCString());
    const cacheControl = response.headers.get('cache-control') ?? '';
    const maxAge = Number(/max-age=(\d+)/.exec(cacheControl)?.[1]);
    t.ok(Math.abs(maxAge - (nextUpdate.getTime() - Date.now()) / 1000) < 5, `max-age ${maxAge} ~ nextUpdate - now`);
    for (const directive of ['public', 'no-transform', 'must-revalidate']) t.match(cacheControl, directive);
    const etag = response.headers.get('etag');
    t.match(etag, /^"[A-Za-z0-9_-]+"$/);
    const again = await get(h, getPath(request, 'encoded'), { 'if-none-match': etag! });
    t.equal(again.status, 304);
    t.equal(nextUpdate.getTime() - thisUpdate.getTime(), 72 * HOUR, 'default validity 72 h');
  });

  await t.test('ok/default nonce mode: served from the pre-signed bytes, no nonce echoed', async (t) => {
    const a = await requestFile(h, pem, ['-nonce']);
    const b = await requestFile(h, pem, ['-nonce']);
    t.ok(requestNonce(a), 'the request carries a nonce');
    const [ra, rb] = await Promise.all([post(h.url, a), post(h.url, b)]);
    const da = await bytes(ra);
    const db = await bytes(rb);
    t.equal(responseNonce(da), undefined, 'no nonce in the response');
    t.same(da, db, 'two nonces, the same cached bytes');
    const stored = await new OcspResponseRepository(h.runtime.db).find(certificate.serial);
    t.same(da, stored?.der, 'the stored pre-signed response');
    const { stderr } = await ocspClient(h, pem, ['-nonce']);
    t.match(stderr, /WARNING: no nonce in response/);
  });

  await t.test('ok/SHA-256 CertID', async (t) => {
    const { stdout, stderr, code } = await openssl(['ocsp', '-sha256', '-issuer', h.chainPem, '-cert', pem, '-url', h.url, '-CAfile', h.rootPem]);
    t.equal(code, 0, stderr);
    t.match(stdout, new RegExp(`${pem}: good`));
    t.match(stderr, /Response verify OK/);
  });

  await t.test('ok/unknown for a serial of our issuer that was never issued (and not stored)', async (t) => {
    const serial = `7f${randomBytes(15).toString('hex')}`;
    const der = await bytes(await post(h.url, handRequest(h.hierarchy.intermediate.der, serial)));
    t.equal(status(der), 0);
    const single = basic(der).tbsResponseData.responses[0]!;
    t.equal(single.certStatus.idBlock.tagNumber, 2, 'unknown [2]');
    t.equal(await new OcspResponseRepository(h.runtime.db).find(serial), undefined, 'unknown answers are not stored');
  });

  await t.test('fail/bad input is malformedRequest or unauthorized, and the server keeps serving', async (t) => {
    const malformed = '30030a0101';
    const unauthorized = '30030a0106';
    const good = await requestFile(h, pem, ['-no_nonce']);
    const expectAnswer = async (name: string, response: Response, hex: string): Promise<void> => {
      t.equal(response.status, 200, `${name}: HTTP 200`);
      t.equal(response.headers.get('content-type'), 'application/ocsp-response', `${name}: OCSP media type`);
      t.equal((await bytes(response)).toString('hex'), hex, name);
    };
    await expectAnswer('fail/empty POST', await post(h.url, Buffer.alloc(0)), malformed);
    await expectAnswer('fail/1 MB POST', await post(h.url, randomBytes(1024 * 1024)), malformed);
    await expectAnswer('fail/truncated DER', await post(h.url, good.subarray(0, good.length - 7)), malformed);
    await expectAnswer('fail/garbage', await post(h.url, Buffer.from('GET / HTTP/1.1\r\n\r\n')), malformed);
    await expectAnswer('fail/wrong content type still parsed as DER', await post(h.url, good.subarray(0, 10), 'text/plain'), malformed);
    await expectAnswer('fail/GET not base64', await get(h, 'not*base64!'), malformed);
    // A path that is not even valid percent-encoding never reaches the route (Fastify's router cannot
    // decode it): it is still an OCSP answer, not Fastify's JSON 400.
    await expectAnswer('fail/GET bad escape', await get(h, '%E0%A4%A'), malformed);
    const elsewhere = await fetch(`${h.url.replace(/\/ocsp$/, '')}/ca/%E0%A4%A`);
    t.equal(elsewhere.status, 400, 'a bad escape outside /ocsp/ keeps Fastify\'s 400');
    t.match(await elsewhere.json(), { code: 'FST_ERR_BAD_URL' });
    await expectAnswer('fail/GET empty', await get(h, ''), malformed);
    const second = await h.issue();
    const two = await openssl(['ocsp', '-issuer', h.chainPem, '-cert', pem, '-cert', second.pem, '-reqout', join(h.dir, 'two.der')]);
    t.equal(two.code, 0, two.stderr);
    await expectAnswer('fail/two certificates in one request (RFC 5019 §2.1.1)', await post(h.url, await readFile(join(h.dir, 'two.der'))), malformed);
    await expectAnswer('fail/SHA-512 CertID', await post(h.url, await requestFile(h, pem, ['-sha512'])), unauthorized);
    const foreign = generateForeignIssuer();
    await expectAnswer('fail/an issuer we do not serve', await post(h.url, handRequest(foreign, certificate.serial)), unauthorized);
    await expectAnswer('fail/our root is not an OCSP issuer here', await post(h.url, handRequest(h.hierarchy.root.der, certificate.serial)), unauthorized);
    const { stdout } = await ocspClient(h, pem);
    t.match(stdout, /: good/, 'still serving');
  });

  await t.test('ok/revoked with reason and time right after revoke() returns, POST and GET', async (t) => {
    const { certificate: victim, pem: victimPem } = await h.issue();
    // Warm the cache with `good` first, so the answer below proves invalidation.
    t.match((await ocspClient(h, victimPem)).stdout, /: good/);
    const revoked = await h.revocation.revoke(victim.serial, 1);
    const viaPost = await ocspClient(h, victimPem);
    t.match(viaPost.stdout, new RegExp(`${victimPem}: revoked`));
    t.match(viaPost.stdout, /Reason: keyCompromise/);
    t.match(viaPost.stdout, new RegExp(`Revocation Time: ${opensslTime(revoked.revokedAt!)}`));
    t.match(viaPost.stderr, /Response verify OK/);
    const request = await requestFile(h, victimPem);
    const viaGet = await judge(h, victimPem, await bytes(await get(h, getPath(request, 'encoded'))));
    t.match(viaGet.stdout, /: revoked/);
    t.match(viaGet.stdout, /Reason: keyCompromise/);
    const stored = await new OcspResponseRepository(h.runtime.db).find(victim.serial);
    t.equal(stored?.status, 'revoked', 're-signed in the revocation transaction');
    t.ok(stored?.der);
    await expectCaError(t, h.revocation.revoke(victim.serial, 1), 'alreadyRevoked', /already revoked/);
  });

  await t.test('ok/a bulk chunk keeps the responses signed ahead whose facts still hold and signs the others in its transaction', async (t) => {
    const kept = await h.issue();
    const changed = await h.issue();
    const revokedAt = new Date(Math.floor(Date.now() / 1000) * 1000);
    const facts = (c: IssuedCertificate, at: Date, reason: 1 | 4) => ({ serial: c.serial, issuerId: c.issuerId, status: 'revoked' as const, revokedAt: at, revocationReason: reason });
    // Read ahead (BulkRevoker readAhead): both as keyCompromise at revokedAt.
    h.ocsp.source.signAhead('run-a:chunk-2', [facts(kept.certificate, revokedAt, 1), facts(changed.certificate, revokedAt, 1)]);
    await new Promise((resolve) => setTimeout(resolve, 1100)); // thisUpdate is in whole seconds
    // By the chunk's commit the second was revoked otherwise (another time, superseded).
    const later = new Date(revokedAt.getTime() + 60_000);
    const [first, last] = [kept.certificate.serial, changed.certificate.serial].sort();
    await h.runtime.db.transaction(async (tx) => {
      const certificates = new CertificateRepository(tx);
      await certificates.revoke(kept.certificate.serial, revokedAt, 1);
      await certificates.revoke(changed.certificate.serial, later, 4);
      await h.ocsp.source.beforeBulkRevocationCommit(
        { putMany: (records) => new OcspResponseRepository(tx).putMany(records), notify: (payload) => notify(tx, 'chancery_ocsp_test', payload) },
        [facts(kept.certificate, revokedAt, 1), facts(changed.certificate, later, 4)],
        { key: 'bulk:run-a:2', first: first!, last: last!, signedAhead: 'run-a:chunk-2' },
      );
    });
    const responses = new OcspResponseRepository(h.runtime.db);
    const keptRow = await responses.find(kept.certificate.serial);
    const changedRow = await responses.find(changed.certificate.serial);
    t.ok(keptRow!.thisUpdate.getTime() < changedRow!.thisUpdate.getTime(), 'the first stored as signed ahead, the second signed again at the commit');
    const keptAnswer = await ocspClient(h, kept.pem);
    t.match(keptAnswer.stdout, /: revoked[\s\S]*Reason: keyCompromise/);
    t.match(keptAnswer.stdout, new RegExp(`Revocation Time: ${opensslTime(revokedAt)}`));
    t.match(keptAnswer.stderr, /Response verify OK/);
    const changedAnswer = await ocspClient(h, changed.pem);
    t.match(changedAnswer.stdout, /: revoked[\s\S]*Reason: superseded/, 'the facts at the commit, not those read ahead');
    t.match(changedAnswer.stdout, new RegExp(`Revocation Time: ${opensslTime(later)}`));
    t.match(changedAnswer.stderr, /Response verify OK/);
  });

  await t.test('ok/nonce mode sign: the nonce is echoed (RFC 8954); bad lengths are malformedRequest', async (t) => {
    const signing = new OcspSource({
      codec: ocspCodec,
      store: new OcspResponseRepository(h.runtime.db),
      responders: h.ocsp.responders,
      issuers: [{ id: h.hierarchy.intermediate.id, certificateDer: h.hierarchy.intermediate.der }],
      clock: h.runtime.clock,
      settings: { validityMs: 72 * HOUR, nonce: 'sign' },
    });
    const server = await serve(signing, h.runtime.clock);
    t.teardown(() => server.app.close());
    const { stdout, stderr, code } = await ocspClient(h, pem, ['-nonce'], server.url);
    t.equal(code, 0, stderr);
    t.match(stdout, /: good/);
    t.notMatch(stderr, /nonce/i, 'openssl found its nonce');
    const request = await requestFile(h, pem, ['-nonce']);
    const response = await bytes(await post(server.url, request));
    t.same(responseNonce(response), requestNonce(request), 'extnValue echoed byte for byte');
    const reply = await post(server.url, request);
    t.equal(reply.headers.get('cache-control'), 'no-store', 'a nonce answer is not for caches');
    const noNonce = await bytes(await post(server.url, await requestFile(h, pem, ['-no_nonce'])));
    t.equal(responseNonce(noNonce), undefined, 'no nonce asked, none sent');
    const serial = h.hierarchy.intermediate.der && certificate.serial;
    t.equal((await bytes(await post(server.url, handRequest(h.hierarchy.intermediate.der, serial, { nonce: randomBytes(33) })))).toString('hex'), '30030a0101', '33 octets');
    t.equal((await bytes(await post(server.url, handRequest(h.hierarchy.intermediate.der, serial, { nonce: Buffer.alloc(0) })))).toString('hex'), '30030a0101', '0 octets');
    const one = await bytes(await post(server.url, handRequest(h.hierarchy.intermediate.der, serial, { nonce: randomBytes(1) })));
    t.equal(status(one), 0, '1 octet is fine');
    // In the default mode the same 33-octet nonce is simply ignored.
    const ignored = await bytes(await post(h.url, handRequest(h.hierarchy.intermediate.der, serial, { nonce: randomBytes(33) })));
    t.equal(status(ignored), 0);
    t.equal(responseNonce(ignored), undefined);
  });

  await t.test('ok/revocation commits even when signing fails; the answer is then signed live', async (t) => {
    const { certificate: victim, pem: victimPem } = await h.issue();
    let failures = 0;
    const failing = new OcspSource({
      codec: {
        ...ocspCodec,
        signOcspResponse: async () => {
          failures += 1;
          throw new CaError('keyStore', 'HSM unavailable');
        },
      },
      store: new OcspResponseRepository(h.runtime.db),
      responders: h.ocsp.responders,
      issuers: [{ id: h.hierarchy.intermediate.id, certificateDer: h.hierarchy.intermediate.der }],
      clock: h.runtime.clock,
      settings: { validityMs: 72 * HOUR, nonce: 'ignore' },
    });
    const events = new DomainEvents<Queryable>();
    events.onCommitting('certificate.revoked', ({ certificate: c }, tx) =>
      failing.beforeRevocationCommit({ store: new OcspResponseRepository(tx), notify: (p) => notify(tx, 'chancery_ocsp', p) }, c),
    );
    events.onCommitted('certificate.revoked', ({ certificate: c }) => h.ocsp.source.afterRevocation(c));
    await revoker(h.runtime, events).revoke(victim.serial, 4);
    t.equal(failures, 1);
    const stored = await new OcspResponseRepository(h.runtime.db).find(victim.serial);
    t.equal(stored?.status, 'revoked', 'a revoked row holds the place');
    t.equal(stored?.der, undefined, 'with no response yet');
    const { stdout } = await ocspClient(h, victimPem);
    t.match(stdout, /: revoked/);
    t.match(stdout, /Reason: superseded/);
    t.ok((await new OcspResponseRepository(h.runtime.db).find(victim.serial))?.der, 'the live answer filled the row');
  });

  await t.test('fail/an in-transaction handler that throws rolls the revocation back', async (t) => {
    const { certificate: victim, pem: victimPem } = await h.issue();
    const events = new DomainEvents<Queryable>();
    const committed: string[] = [];
    events.onCommitting('certificate.revoked', async ({ certificate: c }, tx) => {
      await h.ocsp.source.beforeRevocationCommit({ store: new OcspResponseRepository(tx), notify: (p) => notify(tx, 'chancery_ocsp', p) }, c);
      throw new CaError('serverInternal', 'CRL bookkeeping failed');
    });
    events.onCommitted('certificate.revoked', ({ certificate: c }) => void committed.push(c.serial));
    await expectCaError(t, revoker(h.runtime, events).revoke(victim.serial, 1), 'serverInternal', /CRL bookkeeping/);
    t.same(committed, [], 'nothing after commit ran');
    t.equal((await h.runtime.certificates.findBySerial(victim.serial))?.status, 'valid');
    t.equal((await new OcspResponseRepository(h.runtime.db).find(victim.serial))?.status, 'good');
    t.match((await ocspClient(h, victimPem)).stdout, /: good/);
  });

  await t.test('ok/after commit, handlers run in order before revoke() returns; unknown and repeated serials are refused', async (t) => {
    const { certificate: victim } = await h.issue();
    const events = new DomainEvents<Queryable>();
    const seen: string[] = [];
    events.onCommitted('certificate.revoked', ({ certificate: c }) => void seen.push(`first ${c.serial} ${c.status}`));
    events.onCommitted('certificate.revoked', async ({ certificate: c }) => void seen.push(`second ${c.serial}`));
    const plain = revoker(h.runtime, events);
    t.equal((await plain.revoke(victim.serial, 0)).status, 'revoked');
    t.same(seen, [`first ${victim.serial} revoked`, `second ${victim.serial}`]);
    await expectCaError(t, plain.revoke('00ff', 0), 'notFound', /no certificate/);
    await expectCaError(t, plain.revoke(victim.serial, 0), 'alreadyRevoked', /already revoked/);
    t.equal(seen.length, 2, 'a refused revocation raises nothing');
  });
});

function generateForeignIssuer(): Buffer {
  // A self-made "CA" certificate with a random key: only its subject and key matter for the CertID.
  const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  const name = sequence(tlv(TAG.SET, sequence(oid('2.5.4.3'), tlv(0x0c, Buffer.from('Someone Else CA')))));
  const tbs = sequence(
    explicit(0, tlv(TAG.INTEGER, Buffer.from([2]))),
    tlv(TAG.INTEGER, Buffer.from([1])),
    sequence(oid('1.2.840.10045.4.3.2')),
    name,
    sequence(tlv(TAG.UTC_TIME, Buffer.from('260101000000Z')), tlv(TAG.UTC_TIME, Buffer.from('360101000000Z'))),
    name,
    spki,
  );
  return sequence(tbs, sequence(oid('1.2.840.10045.4.3.2')), tlv(TAG.BIT_STRING, Buffer.from([0, 0x30, 0x00])));
}

// ---------------------------------------------------------------------------------------------------------
// A fake clock: refresh before expiry, responder rotation before expiry.

await t.test('fake clock: refresh and rotation', async (t) => {
  const clock = new FakeClock(new Date(Math.floor(Date.now() / 1000) * 1000));
  const h = await harness({ clock });
  t.teardown(() => h.close());
  const responses = new OcspResponseRepository(h.runtime.db);
  const responders = new OcspResponderRepository(h.runtime.db);
  const issuerId = h.hierarchy.intermediate.id;
  const { certificate, pem } = await h.issue();
  const request = await requestFile(h, pem, ['-no_nonce']);
  const answer = async (): Promise<pkijs.BasicOCSPResponse> => basic((await h.ocsp.source.respond(request)).der);

  await t.test('ok/responses are refreshed before half their validity, not earlier', async (t) => {
    const first = await responses.find(certificate.serial);
    t.ok(first);
    t.equal((await h.ocsp.refresher.runOnce()).refreshed, 0, 'nothing due yet');
    clock.advance(35 * HOUR);
    t.equal((await h.ocsp.refresher.runOnce()).refreshed, 0, 'still before half of 72 h');
    clock.advance(1 * HOUR + MINUTE);
    const result = await h.ocsp.refresher.runOnce();
    t.ok(result.refreshed >= 1, `refreshed ${result.refreshed}`);
    const second = await responses.find(certificate.serial);
    t.same(second?.thisUpdate, clock.now(), 're-signed now');
    t.ok(second!.nextUpdate.getTime() > first!.nextUpdate.getTime());
    t.ok(second!.refreshAfter.getTime() < second!.nextUpdate.getTime());
    clock.advance(CACHE_TTL_MS + 1);
    t.same((await answer()).tbsResponseData.responses[0]!.thisUpdate, second!.thisUpdate, 'the refreshed response is served');
  });

  await t.test('ok/responder certificate rotated at half life, before it expires; old responses re-signed in time', async (t) => {
    const gen1 = await responders.latest(issuerId);
    t.equal(gen1?.generation, 1);
    t.equal(gen1?.keyName, `ocsp-${issuerId}-1`);
    const steps = Math.ceil((20 * DAY) / (6 * HOUR));
    const generations = new Set<number>();
    for (let step = 0; step < steps; step += 1) {
      clock.advance(6 * HOUR);
      await h.ocsp.refresher.runOnce();
      const now = clock.now().getTime();
      const current = h.ocsp.responders.current(issuerId);
      if (!current) throw new Error(`no responder at step ${step}`);
      generations.add(current.generation);
      t.ok(current.notAfter.getTime() - now > 3 * DAY - 6 * HOUR, 'never near expiry');
      const stored = await responses.find(certificate.serial);
      t.ok(stored && stored.nextUpdate.getTime() > now, 'stored response still valid');
      // The answer's responder certificate is valid now and covers the response's nextUpdate.
      const response = await answer();
      const responderCert = response.certs![0]!;
      const single = response.tbsResponseData.responses[0]!;
      t.ok(responderCert.notBefore.value.getTime() <= now && now < responderCert.notAfter.value.getTime(), 'responder valid now');
      t.ok(single.nextUpdate!.getTime() <= responderCert.notAfter.value.getTime(), 'nextUpdate within the responder validity');
    }
    t.ok(generations.size >= 5, `rotated through generations ${[...generations].join(', ')}`);
    const latest = await responders.latest(issuerId);
    t.ok(await h.runtime.keys.load(latest!.keyName), 'responder key is in the key store');
    t.ok(latest!.notAfter.getTime() - latest!.notBefore.getTime() <= 7 * DAY + HOUR, 'short-lived');
    t.ok(await h.runtime.certificates.isSerialReserved(latest!.serial), 'responder serial reserved like any other');
  });

  await t.test('ok/rotation survives a racing instance (key already created) and a key that does not match', async (t) => {
    const latest = (await responders.latest(issuerId))!;
    const next = latest.generation + 1;
    // Another instance created the next key, then died before certifying it.
    const orphan = await h.runtime.keys.create(`ocsp-${issuerId}-${next}`, { algorithm: 'ecdsa-p256' });
    clock.set(new Date(Math.max(clock.now().getTime(), OcspResponderKeys.rotateAt(latest).getTime() + MINUTE)));
    await h.ocsp.responders.ensureCurrent();
    const current = h.ocsp.responders.current(issuerId)!;
    t.equal(current.generation, next);
    t.same(Buffer.from(current.material.signer.publicKey), Buffer.from(orphan.publicKey), 'the existing key was certified');
    // A record whose key is not the certified one: skipped, and a new generation made.
    const bogusKey = `ocsp-${issuerId}-${next + 1}`;
    await h.runtime.keys.create(bogusKey, { algorithm: 'ecdsa-p256' });
    const certified = (await responders.latest(issuerId))!;
    t.equal(await responders.insert({ ...certified, generation: next + 1, keyName: bogusKey }), true);
    await h.ocsp.responders.ensureCurrent();
    t.equal(h.ocsp.responders.current(issuerId)?.generation, next + 2, 'rotated past the mismatched one');
    // A SHA-256 CertID is signed live, so it shows which responder signs now.
    const response = basic((await h.ocsp.source.respond(handRequest(h.hierarchy.intermediate.der, certificate.serial, { hash: 'sha256' }))).der);
    const newest = (await responders.latest(issuerId))!;
    t.same(Buffer.from(response.certs![0]!.toSchema().toBER()), newest.der, 'answers are signed by the newest responder');
  });

  await t.test('ok/a stale row is never served: a live answer replaces it', async (t) => {
    const { certificate: other } = await h.issue();
    clock.advance(80 * HOUR); // past nextUpdate, refresher not run
    const req = handRequest(h.hierarchy.intermediate.der, other.serial);
    const single = basic((await h.ocsp.source.respond(req)).der).tbsResponseData.responses[0]!;
    const now = new Date(Math.floor(clock.now().getTime() / 1000) * 1000);
    t.same(single.thisUpdate, now, 'signed now (whole seconds, as GeneralizedTime)');
    t.same((await responses.find(other.serial))?.thisUpdate, now, 'and stored');
  });

  await t.test('ok/backfill signs certificates that have no response', async (t) => {
    const { certificate: orphan } = await h.issue(undefined, { orphan: true });
    t.equal(await responses.find(orphan.serial), undefined);
    const result = await h.ocsp.refresher.runOnce({ backfill: true });
    t.ok(result.backfilled >= 1);
    t.equal((await responses.find(orphan.serial))?.status, 'good');
  });

  await t.test('ok/chancery ocsp refresh', async (t) => {
    const config: Config = h.runtime.config;
    await h.close();
    const written: string[] = [];
    const write = process.stdout.write.bind(process.stdout);
    process.stdout.write = ((chunk: string) => {
      written.push(String(chunk));
      return true;
    }) as typeof process.stdout.write;
    try {
      await ocspCommand(config, ['refresh']);
    } finally {
      process.stdout.write = write;
    }
    t.match(written.join(''), /refreshed: +\d+\nbackfilled: +\d+\nfailed: +0\npurged: +\d+\nstored: +\d+\n/);
    await expectCaError(t, ocspCommand(config, ['bogus']), 'malformed', /usage: chancery ocsp refresh/);
  });
});

// ---------------------------------------------------------------------------------------------------------
// Two runtimes on one PostgreSQL: a revocation on one is answered `revoked` by the other at once.

await t.test('two runtimes on one PostgreSQL', async (t) => {
  const database = await freshPgDatabase(t);
  if (!database) return;
  const a = await harness({ env: { CHANCERY_DATABASE_URL: database.url } });
  t.teardown(() => a.close());
  const b = await harness({ config: a.runtime.config, clock: systemClock });
  t.teardown(() => b.close());

  await t.test('ok/both sign with the same responder (the second adopts the first one\'s)', async (t) => {
    const issuerId = a.hierarchy.intermediate.id;
    t.equal(a.ocsp.responders.current(issuerId)?.generation, b.ocsp.responders.current(issuerId)?.generation);
    t.equal(a.ocsp.responders.current(issuerId)?.keyName, b.ocsp.responders.current(issuerId)?.keyName);
  });

  await t.test('ok/revoke on one, the other answers revoked immediately (its cached good is dropped)', async (t) => {
    for (let round = 0; round < 5; round += 1) {
      const { certificate, pem } = await a.issue();
      const request = await requestFile(a, pem, ['-no_nonce']);
      t.match((await ocspClient(b, pem)).stdout, /: good/);
      const before = b.ocsp.source.cacheSize;
      t.ok(before > 0, 'B has the good answer cached');
      t.equal(basic((await b.ocsp.source.respond(request)).der).tbsResponseData.responses[0]!.certStatus.idBlock.tagNumber, 0);
      // The same GET twice: the second takes the request-key fast path (no decoding, no parsing).
      const path = getPath(request, 'encoded');
      for (let i = 0; i < 2; i += 1) t.match((await judge(b, pem, await bytes(await get(b, path)))).stdout, /: good/);
      await a.revocation.revoke(certificate.serial, 1);
      t.match((await judge(b, pem, await bytes(await get(b, path)))).stdout, /: revoked/, `round ${round}: B's GET fast path says revoked`);
      const fromB = basic((await b.ocsp.source.respond(request)).der).tbsResponseData.responses[0]!;
      t.equal(fromB.certStatus.idBlock.tagNumber, 1, `round ${round}: B says revoked right after A's revoke()`);
      const viaHttp = await ocspClient(b, pem);
      t.match(viaHttp.stdout, /: revoked/);
      t.match(viaHttp.stdout, /Reason: keyCompromise/);
    }
  });

  await t.test('ok/a lost LISTEN connection disables the cache until it is back', async (t) => {
    const { pem } = await a.issue();
    t.match((await ocspClient(b, pem)).stdout, /: good/);
    t.ok(b.ocsp.source.cacheSize > 0);
    // Each instance keeps one LISTEN connection per channel it follows (OCSP, groups, incidents): all of them
    // are cut, and all must come back.
    const listening = async (): Promise<number> =>
      (await a.runtime.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'chancery-listen' AND datname = current_database()`)).rows[0]?.n ?? 0;
    const before = await listening();
    t.ok(before >= 2, `${before} LISTEN connections, at least one per instance`);
    await a.runtime.db.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'chancery-listen' AND datname = current_database()`);
    for (let i = 0; i < 100 && b.ocsp.source.cacheSize > 0; i += 1) await new Promise((r) => setTimeout(r, 20));
    t.equal(b.ocsp.source.cacheSize, 0, 'cache dropped when notifications were lost');
    let listeners = 0;
    for (let i = 0; i < 200 && listeners < before; i += 1) {
      await new Promise((r) => setTimeout(r, 50));
      listeners = await listening();
    }
    t.equal(listeners, before, 'both instances listen again on every channel');
    const { certificate: next, pem: nextPem } = await a.issue();
    t.match((await ocspClient(b, nextPem)).stdout, /: good/);
    await a.revocation.revoke(next.serial, 1);
    t.match((await ocspClient(b, nextPem)).stdout, /: revoked/, 'invalidation works after the reconnect');
  });
});

// ---------------------------------------------------------------------------------------------------------
// The repository and notification layer on both drivers (DESIGN.md rule 6).

await t.test('repositories and notifications on PGlite and PostgreSQL', async (t) => {
  await withEachDatabase(t, async (t: Test, db: Database) => {
    const at = new Date('2026-03-01T00:00:00Z');
    const build = builders(at);
    await new IssuerRepository(db).insert(build.buildIssuer({ id: 'iss1' }));
    const certificates = new CertificateRepository(db);
    const insertCertificate = async (serial: string, notAfter = new Date(at.getTime() + 30 * DAY)): Promise<void> => {
      await certificates.reserveSerial(serial, 'iss1', at);
      await certificates.insert(build.buildCertificate({ serial, issuerId: 'iss1', notAfter }));
    };
    const repository = new OcspResponseRepository(db);
    const record = (serial: string, status: 'good' | 'revoked', thisUpdate: Date, pending = false) => ({
      serial,
      issuerId: 'iss1',
      status,
      ...(pending ? {} : { der: Buffer.from(status) }),
      thisUpdate,
      nextUpdate: new Date(thisUpdate.getTime() + 72 * HOUR),
      refreshAfter: new Date(thisUpdate.getTime() + 36 * HOUR),
      responderGeneration: 1,
      updatedAt: thisUpdate,
    });

    await t.test('ok/put: newer wins, revoked is final, no good while the certificate is revoked, no unknown serials', async (t) => {
      await insertCertificate('a1');
      t.equal(await repository.put(record('a1', 'good', at)), true);
      t.equal(await repository.put(record('a1', 'good', new Date(at.getTime() - 1000))), false, 'older good does not replace newer');
      t.equal(await repository.put(record('a1', 'good', new Date(at.getTime() + 1000))), true);
      await certificates.revoke('a1', new Date(at.getTime() + 2000), 1);
      t.equal(await repository.put(record('a1', 'revoked', new Date(at.getTime() + 2000), true)), true, 'pending revoked row');
      t.equal((await repository.find('a1'))?.der, undefined, 'pending: no response yet');
      t.equal(await repository.put(record('a1', 'good', new Date(at.getTime() + 9000))), false, 'good never replaces revoked');
      t.equal(await repository.put(record('a1', 'revoked', new Date(at.getTime() + 3000))), true, 'signed revoked fills the pending row');
      t.equal(await repository.put(record('a1', 'revoked', new Date(at.getTime() + 4000), true)), false, 'a pending row never replaces a signed one');
      const stored = await repository.find('a1');
      t.equal(stored?.status, 'revoked');
      t.same(stored?.der, Buffer.from('revoked'));
      t.same(stored?.thisUpdate, new Date(at.getTime() + 3000));
      t.equal(await repository.put(record('ffff', 'good', at)), false, 'no row for a certificate that does not exist');
      await insertCertificate('a2');
      await certificates.revoke('a2', at, 0);
      t.equal(await repository.put(record('a2', 'good', at)), false, 'no good for a revoked certificate, even without a row');
      t.same(await repository.findCertificate('a2'), { serial: 'a2', issuerId: 'iss1', status: 'revoked', revokedAt: at, revocationReason: 0, notAfter: new Date(at.getTime() + 30 * DAY) });
    });

    await t.test('ok/putMany: the rules of put, each record judged on its own, in one statement', async (t) => {
      await insertCertificate('e1');
      await insertCertificate('e2');
      const later = new Date(at.getTime() + 1000);
      t.same(
        await repository.putMany([record('e2', 'good', at), record('eeee', 'good', at), record('e1', 'good', at)]),
        [true, false, true],
        'stored for the two certificates, not for an unknown serial',
      );
      t.same(
        await repository.putMany([record('e1', 'good', later), record('e1', 'good', at), record('e2', 'good', new Date(at.getTime() - 1))]),
        [true, false, false],
        'a serial twice: written in turn (newer, then an older one refused); an older response refused',
      );
      t.same((await repository.find('e1'))?.thisUpdate, later);
      const batched = new OcspResponseRepository(db, { batch: true });
      const results = await Promise.all([batched.put(record('e1', 'good', new Date(later.getTime() + 1))), batched.put(record('e2', 'good', later))]);
      t.same(results, [true, true], 'concurrent puts through the batcher');
      t.same(await repository.putMany([]), []);
    });

    await t.test('ok/claimDue leases due rows once; findMissing; purgeExpired', async (t) => {
      await insertCertificate('b1');
      await insertCertificate('b2');
      await insertCertificate('b3', new Date(at.getTime() + HOUR)); // expires soon
      for (const serial of ['b1', 'b2', 'b3']) await repository.put(record(serial, 'good', at));
      const later = new Date(at.getTime() + 40 * HOUR); // b3 has expired by then
      const lease = new Date(later.getTime() + 10 * MINUTE);
      const claimed = await repository.claimDue(later, lease, 10);
      const mine = claimed.map((c) => c.serial).filter((s) => s.startsWith('b')).sort();
      t.same(mine, ['b1', 'b2'], 'expired certificates are not refreshed');
      const again = (await repository.claimDue(later, lease, 10)).filter((c) => c.serial.startsWith('b'));
      t.same(again, [], 'leased rows are not claimed twice');
      const afterLease = (await repository.claimDue(new Date(lease.getTime() + 1), new Date(lease.getTime() + HOUR), 10)).filter((c) => c.serial.startsWith('b'));
      t.equal(afterLease.length, 2, 'an unfinished lease runs out');
      await insertCertificate('c1');
      const missing = await repository.findMissing(at, 100);
      t.same(missing.map((m) => m.serial), ['a2', 'c1'], 'a2 (revoked, no row) and c1');
      t.equal(await repository.purgeExpired(new Date(at.getTime() + 2 * HOUR)), 1, 'b3 purged');
      t.equal(await repository.find('b3'), undefined);
    });

    await t.test('ok/responders: latest, and one winner per generation', async (t) => {
      const responders = new OcspResponderRepository(db);
      await certificates.reserveSerial('d1', 'iss1', at);
      await certificates.reserveSerial('d2', 'iss1', at);
      const responder = { issuerId: 'iss1', generation: 1, keyName: 'ocsp-iss1-1', serial: 'd1', der: Buffer.from([3]), notBefore: at, notAfter: new Date(at.getTime() + 7 * DAY), createdAt: at };
      t.equal(await responders.insert(responder), true);
      t.equal(await responders.insert({ ...responder, serial: 'd2', der: Buffer.from([4]) }), false, 'same generation: the first wins');
      t.same((await responders.latest('iss1'))?.der, Buffer.from([3]));
      t.equal(await responders.latest('nobody'), undefined);
    });

    await t.test('ok/NOTIFY in a transaction is heard after commit, never after rollback', async (t) => {
      const heard: string[] = [];
      const subscription = await listen(db, 'chancery_test', (payload) => heard.push(payload));
      t.teardown(() => subscription.close());
      await db.transaction(async (tx) => {
        await notify(tx, 'chancery_test', 'committed');
        t.same(heard, [], 'not before commit');
      });
      await db.transaction(async (tx) => {
        await notify(tx, 'chancery_test', 'rolled-back');
        throw new Error('rollback');
      }).catch(() => undefined);
      await notify(db, 'chancery_test', 'plain');
      for (let i = 0; i < 100 && heard.length < 2; i += 1) await new Promise((r) => setTimeout(r, 10));
      await new Promise((r) => setTimeout(r, 50));
      t.same(heard, ['committed', 'plain']);
      await expectCaError(t, notify(db, 'chancery_test', 'x'.repeat(9000)), 'serverInternal', /too long/);
    });
  });
});

t.test('ok/responder keys refuse an unusable validity', async (t) => {
  t.throws(
    () =>
      new OcspResponderKeys({
        keys: { create: async () => { throw new Error('unused'); }, load: async () => undefined },
        store: { latest: async () => undefined, insert: async () => false },
        certificates: { prepare: () => { throw new Error('unused'); }, sign: async () => Buffer.alloc(0) },
        codec: ocspCodec,
        reserveSerial: async () => undefined,
        issuers: [],
        clock: systemClock,
        settings: { validityMs: HOUR },
      }),
    { kind: 'badConfig', message: /too short/ },
  );
});
