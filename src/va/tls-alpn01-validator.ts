import { X509Certificate, createHash } from 'node:crypto';
import tls from 'node:tls';
import { ValidationFailure, createAddressResolver, hostForUrl, runAttempt, socketFailure, type ResolveAddress } from './attempt.js';
import { createDialer, tcpConnector, type CheckedTarget, type Connector, type Dialer } from './dial.js';
import { createNetworkPolicy, type NetworkPolicy } from './network-policy.js';
import { ipAddressBytes, reverseDnsName } from './reverse-dns-name.js';
import type { ValidationOutcome, ValidationRequest, Validator } from './validator.js';

/** RFC 8737 §6.2: the ALPN protocol name a responder must negotiate. */
export const ACME_TLS_ALPN_PROTOCOL = 'acme-tls/1';

export interface TlsAlpn01Options {
  /** 443 per RFC 8737 §3; another port only in test set-ups (CHANCERY_TLSALPN01_PORT). */
  port: number;
  timeoutMs: number;
  dnsResolvers?: string[];
  resolveAddress?: ResolveAddress;
  /** What may be contacted; the default policy otherwise. */
  policy?: NetworkPolicy;
  /** How connections are opened (tests count them); plain TCP otherwise. */
  connector?: Connector;
}

/**
 * tls-alpn-01 (RFC 8737 §3): connect with TLS 1.2+ offering only "acme-tls/1", SNI naming the identifier
 * (for an ip identifier its reverse name, RFC 8738 §6), and check the self-signed certificate the
 * responder presents: exactly one subjectAltName, equal to the identifier, and a critical acmeIdentifier
 * extension holding SHA-256 of the key authorization. The certificate chain is not verified: the
 * certificate is a one-off made by the client, and the digest is what proves control.
 */
export function createTlsAlpn01Validator(options: TlsAlpn01Options): Validator {
  const dial: Dialer = createDialer({
    resolve: createAddressResolver(options),
    policy: options.policy ?? createNetworkPolicy(),
    connector: options.connector ?? tcpConnector,
  });
  return {
    validate: (request: ValidationRequest): Promise<ValidationOutcome> =>
      runAttempt(options.timeoutMs, async (signal) => {
        const { identifier } = request;
        const ip = identifier.type === 'ip';
        const servername = ip ? reverseDnsName(identifier.value) : identifier.value;
        const target = `${hostForUrl(identifier.value)}:${options.port}`;
        // Checked against the network policy, then connected to the very address that was checked.
        const checked = await dial(identifier.value, options.port, signal, `tls-alpn-01 to ${target}`);
        const der = await fetchCertificate(checked, servername, target, options.timeoutMs, signal);
        const expected = createHash('sha256').update(request.keyAuthorization, 'utf8').digest();
        checkChallengeCertificate(der, identifier.type, identifier.value, expected, target);
        return { valid: true, detail: `${target} presented a certificate with the expected acmeIdentifier` };
      }),
  };
}

function fetchCertificate(checked: CheckedTarget, servername: string, target: string, timeoutMs: number, signal: AbortSignal): Promise<Buffer> {
  return new Promise<Buffer>((resolve, reject) => {
    if (signal.aborted) {
      reject(socketFailure(Object.assign(new Error('aborted'), { code: 'ABORT_ERR' }), target, timeoutMs));
      return;
    }
    const socket = tls.connect({
      socket: checked.open(),
      servername,
      ALPNProtocols: [ACME_TLS_ALPN_PROTOCOL],
      // RFC 8737 §3: "The ACME server MUST ... use TLS 1.2 or higher".
      minVersion: 'TLSv1.2',
      rejectUnauthorized: false,
    });
    const onAbort = (): void => {
      socket.destroy();
      reject(socketFailure(Object.assign(new Error('aborted'), { code: 'ABORT_ERR' }), target, timeoutMs));
    };
    signal.addEventListener('abort', onAbort, { once: true });
    const finish = (): void => {
      signal.removeEventListener('abort', onAbort);
      // Errors after the outcome is settled (a late reset) must not become unhandled 'error' events.
      socket.on('error', () => undefined);
      socket.destroy();
    };
    socket.once('secureConnect', () => {
      try {
        // RFC 8737 §3: a responder that does not negotiate acme-tls/1 is not answering the challenge
        // (it may be an ordinary web server on 443 presenting its usual certificate).
        if (socket.alpnProtocol !== ACME_TLS_ALPN_PROTOCOL) {
          const got = socket.alpnProtocol ? `"${socket.alpnProtocol}"` : 'no protocol';
          throw new ValidationFailure('tls', `${target} negotiated ${got} instead of ALPN "${ACME_TLS_ALPN_PROTOCOL}"`, false);
        }
        const peer = socket.getPeerX509Certificate();
        if (!peer) {
          throw new ValidationFailure('tls', `${target} presented no certificate`, false);
        }
        resolve(Buffer.from(peer.raw));
      } catch (error) {
        reject(error);
      } finally {
        finish();
      }
    });
    socket.once('error', (error) => {
      finish();
      reject(socketFailure(error, target, timeoutMs));
    });
  });
}

