import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, symlink, writeFile } from 'node:fs/promises';
import { Agent, request, type IncomingMessage } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { freePort } from '../../helpers/chancery-process.js';

/**
 * Stopping `npm start` stops Chancery cleanly. `npm start` runs package.json's own start script through npm
 * and sh, as a user's does; only what the script runs is swapped for the sources: a package directory
 * holds that start script and a dist/src/cli/main.js that loads src/cli/main.ts through tsx. Under load
 * (bounded) the npm process gets SIGTERM: the signal must reach node, no response may be cut once it has
 * begun, a request already being received must still be answered, the process must exit 0, and the next
 * start on the same data directory must work (no "in use by process N"). A request that outlives the grace
 * is cut at its end and the process still exits 0.
 */
const ROOT = join(import.meta.dirname, '..', '..', '..');
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: { start: string } };

const base = await mkdtemp(join(tmpdir(), 'chancery-stop-'));
const packageDir = join(base, 'package');
await mkdir(join(packageDir, 'dist', 'src', 'cli'), { recursive: true });
await writeFile(join(packageDir, 'package.json'), JSON.stringify({ name: 'chancery-stop-test', version: '0.0.0', private: true, type: 'module', scripts: { start: pkg.scripts.start } }));
await symlink(join(ROOT, 'node_modules'), join(packageDir, 'node_modules'));
await writeFile(
  join(packageDir, 'dist', 'src', 'cli', 'main.js'),
  `import { register } from 'tsx/esm/api';\nregister();\nawait import(${JSON.stringify(join(ROOT, 'src', 'cli', 'main.ts'))});\n`,
);
const dataDir = join(base, 'data');
const lockFile = join(dataDir, 'db.lock');

interface Started {
  npm: ChildProcess;
  exited: Promise<[number | null, NodeJS.Signals | null]>;
  output(): string;
  publicUrl: string;
  acmeUrl: string;
}

const running = new Set<ChildProcess>();
t.teardown(() => {
  // Whatever happened, nothing started here outlives the test: npm's process group, and a node child that
  // escaped it (the bug this test is about) by the PID in the lock file.
  for (const npm of running) if (npm.exitCode === null && npm.pid !== undefined) process.kill(-npm.pid, 'SIGKILL');
  const owner = existsSync(lockFile) ? Number.parseInt(readFileSync(lockFile, 'utf8'), 10) : NaN;
  if (Number.isInteger(owner) && owner > 0 && owner !== process.pid) {
    try {
      process.kill(owner, 'SIGKILL');
    } catch {
      // already gone
    }
  }
});

async function npmStart(env: Record<string, string>): Promise<Started> {
  const acmePort = await freePort();
  const npm = spawn('npm', ['start'], {
    cwd: packageDir,
    // Its own process group, so teardown can end all of it; npm, sh and node see no terminal.
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...process.env,
      npm_config_update_notifier: 'false',
      CHANCERY_DATA_DIR: dataDir,
      CHANCERY_KEY_PASSPHRASE: 'stop-test-passphrase-0123456789',
      CHANCERY_PUBLIC_LISTEN: '127.0.0.1:0',
      CHANCERY_ACME_LISTEN: `127.0.0.1:${acmePort}`,
      CHANCERY_ADMIN_LISTEN: '127.0.0.1:0',
      CHANCERY_ACME_TLS: 'false',
      CHANCERY_LOG_LEVEL: 'info',
      ...env,
    },
  });
  running.add(npm);
  let text = '';
  npm.stdout!.on('data', (chunk: Buffer) => (text += chunk.toString()));
  npm.stderr!.on('data', (chunk: Buffer) => (text += chunk.toString()));
  const exited = once(npm, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  const publicUrl = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`not serving within 90 s:\n${text}`)), 90_000);
    const check = (): void => {
      const match = /public listener:\s+(http:\/\/\S+)/.exec(text);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]!);
      }
    };
    npm.stdout!.on('data', check);
    void exited.then(([code]) => {
      clearTimeout(timer);
      reject(new Error(`npm start exited with ${String(code)} before serving:\n${text}`));
    });
  });
  return { npm, exited, output: () => text, publicUrl, acmeUrl: `http://127.0.0.1:${acmePort}` };
}

type Outcome = 'complete' | 'refused' | 'cut';

/**
 * One request on a keep-alive agent. `complete`: status and the whole body (as long as Content-Length
 * said); `refused`: no byte of a response arrived (connection refused, or closed before an answer: the
 * listener had stopped); `cut`: a response began and did not end whole.
 */
function fetchOnce(agent: Agent, url: string, method = 'GET'): Promise<Outcome> {
  return new Promise((resolve) => {
    let responded = false;
    const req = request(url, { agent, method }, (res: IncomingMessage) => {
      responded = true;
      let length = 0;
      res.on('data', (chunk: Buffer) => (length += chunk.length));
      res.on('end', () => {
        const declared = res.headers['content-length'];
        // A HEAD response declares the length of the GET's body and has none.
        resolve(method === 'HEAD' || declared === undefined || Number(declared) === length ? 'complete' : 'cut');
      });
      res.on('aborted', () => resolve('cut'));
      res.on('error', () => resolve('cut'));
    });
    req.on('error', () => resolve(responded ? 'cut' : 'refused'));
    req.setTimeout(10_000, () => req.destroy(new Error('timeout')));
    req.end();
  });
}

