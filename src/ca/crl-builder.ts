import { CaError } from '../core/errors.js';
import { RevokedCertificatesEncoder, type CrlEntry, type CrlEntryColumns } from './crl-entries.js';
import { bitString, explicit, implicitPrimitive, integer, lengthOctets, sequence, TAG, time, type Der } from './der/der-writer.js';
import { readTlv } from './der/der-reader.js';
import { distributionPointName, extension } from './extensions.js';
import type { IssuerContext } from './issuer-context.js';
import { OID } from './oids.js';
import { verifySignature } from '../core/signature-verifier.js';

export type { CrlEntry, CrlEntryColumns } from './crl-entries.js';

/** The slice of an IssuerContext a CRL needs: the same pre-encoded issuer Name, AKI and algorithm as its certificates. */
export type CrlIssuer = Pick<IssuerContext, 'id' | 'signer' | 'verifyKey' | 'subjectDer' | 'signatureAlgorithmDer' | 'akiExtension'>;

/**
 * Which certificates a CRL covers (RFC 5280 §5.2.5 IssuingDistributionPoint): an intermediate's shard CRLs
 * list end-entity certificates only; the root's CRL lists CA certificates only (revoked intermediates).
 */
export type CrlScope = 'userCerts' | 'caCerts';

export interface CrlRequest {
  /** CRLNumber (RFC 5280 §5.2.3), allocated by the database. */
  number: number;
  thisUpdate: Date;
  nextUpdate: Date;
  /**
   * The URL in the covered certificates' CRLDistributionPoints, repeated byte for byte in the Issuing
   * Distribution Point: that is how a relying party knows this CRL is the one the certificate points at
   * (RFC 5280 §6.3.3 (b)(2)(i)). Undefined for the root's CRL: see issuingDistributionPoint.
   */
  distributionPoint: string | undefined;
  scope: CrlScope;
  /** Entries expected (e.g. the previous CRL's count), to size the buffer once. */
  expectedEntries?: number | undefined;
}

export interface SignedCrl {
  der: Buffer;
  /** revokedCertificates entries written. */
  entries: number;
}

/** Pages of entries: arrays of entries (tests, small lists) or column-wise pages (the database reader). */
export type CrlEntryPage = readonly CrlEntry[] | CrlEntryColumns;
export type CrlEntrySource = AsyncIterable<CrlEntryPage> | Iterable<CrlEntryPage>;

/**
 * IssuingDistributionPoint (RFC 5280 §5.2.5), critical:
 *
 *   SEQUENCE { distributionPoint [0] DistributionPointName OPTIONAL, onlyContainsUserCerts [1] BOOLEAN
 *              DEFAULT FALSE, onlyContainsCACerts [2] BOOLEAN DEFAULT FALSE, ... }
 *
 * IMPLICIT tags (the module is IMPLICIT), so TRUE is 81 01 FF / 82 01 FF. distributionPointName() gives the
 * same [0] { fullName [0] { URI [6] } } that the certificates' CRL DP extension carries.
 *
 * The root's CRL carries onlyContainsCACerts without a distributionPoint. It covers every CA certificate
 * the root signed, and the root itself: relying parties that check the whole chain, trust anchor included
 * (OpenSSL with -crl_check_all), look for a CRL in scope for the root, which has no CRL DP of its own, and a
 * distributionPoint name in the IDP would put the root out of that CRL's scope ("different CRL scope").
 * The intermediates' CRL DP (/crl/root.crl) still matches: with no name in the IDP there is nothing to
 * compare (§6.3.3 (b)(2)(i) applies when both are present).
 */
export function issuingDistributionPoint(url: string | undefined, scope: CrlScope): Der {
  const TRUE = Buffer.from([0xff]);
  const flag = scope === 'userCerts' ? implicitPrimitive(1, TRUE) : implicitPrimitive(2, TRUE);
  return extension(OID.issuingDistributionPoint, true, url === undefined ? sequence(flag) : sequence(distributionPointName(url), flag));
}

/** CRLNumber (RFC 5280 §5.2.3), non-critical. */
export function crlNumberExtension(number: number): Der {
  return extension(OID.crlNumber, false, integer(number));
}

/** Room reserved after the TBSCertList for the signature value: RSA-8192 fits. */
const MAX_SIGNATURE = 1024;
/** The longest DER header Chancery writes: tag + 0x84 + four length octets. */
const MAX_HEADER = 6;

function header(tag: number, length: number): Buffer {
  return Buffer.concat([Buffer.from([tag]), lengthOctets(length)]);
}

/** Rule 2's check of what is about to be signed: the facts the TBSCertList is encoded from. */
function check(issuer: CrlIssuer, request: CrlRequest): void {
  if (!Number.isSafeInteger(request.number) || request.number < 1) {
    throw new CaError('serverInternal', `CRL number ${request.number} is not a positive integer`);
  }
  if (Number.isNaN(request.thisUpdate.getTime()) || Number.isNaN(request.nextUpdate.getTime())) {
    throw new CaError('serverInternal', 'CRL thisUpdate/nextUpdate is not a valid date');
  }
  // RFC 5280 §5.1.2.5: nextUpdate is later than thisUpdate. Whole seconds are what Time can carry.
  if (Math.floor(request.nextUpdate.getTime() / 1000) <= Math.floor(request.thisUpdate.getTime() / 1000)) {
    throw new CaError('serverInternal', `CRL of ${issuer.id}: nextUpdate must be later than thisUpdate`);
  }
  // A shard CRL without the URL its certificates point at would be in scope for any shard's certificates.
  if (request.scope === 'userCerts' && request.distributionPoint === undefined) {
    throw new CaError('serverInternal', `CRL of ${issuer.id}: an end-entity CRL needs its distribution point`);
  }
  if (request.distributionPoint !== undefined && !/^http:\/\/\S+$/.test(request.distributionPoint)) {
    // RFC 5280 §4.2.1.13 / CABF BR: CRL DPs are plain HTTP URLs; the same string is in the certificates.
    throw new CaError('serverInternal', `CRL distribution point ${JSON.stringify(request.distributionPoint)} is not an http:// URL`);
  }
}

