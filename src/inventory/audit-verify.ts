import type { AuditCheckpoint } from '../core/audit.js';
import type { Signer } from '../keys/signer.js';
import { checkpointSignatureValid, entryHash, ZERO_HASH } from './audit-chain.js';
import type { AuditStore, MirroredCheckpoint } from './audit-log.js';

/** One thing found wrong, at a chain position and/or entry where it has one. */
export interface AuditProblem {
  seq?: number;
  entryId?: number;
  detail: string;
}

export interface AuditVerification {
  ok: boolean;
  /** Positions in the chain. */
  sealed: number;
  /** Entries waiting to be sealed (not yet protected by the chain). */
  unsealed: number;
  checkpoints: number;
  head?: { seq: number; hash: string };
  latestCheckpoint?: AuditCheckpoint;
  /** Where the checkpoint kept outside the database was read, and its position (absent: none found). */
  expected: { source: string; seq?: number };
  /** In the order found: the chain from position 1 on, then what lies beyond its head. */
  problems: AuditProblem[];
  /** What is not wrong but limits what could be checked. */
  warnings: string[];
  /** The first entry that can no longer be vouched for, when anything is wrong. */
  firstBad?: AuditProblem;
}

const PAGE = 1000;
/** Problems listed at most (the first one is what matters; the rest is context). */
const MAX_PROBLEMS = 50;

/**
 * Walks the whole log in bounded memory (keyset pages of the chain and of the checkpoints side by side):
 * - every position 1..head present once, linking to the previous hash, its entry present and hashing to
 *   the stored hash (an edited, deleted or reordered entry breaks this at the first one touched);
 * - every checkpoint signed by the audit key, over the hash the chain has at its position (a chain
 *   recomputed by hand no longer matches the checkpoints signed before), none beyond the head (the last
 *   entries deleted);
 * - the checkpoint kept outside the database present in the database, identical, and matching the chain
 *   (the latest checkpoints deleted, or re-signed with another key);
 * - no entry outside the chain other than those waiting to be sealed.
 * `key` is the audit key from the KeyStore, never a public key read from what is being checked.
 */
