/**
 * Harness for the interop suites (test/interop): real ACME clients (certbot, lego, acme-client) against a
 * running `chancery start`, with pebble-challtestsrv as the DNS server the validator (and lego) ask.
 *
 * - Tools are found on PATH (and /usr/bin, /usr/sbin). A missing tool fails the file when CI=true and skips
 *   it loudly otherwise (DESIGN.md, Testing).
 * - Every process started here is remembered by PID and stopped by PID: in t.teardown, and as a last resort
 *   when this test process exits. Every wait is bounded in time.
 * - Each test file gets a fresh Chancery (temp data dir, PGlite unless told otherwise) whose validator
 *   reaches http-01 / tls-alpn-01 on ports the file picked and resolves names through the DNS server the
 *   file started, so `anything.test` resolves to 127.0.0.1.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { accessSync, constants as fsConstants } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { createSocket } from 'node:dgram';
import { createServer as createHttpServer } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import type { Test } from 'tap';
import { runCli, startChancery, type RunningChancery } from './chancery-process.js';
import { openssl } from './openssl.js';

export const IN_CI = process.env.CI === 'true';

// ---------------------------------------------------------------------------------------------------
// Tools

const EXTRA_DIRS = ['/usr/bin', '/usr/sbin', '/usr/local/bin', '/bin'];

/** Absolute path of an executable on PATH (or the usual bin directories), or undefined. */
export function findTool(name: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(delimiter).filter(Boolean), ...EXTRA_DIRS];
  for (const dir of dirs) {
    const candidate = join(dir, name);
    try {
      accessSync(candidate, fsConstants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

const PACKAGE_OF: Record<string, string> = {
  certbot: 'certbot',
  lego: 'lego',
  pebble: 'pebble',
  'pebble-challtestsrv': 'pebble',
  openssl: 'openssl',
  curl: 'curl',
  caddy: 'caddy',
  dehydrated: 'dehydrated',
  uacme: 'uacme',
  ocsptool: 'gnutls-bin',
  unshare: 'util-linux',
  mount: 'mount',
};

/**
 * The paths of `names`, or undefined when one is missing: then, under CI=true, throws (the file fails);
 * otherwise plans 0 tests with the reason (the file is skipped) after a loud message on stderr.
 */
export function requireTools<const N extends string>(t: Test, names: readonly N[]): Record<N, string> | undefined {
  const found = {} as Record<N, string>;
  const missing: string[] = [];
  for (const name of names) {
    const path = findTool(name);
    if (path) found[name] = path;
    else missing.push(name);
  }
  if (missing.length === 0) return found;
  const packages = [...new Set(missing.map((m) => PACKAGE_OF[m] ?? m))].join(' ');
  const message = `interop tool(s) not installed: ${missing.join(', ')} (apt-get install -y ${packages})`;
  if (IN_CI) throw new Error(`${message}; required when CI=true`);
  console.error(`\n*** SKIPPING INTEROP TESTS: ${message} ***\n`);
  t.plan(0, message);
  return undefined;
}

// ---------------------------------------------------------------------------------------------------
// Processes, by PID

const started = new Set<ChildProcess>();
let exitHookInstalled = false;

function remember(child: ChildProcess): void {
  started.add(child);
  child.once('exit', () => started.delete(child));
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    // Last resort: a test that threw before its teardown ran must not leave daemons behind.
    process.once('exit', () => {
      for (const c of started) {
        if (c.pid !== undefined && c.exitCode === null && c.signalCode === null) {
          try {
            process.kill(c.pid, 'SIGKILL');
          } catch {
            // already gone
          }
        }
      }
    });
  }
}

/** Stops a child by its PID: SIGTERM, then SIGKILL after `graceMs`. Resolves when it has exited. */
export async function stopChild(child: ChildProcess, graceMs = 5_000): Promise<void> {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  process.kill(child.pid, 'SIGTERM');
  const timer = setTimeout(() => {
    if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) process.kill(child.pid, 'SIGKILL');
  }, graceMs);
  try {
    await exited;
  } finally {
    clearTimeout(timer);
  }
}

export interface CommandResult {
  command: string;
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  ms: number;
}

/** "cmd args..." plus the exit status and both streams: what a failing assertion should print. */
export function describeResult(result: CommandResult): string {
  return [
    `$ ${result.command}`,
    `exit ${String(result.code)}${result.signal ? ` (signal ${result.signal})` : ''}${result.timedOut ? ' TIMED OUT' : ''} after ${result.ms.toFixed(0)} ms`,
    '--- stdout ---',
    result.stdout.trimEnd(),
    '--- stderr ---',
    result.stderr.trimEnd(),
  ].join('\n');
}

/** Runs a command to completion (or kills it by PID after `timeoutMs`), capturing its output. */
export async function runCommand(
  command: string,
  args: string[],
  options: { env?: Record<string, string>; cwd?: string; timeoutMs?: number; input?: string } = {},
): Promise<CommandResult> {
  const timeoutMs = options.timeoutMs ?? 120_000;
  const t0 = performance.now();
  const child = spawn(command, args, {
    cwd: options.cwd,
    env: { ...process.env, ...options.env },
    stdio: [options.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
  });
  remember(child);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  if (options.input !== undefined) child.stdin!.end(options.input);
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    if (child.pid !== undefined) {
      try {
        process.kill(child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }, timeoutMs);
  const [code, signal] = (await new Promise<[number | null, NodeJS.Signals | null]>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (c: number | null, s: NodeJS.Signals | null) => resolve([c, s]));
  }).finally(() => clearTimeout(timer))) as [number | null, NodeJS.Signals | null];
  const quoted = [command, ...args].map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');
  return { command: quoted, code, signal, stdout, stderr, timedOut, ms: performance.now() - t0 };
}

