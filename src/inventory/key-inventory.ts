import { createPublicKey } from 'node:crypto';
import type { IssuedCertificate } from '../core/certificate.js';
import { MINUTE, type Clock } from '../core/clock.js';
import { CaError } from '../core/errors.js';
import type { KeyFacts } from '../core/key-facts.js';
import type { Page } from '../core/page.js';
import type { KeyReportEntry, SubjectKey } from '../core/subject-key.js';
import type { Scope } from '../policy/admin-rbac.js';
import { checkKeyFacts, keyFactsOf, type KeyPolicy } from '../policy/key-policy.js';
import { scopeGroups } from './scope-groups.js';

interface KeyCursor {
  at: Date;
  serial: string;
}

/** A certificate as the key inventory reads it (db/repositories/subject-key-repository.ts). */
export interface KeyedCertificate {
  serial: string;
  der: Uint8Array;
  spkiSha256: string;
  accountId?: string;
  group?: string;
  notAfter: Date;
  createdAt: Date;
}

/** What one batch learned about one key. */
export interface SubjectKeyFacts {
  spkiSha256: string;
  kind: string;
  firstSerial: string;
  firstAccountId?: string;
  firstGroup?: string;
  firstSeenAt: Date;
  sharedAccounts: boolean;
  sharedGroups: boolean;
  lastNotAfter: Date;
}

/** What the key inventory needs of the database. */
export interface SubjectKeyStore {
  cursor(name: string): Promise<KeyCursor | undefined>;
  certificatesAfter(after: KeyCursor | undefined, limit: number): Promise<KeyedCertificate[]>;
  record(name: string, facts: readonly SubjectKeyFacts[], cursor: KeyCursor | undefined): Promise<void>;
  kinds(): Promise<string[]>;
  ofKinds(kinds: readonly string[], at: Date, groups: readonly string[] | undefined, page: { cursor?: string; limit: number }): Promise<Page<SubjectKey>>;
  shared(at: Date, groups: readonly string[] | undefined, page: { cursor?: string; limit: number }): Promise<Page<SubjectKey>>;
  certificatesOf(
    spkis: readonly string[],
    groups: readonly string[] | undefined,
    perKey: number,
  ): Promise<Map<string, { certificates: IssuedCertificate[]; count: number; accounts: number; groups: number }>>;
}

const CURSOR = 'subject-keys';
const BATCH = 1000;
/**
 * How far behind the newest certificate the cursor stays. A certificate's created_at is taken before it is
 * signed and stored, so one can commit after a later one (an HSM that is slow for a moment, instances whose
 * clocks differ by a second); the walk re-reads this much on every pass, which changes nothing for rows
 * already read (every write is idempotent), so none is ever skipped.
 */
export const KEY_WALK_LAG_MS = 2 * MINUTE;
/** How often the inventory.keys job runs. */
export const KEY_INVENTORY_INTERVAL_MS = MINUTE;
/** Certificates shown per key in a report (the count says how many there are). */
const CERTIFICATES_PER_KEY = 20;

/** The kind a key is grouped by, e.g. rsa/2048/65537, ec/P-256: what the key policy judges, nothing else. */
export function keyKind(facts: KeyFacts): string {
  switch (facts.family) {
    case 'rsa':
      return `rsa/${facts.bits}/${facts.publicExponent}`;
    case 'ec':
      return `ec/${facts.curve}`;
    case 'ed25519':
      return 'ed25519';
    default:
      return `other/${facts.type}`;
  }
}

/** The facts a kind stands for (the inverse of keyKind). */
export function factsOfKind(kind: string): KeyFacts {
  const [family, a, b] = kind.split('/');
  if (family === 'rsa' && /^\d+$/.test(a ?? '') && /^\d+$/.test(b ?? '')) return { family: 'rsa', bits: Number(a), publicExponent: BigInt(b!) };
  if (family === 'ec' && a !== undefined) return { family: 'ec', curve: a };
  if (family === 'ed25519') return { family: 'ed25519' };
  return { family: 'other', type: a ?? kind };
}

/** Why a key of this kind is refused by `policy` today, or undefined when it passes. */
export function weakness(kind: string, policy: KeyPolicy): string | undefined {
  try {
    checkKeyFacts(factsOfKind(kind), policy, 'the key');
    return undefined;
  } catch (error) {
    if (error instanceof CaError && error.kind === 'badPublicKey') return error.detail;
    throw error;
  }
}

/**
 * The key inventory: every subject key certified, by SPKI SHA-256 (subject_keys, migration 0014), kept by
 * the inventory.keys job from the certificates table in (created_at, serial) order — off the issuance path
 * (it costs issuance nothing). Reports: keys in several certificates across accounts or groups, and keys
 * weaker than today's key policy (policy/key-policy.ts: the one check issuance applies to CSR keys), each with
 * the certificates that carry it in the caller's scope.
 */
