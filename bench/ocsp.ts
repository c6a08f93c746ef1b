/**
 * npm run bench:ocsp — OCSP responses per second over HTTP keep-alive from a loopback load tool (wrk), for
 * Chancery's pre-signed cache and, in the same run with the same tool and the same DER request, for
 * `openssl ocsp -index` (which signs every response) as the baseline.
 *
 * Chancery: a PGlite runtime with a fresh CA, one leaf issued and its response pre-signed, the OCSP routes
 * on a bare Fastify (as the public listener has them) on 127.0.0.1. wrk GETs /ocsp/<url-encoded base64>
 * (what nginx stapling sends), then POSTs the same DER.
 * openssl: `openssl ocsp -port` binds every interface, so it runs with its own wrk inside a private network
 * namespace (`unshare -n`, loopback only). It answers HTTP/1.0 and closes every connection, so wrk
 * reconnects per request there; that is part of what is being compared. wrk's start-up probe connection
 * (which openssl 3.0 would spin on) is disabled by the Lua script both runs share.
 *
 *   BENCH_SECONDS per run (default 5)  BENCH_ROUNDS (default 3; runs interleave chancery/openssl, medians shown)
 *   BENCH_CONNECTIONS (default 64)  BENCH_THREADS (default 1: the other core serves)
 *   BENCH_PIN=1: pin each server to CPU 0 and wrk to CPU 1 (taskset) — steadier on an idle machine, worse
 *   on a busy one, where other processes crowd the pinned core.
 *
 * Prints figures; asserts nothing (DESIGN.md Testing). Stops everything it starts.
 */
import { execFileSync, spawn } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify from 'fastify';
import { systemClock } from '../src/core/clock.js';
import { toPem } from '../src/core/pem.js';
import { registerOcspRoutes } from '../src/http/ocsp-routes.js';
import { composeForTest } from '../test/helpers/runtime.js';

const SECONDS = Math.min(Math.max(Number(process.env.BENCH_SECONDS ?? 5), 1), 120);
const ROUNDS = Math.min(Math.max(Number(process.env.BENCH_ROUNDS ?? 3), 1), 10);
const CONNECTIONS = Math.min(Math.max(Number(process.env.BENCH_CONNECTIONS ?? 64), 1), 1024);
const THREADS = Math.min(Math.max(Number(process.env.BENCH_THREADS ?? 1), 1), CONNECTIONS);
const OPENSSL_PORT = 18_980;

function need(tool: string, hint: string): void {
  try {
    execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
  } catch {
    console.error(`bench:ocsp needs ${tool}: ${hint}`);
    process.exit(1);
  }
}
need('wrk', 'apt-get install wrk');
need('openssl', 'apt-get install openssl');
need('unshare', 'apt-get install util-linux (and run as root, for a private network namespace)');

function has(tool: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
const CPUS = availableParallelism();
const PIN = process.env.BENCH_PIN === '1' && CPUS >= 2 && has('taskset');
if (PIN) execFileSync('taskset', ['-a', '-cp', '0', String(process.pid)], { stdio: 'ignore' });
/** Prefix that pins a command to a CPU (server 0, load tool 1), or nothing. */
const pin = (cpu: number): string[] => (PIN ? ['taskset', '-c', String(cpu)] : []);
const shPin = (cpu: number): string => pin(cpu).join(' ');

/** Runs a command to completion (bounded by a kill timer); stdout as text. */
function run(command: string, args: string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
    const timer = setTimeout(() => child.pid !== undefined && process.kill(child.pid, 'SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else reject(new Error(`${command} exited ${code}: ${err || out}`));
    });
  });
}

interface WrkResult {
  rps: number;
  requests: number;
  p50: string;
  p99: string;
  errors: string;
}

function parseWrk(output: string): WrkResult {
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(output)?.[1] ?? NaN);
  const requests = Number(/(\d+) requests in/.exec(output)?.[1] ?? NaN);
  const p50 = /\s50%\s+(\S+)/.exec(output)?.[1] ?? '?';
  const p99 = /\s99%\s+(\S+)/.exec(output)?.[1] ?? '?';
  const problems = [/Socket errors:[^\n]*/.exec(output)?.[0], /Non-2xx or 3xx responses:[^\n]*/.exec(output)?.[0]].filter(Boolean);
  return { rps, requests, p50, p99, errors: problems.join('; ') || 'none' };
}

const wrkArgs = (script: string, url: string): string[] => ['-t', String(THREADS), '-c', String(CONNECTIONS), '-d', `${SECONDS}s`, '--latency', '-s', script, url];

