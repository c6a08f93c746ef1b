import { createPublicKey, type KeyObject } from 'node:crypto';
import type { PublicUrls } from '../core/url-scheme.js';
import type { Signer } from '../keys/signer.js';
import { signatureAlgorithmIdentifier } from './algorithm-identifier.js';
import { parseCertificate } from './certificate-parser.js';
import { authorityInfoAccess, authorityKeyIdentifier, crlDistributionPoints } from './extensions.js';
import { keyIdentifier } from './certificate-parser.js';
import type { Der } from './der/der-writer.js';
import { CaError } from '../core/errors.js';

/**
 * Everything about an issuing CA that never changes per certificate, encoded once: issuer Name (copied
 * byte-exact from the issuer's own subject so chain building matches, RFC 5280 §7.1), signature
 * AlgorithmIdentifier, AKI, AIA and one CRL DP per shard. Per-certificate work is then a handful of
 * concatenations (see docs/benchmarks.md, bench:issue).
 */
export interface IssuerContext {
  id: string;
  signer: Signer;
  certificateDer: Buffer;
  subjectDer: Buffer;
  subjectText: string;
  keyId: Buffer;
  notBefore: Date;
  notAfter: Date;
  verifyKey: KeyObject;
  signatureAlgorithmDer: Der;
  akiExtension: Der;
  aiaExtension: Der;
  /** AIA with caIssuers only: for noRevAvail certificates, which name no OCSP responder (RFC 9608 §2). */
  aiaCaIssuersOnlyExtension: Der;
  crlDpExtensions: Der[];
}

export function buildIssuerContext(options: {
  id: string;
  certificateDer: Uint8Array;
  signer: Signer;
  urls: PublicUrls;
  crlShards: number;
}): IssuerContext {
  const parsed = parseCertificate(options.certificateDer);
  if (!parsed.isCa) throw new CaError('caState', `issuer ${options.id} is not a CA certificate`);
  if (!parsed.spki.equals(Buffer.from(options.signer.publicKey))) {
    // Rule 2's final verification would catch this per certificate; refuse to start instead.
    throw new CaError('caState', `key "${options.signer.name}" does not match the certificate of issuer ${options.id}`);
  }
  const keyId = parsed.subjectKeyId ?? keyIdentifier(parsed.spki);
  const crlDpExtensions: Der[] = [];
  for (let shard = 0; shard < options.crlShards; shard += 1) {
    crlDpExtensions.push(crlDistributionPoints(options.urls.crl(options.id, shard)));
  }
  return {
    id: options.id,
    signer: options.signer,
    certificateDer: Buffer.from(options.certificateDer),
    subjectDer: parsed.subjectDer,
    subjectText: parsed.subjectText,
    keyId,
    notBefore: parsed.notBefore,
    notAfter: parsed.notAfter,
    verifyKey: createPublicKey({ key: parsed.spki, format: 'der', type: 'spki' }),
    signatureAlgorithmDer: signatureAlgorithmIdentifier(options.signer.algorithm),
    akiExtension: authorityKeyIdentifier(keyId),
    aiaExtension: authorityInfoAccess(options.urls.ocsp(), options.urls.caIssuer(options.id)),
    aiaCaIssuersOnlyExtension: authorityInfoAccess(undefined, options.urls.caIssuer(options.id)),
    crlDpExtensions,
  };
}