/**
 * Builds one CRL (RFC 5280 §5.1) for an issuer: TBSCertList from the pre-encoded issuer parts and a stream
 * of entries, signed through the issuer's Signer and verified with its public key before anyone sees it
 * (DESIGN.md rule 2; CertificateList has the same outer SEQUENCE as Certificate, see signAndVerify).
 *
 *   TBSCertList ::= SEQUENCE { version v2, signature, issuer, thisUpdate, nextUpdate,
 *                              revokedCertificates OPTIONAL, crlExtensions [0] EXPLICIT }
 */
export class CrlBuilder {
  constructor(private readonly issuer: CrlIssuer) {}

  get issuerId(): string {
    return this.issuer.id;
  }

  async build(request: CrlRequest, source: CrlEntrySource): Promise<SignedCrl> {
    check(this.issuer, request);
    const { signer, verifyKey, signatureAlgorithmDer } = this.issuer;
    const head = [
      // version v2 (INTEGER 1): required when extensions are present (RFC 5280 §5.1.2.1).
      integer(1),
      signatureAlgorithmDer,
      this.issuer.subjectDer,
      time(request.thisUpdate),
      time(request.nextUpdate),
    ];
    // RFC 5280 §5.2: AKI and CRLNumber MUST be included; the IDP scopes the CRL (see issuingDistributionPoint).
    const crlExtensions = explicit(
      0,
      sequence(this.issuer.akiExtension, crlNumberExtension(request.number), issuingDistributionPoint(request.distributionPoint, request.scope)),
    );
    const headLength = head.reduce((sum, part) => sum + part.length, 0);

    // The entries go into one buffer with room before them for CertificateList, TBSCertList and
    // revokedCertificates headers and the head fields, and after them for the extensions and the signature:
    // the CRL is assembled around the entries where they lie.
    const encoder = new RevokedCertificatesEncoder({
      front: 3 * MAX_HEADER + headLength,
      tail: crlExtensions.length + signatureAlgorithmDer.length + MAX_HEADER + 1 + MAX_SIGNATURE,
      expectedEntries: request.expectedEntries,
    });
    for await (const page of source) {
      if ('serialLengths' in page) encoder.addColumns(page);
      else for (const entry of page) encoder.add(entry);
    }
    const { buffer, start, end, count } = encoder.finish();

    // Backwards from the entries: revokedCertificates header (RFC 5280 §5.1.2.6: absent, not empty, when
    // nothing is revoked), the head fields, the TBSCertList header; forwards: crlExtensions [0].
    let tbsStart = start;
    if (count > 0) {
      const revokedHeader = header(TAG.SEQUENCE, end - start);
      tbsStart -= revokedHeader.length;
      revokedHeader.copy(buffer, tbsStart);
    }
    for (let i = head.length - 1; i >= 0; i -= 1) {
      tbsStart -= head[i]!.length;
      head[i]!.copy(buffer, tbsStart);
    }
    const tbsEnd = end + crlExtensions.copy(buffer, end);
    const tbsHeader = header(TAG.SEQUENCE, tbsEnd - tbsStart);
    tbsStart -= tbsHeader.length;
    tbsHeader.copy(buffer, tbsStart);
    const tbs = buffer.subarray(tbsStart, tbsEnd);

    // Rule 2, as signAndVerify does it: sign exactly this TBS, then verify the signature with the issuer's
    // public key before the CRL goes anywhere.
    const signature = await signer.sign(tbs);
    if (!verifySignature(signer.algorithm, verifyKey, tbs, signature)) {
      throw new CaError('keyStore', `signature by key "${signer.name}" failed verification with the issuer public key`);
    }
    if (signature.length > MAX_SIGNATURE) throw new CaError('serverInternal', `signature of ${signature.length} octets`);
    let at = tbsEnd + signatureAlgorithmDer.copy(buffer, tbsEnd);
    at += bitString(signature).copy(buffer, at);
    const outerHeader = header(TAG.SEQUENCE, at - tbsStart);
    const derStart = tbsStart - outerHeader.length;
    outerHeader.copy(buffer, derStart);
    const der = buffer.subarray(derStart, at);

    // The outer SEQUENCE must span exactly the whole encoding and hold the TBS that was signed: a length bug
    // would otherwise surface only in relying parties.
    const outer = readTlv(der, 0);
    if (outer.tag !== TAG.SEQUENCE || outer.end !== der.length || readTlv(der, outer.start).end - outer.start !== tbs.length) {
      throw new CaError('serverInternal', 'CRL encoding is inconsistent');
    }
    return { der, entries: count };
  }
}
