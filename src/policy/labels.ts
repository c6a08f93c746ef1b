import type { Labels } from '../core/group.js';

/**
 * Labels: business context recorded with certificates (owner, application, environment, criticality, or
 * any key an organisation uses). Keys are short identifiers, so that inventory searches and exports can
 * name them without quoting; values are free text of bounded length, without control characters (they end
 * up in logs, CSV exports and terminals).
 */
export const LABEL_KEY = /^[a-z][a-z0-9_.-]{0,62}$/;
const MAX_VALUE = 256;
const MAX_LABELS = 32;
const CONTROL = /\p{Cc}/u;

/** Why a label is not acceptable, or undefined. */
export function labelProblem(key: string, value: string): string | undefined {
  if (!LABEL_KEY.test(key)) return `label key "${key.slice(0, 80)}" must start with a lower-case letter and hold only a-z, 0-9, ".", "_" or "-" (at most 63)`;
  if (value.length === 0) return `label "${key}" needs a value`;
  if (value.length > MAX_VALUE) return `label "${key}" is longer than ${MAX_VALUE} characters`;
  if (CONTROL.test(value)) return `label "${key}" holds a control character`;
  return undefined;
}

/** Why a set of labels is not acceptable, or undefined. */
export function labelsProblem(labels: Labels): string | undefined {
  const entries = Object.entries(labels);
  if (entries.length > MAX_LABELS) return `at most ${MAX_LABELS} labels`;
  for (const [key, value] of entries) {
    const problem = labelProblem(key, value);
    if (problem !== undefined) return problem;
  }
  return undefined;
}

/**
 * `key=value` as written on a command line (`--label owner=payments`); the value may hold "=". Returns the
 * pair, or why it is not one.
 */
export function parseLabelArgument(text: string): { key: string; value: string } | { error: string } {
  const at = text.indexOf('=');
  if (at <= 0) return { error: `--label "${text.slice(0, 80)}" must be key=value` };
  const key = text.slice(0, at);
  const value = text.slice(at + 1);
  const problem = labelProblem(key, value);
  return problem === undefined ? { key, value } : { error: `--label "${text.slice(0, 80)}": ${problem}` };
}
