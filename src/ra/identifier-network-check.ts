import { CaError, type SubProblem } from '../core/errors.js';
import type { Identifier } from '../core/identifier.js';

/**
 * Why the validation network policy refuses an identifier (an ip identifier in a denied range), or undefined
 * when it does not. ra/ may not import va/ values (DESIGN.md layers), so the RA states what it needs here and
 * compose.ts passes the VA policy's function. It must be pure and cheap: every newOrder calls it.
 */
export type IdentifierNetworkCheck = (identifier: Identifier) => string | undefined;

/**
 * Refuses, with one rejectedIdentifier subproblem per identifier (RFC 8555 §6.7.1), the identifiers the
 * network policy would never let the VA validate: an address the CA will not contact cannot be proven, so it
 * is refused when the authorization would be created rather than after the client set up a responder.
 */
export function refuseByNetworkPolicy(identifiers: readonly Identifier[], check: IdentifierNetworkCheck): void {
  const subproblems: SubProblem[] = [];
  for (const identifier of identifiers) {
    const why = check(identifier);
    if (why !== undefined) subproblems.push({ kind: 'rejectedIdentifier', detail: `the validation network policy refuses ${identifier.value}: ${why}`, identifier });
  }
  if (subproblems.length > 0) {
    throw new CaError('rejectedIdentifier', subproblems.map((p) => p.detail).join('; '), { subproblems });
  }
}
