/**
 * CPU time by process group, read from Linux's /proc, so a bench can say where each unit of work spent its
 * CPU (server, database, load client) and how busy the whole machine was. Throughput alone varies with
 * the host a VM shares; CPU per unit of work, split by process, shows what a change moved.
 *
 * Off Linux (no /proc) every reading is undefined and the bench prints nothing.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';

/** Clock ticks per second of /proc's utime and stime (USER_HZ; 100 on every common Linux). */
function userHz(): number {
  try {
    const value = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
    return Number.isInteger(value) && value > 0 ? value : 100;
  } catch {
    return 100;
  }
}

const HZ = existsSync('/proc/stat') ? userHz() : 100;

/** utime + stime of a process (all its threads) or of one thread, in ms; undefined once it has exited. */
function cpuMs(path: string): number | undefined {
  try {
    const stat = readFileSync(path, 'utf8');
    // The command name (field 2) may contain spaces and parentheses: count fields after its last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / HZ;
  } catch {
    return undefined;
  }
}

/** Every process whose command is `name` (e.g. the postgres server and its backends). */
export function pidsNamed(name: string): number[] {
  if (!existsSync('/proc')) return [];
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/comm`, 'utf8').trim() === name) pids.push(Number(entry));
    } catch {
      // exited while listing
    }
  }
  return pids;
}

/**
 * The postgres processes working for one database: backends and autovacuum workers, whose command lines
 * (`postgres: <user> <database> <client> ...`, `postgres: autovacuum worker <database>`) name it.
 */
export function pidsServing(database: string): number[] {
  return pidsNamed('postgres').filter((pid) => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split(/[\0 ]/).includes(database);
    } catch {
      return false;
    }
  });
}

/** What is measured: named groups of processes, and threads measured on their own (a server's event loop). */
export interface CpuGroups {
  processes: Record<string, () => number[]>;
  threads?: Record<string, number[]>;
}

interface Snapshot {
  processes: Record<string, Map<number, number>>;
  threads: Record<string, number>;
  machine: { busy: number; total: number } | undefined;
}

function machineTicks(): { busy: number; total: number } | undefined {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!;
    const values = line.trim().split(/\s+/).slice(1).map(Number);
    const total = values.slice(0, 8).reduce((a, b) => a + b, 0);
    const idle = (values[3] ?? 0) + (values[4] ?? 0); // idle + iowait
    return { busy: total - idle, total };
  } catch {
    return undefined;
  }
}

function snapshot(groups: CpuGroups): Snapshot {
  const processes: Snapshot['processes'] = {};
  for (const [name, pids] of Object.entries(groups.processes)) {
    const readings = new Map<number, number>();
    for (const pid of pids()) {
      const ms = cpuMs(`/proc/${pid}/stat`);
      if (ms !== undefined) readings.set(pid, ms);
    }
    processes[name] = readings;
  }
  const threads: Snapshot['threads'] = {};
  for (const [name, tids] of Object.entries(groups.threads ?? {})) {
    threads[name] = tids.reduce((sum, tid) => sum + (cpuMs(`/proc/${tid}/task/${tid}/stat`) ?? 0), 0);
  }
  return { processes, threads, machine: machineTicks() };
}

export interface CpuUsage {
  /** CPU ms used by each group between start() and stop(); a process started in between counts from 0. */
  ms: Record<string, number>;
  /** Share of all cores' time that was busy, 0..1. */
  machineBusy: number | undefined;
}

/**
 * How often the processes are read during the window. A process that exits takes its CPU time with it
 * (PostgreSQL closes a pool's idle backends): read only at both ends, the backends of a 1,000,000-revocation
 * run were counted 98 µs a revocation in one run and 253 in the next. Read this often, what a process used
 * in its last SAMPLE_MS is all that can be missed.
 */
const SAMPLE_MS = 250;

/** Starts measuring now; the returned function ends the window and gives the CPU used in it. */
export function startCpuAccounting(groups: CpuGroups): () => CpuUsage | undefined {
  if (!existsSync('/proc/stat')) return () => undefined;
  const before = snapshot(groups);
  // Per group and process: its reading at the start (0 for one that appeared later), its latest, and what
  // an earlier process of the same pid used (a reading lower than the last one is a new process).
  const seen: Record<string, Map<number, { first: number; last: number; earlier: number }>> = {};
  const record = (readings: Snapshot['processes'], first: boolean): void => {
    for (const [name, byPid] of Object.entries(readings)) {
      const group = (seen[name] ??= new Map());
      for (const [pid, ms] of byPid) {
        const known = group.get(pid);
        if (known === undefined) group.set(pid, { first: first ? ms : 0, last: ms, earlier: 0 });
        else if (ms >= known.last) known.last = ms;
        else group.set(pid, { first: 0, last: ms, earlier: known.earlier + known.last - known.first });
      }
    }
  };
  record(before.processes, true);
  const timer = setInterval(() => record(snapshot({ processes: groups.processes }).processes, false), SAMPLE_MS);
  timer.unref();
  return () => {
    clearInterval(timer);
    const after = snapshot(groups);
    record(after.processes, false);
    const ms: Record<string, number> = {};
    for (const [name, group] of Object.entries(seen)) {
      let used = 0;
      for (const { first, last, earlier } of group.values()) used += earlier + last - first;
      ms[name] = used;
    }
    for (const [name, value] of Object.entries(after.threads)) ms[name] = value - (before.threads[name] ?? 0);
    const machineBusy =
      before.machine && after.machine && after.machine.total > before.machine.total
        ? (after.machine.busy - before.machine.busy) / (after.machine.total - before.machine.total)
        : undefined;
    return { ms, machineBusy };
  };
}
