import { DAY, HOUR, MINUTE, SECOND } from '../core/clock.js';
import { CaError, type CaErrorKind, type SubProblem } from '../core/errors.js';
import { DEFAULT_GROUP, type EcdsaCurve, type Group, type KeyType, type Labels } from '../core/group.js';
import type { Identifier } from '../core/identifier.js';
import type { KeyFacts } from '../core/key-facts.js';
import type { Authorization, ChallengeType } from '../core/order.js';
import { PROFILE_IDS, type CertificateProfile, type ProfileId } from '../core/profile.js';
import { challengeTypesFor } from './challenge-policy.js';
import { canonicalIp, compileScope, describeScope, scopeCovers, scopeReaches, type CompiledScope } from './identifier-scope.js';
import type { KeyPolicy } from './key-policy.js';
import type { ProfileRegistry } from './profiles.js';

/**
 * Group policy at issuance: what a group's accounts may order and get, as pure functions over a compiled
 * snapshot of every group (GroupSet). A group only narrows the ceiling (the global limits in configuration:
 * the profile registry and its validities, the certificate key policy), so every check here comes after the
 * global one and refuses what the group's policy leaves out, naming the policy field that refused it.
 */

/** The global limits a group can narrow and never widen. */
export interface PolicyCeiling {
  profileIds: readonly ProfileId[];
  defaultProfileId: ProfileId;
  /** The longest validity of any profile: the most a group's maxValidity may say. */
  maxValidityMs: number;
  keys: Pick<KeyPolicy, 'minRsaBits' | 'maxRsaBits' | 'allowedCurves'>;
}

export const ALL_CHALLENGE_TYPES: readonly ChallengeType[] = ['http-01', 'dns-01', 'tls-alpn-01'];

export function ceilingOf(profiles: Pick<ProfileRegistry, 'all' | 'defaultId'>, keys: KeyPolicy): PolicyCeiling {
  const all = profiles.all();
  return {
    profileIds: all.map((p) => p.name as ProfileId),
    defaultProfileId: profiles.defaultId,
    maxValidityMs: Math.max(...all.map((p) => p.validityMs)),
    keys: { minRsaBits: keys.minRsaBits, maxRsaBits: keys.maxRsaBits, allowedCurves: keys.allowedCurves },
  };
}

/** One group's policy compiled for the hot path; absent fields are the ceiling's. */
export interface GroupRules {
  readonly name: string;
  readonly scopes?: readonly CompiledScope[];
  readonly wildcards: boolean;
  readonly challengeTypes?: ReadonlySet<ChallengeType>;
  readonly keyTypes?: ReadonlySet<KeyType>;
  readonly rsaMinBits?: number;
  readonly ecdsaCurves?: ReadonlySet<EcdsaCurve>;
  readonly maxValidityMs?: number;
  readonly profiles?: readonly ProfileId[];
  readonly labels: Labels;
  /** `dns:name` / `ip:canonical address` of each pre-approved name. */
  readonly preapproved: ReadonlySet<string>;
}

/** Every group compiled, with the scopes groups declare (what a group without scopes may not reach). */
export interface GroupSet {
  rules(name: string | undefined): GroupRules | undefined;
  /** Every declared scope, with its group. */
  readonly claims: readonly { group: string; scope: CompiledScope }[];
}

function identifierKey(identifier: Identifier): string {
  return identifier.type === 'ip' ? `ip:${canonicalIp(identifier.value) ?? identifier.value}` : `dns:${identifier.value.toLowerCase()}`;
}

function preapprovedKey(name: string): string {
  const ip = canonicalIp(name);
  return ip === undefined ? `dns:${name.toLowerCase()}` : `ip:${ip}`;
}

/** Compiles one group (its policy must have passed validateGroups). */
export function compileGroup(group: Group): GroupRules {
  const p = group.policy;
  return {
    name: group.name,
    ...(p.identifiers ? { scopes: p.identifiers.map(compileScope) } : {}),
    wildcards: p.wildcards ?? true,
    ...(p.challengeTypes ? { challengeTypes: new Set(p.challengeTypes) } : {}),
    ...(p.keyTypes ? { keyTypes: new Set(p.keyTypes) } : {}),
    ...(p.rsaMinBits !== undefined ? { rsaMinBits: p.rsaMinBits } : {}),
    ...(p.ecdsaCurves ? { ecdsaCurves: new Set(p.ecdsaCurves) } : {}),
    ...(p.maxValidityMs !== undefined ? { maxValidityMs: p.maxValidityMs } : {}),
    ...(p.profiles ? { profiles: [...p.profiles] } : {}),
    labels: { ...(p.labels ?? {}) },
    preapproved: new Set((p.preapproved ?? []).map(preapprovedKey)),
  };
}

