import { compose } from '../../compose.js';
import type { Config } from '../../config/config.js';
import { writeCaFiles } from '../ca-files.js';

/** `chancery init`: create the root and intermediate; refuses when a CA exists (exit 1). */
export async function initCommand(config: Config): Promise<void> {
  const chancery = await compose(config, { ca: 'create', listen: false });
  try {
    const { root, intermediate } = chancery.hierarchy;
    const files = await writeCaFiles(config.dataDir, chancery.hierarchy);
    process.stdout.write(
      [
        `Created root CA ${root.id} (${root.subject}), valid until ${root.notAfter.toISOString()}`,
        `Created intermediate ${intermediate.id} (${intermediate.subject}), valid until ${intermediate.notAfter.toISOString()}`,
        `Keys: ${chancery.keys.backend} key store`,
        `Root certificate (trust this): ${files.rootPem}`,
        `Issuing chain:                 ${files.chainPem}`,
        '',
      ].join('\n'),
    );
  } finally {
    await chancery.close();
  }
}