/** id-pe-acmeIdentifier, 1.3.6.1.5.5.7.1.31 (RFC 8737 §6.1), as DER OID content bytes. */
const OID_ACME_IDENTIFIER = Buffer.from([0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x01, 0x1f]);
/** id-ce-subjectAltName, 2.5.29.17 (RFC 5280 §4.2.1.6). */
const OID_SUBJECT_ALT_NAME = Buffer.from([0x55, 0x1d, 0x11]);
/** GeneralName tags, context-specific and implicit (RFC 5280 §4.2.1.6): dNSName [2], iPAddress [7]. */
const TAG_DNS_NAME = 0x82;
const TAG_IP_ADDRESS = 0x87;

/**
 * Checks the challenge certificate per RFC 8737 §3. Throws 'incorrectResponse' naming the first reason it
 * does not prove control. Exported for unit tests of the DER walk.
 */
export function checkChallengeCertificate(der: Buffer, type: 'dns' | 'ip', value: string, expectedDigest: Buffer, target: string): void {
  const bad = (reason: string): ValidationFailure => new ValidationFailure('incorrectResponse', `${target} presented a challenge certificate where ${reason}`, false);
  try {
    // node:crypto rejects what is not an X.509 certificate at all; the fields below are read from the DER.
    new X509Certificate(der);
  } catch {
    throw bad('the certificate cannot be parsed');
  }
  let extensions: Map<string, Extension>;
  try {
    extensions = readExtensions(der);
  } catch (error) {
    if (error instanceof DuplicateExtension) throw bad(error.message);
    throw bad('the certificate is not valid DER');
  }

  const san = extensions.get(OID_SUBJECT_ALT_NAME.toString('hex'));
  if (!san) throw bad('there is no subjectAltName extension');
  let names: { tag: number; value: Buffer }[];
  try {
    names = readGeneralNames(san.value);
  } catch {
    throw bad('the subjectAltName extension is not valid DER');
  }
  // "... a subjectAltName extension containing the dNSName being validated and no other entries" (RFC 8737 §3);
  // for an ip identifier, the iPAddress (RFC 8738 §6).
  if (names.length !== 1) throw bad(`the subjectAltName has ${names.length} entries, expected exactly one`);
  const name = names[0]!;
  if (type === 'dns') {
    if (name.tag !== TAG_DNS_NAME || name.value.toString('latin1').toLowerCase() !== value.toLowerCase()) {
      throw bad(`the subjectAltName is ${describeName(name)}, expected DNS:${value}`);
    }
  } else {
    const bytes = ipAddressBytes(value);
    if (name.tag !== TAG_IP_ADDRESS || !bytes || !name.value.equals(bytes)) {
      throw bad(`the subjectAltName is ${describeName(name)}, expected IP:${value}`);
    }
  }

  const acme = extensions.get(OID_ACME_IDENTIFIER.toString('hex'));
  if (!acme) throw bad('the acmeIdentifier extension (1.3.6.1.5.5.7.1.31) is missing');
  // RFC 8737 §3: "The acmeIdentifier extension MUST be critical", so software that does not know it
  // never mistakes the certificate for an ordinary one.
  if (!acme.critical) throw bad('the acmeIdentifier extension is not critical');
  // extnValue holds the DER of Authorization ::= OCTET STRING (SIZE (32)) (RFC 8737 §6.1).
  let digest: Buffer;
  try {
    const inner = readTlv(acme.value, 0);
    if (inner.tag !== 0x04 || inner.end !== acme.value.length) throw new Error('not an OCTET STRING');
    digest = acme.value.subarray(inner.start, inner.end);
  } catch {
    throw bad('the acmeIdentifier extension does not hold a DER OCTET STRING');
  }
  if (digest.length !== 32) throw bad(`the acmeIdentifier holds ${digest.length} bytes, expected a 32-byte SHA-256 digest`);
  if (!digest.equals(expectedDigest)) {
    throw bad(`the acmeIdentifier digest ${digest.toString('hex')} is not SHA-256 of the key authorization (${expectedDigest.toString('hex')})`);
  }
}

