import type { IssuedCertificate } from '../core/certificate.js';
import { silentLogger, type Logger } from '../core/logger.js';

/**
 * Replacements of incident certificates, recorded as they are issued (the `certificate.issued` committed
 * handler): a new certificate replaces the one it names in `replaces` (RFC 9773 §5) or else its lineage
 * predecessor (migration 0014). While no incident is open this costs nothing but an in-memory check
 * (ra/ IncidentDirectory); while one is, one statement shared by the issuances of the same moment. A
 * replacement of a `when-replaced` incident's certificate asks the sweep to revoke the old one now.
 */
export class IncidentReplacements {
  private readonly logger: Logger;

  constructor(
    private readonly deps: {
      anyOpen: () => Promise<boolean>;
      /** Records the replacement (batched by the caller); the incidents whose certificate it replaced. */
      record: (item: { serial: string; replaces?: string; at: Date }) => Promise<string[]>;
      /** The incident asks for revocation on replacement (open, when-replaced, not a drill). */
      revokesOnReplacement: (incidentId: string) => Promise<boolean>;
      kickSweep: () => void;
      logger?: Logger;
    },
  ) {
    this.logger = deps.logger ?? silentLogger;
  }

  /** Never throws: the certificate is issued whatever happens here; the status would show it unreplaced. */
  async onIssued(certificate: IssuedCertificate): Promise<void> {
    try {
      if (!(await this.deps.anyOpen())) return;
      const incidents = await this.deps.record({ serial: certificate.serial, at: certificate.createdAt, ...(certificate.replacesSerial === undefined ? {} : { replaces: certificate.replacesSerial }) });
      for (const id of incidents) {
        if (await this.deps.revokesOnReplacement(id)) {
          this.deps.kickSweep();
          return;
        }
      }
    } catch (error) {
      this.logger.error({ err: error, serial: certificate.serial }, 'recording an incident replacement failed');
    }
  }
}
