import { userInfo } from 'node:os';

/**
 * The audit log's domain types (DESIGN.md rule 8: every action is attributable). An entry says who (actor)
 * did what (action) to what (subject), when (the Clock), with what outcome; it is written in the same
 * statement or transaction as the change it records, then sealed into a hash chain (src/inventory/audit-*.ts).
 */

/**
 * Who acted: `account:<id>` (an ACME account), `key:<thumbprint>` (the holder of a certificate's key,
 * revoking it under RFC 8555 §7.6), `cli:<user>` (a local operator, the OS user as reported), `token:<id>`
 * (an admin API token), `certificate:<principal>` (an mTLS operator), `system:<what>` (Chancery itself),
 * `source:<address>` (a caller that failed to authenticate, known only by its address).
 */
export type Actor =
  | `account:${string}`
  | `key:${string}`
  | `cli:${string}`
  | `token:${string}`
  | `certificate:${string}`
  | `system:${string}`
  | `source:${string}`;

export const accountActor = (accountId: string): Actor => `account:${accountId}`;
export const cliActor = (user: string): Actor => `cli:${user}`;
/**
 * The operator running this process, `cli:<OS user>` — as the OS reports it, so self-reported: a local
 * command (or `npm start` running the ceremony) acts as whoever runs it. A user without a name (a container
 * with an arbitrary uid) is its uid.
 */
export function localOperator(): Actor {
  try {
    return cliActor(userInfo().username);
  } catch {
    return cliActor(`uid-${process.getuid?.() ?? 'unknown'}`);
  }
}

/** The holder of a certificate's key, by the RFC 7638 thumbprint of the key that signed the request. */
export const keyActor = (jwkThumbprint: string): Actor => `key:${jwkThumbprint}`;

/** What became of the action: done, or refused (e.g. an authentication that failed). */
export type AuditOutcome = 'ok' | 'refused';

/** An entry as a change hands it over: everything but the place the log gives it. */
export interface AuditDraft {
  /** From the Clock of the process that made the change (DESIGN.md rule 4). */
  at: Date;
  actor: Actor;
  /** What was done, `<noun>.<verb>`: certificate.issue, account.deactivate, eab.create, ... */
  action: string;
  /** What it was done to, `<noun>:<id>`: certificate:<serial>, account:<id>, eab:<kid>, issuer:<id>. */
  subject: string;
  outcome: AuditOutcome;
  /** The request that asked for it, when it came over a wire (as in that listener's log). */
  requestId?: string;
  /** The group (department) the subject belongs to: a group's administrator reads its groups' entries. */
  group?: string;
  /** Facts worth keeping beside the action (reason, identifiers, group); a flat JSON object. */
  details?: Record<string, unknown>;
}

/** An entry as stored: its id (insertion order) and, once sealed, its place in the hash chain. */
export interface AuditEntry extends Omit<AuditDraft, 'details'> {
  /** Insertion order across every instance; gaps are transactions that rolled back. */
  id: number;
  /** The JSON text of `details` exactly as stored (what the chain hashes), or undefined. */
  details?: string;
  /** Its place in the chain (1, 2, ...), once sealed. */
  seal?: AuditSeal;
}

export interface AuditSeal {
  seq: number;
  /** SHA-256 of the previous sealed entry (32 zero bytes before the first), hex. */
  prevHash: string;
  /** SHA-256 over prevHash and this entry's canonical form (src/inventory/audit-chain.ts), hex. */
  hash: string;
}

/** The head of the chain as signed by the audit key: every entry up to `seq` is fixed by `hash`. */
export interface AuditCheckpoint {
  seq: number;
  hash: string;
  at: Date;
  /** The KeyStore name of the key that signed it. */
  keyName: string;
  /** The signed bytes' signature (src/inventory/audit-chain.ts checkpointPayload), hex. */
  signature: string;
}

/** Filters of an audit query (the admin API's GET /admin/v1/audit and `chancery audit export`). */
export interface AuditFilter {
  actor?: string;
  action?: string;
  subject?: string;
  /** Entries at or after. */
  from?: Date;
  /** Entries before. */
  to?: Date;
  /** Only entries of these groups (a group administrator's scope); every entry when absent. */
  groups?: readonly string[];
}

/**
 * An entry's own fields as JSON (the CLI's export and the admin API's list; each adds its chain position in
 * its own shape). `details` is the stored JSON text parsed: JSON.stringify of it gives those exact bytes back
 * (they were written by JSON.stringify), so the chain hash can be recomputed from either.
 */
export function auditEntryFields(entry: AuditEntry): Record<string, unknown> {
  return {
    id: entry.id,
    at: entry.at.toISOString(),
    actor: entry.actor,
    action: entry.action,
    subject: entry.subject,
    outcome: entry.outcome,
    ...(entry.requestId === undefined ? {} : { requestId: entry.requestId }),
    ...(entry.group === undefined ? {} : { group: entry.group }),
    ...(entry.details === undefined ? {} : { details: JSON.parse(entry.details) as unknown }),
  };
}
