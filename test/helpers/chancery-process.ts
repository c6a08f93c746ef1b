import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { join } from 'node:path';

/** A port that was free a moment ago on 127.0.0.1 (bind 0, read, close). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

const ROOT = join(import.meta.dirname, '..', '..');
const CLI = join(ROOT, 'src', 'cli', 'main.ts');

export interface RunningChancery {
  child: ChildProcess;
  /** The public listener's base URL, read from the start-up banner. */
  publicAddress: string;
  /** The ACME directory URL from the banner. */
  acmeDirectory: string;
  output(): string;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** Runs the CLI from source (tsx) the way `npm start` runs the build. */
export function runCli(args: string[], env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', CLI, ...args], { cwd: ROOT, env: { CHANCERY_ADMIN_LISTEN: '127.0.0.1:0', ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return once(child, 'exit').then(([code]) => ({ code: code as number | null, stdout, stderr }));
}

/** The build `npm start` runs (`npm run build` writes it). */
const BUILT_CLI = join(ROOT, 'dist', 'src', 'cli', 'main.js');

/**
 * Starts `chancery <command>` and resolves once the banner says it is serving (or rejects when it exits).
 * `from: 'source'` (tests) runs src/ through tsx; `from: 'build'` (benchmarks) runs the compiled dist/ as
 * `npm start` does, so what is measured is what users run.
 */
export async function startChancery(
  command: 'start' | 'serve',
  env: Record<string, string>,
  timeoutMs = 60_000,
  from: 'source' | 'build' = 'source',
): Promise<RunningChancery> {
  // CHANCERY_PROFILE_DIR: write a V8 CPU profile of the server there (for benchmarks, never in tests).
  const profile = process.env.CHANCERY_PROFILE_DIR ? ['--cpu-prof', `--cpu-prof-dir=${process.env.CHANCERY_PROFILE_DIR}`] : [];
  const entry = from === 'build' ? [BUILT_CLI] : ['--import', 'tsx', CLI];
  // The admin listener on a free port unless the test names one: tests run side by side.
  const child = spawn(process.execPath, [...profile, ...entry, command], { cwd: ROOT, env: { CHANCERY_ADMIN_LISTEN: '127.0.0.1:0', ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let text = '';
  const exited = once(child, 'exit');
  const publicAddress = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`chancery did not start within ${timeoutMs} ms:\n${text}`)), timeoutMs);
    const onData = (chunk: Buffer): void => {
      text += chunk.toString();
      const match = /public listener:\s+(http:\/\/\S+)/.exec(text);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]!);
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', (chunk: Buffer) => (text += chunk.toString()));
    void exited.then(([code]) => {
      clearTimeout(timer);
      reject(new Error(`chancery exited with ${String(code)} before serving:\n${text}`));
    });
  });
  const acmeDirectory = /ACME directory:\s+(\S+)/.exec(text)?.[1] ?? '';
  return {
    child,
    publicAddress,
    acmeDirectory,
    output: () => text,
    async stop(signal = 'SIGTERM') {
      if (child.exitCode !== null) return child.exitCode;
      child.kill(signal);
      const [code] = await exited;
      return code as number | null;
    },
  };
}
