import { CaError } from '../core/errors.js';

/**
 * Refuses ACME request JSON (the flattened JWS, its protected header, its payload) in which one object names
 * a member twice. `text` is what JSON.parse just accepted.
 *
 * RFC 7515 §5.2 step 3 allows a JWS with duplicate header members only through a parser that keeps the last
 * one, and RFC 8259 §4 leaves what duplicates mean to each implementation. Two readers of one request can
 * then disagree: a proxy, an audit log or a client library that keeps the first `url`, `kid` or
 * `identifiers` sees another request than the one Chancery acts on. Nothing honest sends duplicates, so they
 * are refused (`malformed`) instead of resolved.
 */
export function rejectDuplicateMembers(text: string, what: string): void {
  const name = duplicateMember(text);
  if (name !== undefined) {
    throw new CaError('malformed', `${what} names the member ${JSON.stringify(name.slice(0, 64))} twice in one object (RFC 7515 §5.2, RFC 8259 §4)`);
  }
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/**
 * The first member name that occurs twice in one object of `text`, which JSON.parse has accepted; undefined
 * when there is none. Only the structure is followed: strings are skipped with indexOf (so a CSR or a
 * signature inside costs one native search), and a member name is compared after unescaping, so "a\u0062"
 * and "ab" are the same name.
 */
export function duplicateMember(text: string): string | undefined {
  // One entry per open object (its names so far) or array (null).
  const open: (Set<string> | null)[] = [];
  let expectName = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      let end = text.indexOf('"', i + 1);
      // A quote preceded by an odd number of backslashes is escaped; JSON.parse accepted the text, so a
      // closing quote exists.
      for (;;) {
        let slashes = 0;
        while (text.charCodeAt(end - 1 - slashes) === BACKSLASH) slashes++;
        if (slashes % 2 === 0) break;
        end = text.indexOf('"', end + 1);
      }
      if (expectName) {
        const raw = text.slice(i + 1, end);
        const name = raw.includes('\\') ? (JSON.parse(text.slice(i, end + 1)) as string) : raw;
        const names = open[open.length - 1]!;
        if (names.has(name)) return name;
        names.add(name);
        expectName = false;
      }
      i = end;
    } else if (c === 0x7b /* { */) {
      open.push(new Set());
      expectName = true;
    } else if (c === 0x5b /* [ */) {
      open.push(null);
      expectName = false;
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      open.pop();
      expectName = false;
    } else if (c === 0x2c /* , */) {
      expectName = open[open.length - 1] != null;
    }
  }
  return undefined;
}
