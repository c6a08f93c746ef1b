import type { Group } from '../core/group.js';
import { sameJson } from './group-permissions.js';
import { GROUP_KEYS, groupDocumentOf } from './policy-document.js';

/** One group's change between two policies, field by field in the document's terms (maxValidity as 7d). */
export interface GroupChange {
  name: string;
  change: 'created' | 'updated' | 'removed';
  fields: { field: string; before?: unknown; after?: unknown }[];
  before?: Group;
  after?: Group;
}

/** What applying `after` over `before` changes, by group name; unchanged groups are left out. */
export function diffGroups(before: readonly Group[], after: readonly Group[]): GroupChange[] {
  const old = new Map(before.map((g) => [g.name, g]));
  const now = new Map(after.map((g) => [g.name, g]));
  const names = [...new Set([...old.keys(), ...now.keys()])].sort();
  const changes: GroupChange[] = [];
  for (const name of names) {
    const was = old.get(name);
    const is = now.get(name);
    const a = was ? groupDocumentOf(was) : {};
    const b = is ? groupDocumentOf(is) : {};
    const fields = GROUP_KEYS.filter((field) => field in a || field in b)
      .filter((field) => !sameJson(a[field], b[field]))
      .map((field) => ({ field, ...(field in a ? { before: a[field] } : {}), ...(field in b ? { after: b[field] } : {}) }));
    if (was && is && fields.length === 0) continue;
    changes.push({ name, change: was === undefined ? 'created' : is === undefined ? 'removed' : 'updated', fields, ...(was ? { before: was } : {}), ...(is ? { after: is } : {}) });
  }
  return changes;
}

/** The diff as printed: `+ group`, `- group`, `~ group` with `field: before -> after` lines. */
export function formatDiff(changes: readonly GroupChange[]): string[] {
  const show = (value: unknown): string => (value === undefined ? '(not set)' : JSON.stringify(value));
  const lines: string[] = [];
  for (const change of changes) {
    const mark = change.change === 'created' ? '+' : change.change === 'removed' ? '-' : '~';
    lines.push(`${mark} group ${change.name}${change.change === 'updated' ? '' : ` (${change.change})`}`);
    for (const { field, before, after } of change.fields) {
      if (change.change === 'created') lines.push(`    ${field}: ${show(after)}`);
      else if (change.change === 'updated') lines.push(`    ${field}: ${show(before)} -> ${show(after)}`);
    }
  }
  return lines;
}
