import type { Clock } from '../core/clock.js';
import type { Problem } from '../core/errors.js';
import type { DomainEvent, DomainEvents } from '../core/events.js';
import type { Order } from '../core/order.js';
import type { Queryable } from '../db/database.js';
import type { AcmeStoreAccess } from './acme-stores.js';

export interface OrderRecoverySettings {
  /**
   * How long an order may stay processing before it is ended (acme.processingTimeoutSeconds). A finalize
   * claims, signs and stores within milliseconds; this must only exceed the slowest one that still finishes,
   * because an order ended under a finalize that then stores its certificate leaves that certificate unused.
   */
  processingTimeoutMs: number;
  /** Orders ended per statement; a pass repeats until fewer come back. */
  batch?: number;
}

/** What the client reads in the order's `error` (RFC 8555 §7.1.3): why it failed and what to do. */
export const INTERRUPTED_ISSUANCE: Problem = {
  kind: 'unavailable',
  detail:
    'issuance of this order was interrupted after it was claimed and did not complete; the order cannot be ' +
    'finalized again (RFC 8555 §7.1.6): submit a new order',
};

const DEFAULT_BATCH = 100;

/**
 * Ends orders a finalize left `processing`. OrderService.finalize claims the order (ready -> processing) and
 * reserves the serial in one statement, signs, then stores the certificate with the order turning valid in
 * another; a process that dies (or loses the database for good) between the two leaves the order
 * processing, where a client can neither poll it to an end nor finalize it again. Such an order turns
 * invalid with INTERRUPTED_ISSUANCE once it has been processing longer than the timeout.
 *
 * Its reserved serial stays in `serials` with no certificate: burnt. Nothing here signs, and nothing ever
 * signs under a reserved serial again (DESIGN.md rule 2; CA/B BR 7.1, RFC 5280 §4.1.2.2): the client's new
 * order draws a fresh one. Runs as a job (one instance at a time, core/jobs.ts); the statement is a
 * compare-and-set, so a pass racing a finalize that stores its certificate leaves that order valid.
 */
export class OrderRecovery {
  constructor(
    private readonly deps: {
      access: AcmeStoreAccess;
      events: DomainEvents<Queryable>;
      clock: Clock;
      settings: OrderRecoverySettings;
    },
  ) {}

  /** The interval the job runs at: a stuck order is ended at most timeout + this after it was claimed. */
  get intervalMs(): number {
    return Math.min(10_000, Math.max(1_000, Math.floor(this.deps.settings.processingTimeoutMs / 3)));
  }

  /** One pass: ends every order processing for longer than the timeout; how many it ended. */
  async run(signal?: AbortSignal): Promise<number> {
    const { access, events, clock, settings } = this.deps;
    const batch = settings.batch ?? DEFAULT_BATCH;
    let ended = 0;
    for (;;) {
      signal?.throwIfAborted();
      const claimedBefore = new Date(clock.now().getTime() - settings.processingTimeoutMs);
      const moved = events.hasCommitting('order.changed')
        ? await access.transaction(async (stores, tx) => {
            const orders = await stores.orders.failStuckProcessing(claimedBefore, INTERRUPTED_ISSUANCE, batch);
            for (const order of orders) await events.committing(invalidated(order), tx);
            return orders;
          })
        : await access.stores.orders.failStuckProcessing(claimedBefore, INTERRUPTED_ISSUANCE, batch);
      for (const order of moved) await events.committed(invalidated(order));
      ended += moved.length;
      if (moved.length < batch) return ended;
    }
  }
}

function invalidated(order: Order): DomainEvent {
  return { type: 'order.changed', orderId: order.id, accountId: order.accountId, status: 'invalid' };
}
