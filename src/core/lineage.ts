import type { IssuedCertificate } from './certificate.js';

/**
 * Lineage: which certificate renews which. A certificate's predecessor is the one it `replaces` (RFC 9773
 * §5), or else the newest earlier certificate of the same account for the same identifier set; recorded when
 * it is stored (migration 0014) and never changed. Its successor is the earliest certificate naming it as
 * predecessor.
 */
export interface LinkedCertificate {
  certificate: IssuedCertificate;
  predecessorSerial?: string;
}

/** A renewal chain around one certificate, oldest first. */
export interface LineageChain {
  /** Oldest first; `position` 0 is the certificate asked about, negative its predecessors. */
  items: (LinkedCertificate & { position: number })[];
  /** The chain goes on before the first item (ask for the lineage of that one to see further back). */
  moreBefore: boolean;
  /** The chain goes on after the last item. */
  moreAfter: boolean;
}