// ---- Chancery setup -------------------------------------------------------------------------------------

const loadBefore = (await readFile('/proc/loadavg', 'utf8').catch(() => '? ? ?')).split(' ').slice(0, 3).join(' ');
const work = await mkdtemp(join(tmpdir(), 'chancery-bench-ocsp-'));
const { chancery } = await composeForTest();
const { hierarchy } = chancery;
const { issuance } = chancery.services;
const ocsp = { source: chancery.services.ocsp };
const spki = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'der' });
// Issued through the composition, so its response is pre-signed as compose() wires it.
const leaf = await issuance.issueForKey(spki, [{ type: 'dns', value: 'bench.example.internal' }]);

const app = Fastify({ logger: false });
registerOcspRoutes(app, { ocsp: ocsp.source, clock: systemClock });
const address = await app.listen({ host: '127.0.0.1', port: 0 });

const files = {
  leaf: join(work, 'leaf.pem'),
  chain: join(work, 'chain.pem'),
  request: join(work, 'request.der'),
  index: join(work, 'index.txt'),
  rsigner: join(work, 'rsigner.pem'),
  rkey: join(work, 'rkey.pem'),
  noProbe: join(work, 'get.lua'),
  post: join(work, 'post.lua'),
  baseline: join(work, 'baseline.sh'),
};
await writeFile(files.leaf, toPem(leaf.der));
await writeFile(files.chain, toPem(hierarchy.intermediate.der));
// One request, no nonce, SHA-1 CertID: what nginx stapling sends.
await run('openssl', ['ocsp', '-no_nonce', '-issuer', files.chain, '-cert', files.leaf, '-reqout', files.request], 10_000);
const requestDer = await readFile(files.request);
const getPath = encodeURIComponent(requestDer.toString('base64'));

// wrk probes the target with a bare connect before the run; openssl 3.0's responder spins on that empty
// connection, so both runs resolve without it. The POST script sends the DER body.
const noProbe = 'wrk.resolve = function(host, service) wrk.addrs = wrk.lookup(host, service) end\n';
const luaBytes = [...requestDer].map((b) => `\\${b}`).join('');
await writeFile(files.noProbe, noProbe);
await writeFile(
  files.post,
  `${noProbe}wrk.method = "POST"\nwrk.body = "${luaBytes}"\nwrk.headers["Content-Type"] = "application/ocsp-request"\n`,
);

// Sanity: the answer is a signed `good` that openssl accepts.
const sample = Buffer.from(await (await fetch(`${address}/ocsp/${getPath}`)).arrayBuffer());
await writeFile(join(work, 'sample.der'), sample);
const verdict = await run('openssl', ['ocsp', '-respin', join(work, 'sample.der'), '-issuer', files.chain, '-cert', files.leaf, '-noverify', '-no_nonce'], 10_000);
if (!/: good/.test(verdict)) throw new Error(`Chancery's answer is not good: ${verdict}`);

const wrk = (args: string[]): Promise<string> => {
  const [command, ...rest] = [...pin(1), 'wrk', ...args];
  return run(command!, rest, (SECONDS + 30) * 1000);
};

// ---- openssl ocsp (baseline) setup -----------------------------------------------------------------------

// index.txt (openssl ca database): status, expiry YYMMDDHHMMSSZ, revocation, serial (hex), file, subject.
const expiry = leaf.notAfter.toISOString().replace(/[-:T]/g, '').slice(2, 14) + 'Z';
await writeFile(files.index, `V\t${expiry}\t\t${leaf.serial.toUpperCase()}\tunknown\t/CN=bench.example.internal\n`);
// openssl signs with a P-256 key of its own, like Chancery's responder (a throwaway key for the baseline).
await run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', files.rkey, '-out', files.rsigner, '-subj', '/CN=bench responder', '-days', '2'], 10_000);
const base = `http://127.0.0.1:${OPENSSL_PORT}`;

/**
 * One wrk run against a fresh `openssl ocsp` responder, both inside a private network namespace (it binds
 * every interface). Fresh each time: openssl 3.0's responder spins on a connection its client closed
 * mid-request, which wrk does at the end of a run.
 */
