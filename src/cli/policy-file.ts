import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Node } from 'yaml';
import { formatPath, type PolicyIssue } from '../policy/policy-issue.js';

/**
 * A policy file as YAML text: the plain data policy/ checks, and the line of any path into it, so that a
 * problem is reported where it is written (`policy.yaml:12: groups.payments.maxValidity: ...`).
 */
export interface PolicyText {
  value: unknown;
  /** The 1-based line of the deepest node of `path` present in the file (the line of its key in a mapping). */
  lineOf(path: readonly (string | number)[]): number;
}

/** Parses YAML; a syntax error (duplicate keys included) comes back with its line, nothing else is read. */
export function readPolicyText(text: string): PolicyText | { syntaxErrors: { line: number; message: string }[] } {
  const lineCounter = new LineCounter();
  const document = parseDocument(text, { lineCounter, uniqueKeys: true, prettyErrors: false });
  if (document.errors.length > 0) {
    return {
      syntaxErrors: document.errors.map((error) => ({
        line: lineCounter.linePos(error.pos[0]).line,
        message: error.message.split('\n')[0] ?? error.message,
      })),
    };
  }
  const lineOf = (path: readonly (string | number)[]): number => {
    let node: unknown = document.contents;
    let offset = (node as Node | null)?.range?.[0] ?? 0;
    for (const part of path) {
      if (isMap(node)) {
        const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === String(part));
        if (pair === undefined) break;
        offset = (pair.key as Node).range?.[0] ?? offset;
        node = pair.value;
      } else if (isSeq(node) && typeof part === 'number' && node.items[part] !== undefined) {
        node = node.items[part];
        offset = (node as Node).range?.[0] ?? offset;
      } else break;
    }
    return lineCounter.linePos(offset).line;
  };
  return { value: document.toJS() as unknown, lineOf };
}

/**
 * `file:line: path: message (rule RULE)` — each issue where it is written, naming the rule that refused it,
 * in the order of the file.
 */
export function describeIssues(file: string, text: PolicyText | undefined, issues: readonly PolicyIssue[]): string[] {
  return issues
    .map((issue) => ({ issue, line: text?.lineOf(issue.path) }))
    .sort((a, b) => (a.line ?? 0) - (b.line ?? 0))
    .map(({ issue, line }) => {
      const where = issue.path.length ? `${formatPath(issue.path)}: ` : '';
      return `${file}:${line === undefined ? '' : `${line}:`} ${where}${issue.message} (rule ${issue.rule})`;
    });
}
