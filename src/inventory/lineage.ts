import { CaError } from '../core/errors.js';
import type { LineageChain } from '../core/lineage.js';
import { inScope, type Scope } from '../policy/admin-rbac.js';

/** What the lineage needs of the database (db/repositories/lineage-repository.ts). */
export interface LineageStore {
  chain(serial: string, limits: { before: number; after: number }): Promise<LineageChain | undefined>;
}

/** The most a chain answer holds on each side of the certificate asked about. */
export const MAX_LINEAGE_SIDE = 500;

/**
 * Renewal chains: a certificate, its predecessors and its successors, in one call. A chain is a keyset walk
 * by nature: to go further back than one answer reaches, ask for the lineage of its oldest certificate.
 * Scoped like every admin read (DESIGN.md rule 8): a certificate outside the caller's groups answers like
 * one that does not exist, and certificates of other groups are left out of a chain.
 */
export class Lineage {
  constructor(private readonly deps: { store: LineageStore }) {}

  async chain(serial: string, scope: Scope, limits: { before: number; after: number }): Promise<LineageChain> {
    for (const [side, value] of Object.entries(limits)) {
      if (!Number.isInteger(value) || value < 0 || value > MAX_LINEAGE_SIDE) {
        throw new CaError('malformed', `${side} must be an integer from 0 to ${MAX_LINEAGE_SIDE}`);
      }
    }
    const chain = await this.deps.store.chain(serial, limits);
    const self = chain?.items.find((item) => item.position === 0);
    if (chain === undefined || self === undefined || !inScope(scope, self.certificate.group)) {
      throw new CaError('notFound', `no certificate with serial ${serial}`);
    }
    return { ...chain, items: chain.items.filter((item) => inScope(scope, item.certificate.group)) };
  }
}