// ---------------------------------------------------------------------------------------------------
// Ports

async function tcpPortFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createNetServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

async function udpPortFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createSocket('udp4');
    socket.once('error', () => resolve(false));
    socket.bind(port, '127.0.0.1', () => socket.close(() => resolve(true)));
  });
}

/** Ports handed out by this process, so two pickers in one file never return the same one. */
const handedOut = new Set<number>();

/**
 * A port free on 127.0.0.1 (TCP, and UDP too when `udp`), found by binding port 0 and closing. There is a
 * window before the caller binds it; the set above keeps one file from racing itself.
 */
export async function freePort(options: { udp?: boolean } = {}): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt += 1) {
    const port = await new Promise<number>((resolve, reject) => {
      const server = createNetServer();
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        const { port: p } = server.address() as AddressInfo;
        server.close(() => resolve(p));
      });
    });
    if (handedOut.has(port)) continue;
    if (options.udp && !(await udpPortFree(port))) continue;
    if (!(await tcpPortFree(port))) continue;
    handedOut.add(port);
    return port;
  }
  throw new Error('no free port found on 127.0.0.1 in 50 attempts');
}

/** Polls `probe` every `intervalMs` until it returns true or `timeoutMs` passes. */
export async function waitFor(what: string, probe: () => Promise<boolean>, timeoutMs = 15_000, intervalMs = 50): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    if (await probe().catch(() => false)) return;
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

// ---------------------------------------------------------------------------------------------------
// pebble-challtestsrv: DNS (every A query answers 127.0.0.1) + a management API for TXT records

export interface Challtestsrv {
  /** "127.0.0.1:<port>" — CHANCERY_DNS_RESOLVERS, lego --dns.resolvers. */
  resolver: string;
  dnsPort: number;
  /** http://127.0.0.1:<port> — the management API. */
  management: string;
  /** Adds a TXT value for `host` (a trailing dot is added when missing). */
  setTxt(host: string, value: string): Promise<void>;
  /** Removes every TXT value of `host`. */
  clearTxt(host: string): Promise<void>;
  output(): string;
  stop(): Promise<void>;
}

function fqdn(host: string): string {
  return host.endsWith('.') ? host : `${host}.`;
}