export function compileGroups(groups: readonly Group[]): GroupSet {
  const byName = new Map(groups.map((g) => [g.name, compileGroup(g)]));
  const claims = [...byName.values()].flatMap((rules) => (rules.scopes ?? []).map((scope) => ({ group: rules.name, scope })));
  return { rules: (name) => byName.get(name ?? DEFAULT_GROUP), claims };
}

/** The group of an account (or credential): its own, or `default` for one made without EAB. */
export function groupOf(subject: { group?: string }): string {
  return subject.group ?? DEFAULT_GROUP;
}

const shown = (identifier: Identifier): string => identifier.value;

/** The challenge types a group's authorization for the identifier offers: the usual ones it allows. */
export function groupChallengeTypes(rules: GroupRules, identifier: Identifier, wildcard: boolean): ChallengeType[] {
  const usual = challengeTypesFor(identifier, wildcard);
  return rules.challengeTypes ? usual.filter((type) => rules.challengeTypes!.has(type)) : usual;
}

/** True when the group lists the (non-wildcard) identifier as pre-approved: issued without a challenge. */
export function isPreapproved(rules: GroupRules, identifier: Identifier, wildcard: boolean): boolean {
  return !wildcard && rules.preapproved.has(identifierKey(identifier));
}

/**
 * Why the group refuses each identifier of an order (normalized, wildcards as "*.name"): one subproblem per
 * refused identifier, naming the policy field. Empty when the group allows them all.
 */
export function refusedIdentifiers(set: GroupSet, rules: GroupRules, identifiers: readonly Identifier[]): SubProblem[] {
  const refused: SubProblem[] = [];
  const refuse = (identifier: Identifier, detail: string): void => void refused.push({ kind: 'rejectedIdentifier', detail, identifier });
  const group = `group "${rules.name}"`;
  for (const identifier of identifiers) {
    const wildcard = identifier.type === 'dns' && identifier.value.startsWith('*.');
    if (wildcard && !rules.wildcards) {
      refuse(identifier, `${shown(identifier)}: ${group} does not allow wildcard names (policy wildcards: false)`);
      continue;
    }
    if (rules.scopes !== undefined) {
      if (!rules.scopes.some((scope) => scopeCovers(scope, identifier))) {
        const scopes = rules.scopes.length ? rules.scopes.map(describeScope).join(', ') : 'none';
        refuse(identifier, `${shown(identifier)} is outside the identifier scopes of ${group} (policy identifiers: ${scopes})`);
        continue;
      }
    } else {
      const claim = set.claims.find((c) => c.group !== rules.name && scopeReaches(c.scope, identifier));
      if (claim !== undefined) {
        refuse(
          identifier,
          `${shown(identifier)} is in the scope ${describeScope(claim.scope)} of group "${claim.group}"; ${group} declares no identifier scopes and may have only names no group declares (policy identifiers)`,
        );
        continue;
      }
    }
    const base: Identifier = wildcard ? { type: 'dns', value: identifier.value.slice(2) } : identifier;
    if (!isPreapproved(rules, base, wildcard) && groupChallengeTypes(rules, base, wildcard).length === 0) {
      const usual = challengeTypesFor(base, wildcard).join(' or ');
      refuse(identifier, `${shown(identifier)} can only be validated with ${usual}, which ${group} does not allow (policy challengeTypes: ${[...rules.challengeTypes!].join(', ')})`);
    }
  }
  return refused;
}

/** Throws rejectedIdentifier with one subproblem per identifier the group refuses. */
export function checkGroupIdentifiers(set: GroupSet, rules: GroupRules, identifiers: readonly Identifier[]): void {
  const refused = refusedIdentifiers(set, rules, identifiers);
  if (refused.length === 0) return;
  const count = refused.length === 1 ? 'an identifier' : `${refused.length} identifiers`;
  throw new CaError('rejectedIdentifier', `the policy of group "${rules.name}" refuses ${count}: ${refused.map((p) => p.detail).join('; ')}`, {
    subproblems: refused,
  });
}

/**
 * An authorization the account already holds may serve a new order only if the group would create it so
 * today: a pending one offers only challenge types the group allows (and the name is not pre-approved,
 * which gets a valid one instead); a valid one was proven by an allowed type, or, without a challenge, its
 * name is still pre-approved.
 */
export function mayReuse(rules: GroupRules, authorization: Pick<Authorization, 'status' | 'identifier' | 'wildcard' | 'challenges'>): boolean {
  const allowed = (type: ChallengeType): boolean => rules.challengeTypes === undefined || rules.challengeTypes.has(type);
  if (authorization.status === 'valid') {
    const proof = authorization.challenges.find((c) => c.status === 'valid');
    return proof === undefined ? isPreapproved(rules, authorization.identifier, authorization.wildcard) : allowed(proof.type);
  }
  if (isPreapproved(rules, authorization.identifier, authorization.wildcard)) return false;
  return authorization.challenges.every((c) => allowed(c.type));
}

const KEY_TYPE_NAMES: Record<KeyType, string> = { rsa: 'RSA', ecdsa: 'ECDSA' };

