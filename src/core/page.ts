/**
 * One page of a list (DESIGN.md rule 9): lists page by keyset, never OFFSET. `nextCursor` is opaque to
 * callers (db/keyset.ts makes and reads it) and absent on the last page.
 */
export interface Page<T> {
  items: T[];
  nextCursor?: string;
}

/** A page request: where to continue (a cursor from the previous page) and how many at most. */
export interface PageRequest {
  cursor?: string;
  limit: number;
}
