import type { IdentifierScope } from '../core/group.js';
import type { Identifier } from '../core/identifier.js';
import { formatIp, inNetwork, ipAddress16, networkWithin, parseIpNetwork, type IpNetwork } from '../core/ip-network.js';
import { identifierProblem } from './identifier-policy.js';

/**
 * Identifier scopes of groups: which DNS names and IP addresses a scope covers, and whether two scopes
 * overlap. DNS matching is label-wise on lower-cased names (RFC 4343: DNS names compare case-insensitively);
 * a suffix covers the name itself and every name below it. A wildcard name covers exactly one label below
 * its base (RFC 6125 §6.4.3), which is what decides whether it reaches into another group's scope. IP
 * scopes are CIDR networks read by core/ip-network.ts, the same reading the validation network policy uses.
 */

/** A scope ready for matching: DNS values lower-cased without a leading dot, networks parsed. */
export interface CompiledScope {
  readonly type: IdentifierScope['type'];
  readonly value: string;
  readonly shared: boolean;
  readonly network?: IpNetwork;
}

/** How a scope is written in messages: `suffix pay.internal`, `cidr 10.20.0.0/16 (shared)`. */
export function describeScope(scope: Pick<IdentifierScope, 'type' | 'value' | 'shared'>): string {
  return `${scope.type} ${scope.value}${scope.shared ? ' (shared)' : ''}`;
}

/** Why a scope is not well formed, or undefined. */
export function scopeProblem(scope: IdentifierScope): string | undefined {
  if (scope.type === 'cidr') {
    const parsed = parseIpNetwork(scope.value);
    return 'error' in parsed ? parsed.error : undefined;
  }
  const value = scope.value.toLowerCase().replace(/^\./, '');
  if (scope.type === 'suffix' && value.includes('*')) return `suffix "${scope.value}" must not contain "*": a suffix already covers every name below it`;
  const problem = identifierProblem({ type: 'dns', value });
  return problem?.detail;
}

/** Compiles a well-formed scope (see scopeProblem); throws on one that is not. */
export function compileScope(scope: IdentifierScope): CompiledScope {
  if (scope.type === 'cidr') {
    const parsed = parseIpNetwork(scope.value);
    if ('error' in parsed) throw new Error(parsed.error);
    return { type: 'cidr', value: parsed.text, shared: scope.shared, network: parsed };
  }
  return { type: scope.type, value: scope.value.toLowerCase().replace(/^\./, ''), shared: scope.shared };
}

/** `name` is `base` or below it. */
function dnsWithin(name: string, base: string): boolean {
  return name === base || name.endsWith(`.${base}`);
}

/** `name` is exactly one label below `base`. */
function oneLabelBelow(name: string, base: string): boolean {
  return name.endsWith(`.${base}`) && !name.slice(0, -base.length - 1).includes('.');
}

/** The name an identifier's wildcard stands on: "*.pay.internal" -> pay.internal. */
function wildcardBase(value: string): string | undefined {
  return value.startsWith('*.') ? value.slice(2) : undefined;
}

/** The canonical text of an IP identifier (so 2001:db8::1 and 2001:DB8:0::1 compare equal). */
export function canonicalIp(value: string): string | undefined {
  const bytes = ipAddress16(value);
  return bytes === undefined ? undefined : formatIp(bytes);
}

/**
 * True when the scope lets a group order `identifier` (normalized; a wildcard as "*.name"): a suffix holds
 * names at or below it (a wildcard when its base is); a name scope only the name as written; a CIDR scope
 * the addresses inside it.
 */
export function scopeCovers(scope: CompiledScope, identifier: Identifier): boolean {
  if (identifier.type === 'ip') {
    if (scope.network === undefined) return false;
    const bytes = ipAddress16(identifier.value);
    return bytes !== undefined && inNetwork(scope.network, bytes);
  }
  if (scope.type === 'cidr') return false;
  if (scope.type === 'name') return identifier.value === scope.value;
  return dnsWithin(wildcardBase(identifier.value) ?? identifier.value, scope.value);
}

/**
 * True when a certificate for `identifier` would be valid for some name the scope holds: what a group
 * without scopes of its own may not order from a group that declares them. A wildcard reaches one label
 * below its base, so *.internal reaches into suffix pay.internal, while *.pay.internal does not reach
 * suffix x.api.pay.internal.
 */
export function scopeReaches(scope: CompiledScope, identifier: Identifier): boolean {
  if (identifier.type === 'ip' || scope.type === 'cidr') return scopeCovers(scope, identifier);
  const base = wildcardBase(identifier.value);
  if (base === undefined) return scopeCovers(scope, identifier);
  if (scope.type === 'name') {
    return scope.value === identifier.value || (!scope.value.startsWith('*.') && oneLabelBelow(scope.value, base));
  }
  return dnsWithin(base, scope.value) || oneLabelBelow(scope.value, base);
}

/**
 * True when two scopes hold a name or address in common — what two groups may only do when both mark
 * the scope shared. Two suffixes overlap when one is at or below the other; a name overlaps a suffix it is
 * at or below (a wildcard name: by its base) and an equal name; two networks when one holds the other
 * (CIDR blocks are nested or disjoint).
 */
export function scopesOverlap(a: CompiledScope, b: CompiledScope): boolean {
  if (a.network !== undefined || b.network !== undefined) {
    return a.network !== undefined && b.network !== undefined && (networkWithin(a.network, b.network) || networkWithin(b.network, a.network));
  }
  const base = (scope: CompiledScope): string => wildcardBase(scope.value) ?? scope.value;
  if (a.type === 'suffix' && b.type === 'suffix') return dnsWithin(a.value, b.value) || dnsWithin(b.value, a.value);
  if (a.type === 'suffix') return dnsWithin(base(b), a.value);
  if (b.type === 'suffix') return dnsWithin(base(a), b.value);
  return a.value === b.value;
}
