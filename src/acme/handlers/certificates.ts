import { toPem } from '../../core/pem.js';
import { parseRevokeCert } from '../schemas.js';
import type { AcmeRequest, AcmeResponse, HandlerContext } from './context.js';

/** RFC 8555 §7.4.2 / RFC 8555 §9.1: the default certificate download format. */
export const PEM_CHAIN_CONTENT_TYPE = 'application/pem-certificate-chain';

/**
 * POST-as-GET /acme/cert/<serial> (§7.4.2): the end-entity certificate followed by the chain up to but not
 * including the root (§9.1: each PEM block in order, leaf first).
 *
 * No Link rel="up" to the issuer's certificate: the download already carries the issuer, and RFC 8555 defines
 * no "up" relation for a certificate (§7.4.2 has only "alternate", for other chains; "up" to the issuer is
 * ACME v1). Clients follow a Link of an ACME response as one more ACME resource, by POST-as-GET (§6.3) on this
 * listener; the issuer's public copy (/ca/<issuer>.der, the AIA caIssuers URL of RFC 5280 §4.2.2.1) is on the
 * plain-HTTP public listener and answers GET only, so such a client (Caddy's) retried that 404 forever and
 * never stored its certificate. Relying parties find that copy through the certificate's AIA instead.
 */
export async function certificate(ctx: HandlerContext, request: AcmeRequest, serial: string): Promise<AcmeResponse> {
  const verified = await ctx.verifier.verify(request.body, request.externalUrl, { key: 'kid', payload: 'postAsGet' });
  const { certificate: leaf, chain } = await ctx.ra.getCertificateChain(verified.account!, serial);
  const pem = [leaf, ...chain].map((der) => toPem(der)).join('');
  return { status: 200, headers: { 'content-type': PEM_CHAIN_CONTENT_TYPE }, body: pem };
}

/**
 * POST /acme/revoke-cert (§7.6): signed either by an account (kid) or by the certificate's own key (jwk); the
 * RA decides whether the signer may revoke. Success is 200 with an empty body.
 */
export async function revokeCert(ctx: HandlerContext, request: AcmeRequest): Promise<AcmeResponse> {
  const verified = await ctx.verifier.verify(request.body, request.externalUrl, { key: 'either', payload: 'json' });
  const payload = parseRevokeCert(verified.payload);
  await ctx.ra.revokeCertificate({
    certificateDer: payload.certificate,
    ...(payload.reason !== undefined ? { reason: payload.reason } : {}),
    by: verified.account ? { account: verified.account } : { jwk: verified.jwk!, jwkThumbprint: verified.thumbprint! },
  });
  return { status: 200, headers: {} };
}
