/**
 * npm run bench:acme — whole ACME issuances per second through the wire protocol, against any ACME server.
 *
 * Each of BENCH_CLIENTS clients creates one account, then loops: new-order for a distinct name
 * (<n>.bench.test) -> fetch the authorization -> answer http-01 (ONE local responder on
 * 127.0.0.1:BENCH_HTTP01_PORT serves every client's key authorizations from a shared map) -> poll the
 * authorization, unless the challenge's response already says valid (lego does the same) -> finalize with an
 * ECDSA P-256 CSR (keys pre-generated) -> poll the order unless finalize answered valid -> download the
 * certificate. It prints issuances/s, failures (and the first few messages), p50/p99 latency of one whole
 * issuance, and how many server processes served them; for the servers it started, also the CPU each
 * issuance cost in the server (and its event-loop thread), PostgreSQL and the bench client, read from /proc
 * (bench/cpu-accounting.ts), and the machine's single-core P-256 signing rate as a reference: throughput
 * moves with the host a VM shares, CPU per issuance shows what a change moved.
 * The client is written here (flattened JWS ES256 signed with node:crypto, nonces from Replay-Nonce, kid
 * after new-account, keep-alive HTTPS with undici): acme-client is too serial for load.
 * The first BENCH_WARMUP_SECONDS run the same load uncounted (a fresh Node process is still compiling its hot
 * code; a CA runs for months), then BENCH_SECONDS are measured.
 * Bounded by time and count: the loop stops at the end of BENCH_SECONDS or BENCH_MAX started issuances, each
 * issuance gives up after 60 s, and every process the bench started is stopped by PID at the end.
 *
 * Settings (environment):
 *   BENCH_START            ""        | chancery | pebble   what the bench starts itself (see below)
 *   BENCH_DIRECTORY        directory URL(s), comma-separated: client i uses server i % N (needed when BENCH_START="")
 *   BENCH_CA_BUNDLE        PEM file to trust for the servers' HTTPS (set by the bench in both start modes)
 *   BENCH_SERVER_PROCESSES how many server processes serve the directory: printed; with BENCH_START=chancery
 *                          the bench starts that many (default 2), each on its own port, all on one PostgreSQL
 *   BENCH_CLIENTS 64   BENCH_SECONDS 20   BENCH_WARMUP_SECONDS 5   BENCH_MAX 50000   BENCH_POLL_MS 50
 *   BENCH_STALL_SECONDS 10  no issuance completing for this long ends the run (reported as STALLED, exit 2)
 *   SIGUSR2 to the bench ends the measured window at once (bench:revoke measures ACME while it revokes)
 *   BENCH_PG_CPU           all | database: the PostgreSQL CPU counted is that of every postgres process (all),
 *                          or only of the backends (and autovacuum workers) of the bench's own database, read
 *                          from their command lines: on a machine whose PostgreSQL also serves others (tests of
 *                          other work), `database` leaves their load out (and the shared WAL writer and
 *                          checkpointer, a small part)
 *   BENCH_HTTP01_PORT      the responder's port (default: a free port in start modes, 5002 otherwise)
 *   In the start modes the server resolves names through the bench's own DNS server (test/helpers/dns-server.ts),
 *   which answers A 127.0.0.1 (and NODATA for AAAA) for every name the bench orders.
 *
 * --- Chancery on PostgreSQL (BENCH_START=chancery) -------------------------------------------------------
 *   Needs the PostgreSQL of `npm test` (CHANCERY_TEST_PG_URL, default postgresql://postgres@127.0.0.1:5432/postgres).
 *     BENCH_START=chancery BENCH_SERVER_PROCESSES=2 npm run bench:acme
 *   The bench creates a fresh database chancery_test_<hex>, runs `chancery start` once (creates the CA),
 *   then `chancery serve` for the other processes, each with CHANCERY_ACME_LISTEN=127.0.0.1:<own port>,
 *   CHANCERY_ACME_TLS=true, CHANCERY_HTTP01_PORT=<responder>, CHANCERY_DNS_RESOLVERS=127.0.0.1:<bench DNS>,
 *   one shared CHANCERY_KEY_PASSPHRASE, and trusts <dataDir>/ca/root.pem. At the end it stops every process
 *   by PID and drops the database. Processes run the compiled build (dist/, as `npm start` does; the npm
 *   script builds first).
 *   Extra CHANCERY_* variables in the bench's environment pass through to the servers.
 *
 * --- Pebble (BENCH_START=pebble) ---------------------------------------------------------------------------
 *   Needs /usr/bin/pebble (apt-get install pebble) and openssl.
 *     BENCH_START=pebble npm run bench:acme
 *   The bench makes a self-signed certificate for 127.0.0.1 with openssl (the Debian package ships no test
 *   certificate), writes a config (listenAddress 127.0.0.1:<port>, httpPort = the responder's port), runs
 *   `pebble -config <it> -dnsserver 127.0.0.1:<bench DNS>` with PEBBLE_VA_NOSLEEP=1 PEBBLE_WFE_NONCEREJECT=0
 *   PEBBLE_AUTHZREUSE=0 (see startPebble: pebble 2.4 deadlocks under load otherwise), and stops it by PID at the end. Pebble is one in-memory process: BENCH_SERVER_PROCESSES=1.
 *   BENCH_PEBBLE_LOG=<file> appends pebble's output there.
 *
 * --- Any server (BENCH_START unset) -------------------------------------------------------------------------
 *   Start the server with its http-01 port = BENCH_HTTP01_PORT and a resolver that answers 127.0.0.1 for
 *   *.bench.test (e.g. `pebble-challtestsrv -defaultIPv4 127.0.0.1 -dns01 127.0.0.1:8053 -http01 '' -https01 ''
 *   -tlsalpn01 ''` and CHANCERY_DNS_RESOLVERS=127.0.0.1:8053), then
 *     BENCH_DIRECTORY=https://... BENCH_CA_BUNDLE=root.pem BENCH_SERVER_PROCESSES=<n> npm run bench:acme
 *
 * Everything runs on one machine: client, responder, servers and PostgreSQL share its cores, so compare
 * servers with each other on the same machine, not with figures from elsewhere.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { generateKeyPairSync, randomBytes, sign as cryptoSign, type KeyObject } from 'node:crypto';
import { once } from 'node:events';
import { appendFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { calculateJwkThumbprint, type JWK } from 'jose';
import { Pool } from 'undici';
import { startChancery, type RunningChancery } from '../test/helpers/chancery-process.js';
import { createPgTestDatabase, type PgTestDatabase } from '../test/helpers/databases.js';
import { startDnsServer, type DnsServer } from '../test/helpers/dns-server.js';
import { pidsNamed, pidsServing, startCpuAccounting, type CpuGroups, type CpuUsage } from './cpu-accounting.js';
import { p256SignsPerSecond } from './machine-speed.js';

const START = process.env.BENCH_START ?? '';
const CLIENTS = Number(process.env.BENCH_CLIENTS ?? 64);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 20);
const WARMUP_SECONDS = Number(process.env.BENCH_WARMUP_SECONDS ?? 5);
const MAX = Number(process.env.BENCH_MAX ?? 50000);
const POLL_MS = Number(process.env.BENCH_POLL_MS ?? 50);
const ISSUANCE_TIMEOUT_MS = 60_000;
const REQUEST_TIMEOUT_MS = 30_000;
const STALL_MS = Number(process.env.BENCH_STALL_SECONDS ?? 10) * 1000;

// ---------------------------------------------------------------------------------------------------
// Processes the bench starts, stopped by PID whatever happens

const cleanups: (() => Promise<void>)[] = [];
let cleaningUp: Promise<void> | undefined;
function cleanup(): Promise<void> {
  cleaningUp ??= (async () => {
    for (const fn of cleanups.reverse()) {
      try {
        await fn();
      } catch (error) {
        console.error(`cleanup: ${(error as Error).message}`);
      }
    }
  })();
  return cleaningUp;
}
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    console.error(`\n${signal}: stopping what the bench started`);
    void cleanup().finally(() => process.exit(130));
  });
}

async function stopByPid(child: ChildProcess, graceMs = 10_000): Promise<void> {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  process.kill(child.pid, 'SIGTERM');
  const timer = setTimeout(() => {
    if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
  }, graceMs);
  await exited;
  clearTimeout(timer);
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createNetServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// ---------------------------------------------------------------------------------------------------
// The http-01 responder shared by every client, and the DNS server the ACME server asks

const keyAuthorizations = new Map<string, string>();

async function startResponder(port: number): Promise<http.Server> {
  const server = http.createServer((request, response) => {
    const prefix = '/.well-known/acme-challenge/';
    const token = request.url?.startsWith(prefix) ? request.url.slice(prefix.length) : undefined;
    const body = token === undefined ? undefined : keyAuthorizations.get(token);
    if (body === undefined) response.writeHead(404).end();
    else response.writeHead(200, { 'content-type': 'application/octet-stream' }).end(body);
  });
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  return server;
}

// ---------------------------------------------------------------------------------------------------
// A minimal ACME client

interface Response {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

class AcmeError extends Error {
  constructor(
    message: string,
    readonly type?: string,
  ) {
    super(message);
  }
}

interface Directory {
  newNonce: string;
  newAccount: string;
  newOrder: string;
}

/**
 * One server's keep-alive connections. undici rather than node:http: the load client shares the machine's
 * cores with the server and PostgreSQL, and node:http's client costs about a third more CPU per request.
 */
