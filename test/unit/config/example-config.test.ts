import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { parse } from 'yaml';
import { SETTINGS } from '../../../src/config/settings.js';

/** config/chancery.example.yaml documents every setting: its key, its variable, and a valid default. */
const root = join(import.meta.dirname, '../../..');
const text = readFileSync(join(root, 'config/chancery.example.yaml'), 'utf8');
const example = parse(text) as Record<string, unknown>;
const defaults = parse(readFileSync(join(root, 'config/default.yaml'), 'utf8')) as Record<string, unknown>;

function get(tree: Record<string, unknown>, path: string): unknown {
  return path.split('.').reduce<unknown>((node, key) => (node as Record<string, unknown> | undefined)?.[key], tree);
}

for (const setting of SETTINGS) {
  t.test(`ok/${setting.path} is documented and shipped`, async (t) => {
    t.not(get(example, setting.path), undefined, `${setting.path} in the example`);
    t.ok(text.includes(setting.env), `${setting.env} named in the example`);
    t.not(get(defaults, setting.path), undefined, `${setting.path} has a shipped default`);
  });
}
