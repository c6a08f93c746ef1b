import type { Config } from '../../config/config.js';
import { initCa, openRuntime } from '../../main.js';
import { writeCaFiles } from '../ca-files.js';

/** `chancery init`: create the root and intermediate; refuses when a CA exists (exit 1). */
export async function initCommand(config: Config): Promise<void> {
  const runtime = await openRuntime(config);
  try {
    const { root, intermediate } = await initCa(runtime);
    const files = await writeCaFiles(config.dataDir, { root, intermediate });
    process.stdout.write(
      [
        `Created root CA ${root.id} (${root.subject}), valid until ${root.notAfter.toISOString()}`,
        `Created intermediate ${intermediate.id} (${intermediate.subject}), valid until ${intermediate.notAfter.toISOString()}`,
        `Keys: ${runtime.keys.backend} key store`,
        `Root certificate (trust this): ${files.rootPem}`,
        `Issuing chain:                 ${files.chainPem}`,
        '',
      ].join('\n'),
    );
  } finally {
    await runtime.close();
  }
}