class Server {
  private readonly pool: Pool;
  private readonly origin: string;
  directory!: Directory;
  constructor(
    readonly directoryUrl: string,
    ca: string | undefined,
    sockets: number,
  ) {
    this.origin = new URL(directoryUrl).origin;
    this.pool = new Pool(this.origin, { connections: sockets, pipelining: 1, ...(ca ? { connect: { ca } } : {}) });
  }

  async send(method: 'GET' | 'HEAD' | 'POST', url: string, body?: string): Promise<Response> {
    const target = new URL(url);
    if (target.origin !== this.origin) throw new Error(`${url} is not on ${this.origin}`);
    const response = await this.pool.request({
      method,
      path: target.pathname + target.search,
      headersTimeout: REQUEST_TIMEOUT_MS,
      bodyTimeout: REQUEST_TIMEOUT_MS,
      ...(body === undefined ? {} : { headers: { 'content-type': 'application/jose+json' }, body }),
    });
    return { status: response.statusCode, headers: response.headers, body: await response.body.text() };
  }

  /** Ends every connection (in-flight requests fail): the stall watchdog and the end of the run. */
  destroy(): void {
    void this.pool.destroy();
  }

  async load(): Promise<void> {
    const response = await this.send('GET', this.directoryUrl);
    if (response.status !== 200) throw new Error(`GET ${this.directoryUrl} -> ${response.status} ${response.body.slice(0, 300)}`);
    this.directory = JSON.parse(response.body) as Directory;
  }
}