async function opensslRun(script: string, url: string, keep: string): Promise<string> {
  await writeFile(
    files.baseline,
    [
      'set -e',
      'ip link set lo up',
      `${shPin(0)} openssl ocsp -index '${files.index}' -port ${OPENSSL_PORT} -rsigner '${files.rsigner}' -rkey '${files.rkey}' -CA '${files.chain}' -nmin 4320 -ignore_err >/dev/null 2>&1 &`,
      'OPENSSL_PID=$!',
      "trap 'kill $OPENSSL_PID 2>/dev/null || true' EXIT",
      // Wait (bounded) until it answers; keep that answer to check it.
      `i=0; until curl -s -o '${keep}' '${base}/${getPath}'; do i=$((i+1)); [ $i -gt 50 ] && exit 3; sleep 0.1; done`,
      `${shPin(1)} wrk ${wrkArgs(script, url).join(' ')}`,
    ].join('\n'),
  );
  return run('unshare', ['-n', 'sh', files.baseline], (SECONDS + 60) * 1000);
}

// ---- the runs: interleaved, so both servers share whatever else the machine is doing ----------------------

const series = { chanceryGet: [] as WrkResult[], opensslGet: [] as WrkResult[], chanceryPost: [] as WrkResult[], opensslPost: [] as WrkResult[] };
for (let round = 0; round < ROUNDS; round += 1) {
  series.chanceryGet.push(parseWrk(await wrk(wrkArgs(files.noProbe, `${address}/ocsp/${getPath}`))));
  series.opensslGet.push(parseWrk(await opensslRun(files.noProbe, `${base}/${getPath}`, join(work, 'baseline.der'))));
  series.chanceryPost.push(parseWrk(await wrk(wrkArgs(files.post, `${address}/ocsp`))));
  series.opensslPost.push(parseWrk(await opensslRun(files.post, `${base}/`, '/dev/null')));
}
const cached = ocsp.source.cacheSize;
await app.close();
await chancery.close();
const baselineVerdict = await run('openssl', ['ocsp', '-respin', join(work, 'baseline.der'), '-issuer', files.chain, '-cert', files.leaf, '-noverify', '-no_nonce'], 10_000);
await rm(work, { recursive: true, force: true });

// ---- report ---------------------------------------------------------------------------------------------

const median = (results: WrkResult[]): WrkResult => [...results].sort((a, b) => a.rps - b.rps)[Math.floor(results.length / 2)]!;
const wrkVersion = /wrk [\d.]+/.exec(await run('sh', ['-c', 'wrk -v 2>&1 || true'], 5_000))?.[0] ?? 'wrk';
const loadAfter = (await readFile('/proc/loadavg', 'utf8').catch(() => '? ? ?')).split(' ').slice(0, 3).join(' ');
console.log(`bench:ocsp — ${cpus()[0]?.model ?? 'cpu'} x${CPUS}, node ${process.version}, ${execFileSync('openssl', ['version']).toString().trim()}`);
console.log(`load tool: ${wrkVersion} -t${THREADS} -c${CONNECTIONS} -d${SECONDS}s, keep-alive, loopback, same DER request for both (SHA-1 CertID, no nonce, ${requestDer.length} bytes)`);
console.log(`${ROUNDS} interleaved rounds, median shown; cpus ${PIN ? 'pinned (server 0, wrk 1)' : 'not pinned'}; load average before ${loadBefore}, after ${loadAfter}`);
console.log(`answers checked by openssl: chancery ${/: good/.test(verdict) ? 'good' : '?'}, openssl baseline ${/: good/.test(baselineVerdict) ? 'good' : '?'}`);
const line = (label: string, results: WrkResult[]): void => {
  const r = median(results);
  const all = results.map((x) => Math.round(x.rps)).join(', ');
  console.log(`${label.padEnd(48)} ${String(Math.round(r.rps)).padStart(7)} responses/s  (p50 ${r.p50}, p99 ${r.p99}; errors: ${r.errors}; rounds: ${all})`);
};
line('chancery GET /ocsp/<b64>  pre-signed, cached', series.chanceryGet);
line('openssl ocsp GET /<b64>   signs every answer', series.opensslGet);
line('chancery POST /ocsp       pre-signed, cached', series.chanceryPost);
line('openssl ocsp POST /       signs every answer', series.opensslPost);
const ratio = (a: WrkResult[], b: WrkResult[]): string => (median(a).rps / median(b).rps).toFixed(1);
console.log(`GET:  chancery ${Math.round(median(series.chanceryGet).rps)}/s = ${ratio(series.chanceryGet, series.opensslGet)}x openssl   (target >= 25000/s and >= 3x)`);
console.log(`POST: chancery ${Math.round(median(series.chanceryPost).rps)}/s = ${ratio(series.chanceryPost, series.opensslPost)}x openssl`);
console.log(`chancery cache entries after the run: ${cached}`);
