import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The directory holding Chancery's package.json, found by walking up from this module, so shipped files
 * (config/, migrations/) resolve the same from src/ under tsx and from dist/src/ when compiled.
 */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error('cannot find the Chancery package root');
    dir = parent;
  }
  return dir;
}