interface Account {
  key: KeyObject;
  jwk: JWK;
  thumbprint: string;
  kid?: string;
  nonce?: string;
}

const requestsSent = { count: 0 };

async function post(server: Server, account: Account, url: string, payload: unknown | undefined, attempt = 0): Promise<Response> {
  if (!account.nonce) {
    const response = await server.send('HEAD', server.directory.newNonce);
    requestsSent.count += 1;
    account.nonce = header(response, 'replay-nonce');
    if (!account.nonce) throw new AcmeError(`HEAD new-nonce -> ${response.status} without Replay-Nonce`);
  }
  const protectedHeader = {
    alg: 'ES256',
    nonce: account.nonce,
    url,
    ...(account.kid ? { kid: account.kid } : { jwk: account.jwk }),
  };
  account.nonce = undefined;
  // POST-as-GET (RFC 8555 §6.3) has the empty string as payload.
  // Flattened JWS (RFC 7515 §7.2.2) signed with node:crypto: jose's WebCrypto path costs the shared CPU more.
  const protectedB64 = Buffer.from(JSON.stringify(protectedHeader)).toString('base64url');
  const payloadB64 = payload === undefined ? '' : Buffer.from(JSON.stringify(payload)).toString('base64url');
  const signature = cryptoSign('sha256', Buffer.from(`${protectedB64}.${payloadB64}`), { key: account.key, dsaEncoding: 'ieee-p1363' });
  const jws = { protected: protectedB64, payload: payloadB64, signature: signature.toString('base64url') };
  const response = await server.send('POST', url, JSON.stringify(jws));
  requestsSent.count += 1;
  account.nonce = header(response, 'replay-nonce');
  if (response.status >= 400) {
    let problem: { type?: string; detail?: string } = {};
    try {
      problem = JSON.parse(response.body) as typeof problem;
    } catch {
      problem = { detail: response.body.slice(0, 200) };
    }
    // RFC 8555 §6.5: a badNonce is retried with the fresh nonce that came with it.
    if (problem.type === 'urn:ietf:params:acme:error:badNonce' && attempt < 5) return post(server, account, url, payload, attempt + 1);
    const path = new URL(url).pathname.replace(/\/[A-Za-z0-9_-]{12,}/g, '/<id>');
    throw new AcmeError(`POST ${path} -> ${response.status} ${problem.type ?? ''}: ${problem.detail ?? ''}`, problem.type);
  }
  return response;
}

