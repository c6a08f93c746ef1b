import { openssl } from './openssl.js';

/**
 * What Chancery's OCSP responder says about a certificate, judged by `openssl ocsp` (RFC 6960): the URL is
 * the certificate's own AIA OCSP URL and must be on loopback (tests contact nothing else). The response is
 * verified against `rootPem` with `issuerPem` (the intermediate, which also issued the delegated responder
 * certificate, RFC 6960 §4.2.2.2) as an untrusted intermediate.
 */
export async function ocspStatus(rootPem: string, issuerPem: string, certPem: string): Promise<{ status: string; output: string }> {
  const uri = (await openssl(['x509', '-in', certPem, '-noout', '-ocsp_uri'])).stdout.trim();
  const host = uri ? new URL(uri).hostname : '';
  if (host !== '127.0.0.1' && host !== 'localhost' && host !== '[::1]') {
    throw new Error(`refusing to ask OCSP at ${JSON.stringify(uri)}: not a loopback URL`);
  }
  const args = ['ocsp', '-issuer', issuerPem, '-cert', certPem, '-url', uri, '-CAfile', rootPem, '-verify_other', issuerPem, '-no_nonce', '-timeout', '10'];
  const { code, stdout, stderr } = await openssl(args);
  const output = `$ openssl ${args.join(' ')}\n${stdout}${stderr}`;
  if (code !== 0 || !/Response verify OK/.test(stdout + stderr)) return { status: 'unverified', output };
  const status = new RegExp(`^${certPem.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: (\\w+)`, 'm').exec(stdout)?.[1] ?? 'unknown';
  return { status, output };
}
