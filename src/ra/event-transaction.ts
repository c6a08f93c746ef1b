import type { DomainEvent, DomainEventType, DomainEvents } from '../core/events.js';
import type { Queryable } from '../db/database.js';
import type { AcmeStoreAccess, AcmeStores } from './acme-stores.js';

/**
 * Makes a change and raises its event in both phases (core/events.ts). Most ACME changes are one statement
 * on the pool; they open a transaction only when a handler must run inside it (the audit entry written with
 * the change, DESIGN.md rule 8), so the hot path stays one round trip while nothing needs more.
 * `event` returns undefined when the change did not happen (a compare-and-set that lost): nothing is raised.
 */
export async function changeWithEvent<T>(
  deps: { access: AcmeStoreAccess; events: DomainEvents<Queryable> },
  type: DomainEventType,
  change: (stores: AcmeStores) => Promise<T>,
  event: (result: T) => DomainEvent | undefined,
): Promise<T> {
  const { access, events } = deps;
  const result = events.hasCommitting(type)
    ? await access.transaction(async (stores, tx) => {
        const changed = await change(stores);
        const raised = event(changed);
        if (raised !== undefined) await events.committing(raised, tx);
        return changed;
      })
    : await change(access.stores);
  const raised = event(result);
  if (raised !== undefined) await events.committed(raised);
  return result;
}

/**
 * changeWithEvent for a change that raises several events (an order with pre-approved authorizations):
 * one transaction when any of them has in-transaction work, else the change alone.
 */
export async function changeWithEvents<T>(
  deps: { access: AcmeStoreAccess; events: DomainEvents<Queryable> },
  change: (stores: AcmeStores) => Promise<T>,
  raised: readonly DomainEvent[],
): Promise<T> {
  const { access, events } = deps;
  const result = raised.some((e) => events.hasCommitting(e.type))
    ? await access.transaction(async (stores, tx) => {
        const changed = await change(stores);
        for (const event of raised) await events.committing(event, tx);
        return changed;
      })
    : await change(access.stores);
  for (const event of raised) await events.committed(event);
  return result;
}
