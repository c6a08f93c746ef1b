import { createHash } from 'node:crypto';
import { CaError } from '../core/errors.js';
import type { Identifier } from '../core/identifier.js';
import type { CertificateProfile } from '../core/profile.js';
import { explicit, integer, sequence, time, unsignedInteger, type Der } from './der/der-writer.js';
import { basicConstraints, extendedKeyUsage, keyIdentifierExtension, keyUsage, KEY_USAGE, noRevAvail, subjectAltName } from './extensions.js';
import type { IssuerContext } from './issuer-context.js';
import { encodeName } from './name.js';
import { crlShardOf, randomSerial, serialHex } from './serial.js';
import { signAndVerify } from './sign-certificate.js';
import { keyIdentifier } from './certificate-parser.js';

/** What a caller asks for: a checked subscriber key and checked identifiers (policy/ has done both). */
export interface LeafRequest {
  /** SubjectPublicKeyInfo DER of the subscriber key, already accepted by the key policy. */
  publicKey: Uint8Array;
  keyFamily: 'rsa' | 'ec';
  identifiers: readonly Identifier[];
  /** The validity window policy/ computed (validityWindow), client requests (RFC 8555 §7.1.3) included. */
  notBefore: Date;
  notAfter: Date;
  /** The profile to issue under; the builder's own when absent. */
  profile?: CertificateProfile;
}

/** A TBS that passed the checks, with the facts the stores need; signing turns it into a certificate. */
export interface PreparedLeaf {
  issuerId: string;
  serial: string;
  serialBytes: Buffer;
  crlShard: number;
  tbs: Der;
  notBefore: Date;
  notAfter: Date;
  identifiers: Identifier[];
  spkiSha256: string;
}

const ONE_SECOND = 1000;
const MAX_COMMON_NAME = 64; // ub-common-name, RFC 5280 Appendix A.1

/**
 * Builds end-entity TBSCertificates for one issuer from its pre-encoded IssuerContext (RFC 5280 §4.1,
 * CABF BR 7.1.2.7 subscriber profile), checks each against the profile, and signs them.
 */
export class LeafCertificateBuilder {
  constructor(
    private readonly issuer: IssuerContext,
    private readonly profile: CertificateProfile,
    private readonly crlShards: number,
  ) {}

  get issuerId(): string {
    return this.issuer.id;
  }

  prepare(request: LeafRequest, now: Date): PreparedLeaf {
    const profile = request.profile ?? this.profile;
    const { notBefore, notAfter } = this.validity(request, profile, now);
    const identifiers = [...request.identifiers];
    this.check(request, profile, identifiers);

    const serialBytes = randomSerial();
    const crlShard = crlShardOf(serialBytes, this.crlShards);
    const firstDns = identifiers.find((id) => id.type === 'dns');
    // Subject: CN = first DNS name when it fits ub-common-name; otherwise an empty subject, and then the
    // SAN must be critical (RFC 5280 §4.2.1.6).
    const useCn = firstDns !== undefined && firstDns.value.length <= MAX_COMMON_NAME;
    const subject = encodeName(useCn ? { commonName: firstDns.value } : {});
    const spki = Buffer.from(request.publicKey);

    const usageBits =
      request.keyFamily === 'rsa' ? [KEY_USAGE.digitalSignature, KEY_USAGE.keyEncipherment] : [KEY_USAGE.digitalSignature];
    // RFC 9608 §2: a noRevAvail certificate names no CRL DP and no OCSP responder, and says so.
    const revocation = profile.noRevAvail
      ? [this.issuer.aiaCaIssuersOnlyExtension, noRevAvail()]
      : [this.issuer.aiaExtension, this.issuer.crlDpExtensions[crlShard]!];
    const extensions = sequence(
      keyUsage(usageBits),
      extendedKeyUsage(profile.extendedKeyUsages),
      basicConstraints(false),
      keyIdentifierExtension(keyIdentifier(spki)),
      this.issuer.akiExtension,
      ...revocation,
      subjectAltName(identifiers, !useCn),
    );
    const tbs = sequence(
      explicit(0, integer(2)), // v3
      unsignedInteger(serialBytes),
      this.issuer.signatureAlgorithmDer,
      this.issuer.subjectDer,
      sequence(time(notBefore), time(notAfter)),
      subject,
      spki,
      explicit(3, extensions),
    );
    return {
      issuerId: this.issuer.id,
      serial: serialHex(serialBytes),
      serialBytes,
      crlShard,
      tbs,
      notBefore,
      notAfter,
      identifiers,
      spkiSha256: createHash('sha256').update(spki).digest('hex'),
    };
  }

  /** Signs the prepared TBS through the issuer's Signer and verifies the result (DESIGN.md rule 2). */
  sign(prepared: PreparedLeaf): Promise<Der> {
    if (prepared.issuerId !== this.issuer.id) {
      throw new CaError('caState', `prepared certificate belongs to issuer ${prepared.issuerId}, not ${this.issuer.id}`);
    }
    return signAndVerify(this.issuer.signer, this.issuer.verifyKey, this.issuer.signatureAlgorithmDer, prepared.tbs);
  }

  /**
   * The TBS check of rule 2 on the window policy/ computed (validityWindow): it must fit the profile
   * (RFC 5280 §4.1.2.5 counts both ends, so the span is notAfter - notBefore + 1 s), and it never outlives
   * the issuer: notAfter is cut at the issuer's notAfter (RFC 5280 §6.1.3: a chain is only as valid as its
   * shortest-lived certificate).
   */
  private validity(request: LeafRequest, profile: CertificateProfile, now: Date): { notBefore: Date; notAfter: Date } {
    const { notBefore, notAfter: wanted } = request;
    if (wanted.getTime() <= notBefore.getTime()) throw new CaError('malformed', 'notAfter must be later than notBefore');
    if (wanted.getTime() - notBefore.getTime() + ONE_SECOND > profile.validityMs) {
      throw new CaError('malformed', `validity ${notBefore.toISOString()} to ${wanted.toISOString()} exceeds the profile "${profile.name}"`);
    }
    const notAfter = wanted.getTime() > this.issuer.notAfter.getTime() ? this.issuer.notAfter : wanted;
    if (notAfter.getTime() <= now.getTime()) {
      throw new CaError('caState', `issuer ${this.issuer.id} expires at ${this.issuer.notAfter.toISOString()}: rotate the intermediate`);
    }
    return { notBefore, notAfter };
  }

  /** The TBS check of rule 2, on the facts the TBS is encoded from. */
  private check(request: LeafRequest, profile: CertificateProfile, identifiers: Identifier[]): void {
    if (identifiers.length === 0) throw new CaError('malformed', 'a certificate needs at least one identifier');
    if (identifiers.length > profile.maxIdentifiers) {
      throw new CaError('rejectedIdentifier', `at most ${profile.maxIdentifiers} identifiers per certificate`);
    }
    if (Buffer.from(request.publicKey).equals(Buffer.from(this.issuer.signer.publicKey))) {
      throw new CaError('badPublicKey', 'the subscriber key must not be the CA key');
    }
  }
}