function describeName(name: { tag: number; value: Buffer }): string {
  switch (name.tag) {
    case TAG_DNS_NAME:
      return `DNS:${JSON.stringify(name.value.toString('latin1')).slice(1, -1)}`;
    case TAG_IP_ADDRESS:
      return name.value.length === 4 ? `IP:${[...name.value].join('.')}` : `IP:${name.value.toString('hex')}`;
    default:
      return `a GeneralName of tag [${name.tag & 0x1f}]`;
  }
}

// A minimal DER reader: enough to walk Certificate -> tbsCertificate -> [3] extensions (RFC 5280 §4.1).
// The VA imports only core (DESIGN.md layers), so it does not borrow ca/'s asn1 tooling.

class DuplicateExtension extends Error {}

interface Tlv {
  /** The whole identifier octet (class, constructed bit, low tag number). */
  tag: number;
  start: number;
  end: number;
}

interface Extension {
  critical: boolean;
  value: Buffer;
}

function readTlv(buf: Buffer, offset: number): Tlv {
  const tag = buf[offset];
  if (tag === undefined) throw new Error('truncated DER');
  if ((tag & 0x1f) === 0x1f) throw new Error('high tag numbers are not used in certificates');
  let length = buf[offset + 1];
  if (length === undefined) throw new Error('truncated DER');
  let start = offset + 2;
  if (length & 0x80) {
    const count = length & 0x7f;
    if (count === 0 || count > 4) throw new Error('indefinite or oversized DER length');
    length = 0;
    for (let i = 0; i < count; i += 1) {
      const byte = buf[start + i];
      if (byte === undefined) throw new Error('truncated DER');
      length = length * 256 + byte;
    }
    start += count;
  }
  const end = start + length;
  if (end > buf.length) throw new Error('DER length runs past the end');
  return { tag, start, end };
}

/** The children of a constructed value spanning [start, end). */
function children(buf: Buffer, start: number, end: number): Tlv[] {
  const out: Tlv[] = [];
  let offset = start;
  while (offset < end) {
    const tlv = readTlv(buf, offset);
    if (tlv.end > end) throw new Error('DER child runs past its parent');
    out.push(tlv);
    offset = tlv.end;
  }
  return out;
}

/** Extensions keyed by the hex of their OID content bytes; a repeated extension is refused (RFC 5280 §4.2). */
function readExtensions(der: Buffer): Map<string, Extension> {
  const cert = readTlv(der, 0);
  if (cert.tag !== 0x30) throw new Error('not a SEQUENCE');
  const tbs = children(der, cert.start, cert.end)[0];
  if (!tbs || tbs.tag !== 0x30) throw new Error('no tbsCertificate');
  const wrapper = children(der, tbs.start, tbs.end).find((field) => field.tag === 0xa3);
  const result = new Map<string, Extension>();
  if (!wrapper) return result;
  const list = children(der, wrapper.start, wrapper.end)[0];
  if (!list || list.tag !== 0x30) throw new Error('extensions are not a SEQUENCE');
  for (const ext of children(der, list.start, list.end)) {
    const parts = children(der, ext.start, ext.end);
    const oid = parts[0];
    if (!oid || oid.tag !== 0x06) throw new Error('extension without an OID');
    let critical = false;
    let valueTlv = parts[1];
    if (valueTlv?.tag === 0x01) {
      // BOOLEAN DEFAULT FALSE: DER encodes TRUE as 0xff.
      critical = valueTlv.end - valueTlv.start === 1 && der[valueTlv.start] === 0xff;
      valueTlv = parts[2];
    }
    if (!valueTlv || valueTlv.tag !== 0x04) throw new Error('extension without an OCTET STRING value');
    const key = der.subarray(oid.start, oid.end).toString('hex');
    if (result.has(key)) throw new DuplicateExtension(`extension ${key} appears twice`);
    result.set(key, { critical, value: der.subarray(valueTlv.start, valueTlv.end) });
  }
  return result;
}

/** GeneralNames ::= SEQUENCE OF GeneralName; each name's identifier octet and content. */
function readGeneralNames(value: Buffer): { tag: number; value: Buffer }[] {
  const seq = readTlv(value, 0);
  if (seq.tag !== 0x30 || seq.end !== value.length) throw new Error('not a SEQUENCE');
  return children(value, seq.start, seq.end).map((name) => ({ tag: name.tag, value: value.subarray(name.start, name.end) }));
}
