import { isIP } from 'node:net';
import { GROUP_NAME, KEY_TYPES, type EcdsaCurve, type Group, type GroupPolicy, type IdentifierScope, type KeyType, type Labels } from '../core/group.js';
import type { ChallengeType } from '../core/order.js';
import { PROFILE_IDS, type ProfileId } from '../core/profile.js';
import { ALL_CHALLENGE_TYPES, formatDuration, parseDuration } from './group-policy.js';
import { identifierProblem } from './identifier-policy.js';
import { scopeProblem } from './identifier-scope.js';
import { labelProblem } from './labels.js';
import type { PolicyIssue, PolicyRule } from './policy-issue.js';

/**
 * The policy document (`chancery policy export` / `apply`): every group by name, each with its owners and
 * its policy fields at the same level. The format is plain data, read here from what a YAML parser gives
 * (so it is checked the same whoever parsed it); every problem is reported with its path, and a document
 * with any problem yields no groups.
 *
 *   version: 1
 *   groups:
 *     payments:
 *       contacts: [pki-payments@example.com]
 *       identifiers:
 *         - suffix: pay.internal
 *         - cidr: 10.20.0.0/16
 *           shared: true
 *       wildcards: false
 *       challengeTypes: [http-01, dns-01]
 *       keyTypes: [ecdsa]
 *       maxValidity: 7d
 *       profiles: [tls-server, mtls]
 *       labels: { owner: payments, environment: production }
 *       preapproved: [legacy-hsm.pay.internal]
 */
export const POLICY_DOCUMENT_VERSION = 1;

/** A group's fields, in the order the document writes them. */
export const GROUP_KEYS = [
  'contacts',
  'identifiers',
  'wildcards',
  'challengeTypes',
  'keyTypes',
  'rsaMinBits',
  'ecdsaCurves',
  'maxValidity',
  'profiles',
  'labels',
  'preapproved',
] as const;

const CURVES: readonly EcdsaCurve[] = ['P-256', 'P-384'];
const CONTACT = /^(mailto:)?[^@\s]+@[^@\s]+$/;

type Path = (string | number)[];

