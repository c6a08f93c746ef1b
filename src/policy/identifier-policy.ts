import { isIP } from 'node:net';
import { CaError, type SubProblem } from '../core/errors.js';
import type { Identifier } from '../core/identifier.js';

/**
 * Syntax rules every identifier must meet before it can appear in a certificate: DNS names per RFC 1035
 * §2.3.1 / RFC 5280 §4.2.1.6 (LDH labels of 1-63 octets, 253 in all, lower-cased, a wildcard only as the
 * whole leftmost label), IP addresses in canonical text form (RFC 8738 §3). Which names an organisation is
 * willing to issue for (suffix rules, groups) is layered on top in later issues.
 */
const LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;

export function normalizeIdentifier(id: Identifier): Identifier {
  return id.type === 'dns' ? { type: 'dns', value: id.value.toLowerCase() } : { type: 'ip', value: id.value };
}

/** Returns why an identifier is unacceptable, or undefined when it is fine. */
export function identifierProblem(id: Identifier): SubProblem | undefined {
  const reject = (detail: string): SubProblem => ({ kind: 'rejectedIdentifier', detail, identifier: id });
  if (id.type === 'ip') {
    if (isIP(id.value) === 0) return reject(`"${id.value}" is not an IPv4 or IPv6 address`);
    return undefined;
  }
  if (id.type !== 'dns') {
    return { kind: 'unsupportedIdentifier', detail: `identifier type "${String(id.type)}" is not supported`, identifier: id };
  }
  const name = id.value;
  if (name.length === 0 || name.length > 253) return reject(`DNS name "${name}" must be 1 to 253 characters`);
  if (name.endsWith('.')) return reject(`DNS name "${name}" must not end with a dot`);
  if (isIP(name) !== 0) return reject(`"${name}" is an IP address: request it as an ip identifier`);
  const labels = name.split('.');
  // Single-label names (db01, localhost) are normal on private networks a machine-identity CA serves;
  // a wildcard must still leave at least two labels below it, so "*.com"-style names are refused.
  if (labels[0] === '*' && labels.length < 3) return reject(`wildcard "${name}" must have at least two labels after "*."`);
  for (const [index, label] of labels.entries()) {
    if (label === '*' && index === 0) continue;
    if (!LABEL.test(label)) return reject(`DNS name "${name}" has an invalid label "${label}"`);
  }
  return undefined;
}

/** Normalizes, de-duplicates and checks a set of identifiers; throws one error with a subproblem each. */
export function checkIdentifiers(ids: readonly Identifier[], maxIdentifiers: number): Identifier[] {
  if (ids.length === 0) throw new CaError('malformed', 'at least one identifier is required');
  const seen = new Set<string>();
  const out: Identifier[] = [];
  for (const raw of ids) {
    const id = normalizeIdentifier(raw);
    const key = `${id.type}:${id.value}`;
    if (!seen.has(key)) {
      seen.add(key);
      out.push(id);
    }
  }
  if (out.length > maxIdentifiers) {
    throw new CaError('rejectedIdentifier', `${out.length} identifiers requested; at most ${maxIdentifiers} are allowed`);
  }
  const subproblems = out.map(identifierProblem).filter((p): p is SubProblem => p !== undefined);
  if (subproblems.length > 0) {
    const kind = subproblems.every((p) => p.kind === 'unsupportedIdentifier') ? 'unsupportedIdentifier' : 'rejectedIdentifier';
    throw new CaError(kind, subproblems.map((p) => p.detail).join('; '), { subproblems });
  }
  return out;
}