export class KeyInventory {
  constructor(
    private readonly deps: {
      store: SubjectKeyStore;
      clock: Clock;
      /** The SubjectPublicKeyInfo of a certificate (ca/ parses it; compose.ts passes the function). */
      spkiOf: (der: Uint8Array) => Uint8Array;
      /** The policy certificate keys are issued under today. */
      policy: KeyPolicy;
    },
  ) {}

  /** One pass of the inventory.keys job: reads the certificates stored since the cursor. Returns how many. */
  async sync(signal?: AbortSignal): Promise<number> {
    const { store, clock } = this.deps;
    let cursor = await store.cursor(CURSOR);
    let read = 0;
    for (;;) {
      signal?.throwIfAborted();
      const batch = await store.certificatesAfter(cursor, BATCH);
      if (batch.length === 0) return read;
      read += batch.length;
      const settled = clock.now().getTime() - KEY_WALK_LAG_MS;
      // The cursor moves to the last certificate old enough to be settled; newer ones are read again next time.
      const lastSettled = batch.filter((c) => c.createdAt.getTime() <= settled).at(-1);
      const next = lastSettled === undefined ? undefined : { at: lastSettled.createdAt, serial: lastSettled.serial };
      await store.record(CURSOR, this.fold(batch), next);
      if (batch.length < BATCH || next === undefined) return read;
      cursor = next;
    }
  }

  /** Keys weaker than today's policy and still in use, by kind; each with its certificates in scope. */
  async weak(scope: Scope, filter: { group?: string }, page: { cursor?: string; limit: number }): Promise<Page<KeyReportEntry & { weakness: string }>> {
    const kinds = (await this.deps.store.kinds()).map((kind) => ({ kind, why: weakness(kind, this.deps.policy) })).filter((k) => k.why !== undefined);
    const groups = scopeGroups(scope, filter.group);
    if (kinds.length === 0) return { items: [] };
    const found = await this.deps.store.ofKinds(
      kinds.map((k) => k.kind),
      this.deps.clock.now(),
      groups,
      page,
    );
    const why = new Map(kinds.map((k) => [k.kind, k.why!]));
    const entries = await this.withCertificates(found.items, groups);
    return { ...found, items: entries.map((entry) => ({ ...entry, weakness: why.get(entry.key.kind)! })) };
  }

  /** Keys in use that several accounts or groups have certified, judged among the certificates in scope. */
  async shared(scope: Scope, filter: { group?: string }, page: { cursor?: string; limit: number }): Promise<Page<KeyReportEntry>> {
    const groups = scopeGroups(scope, filter.group);
    const found = await this.deps.store.shared(this.deps.clock.now(), groups, page);
    return { ...found, items: await this.withCertificates(found.items, groups) };
  }

  private async withCertificates(keys: readonly SubjectKey[], groups: readonly string[] | undefined): Promise<KeyReportEntry[]> {
    if (keys.length === 0) return [];
    const certificates = await this.deps.store.certificatesOf(
      keys.map((k) => k.spkiSha256),
      groups,
      CERTIFICATES_PER_KEY,
    );
    return keys.map((key) => {
      const of = certificates.get(key.spkiSha256) ?? { certificates: [], count: 0, accounts: 0, groups: 0 };
      return { key, certificates: of.certificates, certificateCount: of.count, accounts: of.accounts, groups: of.groups };
    });
  }

  /** One batch, folded per key: its first certificate's holder, and whether the batch alone shares it. */
  private fold(batch: readonly KeyedCertificate[]): SubjectKeyFacts[] {
    const byKey = new Map<string, SubjectKeyFacts>();
    for (const certificate of batch) {
      const known = byKey.get(certificate.spkiSha256);
      if (known === undefined) {
        byKey.set(certificate.spkiSha256, {
          spkiSha256: certificate.spkiSha256,
          kind: this.kindOf(certificate),
          firstSerial: certificate.serial,
          ...(certificate.accountId === undefined ? {} : { firstAccountId: certificate.accountId }),
          ...(certificate.group === undefined ? {} : { firstGroup: certificate.group }),
          firstSeenAt: certificate.createdAt,
          sharedAccounts: false,
          sharedGroups: false,
          lastNotAfter: certificate.notAfter,
        });
        continue;
      }
      if (known.firstAccountId !== certificate.accountId) known.sharedAccounts = true;
      if (known.firstGroup !== certificate.group) known.sharedGroups = true;
      if (certificate.notAfter > known.lastNotAfter) known.lastNotAfter = certificate.notAfter;
    }
    return [...byKey.values()];
  }

  private kindOf(certificate: KeyedCertificate): string {
    try {
      return keyKind(keyFactsOf(createPublicKey({ key: Buffer.from(this.deps.spkiOf(certificate.der)), format: 'der', type: 'spki' })));
    } catch {
      // A key Node cannot import (an algorithm it does not know) is still a key in use: it is reported, as weak.
      return 'other/unreadable';
    }
  }
}