function isMapping(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Reads a document; `groups` is undefined whenever there is any issue. */
export function parsePolicyDocument(document: unknown): { groups?: Group[]; issues: PolicyIssue[] } {
  const issues: PolicyIssue[] = [];
  const issue = (path: Path, rule: PolicyRule, message: string): void => void issues.push({ path, rule, message });
  if (!isMapping(document)) {
    issue([], 'document', 'a policy file is a mapping with a `groups` mapping (see `chancery policy export`)');
    return { issues };
  }
  for (const key of Object.keys(document)) {
    if (key !== 'groups' && key !== 'version') issue([key], 'unknown-key', `unknown key "${key}": a policy file has only version and groups`);
  }
  if (document.version !== undefined && document.version !== POLICY_DOCUMENT_VERSION) {
    issue(['version'], 'document', `version must be ${POLICY_DOCUMENT_VERSION}`);
  }
  if (!isMapping(document.groups)) {
    issue(document.groups === undefined ? [] : ['groups'], 'document', '`groups` must be a mapping of group name to its policy');
    return { issues };
  }
  const groups: Group[] = [];
  for (const [name, body] of Object.entries(document.groups)) {
    const path: Path = ['groups', name];
    if (!GROUP_NAME.test(name)) {
      issue(path, 'group-name', `group name "${name.slice(0, 80)}" must be 1-64 letters, digits, dots, dashes or underscores, starting with a letter or digit`);
    }
    const group = parseGroup(name, body ?? {}, path, issue);
    if (group) groups.push(group);
  }
  return issues.length === 0 ? { groups, issues } : { issues };
}

function parseGroup(name: string, body: unknown, path: Path, issue: (path: Path, rule: PolicyRule, message: string) => void): Group | undefined {
  if (!isMapping(body)) {
    issue(path, 'document', `group "${name}" must be a mapping of its fields (${GROUP_KEYS.join(', ')})`);
    return undefined;
  }
  const policy: GroupPolicy = {};
  let contacts: string[] = [];
  const at = (key: string, ...rest: (string | number)[]): Path => [...path, key, ...rest];
  const list = <T>(key: string, rule: PolicyRule, read: (item: unknown, index: number) => T | undefined): T[] | undefined => {
    const value = body[key];
    if (!Array.isArray(value)) {
      issue(at(key), rule, `${key} must be a list`);
      return undefined;
    }
    const items: T[] = [];
    value.forEach((item, index) => {
      const read_ = read(item, index);
      if (read_ !== undefined) items.push(read_);
    });
    return items.length === value.length ? items : undefined;
  };
  const oneOf = <T extends string>(key: string, rule: PolicyRule, allowed: readonly T[]): T[] | undefined => {
    const items = list(key, rule, (item, index) => {
      if (typeof item === 'string' && (allowed as readonly string[]).includes(item)) return item as T;
      issue(at(key, index), rule, `${key}: "${String(item).slice(0, 40)}" is not one of ${allowed.join(', ')}`);
      return undefined;
    });
    if (items !== undefined && items.length === 0) {
      issue(at(key), rule, `${key} must name at least one of ${allowed.join(', ')} (leave it out to allow all the configuration allows)`);
      return undefined;
    }
    return items && [...new Set(items)];
  };

  for (const key of Object.keys(body)) {
    if (!(GROUP_KEYS as readonly string[]).includes(key)) issue(at(key), 'unknown-key', `unknown key "${key}" in group "${name}": the fields are ${GROUP_KEYS.join(', ')}`);
  }
  if (body.contacts !== undefined) {
    contacts =
      list('contacts', 'contacts', (item, index) => {
        if (typeof item === 'string' && CONTACT.test(item) && item.length <= 320) return item;
        issue(at('contacts', index), 'contacts', `contact "${String(item).slice(0, 80)}" must be an e-mail address (or a mailto: URI)`);
        return undefined;
      }) ?? [];
  }
  if (body.identifiers !== undefined) {
    const scopes = list('identifiers', 'identifiers', (item, index) => parseScope(item, at('identifiers', index), issue));
    if (scopes) policy.identifiers = scopes;
  }
  if (body.wildcards !== undefined) {
    if (typeof body.wildcards === 'boolean') policy.wildcards = body.wildcards;
    else issue(at('wildcards'), 'wildcards', 'wildcards must be true or false');
  }
  if (body.challengeTypes !== undefined) {
    const types = oneOf<ChallengeType>('challengeTypes', 'challengeTypes', ALL_CHALLENGE_TYPES);
    if (types) policy.challengeTypes = types;
  }
  if (body.keyTypes !== undefined) {
    const types = oneOf<KeyType>('keyTypes', 'keyTypes', KEY_TYPES);
    if (types) policy.keyTypes = types;
  }
  if (body.rsaMinBits !== undefined) {
    if (Number.isInteger(body.rsaMinBits) && (body.rsaMinBits as number) > 0) policy.rsaMinBits = body.rsaMinBits as number;
    else issue(at('rsaMinBits'), 'rsaMinBits', 'rsaMinBits must be a whole number of bits (e.g. 3072)');
  }
  if (body.ecdsaCurves !== undefined) {
    const curves = list('ecdsaCurves', 'ecdsaCurves', (item, index) => {
      if (typeof item === 'string' && /^P-\d{3}$/.test(item)) return item as EcdsaCurve;
      issue(at('ecdsaCurves', index), 'ecdsaCurves', `ecdsaCurves: "${String(item).slice(0, 40)}" is not a curve name such as ${CURVES.join(' or ')}`);
      return undefined;
    });
    if (curves && curves.length === 0) issue(at('ecdsaCurves'), 'ecdsaCurves', 'ecdsaCurves must name at least one curve (to refuse ECDSA, leave ecdsa out of keyTypes)');
    else if (curves) policy.ecdsaCurves = [...new Set(curves)];
  }
  if (body.maxValidity !== undefined) {
    const ms = typeof body.maxValidity === 'string' ? parseDuration(body.maxValidity) : undefined;
    if (ms === undefined || ms <= 0) issue(at('maxValidity'), 'maxValidity', 'maxValidity must be a duration such as 90m, 12h or 30d');
    else policy.maxValidityMs = ms;
  }
  if (body.profiles !== undefined) {
    const profiles = oneOf<ProfileId>('profiles', 'profiles', PROFILE_IDS);
    if (profiles) policy.profiles = profiles;
  }
  if (body.labels !== undefined) {
    const labels = parseLabels(body.labels, at('labels'), issue);
    if (labels) policy.labels = labels;
  }
  if (body.preapproved !== undefined) {
    const names = list('preapproved', 'preapproved', (item, index) => {
      const problem = typeof item === 'string' ? preapprovedProblem(item) : 'must be a DNS name or an IP address';
      if (problem === undefined) return isIP(item as string) ? (item as string) : (item as string).toLowerCase();
      issue(at('preapproved', index), 'preapproved', `pre-approved "${String(item).slice(0, 80)}": ${problem}`);
      return undefined;
    });
    if (names) policy.preapproved = [...new Set(names)];
  }
  return { name, contacts, policy };
}

function parseScope(item: unknown, path: Path, issue: (path: Path, rule: PolicyRule, message: string) => void): IdentifierScope | undefined {
  if (!isMapping(item)) {
    issue(path, 'identifiers', 'an identifier scope is a mapping: { suffix: NAME }, { name: NAME } or { cidr: NETWORK }, with shared: true to share it');
    return undefined;
  }
  const kinds = (['suffix', 'name', 'cidr'] as const).filter((kind) => item[kind] !== undefined);
  for (const key of Object.keys(item)) {
    if (!['suffix', 'name', 'cidr', 'shared'].includes(key)) issue([...path, key], 'unknown-key', `unknown key "${key}" in an identifier scope: use suffix, name or cidr, and shared`);
  }
  if (kinds.length !== 1) {
    issue(path, 'identifiers', 'an identifier scope names exactly one of suffix, name or cidr');
    return undefined;
  }
  const type = kinds[0]!;
  const value = item[type];
  if (typeof value !== 'string') {
    issue([...path, type], 'identifiers', `${type} must be text`);
    return undefined;
  }
  if (item.shared !== undefined && typeof item.shared !== 'boolean') {
    issue([...path, 'shared'], 'identifiers', 'shared must be true or false');
    return undefined;
  }
  const scope: IdentifierScope = { type, value: type === 'cidr' ? value.trim() : value.toLowerCase().replace(/^\./, ''), shared: item.shared === true };
  const problem = scopeProblem(scope);
  if (problem !== undefined) {
    issue([...path, type], 'identifiers', `${type} "${value.slice(0, 80)}": ${problem}`);
    return undefined;
  }
  return scope;
}

function parseLabels(value: unknown, path: Path, issue: (path: Path, rule: PolicyRule, message: string) => void): Labels | undefined {
  if (!isMapping(value)) {
    issue(path, 'labels', 'labels must be a mapping of key to value');
    return undefined;
  }
  const labels: Labels = {};
  let ok = true;
  for (const [key, raw] of Object.entries(value)) {
    // A YAML scalar such as `criticality: 1` or `pci: true` is meant as text.
    const text = typeof raw === 'string' || typeof raw === 'number' || typeof raw === 'boolean' ? String(raw) : undefined;
    const problem = text === undefined ? `label "${key}" must be text` : labelProblem(key, text);
    if (problem !== undefined) {
      issue([...path, key], 'labels', problem);
      ok = false;
    } else labels[key] = text!;
  }
  return ok ? labels : undefined;
}

/** Why a name cannot be pre-approved, or undefined: an exact DNS name (no wildcard) or an IP address. */
export function preapprovedProblem(name: string): string | undefined {
  if (isIP(name) !== 0) return undefined;
  if (name.includes('*')) return 'wildcard names cannot be pre-approved: they are proven with dns-01 only';
  return identifierProblem({ type: 'dns', value: name.toLowerCase() })?.detail;
}

/** The document of a set of groups (`chancery policy export`): `default` first, then by name; empty fields left out. */
export function policyDocumentOf(groups: readonly Group[]): { version: number; groups: Record<string, Record<string, unknown>> } {
  const sorted = [...groups].sort((a, b) => (a.name === 'default' ? -1 : b.name === 'default' ? 1 : a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return { version: POLICY_DOCUMENT_VERSION, groups: Object.fromEntries(sorted.map((g) => [g.name, groupDocumentOf(g)])) };
}

/** One group as the document writes it. */
export function groupDocumentOf(group: Group): Record<string, unknown> {
  const p = group.policy;
  const out: Record<string, unknown> = {};
  if (group.contacts.length) out.contacts = [...group.contacts];
  if (p.identifiers) out.identifiers = p.identifiers.map((s) => ({ [s.type]: s.value, ...(s.shared ? { shared: true } : {}) }));
  if (p.wildcards !== undefined) out.wildcards = p.wildcards;
  if (p.challengeTypes) out.challengeTypes = [...p.challengeTypes];
  if (p.keyTypes) out.keyTypes = [...p.keyTypes];
  if (p.rsaMinBits !== undefined) out.rsaMinBits = p.rsaMinBits;
  if (p.ecdsaCurves) out.ecdsaCurves = [...p.ecdsaCurves];
  if (p.maxValidityMs !== undefined) out.maxValidity = formatDuration(p.maxValidityMs);
  if (p.profiles) out.profiles = [...p.profiles];
  if (p.labels && Object.keys(p.labels).length) out.labels = { ...p.labels };
  if (p.preapproved) out.preapproved = [...p.preapproved];
  return out;
}
