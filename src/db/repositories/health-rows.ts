/** Positional parameters collected while a statement is built: add() returns the placeholder ($n). */
export class Params {
  readonly values: unknown[] = [];

  add(value: unknown): string {
    this.values.push(value);
    return `$${this.values.length}`;
  }
}

/** A jsonb array of strings as both drivers return it (anything else reads as empty). */
export function stringArray(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((item): item is string => typeof item === 'string') : [];
}