export async function verifyAuditLog(deps: {
  store: AuditStore;
  key: Signer | undefined;
  expected: { checkpoint: MirroredCheckpoint | undefined; source: string };
}): Promise<AuditVerification> {
  const { store, key, expected } = deps;
  const problems: AuditProblem[] = [];
  const problem = (found: AuditProblem): void => {
    if (problems.length < MAX_PROBLEMS) problems.push(found);
  };
  const external = expected.checkpoint;

  if (external !== undefined && key !== undefined && Buffer.from(key.publicKey).toString('base64') !== external.publicKey) {
    problem({ detail: `the audit key in the key store is not the key that signed the checkpoint kept in ${expected.source}: the key was replaced` });
  }

  // Checkpoints, read a page ahead of the chain walk.
  let checkpointPage: AuditCheckpoint[] = await store.checkpoints(0, PAGE);
  let checkpointIndex = 0;
  let checkpointCount = 0;
  let latestCheckpoint: AuditCheckpoint | undefined;
  const nextCheckpoint = async (): Promise<AuditCheckpoint | undefined> => {
    if (checkpointIndex >= checkpointPage.length) {
      if (checkpointPage.length < PAGE) return undefined;
      checkpointPage = await store.checkpoints(checkpointPage.at(-1)!.seq, PAGE);
      checkpointIndex = 0;
    }
    return checkpointPage[checkpointIndex];
  };
  /** The last position vouched for by a checkpoint that matched (0: none yet). */
  let vouchedUpTo = 0;
  const checkCheckpoint = (checkpoint: AuditCheckpoint, chainHash: string | undefined, at: { seq: number }): void => {
    checkpointCount++;
    latestCheckpoint = checkpoint;
    let good = true;
    if (key === undefined) {
      good = false;
      problem({ seq: checkpoint.seq, detail: `checkpoint at position ${checkpoint.seq}: the audit key "${checkpoint.keyName}" is not in the key store` });
    } else if (!checkpointSignatureValid(checkpoint, key)) {
      good = false;
      problem({ seq: checkpoint.seq, detail: `checkpoint at position ${checkpoint.seq}: its signature is not the audit key's` });
    }
    if (chainHash !== undefined && chainHash !== checkpoint.hash) {
      good = false;
      problem({
        ...(vouchedUpTo + 1 <= at.seq ? { seq: vouchedUpTo + 1 } : {}),
        detail:
          `the chain at position ${checkpoint.seq} no longer has the hash signed in its checkpoint of ${checkpoint.at.toISOString()}: ` +
          `positions ${vouchedUpTo + 1}..${checkpoint.seq} were rewritten (the first altered entry is among them)`,
      });
    }
    if (good && chainHash !== undefined) vouchedUpTo = checkpoint.seq;
  };

  let expectedSeq = 1;
  let prevHash = ZERO_HASH;
  let head: { seq: number; hash: string } | undefined;
  let externalSeen = false;
  for (let page = await store.chain(0, PAGE); page.length > 0; page = page.length < PAGE ? [] : await store.chain(page.at(-1)!.seq, PAGE)) {
    for (const link of page) {
      if (link.seq !== expectedSeq) {
        problem({ seq: expectedSeq, detail: `chain positions ${expectedSeq}..${link.seq - 1} are missing (entries deleted)` });
      } else if (link.prevHash !== prevHash) {
        problem({ seq: link.seq, entryId: link.entryId, detail: `position ${link.seq} (entry ${link.entryId}) does not link to position ${link.seq - 1}: entries were removed or reordered before it` });
      }
      if (link.entry === undefined) {
        problem({ seq: link.seq, entryId: link.entryId, detail: `entry ${link.entryId} at position ${link.seq} is missing (deleted)` });
      } else if (link.entry.id !== link.entryId || entryHash(link.prevHash, link.seq, link.entry) !== link.hash) {
        problem({ seq: link.seq, entryId: link.entryId, detail: `entry ${link.entryId} at position ${link.seq} was altered (or moved): its hash does not match` });
      }
      for (let checkpoint = await nextCheckpoint(); checkpoint !== undefined && checkpoint.seq <= link.seq; checkpoint = await nextCheckpoint()) {
        checkpointIndex++;
        // A checkpoint of a missing position (checkpoint.seq < link.seq) cannot match anything.
        checkCheckpoint(checkpoint, checkpoint.seq === link.seq ? link.hash : undefined, { seq: link.seq });
      }
      if (external !== undefined && external.seq === link.seq) {
        externalSeen = true;
        if (external.hash !== link.hash) {
          problem({
            seq: vouchedUpTo + 1,
            detail:
              `the chain at position ${link.seq} does not have the hash of the checkpoint kept in ${expected.source} ` +
              `(${external.at.toISOString()}): positions ${vouchedUpTo + 1}..${link.seq} were rewritten`,
          });
        }
      }
      prevHash = link.hash;
      head = { seq: link.seq, hash: link.hash };
      expectedSeq = link.seq + 1;
    }
  }
  const headSeq = head?.seq ?? 0;

  // Checkpoints beyond the head: the entries they vouched for are gone.
  for (let checkpoint = await nextCheckpoint(); checkpoint !== undefined; checkpoint = await nextCheckpoint()) {
    checkpointIndex++;
    problem({
      seq: headSeq + 1,
      detail: `the checkpoint at position ${checkpoint.seq} (${checkpoint.at.toISOString()}) is beyond the chain's head ${headSeq}: positions ${headSeq + 1}..${checkpoint.seq} were deleted`,
    });
    checkCheckpoint(checkpoint, undefined, { seq: checkpoint.seq });
  }

  // The copy outside the database.
  if (external !== undefined) {
    if (!externalSeen && external.seq > headSeq) {
      problem({
        seq: headSeq + 1,
        detail: `the checkpoint kept in ${expected.source} vouches for position ${external.seq}, beyond the chain's head ${headSeq}: positions ${headSeq + 1}..${external.seq} were deleted`,
      });
    }
    const stored = (await store.checkpoints(external.seq - 1, 1))[0];
    if (stored === undefined || stored.seq !== external.seq) {
      const latestSeq = latestCheckpoint?.seq ?? 0;
      problem({
        seq: Math.min(latestSeq, headSeq) + 1,
        detail:
          `the checkpoint at position ${external.seq} kept in ${expected.source} is not in the database ` +
          `(its latest is ${latestCheckpoint === undefined ? 'none' : `at position ${latestSeq}`}): checkpoints were deleted; ` +
          `entries after position ${Math.min(latestSeq, headSeq)} are vouched for by no checkpoint in the database`,
      });
    } else if (stored.hash !== external.hash || stored.signature !== external.signature || stored.at.getTime() !== external.at.getTime()) {
      problem({ seq: external.seq, detail: `the checkpoint at position ${external.seq} differs from the one kept in ${expected.source}: it was replaced` });
    }
    if (key !== undefined && !checkpointSignatureValid(external, key)) {
      problem({ seq: external.seq, detail: `the checkpoint kept in ${expected.source} is not signed by the audit key` });
    }
  }

  // Entries outside the chain that are not waiting to be sealed: their positions were removed.
  for (let after = 0, page = await store.unlinked(after, 10); page.length > 0 && problems.length < MAX_PROBLEMS; page = await store.unlinked(after, 10)) {
    for (const id of page) problem({ entryId: id, detail: `entry ${id} is in no chain position and not waiting to be sealed: its position was removed` });
    after = page.at(-1)!;
    if (page.length < 10) break;
  }

  const unsealed = await store.countUnsealed();
  const warnings: string[] = [];
  if (external === undefined && checkpointCount > 0) {
    warnings.push(`no checkpoint kept outside the database was found in ${expected.source}: deleted checkpoints and a re-signed chain cannot be told`);
  }
  if (headSeq > vouchedUpTo) warnings.push(`positions ${vouchedUpTo + 1}..${headSeq} are after the latest checkpoint: only the chain vouches for them yet`);
  let firstBad = problems.filter((p) => p.seq !== undefined).sort((a, b) => a.seq! - b.seq!)[0] ?? problems[0];
  if (firstBad?.seq !== undefined && firstBad.entryId === undefined) {
    // Name the entry at that position too, when it is still there.
    const at = (await store.chain(firstBad.seq - 1, 1))[0];
    if (at?.seq === firstBad.seq) firstBad = { ...firstBad, entryId: at.entryId };
  }
  return {
    ok: problems.length === 0,
    sealed: headSeq,
    unsealed,
    checkpoints: checkpointCount,
    ...(head ? { head } : {}),
    ...(latestCheckpoint ? { latestCheckpoint } : {}),
    expected: { source: expected.source, ...(external ? { seq: external.seq } : {}) },
    problems,
    warnings,
    ...(firstBad ? { firstBad } : {}),
  };
}