/** Throws badPublicKey naming the group's limit when a certificate key (already within the ceiling) is outside it. */
export function checkGroupKey(rules: GroupRules, facts: KeyFacts): void {
  const group = `group "${rules.name}"`;
  const type: KeyType | undefined = facts.family === 'rsa' ? 'rsa' : facts.family === 'ec' ? 'ecdsa' : undefined;
  if (type === undefined) return; // the ceiling refuses every other family
  if (rules.keyTypes !== undefined && !rules.keyTypes.has(type)) {
    const allowed = [...rules.keyTypes].map((t) => KEY_TYPE_NAMES[t]).join(' or ');
    throw new CaError('badPublicKey', `${group} allows only ${allowed} certificate keys (policy keyTypes); this is an ${KEY_TYPE_NAMES[type]} key`);
  }
  if (facts.family === 'rsa' && rules.rsaMinBits !== undefined && facts.bits < rules.rsaMinBits) {
    throw new CaError('badPublicKey', `RSA key of ${facts.bits} bits is below the minimum of ${group}: at least ${rules.rsaMinBits} bits (policy rsaMinBits)`);
  }
  if (facts.family === 'ec' && rules.ecdsaCurves !== undefined && !rules.ecdsaCurves.has(facts.curve as EcdsaCurve)) {
    throw new CaError('badPublicKey', `the certificate key is on curve ${facts.curve}; ${group} allows ${[...rules.ecdsaCurves].join(' or ')} (policy ecdsaCurves)`);
  }
}

/**
 * The profile an order of the group gets: the one it names if the group allows it, else (none named) the
 * registry's default if allowed, else the group's first. invalidProfile names the group's list.
 */
export function groupProfileId(rules: GroupRules, requested: string | undefined, registryDefault: ProfileId): ProfileId | string {
  const allowed = rules.profiles;
  if (allowed === undefined) return requested ?? registryDefault;
  if (requested === undefined) return allowed.includes(registryDefault) ? registryDefault : allowed[0]!;
  if (!allowed.includes(requested as ProfileId)) {
    const known = (PROFILE_IDS as readonly string[]).includes(requested);
    throw new CaError(
      'invalidProfile',
      `profile "${requested.slice(0, 64)}" is ${known ? '' : 'unknown and '}not allowed for group "${rules.name}": choose one of ${allowed.join(', ')} (policy profiles)`,
    );
  }
  return requested;
}

/** The profile cut to the group's maxValidity (a backdate of at most a tenth of it, as the registry does). */
export function narrowProfile(profile: CertificateProfile, rules: GroupRules): CertificateProfile {
  if (rules.maxValidityMs === undefined || rules.maxValidityMs >= profile.validityMs) return profile;
  const validityMs = rules.maxValidityMs;
  return { ...profile, validityMs, backdateMs: Math.min(profile.backdateMs, Math.floor(validityMs / 10)) };
}

/**
 * Refuses (with `kind`) requested bounds longer than the group's maxValidity, naming it — before the
 * validity window is computed on the narrowed profile, whose own message would name only the profile.
 */
export function checkGroupValidity(rules: GroupRules, requested: { notBefore?: Date; notAfter?: Date }, now: Date, kind: CaErrorKind): void {
  if (rules.maxValidityMs === undefined || requested.notAfter === undefined) return;
  const start = requested.notBefore ?? now;
  // RFC 5280 §4.1.2.5: both ends count, so a span of exactly maxValidity ends one second before start + max.
  if (requested.notAfter.getTime() > start.getTime() + rules.maxValidityMs - SECOND) {
    throw new CaError(
      kind,
      `notAfter ${requested.notAfter.toISOString()} is beyond the maximum validity of group "${rules.name}": ${formatDuration(rules.maxValidityMs)} (policy maxValidity)`,
    );
  }
}

/** The labels recorded with a certificate: the group's defaults with the account's (its credential's) over them. */
export function certificateLabels(rules: GroupRules, accountLabels: Labels | undefined): Labels {
  return { ...rules.labels, ...(accountLabels ?? {}) };
}

/** 90m, 12h, 30d: the largest whole unit (as the configuration's durations are written). */
export function formatDuration(ms: number): string {
  if (ms % DAY === 0) return `${ms / DAY}d`;
  if (ms % HOUR === 0) return `${ms / HOUR}h`;
  if (ms % MINUTE === 0) return `${ms / MINUTE}m`;
  return `${Math.round(ms / SECOND)}s`;
}

/** Reads 90m, 12h or 30d; undefined for anything else. */
export function parseDuration(text: string): number | undefined {
  const match = /^(\d{1,6})([mhd])$/.exec(text.trim());
  if (match === null) return undefined;
  const unit = { m: MINUTE, h: HOUR, d: DAY }[match[2] as 'm' | 'h' | 'd'];
  return Number(match[1]) * unit;
}
