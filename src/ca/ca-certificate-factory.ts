import type { Signer } from '../keys/signer.js';
import type { PublicUrls } from '../core/url-scheme.js';
import { buildIntermediateCertificate, buildRootCertificate } from './ca-certificate.js';
import { keyIdentifier, parseCertificate } from './certificate-parser.js';

/**
 * The CA-certificate half of ca/ as the ceremony sees it. Subjects: "<organization> Root CA" and
 * "<organization> Intermediate CA <year>", so a later rotation gets a distinguishable name.
 */
export const caCertificateFactory = {
  parse(der: Uint8Array) {
    const parsed = parseCertificate(der);
    return { ...parsed, keyId: parsed.subjectKeyId ?? keyIdentifier(parsed.spki) };
  },
  buildRoot(request: { organization: string; key: Signer; notBefore: Date; notAfter: Date }): Promise<Buffer> {
    return buildRootCertificate({
      subject: { organization: request.organization, commonName: `${request.organization} Root CA` },
      subjectKey: request.key,
      notBefore: request.notBefore,
      notAfter: request.notAfter,
    });
  },
  buildIntermediate(request: {
    organization: string;
    key: Signer;
    notBefore: Date;
    notAfter: Date;
    issuer: { id: string; subjectDer: Buffer; keyId: Buffer; signer: Signer };
    urls: PublicUrls;
  }): Promise<Buffer> {
    return buildIntermediateCertificate({
      subject: {
        organization: request.organization,
        commonName: `${request.organization} Intermediate CA ${request.notBefore.getUTCFullYear()}`,
      },
      subjectKey: request.key,
      notBefore: request.notBefore,
      notAfter: request.notAfter,
      pathLen: 0,
      issuer: request.issuer,
      urls: request.urls,
    });
  },
};
