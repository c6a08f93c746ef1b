/**
 * npm run bench:startup — how long `npm start` takes to serve: the first start (creates the CA in a fresh
 * data dir) and later starts (reuse it), measured from process spawn until /livez answers. Runs the
 * compiled CLI (`npm run build` first), exactly what `npm start` runs. Bounded: 5 restarts, 60 s each.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const ROOT = join(import.meta.dirname, '..');
const RESTARTS = Number(process.env.BENCH_RESTARTS ?? 5);

async function timeStart(dataDir: string, port: number): Promise<number> {
  const t0 = performance.now();
  const child = spawn(process.execPath, [join(ROOT, 'dist/src/cli/main.js'), 'start'], {
    cwd: ROOT,
    env: { ...process.env, CHANCERY_DATA_DIR: dataDir, CHANCERY_PUBLIC_LISTEN: `127.0.0.1:${port}`, CHANCERY_LOG_LEVEL: 'error' },
    stdio: 'ignore',
  });
  try {
    const deadline = t0 + 60_000;
    while (performance.now() < deadline) {
      try {
        const response = await fetch(`http://127.0.0.1:${port}/livez`);
        if (response.ok) return performance.now() - t0;
      } catch {
        // not listening yet
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    throw new Error('chancery did not serve within 60 s');
  } finally {
    child.kill('SIGTERM');
    await once(child, 'exit');
  }
}

const dataDir = join(await mkdtemp(join(tmpdir(), 'chancery-bench-start-')), 'data');
const port = 18_000 + Math.floor(Math.random() * 1000);
console.log(`bench:startup — node ${process.version}, PGlite + software keys, data dir ${dataDir}`);
console.log(`first start (creates the CA): ${(await timeStart(dataDir, port)).toFixed(0)} ms to serve`);
const later: number[] = [];
for (let i = 0; i < RESTARTS; i += 1) later.push(await timeStart(dataDir, port));
later.sort((a, b) => a - b);
console.log(`later starts (reuse it), ${RESTARTS} runs: min ${later[0]!.toFixed(0)} ms, median ${later[Math.floor(later.length / 2)]!.toFixed(0)} ms, max ${later.at(-1)!.toFixed(0)} ms`);
await rm(dataDir, { recursive: true, force: true });
