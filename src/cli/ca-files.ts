import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { toPem } from '../core/pem.js';
import type { CaHierarchy } from '../compose.js';

export interface CaFiles {
  rootPem: string;
  chainPem: string;
}

/**
 * data/ca/root.pem holds the root only (what clients trust); data/ca/chain.pem the issuing intermediate
 * only (what `openssl verify -untrusted` and `openssl ocsp -issuer` expect). Rewritten from the database
 * at every start, so an instance whose data dir is new still gets them when another instance ran init.
 */
export async function writeCaFiles(dataDir: string, hierarchy: CaHierarchy): Promise<CaFiles> {
  const dir = join(dataDir, 'ca');
  await mkdir(dir, { recursive: true });
  const files = { rootPem: join(dir, 'root.pem'), chainPem: join(dir, 'chain.pem') };
  await writeFile(files.rootPem, toPem(hierarchy.root.der), { mode: 0o644 });
  await writeFile(files.chainPem, toPem(hierarchy.intermediate.der), { mode: 0o644 });
  return files;
}
