import { toPem } from '../../core/pem.js';
import { parseRevokeCert } from '../schemas.js';
import { link, type AcmeRequest, type AcmeResponse, type HandlerContext } from './context.js';

/** RFC 8555 §7.4.2 / RFC 8555 §9.1: the default certificate download format. */
export const PEM_CHAIN_CONTENT_TYPE = 'application/pem-certificate-chain';

/**
 * POST-as-GET /acme/cert/<serial> (§7.4.2): the end-entity certificate followed by the chain up to but not
 * including the root (§9.1: each PEM block in order, leaf first). Link rel="up" names where the issuing CA
 * certificate can be fetched on its own (the AIA caIssuers URL) when the composition root can tell.
 */
export async function certificate(ctx: HandlerContext, request: AcmeRequest, serial: string): Promise<AcmeResponse> {
  const verified = await ctx.verifier.verify(request.body, request.externalUrl, { key: 'kid', payload: 'postAsGet' });
  const { certificate: leaf, chain } = await ctx.ra.getCertificateChain(verified.account!, serial);
  const pem = [leaf, ...chain].map((der) => toPem(der)).join('');
  const headers: Record<string, string | string[]> = { 'content-type': PEM_CHAIN_CONTENT_TYPE };
  const issuer = chain[0];
  const issuerUrl = issuer && ctx.issuerCertificateUrl ? ctx.issuerCertificateUrl(issuer) : undefined;
  if (issuerUrl) headers.link = [link(issuerUrl, 'up')];
  return { status: 200, headers, body: pem };
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
