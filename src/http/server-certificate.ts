import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { isIP } from 'node:net';
import type { Clock } from '../core/clock.js';
import type { Identifier } from '../core/identifier.js';
import { toPem } from '../core/pem.js';

/** How the server certificate is issued: the RA's issuance pipeline (declared here, wired by compose.ts). */
export interface ServerCertificateIssuer {
  issueForKey(publicKey: Uint8Array, identifiers: readonly Identifier[]): Promise<{ der: Uint8Array; notAfter: Date }>;
}

export interface ServerTlsMaterial {
  key: string;
  cert: string;
  notAfter: Date;
}

/**
 * The ACME listener's own TLS certificate, issued by our intermediate (recorded like any other
 * certificate) for the host of CHANCERY_ACME_URL plus 127.0.0.1 and localhost. Its key is generated in
 * memory at every start and never stored: TLS needs it in-process, and a fresh key per process is
 * cheaper to lose than a shared one. `renewing` re-issues at two thirds of the lifetime.
 */
export class ServerCertificate {
  private timer: NodeJS.Timeout | undefined;

  /** `chain`: the issuing intermediate(s), sent after the leaf so clients that trust only the root can verify. */
  constructor(private readonly deps: { issuance: ServerCertificateIssuer; clock: Clock; hosts: string[]; chain: Uint8Array[] }) {}

  async issue(): Promise<ServerTlsMaterial> {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const spki = publicKey.export({ type: 'spki', format: 'der' });
    const certificate = await this.deps.issuance.issueForKey(spki, serverIdentifiers(this.deps.hosts));
    return { key: pemKey(privateKey), cert: [certificate.der, ...this.deps.chain].map((der) => toPem(der)).join(''), notAfter: certificate.notAfter };
  }

  /** Calls `apply` with fresh material before each certificate's lifetime is two thirds gone. */
  renewing(current: ServerTlsMaterial, apply: (material: ServerTlsMaterial) => void, onError: (error: unknown) => void): void {
    const now = this.deps.clock.now().getTime();
    const renewAt = now + ((current.notAfter.getTime() - now) * 2) / 3;
    // setTimeout holds at most 2^31-1 ms (~24.8 days): wake up then and re-check.
    const delay = Math.min(Math.max(renewAt - now, 1000), 2 ** 31 - 1);
    this.timer = setTimeout(() => {
      const due = this.deps.clock.now().getTime() >= renewAt - 1000;
      const next = due ? this.issue() : Promise.resolve(current);
      next.then(
        (material) => {
          if (due) apply(material);
          this.renewing(material, apply, onError);
        },
        (error: unknown) => {
          onError(error);
          this.renewing(current, apply, onError);
        },
      );
    }, delay);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
  }
}

function serverIdentifiers(hosts: string[]): Identifier[] {
  const all = new Set([...hosts, '127.0.0.1', 'localhost']);
  return [...all].map((host) => (isIP(host) ? { type: 'ip', value: host } : { type: 'dns', value: host.toLowerCase() }));
}

function pemKey(key: KeyObject): string {
  return key.export({ type: 'pkcs8', format: 'pem' }).toString();
}
