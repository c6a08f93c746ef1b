import { CaError } from '../../core/errors.js';
import type { EcdsaCurve, Group, GroupPolicy, IdentifierScope, KeyType } from '../../core/group.js';
import type { ChallengeType } from '../../core/order.js';
import type { ProfileId } from '../../core/profile.js';
import type { Queryable } from '../database.js';
import { FOREIGN_KEY_VIOLATION, UNIQUE_VIOLATION, sqlError } from '../errors.js';
import { labelsFromJson } from '../row-mappers.js';

const COLUMNS = 'name, contacts, policy, updated_at';

/**
 * Key of the advisory lock that serializes policy changes (`chancery policy apply`, the admin API): each
 * checks the whole set of groups (scope overlaps) against what it read, so two must not interleave. An
 * arbitrary fixed value; nothing else in Chancery uses it (compare MIGRATION_LOCK_KEY).
 */
export const GROUP_POLICY_LOCK_KEY = 7_263_512_016;

/** groups (0009_groups). jsonb columns are parsed by both drivers on the way out, written as JSON text. */
export interface GroupRow {
  name: string;
  contacts: unknown;
  policy: unknown;
  updated_at: Date | null;
}

function corrupt(what: string): CaError {
  return new CaError('serverInternal', `unexpected value in the database: ${what}`);
}

function strings(value: unknown, what: string): string[] {
  if (!Array.isArray(value) || value.some((v) => typeof v !== 'string')) throw corrupt(what);
  return value as string[];
}

/**
 * The stored policy back to a GroupPolicy: only the fields this code writes, each checked for its type
 * (the form rules were checked when it was written, policy/policy-document.ts).
 */
function policyFromJson(value: unknown, group: string): GroupPolicy {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw corrupt(`policy of group ${group}`);
  const raw = value as Record<string, unknown>;
  const policy: GroupPolicy = {};
  const what = (field: string): string => `policy.${field} of group ${group}`;
  if (raw.identifiers !== undefined) {
    if (!Array.isArray(raw.identifiers)) throw corrupt(what('identifiers'));
    policy.identifiers = raw.identifiers.map((s: unknown): IdentifierScope => {
      const scope = s as Partial<IdentifierScope> | null;
      if (!scope || !['suffix', 'name', 'cidr'].includes(String(scope.type)) || typeof scope.value !== 'string') throw corrupt(what('identifiers'));
      return { type: scope.type!, value: scope.value, shared: scope.shared === true };
    });
  }
  if (raw.wildcards !== undefined) {
    if (typeof raw.wildcards !== 'boolean') throw corrupt(what('wildcards'));
    policy.wildcards = raw.wildcards;
  }
  if (raw.challengeTypes !== undefined) policy.challengeTypes = strings(raw.challengeTypes, what('challengeTypes')) as ChallengeType[];
  if (raw.keyTypes !== undefined) policy.keyTypes = strings(raw.keyTypes, what('keyTypes')) as KeyType[];
  if (raw.ecdsaCurves !== undefined) policy.ecdsaCurves = strings(raw.ecdsaCurves, what('ecdsaCurves')) as EcdsaCurve[];
  if (raw.profiles !== undefined) policy.profiles = strings(raw.profiles, what('profiles')) as ProfileId[];
  if (raw.preapproved !== undefined) policy.preapproved = strings(raw.preapproved, what('preapproved'));
  for (const field of ['rsaMinBits', 'maxValidityMs'] as const) {
    if (raw[field] === undefined) continue;
    if (!Number.isInteger(raw[field])) throw corrupt(what(field));
    policy[field] = raw[field] as number;
  }
  if (raw.labels !== undefined) policy.labels = labelsFromJson(raw.labels, what('labels'));
  return policy;
}

export function groupFromRow(row: GroupRow): Group {
  const group: Group = { name: row.name, contacts: strings(row.contacts, `contacts of group ${row.name}`), policy: policyFromJson(row.policy, row.name) };
  if (row.updated_at !== null) group.updatedAt = row.updated_at;
  return group;
}

/**
 * Groups (departments) and their policy. Changed only by a policy change (GroupService), which runs under
 * lockForChange() in one transaction; read whole by the group directory every instance caches.
 */
export class GroupRepository {
  constructor(private readonly db: Queryable) {}

  /** Every group, by name: a department list, small enough not to page. */
  async list(): Promise<Group[]> {
    const result = await this.db.query<GroupRow>(`SELECT ${COLUMNS} FROM groups ORDER BY name`, []);
    return result.rows.map(groupFromRow);
  }

  async find(name: string): Promise<Group | undefined> {
    const result = await this.db.query<GroupRow>(`SELECT ${COLUMNS} FROM groups WHERE name = $1`, [name]);
    const row = result.rows[0];
    return row === undefined ? undefined : groupFromRow(row);
  }

  /** Serializes policy changes until the calling transaction ends (see GROUP_POLICY_LOCK_KEY). */
  async lockForChange(): Promise<void> {
    await this.db.query('SELECT pg_advisory_xact_lock($1)', [GROUP_POLICY_LOCK_KEY]);
  }

  /** Throws CaError('conflict') when the name is taken. */
  async insert(group: Group, at: Date): Promise<void> {
    try {
      await this.db.query(`INSERT INTO groups (${COLUMNS}) VALUES ($1, $2::text::jsonb, $3::text::jsonb, $4)`, [
        group.name,
        JSON.stringify(group.contacts),
        JSON.stringify(group.policy),
        at,
      ]);
    } catch (error) {
      if (sqlError(error).code === UNIQUE_VIOLATION) throw new CaError('conflict', `group "${group.name}" already exists`);
      throw error;
    }
  }

  /** Throws CaError('notFound') for an unknown group. */
  async update(group: Group, at: Date): Promise<void> {
    const result = await this.db.query('UPDATE groups SET contacts = $2::text::jsonb, policy = $3::text::jsonb, updated_at = $4 WHERE name = $1', [
      group.name,
      JSON.stringify(group.contacts),
      JSON.stringify(group.policy),
      at,
    ]);
    if (result.rowCount !== 1) throw new CaError('notFound', `group "${group.name}" does not exist`);
  }

  /** Throws CaError('conflict') when accounts or EAB credentials still name it, 'notFound' when it is not there. */
  async remove(name: string): Promise<void> {
    try {
      const result = await this.db.query('DELETE FROM groups WHERE name = $1', [name]);
      if (result.rowCount !== 1) throw new CaError('notFound', `group "${name}" does not exist`);
    } catch (error) {
      if (sqlError(error).code === FOREIGN_KEY_VIOLATION) throw new CaError('conflict', `group "${name}" is still named by accounts or EAB credentials`);
      throw error;
    }
  }

  /** How many accounts and EAB credentials name each of `names` (those named by none are left out). */
  async usage(names: readonly string[]): Promise<Map<string, { accounts: number; credentials: number }>> {
    if (names.length === 0) return new Map();
    const result = await this.db.query<{ name: string; accounts: number; credentials: number }>(
      `SELECT n.name,
         (SELECT count(*) FROM accounts WHERE group_name = n.name)::int AS accounts,
         (SELECT count(*) FROM eab_credentials WHERE group_name = n.name)::int AS credentials
       FROM unnest($1::text[]) AS n (name)`,
      [[...names]],
    );
    return new Map(result.rows.filter((r) => r.accounts + r.credentials > 0).map((r) => [r.name, { accounts: r.accounts, credentials: r.credentials }]));
  }
}
