import { CaError } from '../../core/errors.js';
import { isCertId } from '../linker.js';
import { jsonResponse, type AcmeRequest, type AcmeResponse, type HandlerContext } from './context.js';

/**
 * GET /acme/directory (RFC 8555 §7.1.1). The only URL a client is configured with; every other one is learned
 * from here. newAuthz offers pre-authorization (§7.4.1) for dns and ip identifiers. `renewalInfo` is the
 * RFC 9773 §4 base URL to which clients append "/<certID>".
 */
export function directory(ctx: HandlerContext): AcmeResponse {
  const { linker, meta } = ctx;
  const metaObject: Record<string, unknown> = {};
  if (meta.termsOfService !== undefined) metaObject.termsOfService = meta.termsOfService;
  if (meta.website !== undefined) metaObject.website = meta.website;
  if (meta.caaIdentities !== undefined && meta.caaIdentities.length > 0) metaObject.caaIdentities = [...meta.caaIdentities];
  if (meta.profiles !== undefined && Object.keys(meta.profiles).length > 0) metaObject.profiles = { ...meta.profiles };
  metaObject.externalAccountRequired = ctx.ra.externalAccountRequired;
  return jsonResponse(200, {
    newNonce: linker.newNonce(),
    newAccount: linker.newAccount(),
    newOrder: linker.newOrder(),
    newAuthz: linker.newAuthz(),
    revokeCert: linker.revokeCert(),
    keyChange: linker.keyChange(),
    renewalInfo: linker.renewalInfo(),
    meta: metaObject,
  });
}

/**
 * HEAD/GET /acme/new-nonce (RFC 8555 §7.2): HEAD answers 200, GET 204, both with no-store so no cache hands
 * the same nonce to two clients. The Replay-Nonce itself is added by the dispatcher, as for every POST.
 */
export function newNonce(request: AcmeRequest): AcmeResponse {
  return { status: request.method === 'HEAD' ? 200 : 204, headers: { 'cache-control': 'no-store' } };
}

/**
 * GET /acme/renewal-info/<certID> (RFC 9773 §4.2): the suggested renewal window, with Retry-After telling the
 * client when to ask again (§4.3). Unauthenticated by design: the certID is not secret and the answer is the
 * same for everyone.
 */
export async function renewalInfo(ctx: HandlerContext, certId: string): Promise<AcmeResponse> {
  if (!isCertId(certId)) {
    throw new CaError('malformed', 'renewal-info path is not an RFC 9773 certID: base64url(keyIdentifier).base64url(serial)');
  }
  const window = await ctx.ra.renewalInfo(certId);
  return jsonResponse(
    200,
    {
      suggestedWindow: { start: window.start.toISOString(), end: window.end.toISOString() },
      // §4.2: a page explaining why the window moved (an incident's).
      ...(window.explanationUrl === undefined ? {} : { explanationURL: window.explanationUrl }),
    },
    { 'retry-after': String(Math.max(1, Math.round(window.retryAfterSeconds))) },
  );
}