/** Starts pebble-challtestsrv with only its DNS server and management API, both on 127.0.0.1. */
export async function startChalltestsrv(binary: string, t?: Test): Promise<Challtestsrv> {
  const dnsPort = await freePort({ udp: true });
  const managementPort = await freePort();
  const child = spawn(
    binary,
    [
      '-dns01', `127.0.0.1:${dnsPort}`,
      '-management', `127.0.0.1:${managementPort}`,
      '-http01', '',
      '-https01', '',
      '-tlsalpn01', '',
      '-defaultIPv4', '127.0.0.1',
      // No AAAA answers: every responder in these tests listens on 127.0.0.1 only.
      '-defaultIPv6', '',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  remember(child);
  let text = '';
  child.stdout!.on('data', (chunk: Buffer) => (text += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (text += chunk.toString()));
  const management = `http://127.0.0.1:${managementPort}`;
  const post = async (path: string, body: unknown): Promise<void> => {
    const response = await fetch(`${management}${path}`, { method: 'POST', body: JSON.stringify(body), signal: AbortSignal.timeout(5_000) });
    if (!response.ok) throw new Error(`challtestsrv ${path} answered ${response.status}: ${await response.text()}`);
  };
  const server: Challtestsrv = {
    resolver: `127.0.0.1:${dnsPort}`,
    dnsPort,
    management,
    setTxt: (host, value) => post('/set-txt', { host: fqdn(host), value }),
    clearTxt: (host) => post('/clear-txt', { host: fqdn(host) }),
    output: () => text,
    stop: () => stopChild(child),
  };
  try {
    // The management API answers once the servers are up; clearing an unknown name is harmless.
    await waitFor('pebble-challtestsrv management API', async () => {
      if (child.exitCode !== null) throw new Error(`pebble-challtestsrv exited ${String(child.exitCode)}:\n${text}`);
      await server.clearTxt('probe.invalid');
      return true;
    });
  } catch (error) {
    await server.stop();
    throw new Error(`pebble-challtestsrv did not start: ${(error as Error).message}\n${text}`);
  }
  t?.teardown(() => server.stop());
  return server;
}

// ---------------------------------------------------------------------------------------------------
// Chancery

export interface InteropChanceryOptions {
  /** CHANCERY_DNS_RESOLVERS: where the validator resolves names and reads TXT records. */
  dnsResolver: string;
  /** Extra CHANCERY_* settings (CHANCERY_EAB_REQUIRED, CHANCERY_VALIDATION_MAX_ATTEMPTS, ...). */
  env?: Record<string, string>;
  /**
   * EAB credentials to create before the server starts. With PGlite (the default database) the embedded
   * database belongs to one process at a time, so `chancery eab create` runs before `chancery start`.
   */
  eabCredentials?: number;
  /**
   * `chancery` commands run in this order before the server starts (after the EAB credentials), e.g.
   * ['policy', 'apply', FILE] or ['eab', 'create', '--group', NAME]; their standard output is `setupOutput`.
   */
  setup?: string[][];
  timeoutMs?: number;
}

export interface EabCredential {
  kid: string;
  hmacKey: string;
}

export interface InteropChancery {
  /** https://127.0.0.1:<port>/acme/directory */
  directory: string;
  /** <dataDir>/ca/root.pem: what every client must trust (the ACME listener's certificate chains to it). */
  rootPem: string;
  rootPemText: string;
  dataDir: string;
  /** Where the validator connects for http-01 and tls-alpn-01 (on the address DNS gave, 127.0.0.1). */
  http01Port: number;
  tlsAlpn01Port: number;
  env: Record<string, string>;
  eab: EabCredential[];
  /** The standard output of each `setup` command, in order. */
  setupOutput: string[];
  /** A scratch directory for the test's clients, removed at teardown. */
  workDir: string;
  running: RunningChancery;
  output(): string;
  stop(): Promise<void>;
}

/** Parses the lines printed by `chancery eab create`. */
export function parseEabOutput(stdout: string): EabCredential {
  const kid = /^kid:\s+(\S+)/m.exec(stdout)?.[1];
  const hmacKey = /^hmac key:\s+(\S+)/m.exec(stdout)?.[1];
  if (!kid || !hmacKey) throw new Error(`cannot parse "chancery eab create" output:\n${stdout}`);
  return { kid, hmacKey };
}

const ACME_DIRECTORY_LINE = /ACME directory:\s+(https?:\/\/\S+)/;

/**
 * A fresh `chancery start` for one test file: temp data dir, the ACME listener over TLS on a free port,
 * validation ports picked here, names resolved through `dnsResolver`. Stopped (by PID) at t's teardown.
 */
export async function startInteropChancery(t: Test, options: InteropChanceryOptions): Promise<InteropChancery> {
  const workDir = await mkdtemp(join(tmpdir(), 'chancery-interop-'));
  const dataDir = join(workDir, 'data');
  const acmePort = await freePort();
  const http01Port = await freePort();
  const tlsAlpn01Port = await freePort();
  const env: Record<string, string> = {
    CHANCERY_DATA_DIR: dataDir,
    CHANCERY_KEY_PASSPHRASE: 'interop-test-passphrase-0123456789',
    CHANCERY_PUBLIC_LISTEN: '127.0.0.1:0',
    CHANCERY_ACME_LISTEN: `127.0.0.1:${acmePort}`,
    CHANCERY_ACME_TLS: 'true',
    CHANCERY_HTTP01_PORT: String(http01Port),
    CHANCERY_TLSALPN01_PORT: String(tlsAlpn01Port),
    CHANCERY_DNS_RESOLVERS: options.dnsResolver,
    CHANCERY_LOG_LEVEL: 'warn',
    ...options.env,
  };
  const eab: EabCredential[] = [];
  for (let i = 0; i < (options.eabCredentials ?? 0); i += 1) {
    const result = await runCli(['eab', 'create'], env);
    if (result.code !== 0) throw new Error(`chancery eab create exited ${String(result.code)}:\n${result.stdout}\n${result.stderr}`);
    eab.push(parseEabOutput(result.stdout));
  }
  const setupOutput: string[] = [];
  for (const args of options.setup ?? []) {
    const result = await runCli(args, env);
    if (result.code !== 0) throw new Error(`chancery ${args.join(' ')} exited ${String(result.code)}:\n${result.stdout}\n${result.stderr}`);
    setupOutput.push(result.stdout);
  }

  const running = await startChancery('start', env, options.timeoutMs ?? 90_000);
  const stop = async (): Promise<void> => {
    await running.stop();
  };
  t.teardown(async () => {
    await stop();
    if (process.env.CHANCERY_INTEROP_KEEP !== '1') await rm(workDir, { recursive: true, force: true });
  });

  // The banner is written in one piece, but give the ACME line a moment in case it comes in a second write.
  let directory = (running as RunningChancery & { acmeDirectory?: string }).acmeDirectory;
  if (!directory) {
    await waitFor('the "ACME directory:" banner line', async () => ACME_DIRECTORY_LINE.test(running.output()), 10_000).catch((error: unknown) => {
      throw new Error(`${(error as Error).message}; server output so far:\n${running.output()}`);
    });
    directory = ACME_DIRECTORY_LINE.exec(running.output())![1]!;
  }
  const rootPem = join(dataDir, 'ca', 'root.pem');
  const rootPemText = await readFile(rootPem, 'utf8');
  return {
    directory,
    rootPem,
    rootPemText,
    dataDir,
    http01Port,
    tlsAlpn01Port,
    env,
    eab,
    setupOutput,
    workDir,
    running,
    output: () => running.output(),
    stop,
  };
}

// ---------------------------------------------------------------------------------------------------
// Judging what was issued

/** Splits a PEM bundle into its certificates (each with BEGIN/END lines). */
export function splitPem(text: string): string[] {
  return text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
}

/**
 * `openssl verify -CAfile root.pem -untrusted <intermediates> <leaf>`: the independent judge. `leaf` may be a
 * bundle file (openssl verifies its first certificate); `untrusted` is the client's chain/issuer file.
 */
export async function verifyChain(rootPem: string, untrusted: string, leaf: string): Promise<{ ok: boolean; output: string }> {
  const args = ['verify', '-CAfile', rootPem, '-untrusted', untrusted, leaf];
  const { code, stdout, stderr } = await openssl(args);
  return { ok: code === 0 && /: OK\s*$/m.test(stdout), output: `$ openssl ${args.join(' ')}\n${stdout}${stderr}` };
}

/** The same check for certificates held in memory (a leaf PEM and the PEM chain the server sent). */
export async function verifyPemChain(rootPem: string, fullChainPem: string): Promise<{ ok: boolean; output: string; leafText: string }> {
  const certs = splitPem(fullChainPem);
  if (certs.length < 2) return { ok: false, output: `expected a leaf and at least one intermediate, got ${certs.length} certificate(s)`, leafText: '' };
  const dir = await mkdtemp(join(tmpdir(), 'chancery-verify-'));
  try {
    const leaf = join(dir, 'leaf.pem');
    const chain = join(dir, 'chain.pem');
    await writeFile(leaf, `${certs[0]}\n`);
    await writeFile(chain, `${certs.slice(1).join('\n')}\n`);
    const result = await verifyChain(rootPem, chain, leaf);
    const text = await openssl(['x509', '-in', leaf, '-noout', '-text']);
    return { ...result, leafText: text.stdout };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** `openssl x509 -noout -text` of a PEM file. */
export async function certificateFileText(path: string): Promise<string> {
  const { code, stdout, stderr } = await openssl(['x509', '-in', path, '-noout', '-text']);
  if (code !== 0) throw new Error(`openssl x509 -in ${path} failed: ${stderr}`);
  return stdout;
}

// ---------------------------------------------------------------------------------------------------
// Challenge responders run by the tests themselves

export interface Http01Responder {
  port: number;
  /** token -> the body to serve at /.well-known/acme-challenge/<token> (normally the key authorization). */
  answers: Map<string, string>;
  /** Every path requested, for assertions ("the validator did come"). */
  requests: string[];
  close(): Promise<void>;
}

/** A plain HTTP server on 127.0.0.1:<port> answering http-01 from `answers` (RFC 8555 §8.3); 404 otherwise. */
export async function startHttp01Responder(port: number, t?: Test): Promise<Http01Responder> {
  const answers = new Map<string, string>();
  const requests: string[] = [];
  const server = createHttpServer((request, response) => {
    const path = request.url ?? '';
    requests.push(path);
    const match = /^\/\.well-known\/acme-challenge\/([A-Za-z0-9_-]+)$/.exec(path);
    const body = match ? answers.get(match[1]!) : undefined;
    if (body === undefined) {
      response.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
      return;
    }
    response.writeHead(200, { 'content-type': 'application/octet-stream' }).end(body);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  const responder: Http01Responder = {
    port,
    answers,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  t?.teardown(() => responder.close());
  return responder;
}

// ---------------------------------------------------------------------------------------------------
// acme-client: trust our root, and record every exchange (acme-client's errors keep only the detail)

export interface AcmeExchange {
  method: string;
  url: string;
  status: number;
  /** The JWS protected header and payload, decoded. */
  protectedHeader?: unknown;
  payload?: unknown;
  response: unknown;
}

export interface AcmeClientRecorder {
  exchanges: AcmeExchange[];
  log: string[];
  /** The most recent problem document (status >= 400) received, if any. */
  lastProblem(): { type?: string; detail?: string; status: number; url: string } | undefined;
  /** The last `n` exchanges as text: the request and response to put in a failure report. */
  describe(n?: number): string;
}

function decodeSegment(segment: unknown): unknown {
  if (typeof segment !== 'string') return undefined;
  if (segment === '') return '';
  try {
    return JSON.parse(Buffer.from(segment, 'base64url').toString('utf8'));
  } catch {
    return segment;
  }
}

/**
 * Makes acme-client (axios underneath) trust `rootPemText` for the ACME listener, shortens its retry delays
 * for tests, and records every request/response pair. acme-client keeps one axios instance per process.
 */
export function instrumentAcmeClient(acme: typeof import('acme-client'), rootPemText: string): AcmeClientRecorder {
  const exchanges: AcmeExchange[] = [];
  const log: string[] = [];
  acme.setLogger((message) => {
    log.push(message);
    if (log.length > 2_000) log.shift();
  });
  acme.axios.defaults.httpsAgent = new HttpsAgent({ ca: rootPemText, keepAlive: false });
  const settings = (acme.axios.defaults as unknown as { acmeSettings: { retryMaxAttempts: number; retryDefaultDelay: number } }).acmeSettings;
  settings.retryMaxAttempts = 2;
  settings.retryDefaultDelay = 1;
  const record = (response: { config: { method?: string; url?: string; data?: unknown }; status: number; data: unknown }): void => {
    let protectedHeader: unknown;
    let payload: unknown;
    if (typeof response.config.data === 'string') {
      try {
        const jws = JSON.parse(response.config.data) as { protected?: string; payload?: string };
        protectedHeader = decodeSegment(jws.protected);
        payload = decodeSegment(jws.payload);
      } catch {
        payload = response.config.data;
      }
    }
    exchanges.push({
      method: (response.config.method ?? 'get').toUpperCase(),
      url: response.config.url ?? '',
      status: response.status,
      protectedHeader,
      payload,
      response: response.data,
    });
    if (exchanges.length > 500) exchanges.shift();
  };
  acme.axios.interceptors.response.use(
    (response) => {
      record(response);
      return response;
    },
    (error: { response?: Parameters<typeof record>[0] }) => {
      if (error.response) record(error.response);
      return Promise.reject(error as Error);
    },
  );
  return {
    exchanges,
    log,
    lastProblem() {
      for (let i = exchanges.length - 1; i >= 0; i -= 1) {
        const e = exchanges[i]!;
        if (e.status >= 400) {
          const doc = (e.response ?? {}) as { type?: string; detail?: string };
          return { type: doc.type, detail: doc.detail, status: e.status, url: e.url };
        }
      }
      return undefined;
    },
    describe(n = 6) {
      return exchanges
        .slice(-n)
        .map((e) =>
          [
            `> ${e.method} ${e.url}`,
            e.protectedHeader !== undefined ? `> protected: ${JSON.stringify(e.protectedHeader)}` : undefined,
            e.payload !== undefined ? `> payload: ${JSON.stringify(e.payload)}` : undefined,
            `< ${e.status} ${JSON.stringify(e.response)}`,
          ]
            .filter((line) => line !== undefined)
            .join('\n'),
        )
        .join('\n\n');
    },
  };
}
