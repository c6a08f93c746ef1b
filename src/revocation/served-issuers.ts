import type { IssuerRecord } from '../core/certificate.js';
import { CaError } from '../core/errors.js';
import type { RsaScheme } from '../core/key-algorithm.js';
import type { Logger } from '../core/logger.js';
import type { Signer } from '../keys/signer.js';
import type { ServedIssuer } from './ocsp-responder-keys.js';

/** The KeyStore slice this needs (keys/ KeyStore). */
export interface IssuerKeys {
  readonly backend: string;
  load(name: string, options: { rsaScheme: RsaScheme }): Promise<Signer | undefined>;
}

/**
 * The intermediates OCSP answers for: the active one, and older ones that have not expired and whose keys
 * are still in the KeyStore — their certificates are still in use, and a relying party asks about them until
 * they expire (RFC 6960 §2.2 would otherwise have us say `unauthorized`). The active intermediate's key must
 * be there: without it nothing can be issued either.
 */
export async function servedIssuers(deps: {
  issuers: readonly IssuerRecord[];
  keys: IssuerKeys;
  rsaScheme: RsaScheme;
  activeIntermediateId: string;
  now: Date;
  logger: Logger;
}): Promise<ServedIssuer[]> {
  const served: ServedIssuer[] = [];
  for (const issuer of deps.issuers) {
    if (issuer.role !== 'intermediate' || issuer.notAfter.getTime() <= deps.now.getTime()) continue;
    const signer = await deps.keys.load(issuer.keyName, { rsaScheme: deps.rsaScheme });
    if (signer === undefined) {
      if (issuer.id === deps.activeIntermediateId) {
        throw new CaError('caState', `key "${issuer.keyName}" of issuer ${issuer.id} is not in the ${deps.keys.backend} key store`);
      }
      deps.logger.warn({ issuer: issuer.id }, 'no key for an older intermediate: OCSP answers unauthorized for its certificates');
      continue;
    }
    served.push({ id: issuer.id, certificateDer: issuer.der, signer });
  }
  return served;
}
