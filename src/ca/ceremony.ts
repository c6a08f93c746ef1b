import { randomBytes } from 'node:crypto';
import type { IssuerRecord } from '../core/certificate.js';
import type { Clock } from '../core/clock.js';
import { DAY } from '../core/clock.js';
import { CaError } from '../core/errors.js';
import type { KeyAlgorithm, RsaScheme } from '../core/key-algorithm.js';
import type { PublicUrls } from '../core/url-scheme.js';
import type { KeySpec, Signer } from '../keys/signer.js';

/** The slice of the CA core the ceremony uses (declared here, implemented by ca/). */
export interface CaCertificateFactory {
  parse(der: Uint8Array): { subjectDer: Buffer; subjectText: string; keyId: Buffer; notBefore: Date; notAfter: Date };
  buildRoot(request: { organization: string; key: Signer; notBefore: Date; notAfter: Date }): Promise<Buffer>;
  buildIntermediate(request: {
    organization: string;
    key: Signer;
    notBefore: Date;
    notAfter: Date;
    issuer: { id: string; subjectDer: Buffer; keyId: Buffer; signer: Signer };
    urls: PublicUrls;
  }): Promise<Buffer>;
}

export interface CeremonyDeps {
  keys: { create(name: string, spec: KeySpec): Promise<Signer> };
  issuers: { findRoot(): Promise<IssuerRecord | undefined>; saveAll(records: IssuerRecord[]): Promise<void> };
  certificates: CaCertificateFactory;
  clock: Clock;
  urls: PublicUrls;
}

export interface CeremonySettings {
  organization: string;
  rootAlgorithm: KeyAlgorithm;
  intermediateAlgorithm: KeyAlgorithm;
  rsaScheme: RsaScheme;
  rootValidityDays: number;
  intermediateValidityDays: number;
}

export interface CeremonyResult {
  root: IssuerRecord;
  intermediate: IssuerRecord;
}

/**
 * `chancery init`: a root (self-signed) and one issuing intermediate (pathLen 0) whose keys are created in
 * the configured KeyStore, recorded together in one transaction. Refuses to run when a root exists: a CA
 * is never silently replaced. Key names carry a random suffix so a ceremony that died after creating keys
 * never collides with the next attempt.
 */
export async function runCeremony(deps: CeremonyDeps, settings: CeremonySettings): Promise<CeremonyResult> {
  const existing = await deps.issuers.findRoot();
  if (existing) {
    throw new CaError('conflict', `a CA already exists (root ${existing.id}, "${existing.subject}"); refusing to overwrite it`);
  }
  const now = deps.clock.now();
  const suffix = randomBytes(4).toString('hex');
  const rootKey = await deps.keys.create(`root-${suffix}`, { algorithm: settings.rootAlgorithm, rsaScheme: settings.rsaScheme });
  const rootDer = await deps.certificates.buildRoot({
    organization: settings.organization,
    key: rootKey,
    notBefore: now,
    notAfter: new Date(now.getTime() + settings.rootValidityDays * DAY),
  });
  const rootParsed = deps.certificates.parse(rootDer);
  const root = issuerRecord('root', rootParsed, rootDer, rootKey.name, now);

  const intermediateKey = await deps.keys.create(`intermediate-${suffix}`, {
    algorithm: settings.intermediateAlgorithm,
    rsaScheme: settings.rsaScheme,
  });
  const intermediateNotAfter = Math.min(now.getTime() + settings.intermediateValidityDays * DAY, rootParsed.notAfter.getTime());
  const intermediateDer = await deps.certificates.buildIntermediate({
    organization: settings.organization,
    key: intermediateKey,
    notBefore: now,
    notAfter: new Date(intermediateNotAfter),
    issuer: { id: root.id, subjectDer: rootParsed.subjectDer, keyId: rootParsed.keyId, signer: rootKey },
    urls: deps.urls,
  });
  const intermediate = issuerRecord('intermediate', deps.certificates.parse(intermediateDer), intermediateDer, intermediateKey.name, now, root.id);
  await deps.issuers.saveAll([root, intermediate]);
  return { root, intermediate };
}

/** Issuer ids are short and stable: role prefix + the first 5 octets of the key identifier. */
function issuerRecord(
  role: 'root' | 'intermediate',
  parsed: ReturnType<CaCertificateFactory['parse']>,
  der: Buffer,
  keyName: string,
  now: Date,
  parentId?: string,
): IssuerRecord {
  return {
    id: `${role === 'root' ? 'r' : 'i'}${parsed.keyId.subarray(0, 5).toString('hex')}`,
    role,
    keyName,
    parentId,
    der,
    subject: parsed.subjectText,
    notBefore: parsed.notBefore,
    notAfter: parsed.notAfter,
    createdAt: now,
  };
}
