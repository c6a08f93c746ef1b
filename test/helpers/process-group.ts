/**
 * Processes that start processes of their own (a shell running a README block, dehydrated's bash calling
 * curl and openssl, a daemon such as Caddy): each is started in a session of its own (setsid, Node's
 * `detached`) and stopped by signalling its process group, -PID, so nothing it started outlives the test.
 * Every wait is bounded; a last-resort exit hook kills whatever groups are still running.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import type { CommandResult } from './interop.js';

const groups = new Set<ChildProcess>();
let exitHookInstalled = false;

function running(child: ChildProcess): boolean {
  return child.pid !== undefined && child.exitCode === null && child.signalCode === null;
}

/** Signals the child's whole process group; a group already gone is not an error. */
export function signalGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // the group has exited
  }
}

function rememberGroup(child: ChildProcess): void {
  groups.add(child);
  child.once('exit', () => groups.delete(child));
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const c of groups) signalGroup(c, 'SIGKILL');
  });
}

function spawnGroup(command: string, args: string[], options: { env?: Record<string, string>; cwd?: string; replaceEnv?: boolean }): ChildProcess {
  const child = spawn(command, args, {
    cwd: options.cwd,
    env: options.replaceEnv ? options.env : { ...process.env, ...options.env },
    // stdin is /dev/null and there is no controlling terminal (a new session): what "no terminal" means.
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  rememberGroup(child);
  return child;
}

/** Stops a group: SIGTERM to -PID, SIGKILL after `graceMs`; resolves when the leader has exited. */
export async function stopGroup(child: ChildProcess, graceMs = 5_000): Promise<void> {
  if (!running(child)) {
    signalGroup(child, 'SIGKILL');
    return;
  }
  const exited = once(child, 'exit');
  signalGroup(child, 'SIGTERM');
  const timer = setTimeout(() => signalGroup(child, 'SIGKILL'), graceMs);
  try {
    await exited;
  } finally {
    clearTimeout(timer);
    // Anything the leader left behind in its group.
    signalGroup(child, 'SIGKILL');
  }
}

/**
 * Runs a command in its own session to completion, or kills its group after `timeoutMs`; captures output.
 * `replaceEnv`: the environment is exactly `env` (nothing inherited from the test process).
 */
export async function runInGroup(
  command: string,
  args: string[],
  options: { env?: Record<string, string>; cwd?: string; timeoutMs?: number; replaceEnv?: boolean } = {},
): Promise<CommandResult> {
  const timeoutMs = options.timeoutMs ?? 120_000;
  const t0 = performance.now();
  const child = spawnGroup(command, args, options);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    signalGroup(child, 'SIGKILL');
  }, timeoutMs);
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (c: number | null, s: NodeJS.Signals | null) => resolve([c, s]));
  }).finally(() => clearTimeout(timer));
  // A background process the command left running is stopped with it.
  signalGroup(child, 'SIGKILL');
  const quoted = [command, ...args].map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');
  return { command: quoted, code, signal, stdout, stderr, timedOut, ms: performance.now() - t0 };
}

export interface Daemon {
  child: ChildProcess;
  pid: number;
  output(): string;
  exited(): boolean;
  stop(): Promise<void>;
}

/** Starts a long-running command in its own session; stop() signals its group. Output is kept (bounded). */
export function startDaemon(command: string, args: string[], options: { env?: Record<string, string>; cwd?: string; replaceEnv?: boolean } = {}): Daemon {
  const child = spawnGroup(command, args, options);
  let text = '';
  const keep = (chunk: Buffer): void => {
    text += chunk.toString();
    if (text.length > 2_000_000) text = text.slice(-1_000_000);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  if (child.pid === undefined) throw new Error(`could not start ${command}`);
  return { child, pid: child.pid, output: () => text, exited: () => !running(child), stop: () => stopGroup(child) };
}
