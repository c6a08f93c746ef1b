import { CaError } from '../core/errors.js';

/**
 * Keyset cursors (DESIGN.md rule 9): the sort key of the last row of a page, made opaque (base64url JSON)
 * so callers cannot build one by hand and the key's shape can change. A cursor that does not read back as
 * the expected shape is bad input (`malformed`), never a database error.
 */
export type CursorValue = string | number;

export function encodeCursor(values: readonly CursorValue[]): string {
  return Buffer.from(JSON.stringify(values), 'utf8').toString('base64url');
}

/** The values of a cursor, checked against `shape` ('date' values are ISO strings turned into Dates). */
export function decodeCursor<const S extends readonly ('string' | 'date')[]>(cursor: string, shape: S): { [K in keyof S]: S[K] extends 'date' ? Date : string } {
  const bad = (): never => {
    throw new CaError('malformed', 'the cursor is not one this server issued');
  };
  if (cursor.length > 512 || !/^[A-Za-z0-9_-]+$/.test(cursor)) bad();
  let values: unknown;
  try {
    values = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    return bad();
  }
  if (!Array.isArray(values) || values.length !== shape.length) bad();
  const out = (values as unknown[]).map((value, i) => {
    if (typeof value !== 'string') return bad();
    if (shape[i] === 'date') {
      const date = new Date(value);
      return Number.isNaN(date.getTime()) ? bad() : date;
    }
    return value;
  });
  return out as { [K in keyof S]: S[K] extends 'date' ? Date : string };
}

/** Rows fetched with limit + 1: the page, and the cursor of its last row when there is more. */
export function pageOf<R, T>(rows: readonly R[], limit: number, map: (row: R) => T, key: (row: R) => readonly CursorValue[]): { items: T[]; nextCursor?: string } {
  const items = rows.slice(0, limit);
  const last = items.at(-1);
  return rows.length > limit && last !== undefined ? { items: items.map(map), nextCursor: encodeCursor(key(last)) } : { items: items.map(map) };
}
