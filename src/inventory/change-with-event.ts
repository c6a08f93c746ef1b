import type { DomainEvent, DomainEventType, DomainEvents } from '../core/events.js';
import type { Queryable } from '../db/database.js';

/** Stores on the pool, and the same stores inside one transaction (compose.ts wires both). */
export interface StoreAccess<S> {
  stores: S;
  transaction<T>(fn: (stores: S, tx: Queryable) => Promise<T>): Promise<T>;
}

/**
 * Makes a change and raises its event in both phases (core/events.ts): inside a transaction when something
 * must commit with it (the audit entry, DESIGN.md rule 8), on the pool otherwise. `event` returns undefined
 * when the change did not happen (a compare-and-set that lost): nothing is raised.
 */
export async function changeWithEvent<S, T>(
  deps: { access: StoreAccess<S>; events: DomainEvents<Queryable> },
  type: DomainEventType,
  change: (stores: S) => Promise<T>,
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
