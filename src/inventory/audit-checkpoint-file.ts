import { createReadStream } from 'node:fs';
import { mkdir, open } from 'node:fs/promises';
import { dirname } from 'node:path';
import { createInterface } from 'node:readline';
import { CaError } from '../core/errors.js';
import type { CheckpointMirror, MirroredCheckpoint } from './audit-log.js';

/**
 * Audit checkpoints copied outside the database: one JSON object per line, appended, never rewritten, in a
 * file only the owner can read or write (0600, directory 0700; set with chmod, never left to the umask).
 * Someone who rewrites the database must also rewrite this file on every machine that keeps one — and the
 * log lines, and any copy an auditor took (`chancery audit verify --expect-head FILE`).
 */
export class CheckpointFile implements CheckpointMirror {
  constructor(readonly location: string) {}

  async append(checkpoint: MirroredCheckpoint): Promise<void> {
    await mkdir(dirname(this.location), { recursive: true, mode: 0o700 });
    const handle = await open(this.location, 'a', 0o600);
    try {
      await handle.chmod(0o600);
      await handle.appendFile(`${JSON.stringify(toLine(checkpoint))}\n`, 'utf8');
      // On disk before the next checkpoint is signed: a copy lost in a crash would be no copy.
      await handle.datasync();
    } finally {
      await handle.close();
    }
  }

  /** The last line's checkpoint; undefined when the file does not exist or is empty. */
  latest(): Promise<MirroredCheckpoint | undefined> {
    return readLatestCheckpoint(this.location);
  }
}

interface CheckpointLine {
  seq: number;
  hash: string;
  at: string;
  keyName: string;
  signature: string;
  publicKey: string;
}

function toLine(checkpoint: MirroredCheckpoint): CheckpointLine {
  return {
    seq: checkpoint.seq,
    hash: checkpoint.hash,
    at: checkpoint.at.toISOString(),
    keyName: checkpoint.keyName,
    signature: checkpoint.signature,
    publicKey: checkpoint.publicKey,
  };
}

/**
 * The last checkpoint of a file of checkpoint lines (this format; also what `audit verify --expect-head`
 * reads), streamed: the file grows by a line a minute for as long as the CA runs. A line that does not
 * parse is an error naming its line number: a damaged copy must not pass for an absent one.
 */
export async function readLatestCheckpoint(path: string): Promise<MirroredCheckpoint | undefined> {
  const stream = createReadStream(path, { encoding: 'utf8' });
  const lines = createInterface({ input: stream, crlfDelay: Infinity });
  let last: MirroredCheckpoint | undefined;
  let number = 0;
  try {
    for await (const line of lines) {
      number++;
      if (line.trim() === '') continue;
      last = parseLine(line, `${path}:${number}`);
    }
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  } finally {
    lines.close();
    stream.destroy();
  }
  return last;
}

function parseLine(line: string, where: string): MirroredCheckpoint {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch (cause) {
    throw new CaError('malformed', `${where}: not a JSON audit checkpoint`, { cause });
  }
  const v = value as Partial<CheckpointLine> | null;
  const hexOk = (s: unknown, length?: number): s is string => typeof s === 'string' && /^[0-9a-f]+$/.test(s) && (length === undefined || s.length === length);
  if (
    v === null ||
    typeof v !== 'object' ||
    !Number.isSafeInteger(v.seq) ||
    (v.seq as number) < 1 ||
    !hexOk(v.hash, 64) ||
    !hexOk(v.signature) ||
    typeof v.keyName !== 'string' ||
    typeof v.publicKey !== 'string' ||
    typeof v.at !== 'string' ||
    Number.isNaN(new Date(v.at).getTime())
  ) {
    throw new CaError('malformed', `${where}: not an audit checkpoint (seq, hash, at, keyName, signature, publicKey)`);
  }
  return { seq: v.seq as number, hash: v.hash, at: new Date(v.at), keyName: v.keyName, signature: v.signature, publicKey: v.publicKey };
}