/** A POST whose body is trickled for `trickleMs` (well inside the request timeout); resolves with what came back. */
function slowPost(url: string, trickleMs: number): { done: Promise<{ status: number; body: string; error?: string }> } {
  const target = new URL(url);
  const body = Buffer.from('{"protected":"e30","payload":"","signature":"AAAA"}');
  const done = new Promise<{ status: number; body: string; error?: string }>((resolve) => {
    const socket = connect(Number(target.port), target.hostname);
    let text = '';
    socket.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')));
    socket.on('error', (error) => resolve({ status: 0, body: text, error: error.message }));
    socket.on('close', () => {
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0);
      resolve({ status, body: text.slice(text.indexOf('\r\n\r\n') + 4) });
    });
    socket.on('connect', () => {
      socket.write(`POST ${target.pathname} HTTP/1.1\r\nHost: ${target.host}\r\nContent-Type: application/jose+json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n`);
      let sent = 0;
      const every = Math.max(10, Math.floor(trickleMs / body.length));
      const timer = setInterval(() => {
        if (sent >= body.length || socket.destroyed) return clearInterval(timer);
        socket.write(body.subarray(sent, sent + 1));
        sent++;
      }, every);
    });
  });
  return { done };
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

await t.test('ok/SIGTERM to `npm start` under load: drained, exit 0, nothing cut', async (t) => {
  t.match(pkg.scripts.start, /^exec /, 'the start script replaces its shell with node (npm then signals node itself)');
  const server = await npmStart({ CHANCERY_SHUTDOWN_GRACE_SECONDS: '10' });
  const nodePid = Number.parseInt(await readFile(lockFile, 'utf8'), 10);
  t.ok(nodePid > 0 && nodePid !== server.npm.pid, `node runs as its own process ${nodePid}`);

  // Load: 6 clients on keep-alive connections over both listeners, each bounded in count and time.
  const urls = [`${server.acmeUrl}/acme/directory`, `${server.publicUrl}/ca/root.pem`, `${server.publicUrl}/livez`, `${server.acmeUrl}/acme/new-nonce`];
  const outcomes: Record<Outcome, number> = { complete: 0, refused: 0, cut: 0 };
  let signalledAt = Infinity;
  let completedAfterSignal = 0;
  const deadline = performance.now() + 20_000;
  const worker = async (index: number): Promise<void> => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      for (let i = 0; i < 2000 && performance.now() < deadline; i++) {
        const outcome = await fetchOnce(agent, urls[(index + i) % urls.length]!, i % 4 === 3 ? 'HEAD' : 'GET');
        outcomes[outcome]++;
        if (outcome === 'complete' && performance.now() > signalledAt) completedAfterSignal++;
        if (outcome === 'refused' && performance.now() > signalledAt) return; // the listener is gone
      }
    } finally {
      agent.destroy();
    }
  };
  const workers = Array.from({ length: 6 }, (_, index) => worker(index));
  await sleep(1500);
  t.ok(outcomes.complete > 20, `load is running (${outcomes.complete} responses so far)`);

  // A request whose body is still arriving when the signal comes: it must be answered in full.
  const inFlight = slowPost(`${server.acmeUrl}/acme/new-order`, 1500);
  await sleep(400);
  signalledAt = performance.now();
  process.kill(server.npm.pid!, 'SIGTERM');
  const [code, signal] = await Promise.race([server.exited, sleep(30_000).then(() => [null, 'timeout' as NodeJS.Signals] as const)]);
  const stoppedAfterMs = performance.now() - signalledAt;
  await Promise.all(workers);
  const slow = await inFlight.done;

  t.equal(signal, null, 'npm was not killed by the signal: node handled it');
  t.equal(code, 0, 'npm start exits 0');
  t.ok(stoppedAfterMs < 10_000, `stopped in ${stoppedAfterMs.toFixed(0)} ms, within the grace`);
  t.equal(outcomes.cut, 0, `no response cut once begun (${outcomes.complete} complete, ${outcomes.refused} refused after the stop)`);
  t.equal(slow.status, 400, 'the request being received at the signal was answered', { slow });
  t.match(slow.body, /urn:ietf:params:acme:error:malformed/, 'in full: its problem document');
  t.comment(`${completedAfterSignal} responses of the load completed after the signal`);
  t.throws(() => process.kill(nodePid, 0), 'the node process is gone');
  t.notOk(existsSync(lockFile), 'the data directory lock is released');
  t.match(server.output(), /shutting down/);
  t.match(server.output(), /"msg":"stopped"/, 'closed everything before exiting');
});

await t.test('ok/the next start works; a request that outlives the grace is cut at its end, exit 0', async (t) => {
  const server = await npmStart({ CHANCERY_SHUTDOWN_GRACE_SECONDS: '2' });
  t.notMatch(server.output(), /in use by/, 'no stale owner of the data directory');
  const directory = await fetch(`${server.acmeUrl}/acme/directory`);
  t.equal(directory.status, 200, 'serving');

  // A body trickled for 20 s (inside the 30 s request timeout): only the grace can end it.
  const stuck = slowPost(`${server.acmeUrl}/acme/new-order`, 20_000);
  await sleep(500);
  const signalledAt = performance.now();
  process.kill(server.npm.pid!, 'SIGTERM');
  const [code] = await Promise.race([server.exited, sleep(30_000).then(() => [null] as const)]);
  const stoppedAfterMs = performance.now() - signalledAt;
  await stuck.done;
  const stuckClosedAfterMs = performance.now() - signalledAt;
  t.equal(code, 0, 'exit 0');
  t.ok(stoppedAfterMs >= 1900 && stoppedAfterMs < 2000 + 8000, `stopped ${stoppedAfterMs.toFixed(0)} ms after the signal: the grace, then closing`);
  t.ok(stuckClosedAfterMs < 2000 + 8000, 'the stuck request was cut');
  t.match(server.output(), /still running at the end of the shutdown grace period/);
  t.notOk(existsSync(lockFile), 'lock released');
});