function header(response: Response, name: string): string | undefined {
  const value = response.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

async function newAccount(server: Server): Promise<Account> {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const { kty, crv, x, y } = publicKey.export({ format: 'jwk' });
  const jwk = { kty, crv, x, y } as JWK;
  const account: Account = { key: privateKey, jwk, thumbprint: await calculateJwkThumbprint(jwk, 'sha256') };
  const response = await post(server, account, server.directory.newAccount, { termsOfServiceAgreed: true, contact: ['mailto:bench@example.internal'] });
  account.kid = header(response, 'location');
  if (!account.kid) throw new AcmeError(`new-account -> ${response.status} without Location`);
  return account;
}

interface Order {
  status: string;
  authorizations: string[];
  finalize: string;
  certificate?: string;
  error?: { type?: string; detail?: string };
}
interface Authorization {
  status: string;
  challenges: { type: string; url: string; token: string; status: string; error?: { type?: string; detail?: string } }[];
}

async function pollUntil<T extends { status: string }>(server: Server, account: Account, url: string, done: (o: T) => boolean, deadline: number, what: string): Promise<T> {
  for (;;) {
    const object = JSON.parse((await post(server, account, url, undefined)).body) as T;
    if (done(object)) return object;
    if (object.status === 'invalid') throw new AcmeError(`${what} invalid: ${JSON.stringify((object as { error?: unknown }).error ?? object).slice(0, 300)}`);
    if (performance.now() > deadline) throw new AcmeError(`${what} still ${object.status} after ${ISSUANCE_TIMEOUT_MS} ms`);
    await sleep(POLL_MS);
  }
}

// ---------------------------------------------------------------------------------------------------
// CSRs (PKCS#10, RFC 2986) built by hand: DER is a few TLVs, and it keeps the client's cost negligible

function tlv(tag: number, content: Buffer): Buffer {
  const n = content.length;
  const length = n < 0x80 ? Buffer.from([n]) : n < 0x100 ? Buffer.from([0x81, n]) : Buffer.from([0x82, n >> 8, n & 0xff]);
  return Buffer.concat([Buffer.from([tag]), length, content]);
}
const seq = (...parts: Buffer[]): Buffer => tlv(0x30, Buffer.concat(parts));
function oid(dotted: string): Buffer {
  const [a, b, ...rest] = dotted.split('.').map(Number) as [number, number, ...number[]];
  const bytes = [40 * a + b];
  for (const arc of rest) {
    const chunk = [arc & 0x7f];
    for (let v = arc >>> 7; v > 0; v >>>= 7) chunk.unshift((v & 0x7f) | 0x80);
    bytes.push(...chunk);
  }
  return tlv(0x06, Buffer.from(bytes));
}

const csrKeys = Array.from({ length: 8 }, () => {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return { privateKey, spki: publicKey.export({ type: 'spki', format: 'der' }) };
});

function csrFor(name: string, index: number): string {
  const key = csrKeys[index % csrKeys.length]!;
  const subject = seq(tlv(0x31, seq(oid('2.5.4.3'), tlv(0x0c, Buffer.from(name)))));
  const san = seq(tlv(0x82, Buffer.from(name, 'ascii'))); // GeneralNames { dNSName }
  const extensions = seq(seq(oid('2.5.29.17'), tlv(0x04, san)));
  const extensionRequest = seq(oid('1.2.840.113549.1.9.14'), tlv(0x31, extensions));
  const info = seq(tlv(0x02, Buffer.from([0])), subject, key.spki, tlv(0xa0, extensionRequest));
  const signature = cryptoSign('sha256', info, { key: key.privateKey, dsaEncoding: 'der' });
  const der = seq(info, seq(oid('1.2.840.10045.4.3.2')), tlv(0x03, Buffer.concat([Buffer.from([0]), signature])));
  return der.toString('base64url');
}

// ---------------------------------------------------------------------------------------------------
// One issuance

let dns: DnsServer | undefined;

async function issue(server: Server, account: Account, name: string, index: number): Promise<void> {
  const deadline = performance.now() + ISSUANCE_TIMEOUT_MS;
  dns?.setA(name, '127.0.0.1');
  const created = await post(server, account, server.directory.newOrder, { identifiers: [{ type: 'dns', value: name }] });
  const orderUrl = header(created, 'location');
  if (!orderUrl) throw new AcmeError(`new-order -> ${created.status} without Location`);
  const order = JSON.parse(created.body) as Order;
  const tokens: string[] = [];
  try {
    for (const authzUrl of order.authorizations) {
      const authz = JSON.parse((await post(server, account, authzUrl, undefined)).body) as Authorization;
      if (authz.status === 'valid') continue;
      const challenge = authz.challenges.find((c) => c.type === 'http-01');
      if (!challenge) throw new AcmeError(`no http-01 challenge in ${authzUrl}`);
      keyAuthorizations.set(challenge.token, `${challenge.token}.${account.thumbprint}`);
      tokens.push(challenge.token);
      // Like lego: a challenge the response already reports valid has made its authorization valid
      // (RFC 8555 §7.1.6), so only a pending or processing one is followed by polling the authorization.
      const answered = JSON.parse((await post(server, account, challenge.url, {})).body) as Authorization['challenges'][number];
      if (answered.status === 'invalid') throw new AcmeError(`challenge invalid: ${JSON.stringify(answered.error ?? answered).slice(0, 300)}`);
      if (answered.status !== 'valid') await pollUntil<Authorization>(server, account, authzUrl, (a) => a.status === 'valid', deadline, 'authorization');
    }
  } finally {
    for (const token of tokens) keyAuthorizations.delete(token);
  }
  let current = JSON.parse((await post(server, account, order.finalize, { csr: csrFor(name, index) })).body) as Order;
  if (current.status !== 'valid') current = await pollUntil<Order>(server, account, orderUrl, (o) => o.status === 'valid', deadline, 'order');
  if (!current.certificate) throw new AcmeError('valid order without a certificate URL');
  const certificate = await post(server, account, current.certificate, undefined);
  if (!certificate.body.includes('-----BEGIN CERTIFICATE-----')) throw new AcmeError(`certificate download returned ${certificate.body.slice(0, 100)}`);
  dns?.setA(name, undefined);
}

// ---------------------------------------------------------------------------------------------------
// Servers the bench can start

async function startChanceryServers(count: number, http01Port: number, resolver: string): Promise<{ directories: string[]; caBundle: string; database: string; pids: number[] }> {
  let database: PgTestDatabase;
  try {
    database = await createPgTestDatabase();
  } catch (error) {
    throw new Error(`BENCH_START=chancery needs PostgreSQL (CHANCERY_TEST_PG_URL): ${(error as Error).message}`);
  }
  const base = await mkdtemp(join(tmpdir(), 'chancery-bench-acme-'));
  cleanups.push(async () => {
    await database.drop();
    await rm(base, { recursive: true, force: true });
  });
  const passphrase = randomBytes(24).toString('base64url');
  const directories: string[] = [];
  const running: RunningChancery[] = [];
  for (let i = 0; i < count; i += 1) {
    const port = await freePort();
    const dataDir = join(base, `data-${i}`);
    const env = {
      CHANCERY_DATABASE_URL: database.url,
      CHANCERY_DATA_DIR: dataDir,
      CHANCERY_KEY_PASSPHRASE: passphrase,
      CHANCERY_PUBLIC_LISTEN: '127.0.0.1:0',
      CHANCERY_ACME_LISTEN: `127.0.0.1:${port}`,
      CHANCERY_ADMIN_LISTEN: '127.0.0.1:0',
      CHANCERY_ACME_TLS: 'true',
      CHANCERY_HTTP01_PORT: String(http01Port),
      CHANCERY_DNS_RESOLVERS: resolver,
      CHANCERY_LOG_LEVEL: process.env.CHANCERY_LOG_LEVEL ?? 'warn',
    };
    // The first process creates the CA; the others serve it (start would race to create it).
    const server = await startChancery(i === 0 ? 'start' : 'serve', env, 120_000, 'build');
    running.push(server);
    cleanups.push(async () => {
      await stopByPid(server.child);
    });
    const announced = (server as RunningChancery & { acmeDirectory?: string }).acmeDirectory;
    const fromBanner = /ACME directory:\s+(https?:\/\/\S+)/.exec(server.output())?.[1];
    directories.push(announced ?? fromBanner ?? `https://127.0.0.1:${port}/acme/directory`);
    console.log(`  chancery process ${i + 1}/${count}: pid ${String(server.child.pid)}, ${directories.at(-1)!}`);
  }
  const pids = running.map((server) => server.child.pid).filter((pid): pid is number => pid !== undefined);
  return { directories, caBundle: join(base, 'data-0', 'ca', 'root.pem'), database: database.name, pids };
}

async function startPebble(http01Port: number, resolver: string): Promise<{ directory: string; caBundle: string; pid: number | undefined }> {
  const dir = await mkdtemp(join(tmpdir(), 'chancery-bench-pebble-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const cert = join(dir, 'cert.pem');
  const key = join(dir, 'key.pem');
  const made = spawn('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2',
    '-keyout', key, '-out', cert, '-subj', '/CN=pebble bench', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost',
  ], { stdio: 'ignore' });
  const [code] = (await once(made, 'exit')) as [number | null];
  if (code !== 0) throw new Error('openssl could not make the certificate for pebble');
  const port = await freePort();
  const config = join(dir, 'pebble-config.json');
  await writeFile(
    config,
    JSON.stringify({
      pebble: {
        listenAddress: `127.0.0.1:${port}`,
        managementListenAddress: `127.0.0.1:${await freePort()}`,
        certificate: cert,
        privateKey: key,
        httpPort: http01Port,
        tlsPort: await freePort(),
        ocspResponderURL: '',
        externalAccountBindingRequired: false,
      },
    }),
  );
  const child = spawn('pebble', ['-config', config, '-dnsserver', resolver], {
    // PEBBLE_AUTHZREUSE=0: every name is new anyway, and pebble 2.4's authorization-reuse lookup
    // (MemoryStore.FindValidAuthorization: store lock, then authz lock) deadlocks under concurrent load
    // against the VA (authz lock, then store lock); with 0 it runs on 1% of new-orders instead of 50%.
    env: { ...process.env, PEBBLE_VA_NOSLEEP: '1', PEBBLE_WFE_NONCEREJECT: '0', PEBBLE_AUTHZREUSE: '0' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const logFile = process.env.BENCH_PEBBLE_LOG;
  const keep = (chunk: Buffer): void => {
    output = (output + chunk.toString()).slice(-50_000);
    if (logFile) appendFileSync(logFile, chunk);
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  child.once('error', (error) => console.error(`pebble: ${error.message}`));
  cleanups.push(() => stopByPid(child));
  const directory = `https://127.0.0.1:${port}/dir`;
  const probe = new Server(directory, await readFile(cert, 'utf8'), 1);
  const deadline = performance.now() + 20_000;
  for (;;) {
    try {
      await probe.load();
      break;
    } catch (error) {
      if (child.exitCode !== null || performance.now() > deadline) throw new Error(`pebble did not serve: ${(error as Error).message}\n${output.slice(-2000)}`);
      await sleep(100);
    }
  }
  probe.destroy();
  console.log(`  pebble: pid ${String(child.pid)}, ${directory}`);
  return { directory, caBundle: cert, pid: child.pid };
}

// ---------------------------------------------------------------------------------------------------

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

async function main(): Promise<void> {
  if (!['', 'chancery', 'pebble'].includes(START)) throw new Error(`BENCH_START must be "", "chancery" or "pebble", not "${START}"`);
  const http01Port = Number(process.env.BENCH_HTTP01_PORT ?? (START ? await freePort() : 5002));
  await startResponder(http01Port);
  dns = await startDnsServer();
  cleanups.push(() => dns!.close());

  let directories: string[];
  let caBundlePath = process.env.BENCH_CA_BUNDLE;
  let processes = process.env.BENCH_SERVER_PROCESSES;
  let label: string;
  console.log(`bench:acme — node ${process.version}, ${availableParallelism()} CPUs (${cpus()[0]?.model ?? '?'})`);
  console.log(`  machine speed: ${p256SignsPerSecond()} P-256 signatures/s on one core (node:crypto)`);
  // CPU per issuance by process, for the servers the bench started: what a change moved, whatever the host's speed.
  let cpuGroups: CpuGroups | undefined;
  if (START === 'chancery') {
    const count = Number(processes ?? 2);
    const started = await startChanceryServers(count, http01Port, dns.resolver);
    directories = started.directories;
    caBundlePath = started.caBundle;
    processes = String(count);
    label = `chancery x${count} on PostgreSQL (database ${started.database})`;
    cpuGroups = {
      processes: {
        server: () => started.pids,
        PostgreSQL: () => (process.env.BENCH_PG_CPU === 'database' ? pidsServing(started.database) : pidsNamed('postgres')),
        'bench client': () => [process.pid],
      },
      threads: { 'server event loop': started.pids },
    };
  } else if (START === 'pebble') {
    const started = await startPebble(http01Port, dns.resolver);
    directories = [started.directory];
    caBundlePath = started.caBundle;
    processes = '1';
    label = 'pebble (in-memory, PEBBLE_VA_NOSLEEP=1)';
    const pid = started.pid;
    cpuGroups = { processes: { server: () => (pid === undefined ? [] : [pid]), 'bench client': () => [process.pid] } };
  } else {
    if (!process.env.BENCH_DIRECTORY) throw new Error('set BENCH_DIRECTORY (or BENCH_START=chancery|pebble)');
    directories = process.env.BENCH_DIRECTORY.split(',').map((d) => d.trim()).filter(Boolean);
    label = directories.join(', ');
  }
  const ca = caBundlePath ? await readFile(caBundlePath, 'utf8') : undefined;
  console.log(`  server: ${label}`);
  console.log(`  server processes: ${processes ?? '(BENCH_SERVER_PROCESSES not stated)'}`);
  console.log(`  clients: ${CLIENTS}, ${WARMUP_SECONDS} s warm-up then ${SECONDS} s measured (or ${MAX} issuances), poll every ${POLL_MS} ms`);
  console.log(`  http-01 responder: 127.0.0.1:${http01Port}; DNS for the names: ${dns.resolver}`);

  const servers = directories.map((d) => new Server(d, ca, Math.ceil(CLIENTS / directories.length) + 4));
  for (const server of servers) await server.load();

  // Accounts first, outside the timed window.
  const t0Accounts = performance.now();
  const accounts = await Promise.all(Array.from({ length: CLIENTS }, (_, i) => newAccount(servers[i % servers.length]!)));
  console.log(`  ${CLIENTS} accounts created in ${(performance.now() - t0Accounts).toFixed(0)} ms`);

  // Every completed issuance: how long it took, and whether it ended inside the measured window.
  const completions: { latency: number; measured: boolean }[] = [];
  const failures: string[] = [];
  let failureCount = 0;
  let warmupFailureCount = 0;
  let next = 0;
  const runId = randomBytes(3).toString('hex');
  const loadStart = performance.now();
  const requestsAtLoadStart = requestsSent.count;
  // The measured window starts after the warm-up, when CPU accounting and the request count start too.
  let t0 = loadStart + WARMUP_SECONDS * 1000;
  let stopAt = t0 + SECONDS * 1000;
  // SIGUSR2 ends the measured window now (a bench running this one alongside other work, e.g. bench:revoke,
  // measures exactly while that work lasts): the clients finish the issuance in hand and the results print.
  process.once('SIGUSR2', () => {
    stopAt = performance.now();
  });
  let measuring = false;
  let requestsBefore = requestsAtLoadStart;
  let stopCpuAccounting: (() => CpuUsage | undefined) | undefined;
  const beginMeasuring = (): void => {
    measuring = true;
    t0 = performance.now();
    requestsBefore = requestsSent.count;
    stopCpuAccounting = cpuGroups ? startCpuAccounting(cpuGroups) : undefined;
  };
  const warmup = WARMUP_SECONDS > 0 ? setTimeout(beginMeasuring, WARMUP_SECONDS * 1000) : undefined;
  if (warmup === undefined) beginMeasuring();

  // A server that stops answering (pebble 2.4 can deadlock under load) ends the run instead of every client
  // waiting out its timeouts: no completed issuance for STALL_MS -> abort in-flight requests, report up to then.
  let lastProgress = loadStart;
  let stalled = false;
  const watchdog = setInterval(() => {
    if (performance.now() - lastProgress > STALL_MS) {
      stalled = true;
      for (const server of servers) server.destroy();
    }
  }, 500);

  await Promise.all(
    accounts.map(async (account, i) => {
      const server = servers[i % servers.length]!;
      while (!stalled && performance.now() < stopAt && next < MAX) {
        const n = next;
        next += 1;
        const name = `${n}-${runId}.bench.test`;
        const started = performance.now();
        try {
          await issue(server, account, name, n);
          lastProgress = performance.now();
          completions.push({ latency: lastProgress - started, measured: measuring });
        } catch (error) {
          if (stalled) break;
          if (measuring) failureCount += 1;
          else warmupFailureCount += 1;
          if (failures.length < 5) failures.push(`${name} via ${new URL(server.directoryUrl).host}: ${(error as Error).message}`);
          await sleep(50); // a failing server must not turn this into a hot loop
        }
      }
    }),
  );
  clearInterval(watchdog);
  clearTimeout(warmup);
  const cpu = stopCpuAccounting?.();
  // A run that stalled during the warm-up (its last issuance completed before the measured window began) is
  // reported over the warm-up: all there is.
  const stalledInWarmup = !measuring || (stalled && lastProgress < t0);
  if (stalledInWarmup) {
    t0 = loadStart;
    requestsBefore = requestsAtLoadStart;
    failureCount += warmupFailureCount;
    warmupFailureCount = 0;
  }
  const elapsed = ((stalled ? lastProgress : performance.now()) - t0) / 1000;
  const latencies = completions.filter((c) => c.measured !== stalledInWarmup).map((c) => c.latency);
  latencies.sort((a, b) => a - b);
  const requests = requestsSent.count - requestsBefore;

  console.log('');
  console.log(`result: ${label}`);
  console.log(`  server processes:  ${processes ?? '(not stated)'}`);
  if (stalled) {
    console.log(
      `  STALLED:           no issuance completed for ${STALL_MS / 1000} s after ${elapsed.toFixed(1)} s${stalledInWarmup ? ' of the warm-up' : ' measured'}; figures cover the time before the stall`,
    );
  }
  console.log(`  issuances:         ${latencies.length} in ${elapsed.toFixed(1)} s = ${(latencies.length / elapsed).toFixed(1)} issuances/s`);
  console.log(`  ACME requests:     ${requests} = ${(requests / elapsed).toFixed(0)} requests/s (${latencies.length ? (requests / (latencies.length + failureCount)).toFixed(1) : '-'} per issuance)`);
  console.log(`  latency/issuance:  p50 ${percentile(latencies, 50).toFixed(0)} ms, p99 ${percentile(latencies, 99).toFixed(0)} ms, max ${(latencies.at(-1) ?? Number.NaN).toFixed(0)} ms`);
  const warmupNote = warmupFailureCount > 0 ? ` (and ${warmupFailureCount} during the warm-up)` : '';
  console.log(`  failures:          ${failureCount}${warmupNote}${stalled ? ` (plus the issuances in flight at the stall, aborted)` : ''}`);
  if (cpu && latencies.length > 0 && !stalled) {
    const perIssuance = Object.entries(cpu.ms).map(([name, ms]) => `${name} ${(ms / latencies.length).toFixed(2)}`);
    const busy = cpu.machineBusy === undefined ? '' : `; machine ${(100 * cpu.machineBusy).toFixed(0)}% busy`;
    console.log(`  CPU ms/issuance:   ${perIssuance.join(', ')}${busy} (from /proc, over the timed run)`);
  }
  for (const failure of failures) console.log(`    - ${failure}`);
  for (const server of servers) server.destroy();
  if (stalled) process.exitCode = 2;
}

try {
  await main();
} catch (error) {
  console.error(`bench:acme failed: ${(error as Error).stack ?? String(error)}`);
  process.exitCode = 1;
} finally {
  await cleanup();
}
