import type { Order } from '../../core/order.js';
import { renderAuthorization, renderChallenge, renderOrder } from '../render.js';
import { parseAuthorizationUpdate, parseChallengeResponse, parseFinalize, parseNewAuthz, parseNewOrder } from '../schemas.js';
import { jsonResponse, link, retryAfterSeconds, type AcmeRequest, type AcmeResponse, type HandlerContext } from './context.js';

/** Retry-After while the order is being issued (§7.4: clients poll a processing order). */
function orderHeaders(ctx: HandlerContext, order: Order): Record<string, string> {
  const headers: Record<string, string> = { location: ctx.linker.order(order.id) };
  if (order.status === 'processing') headers['retry-after'] = retryAfterSeconds(ctx.clock);
  return headers;
}

/** POST /acme/new-order (RFC 8555 §7.4): 201 + Location of the new order. */
export async function newOrder(ctx: HandlerContext, request: AcmeRequest): Promise<AcmeResponse> {
  const verified = await ctx.verifier.verify(request.body, request.externalUrl, { key: 'kid', payload: 'json' });
  const payload = parseNewOrder(verified.payload);
  const order = await ctx.ra.newOrder(verified.account!, payload);
  return jsonResponse(201, renderOrder(order, ctx.linker, { replaces: payload.replaces }), { location: ctx.linker.order(order.id) });
}

/**
 * POST /acme/new-authz (RFC 8555 §7.4.1 pre-authorization): 201 + Location of a new pending authorization,
 * or 200 + Location of a valid one the account already holds for the identifier (what a later order would
 * reuse anyway). Wildcards are refused: the authorization names the exact identifier (§7.4.1).
 */
export async function newAuthz(ctx: HandlerContext, request: AcmeRequest): Promise<AcmeResponse> {
  const verified = await ctx.verifier.verify(request.body, request.externalUrl, { key: 'kid', payload: 'json' });
  const { identifier } = parseNewAuthz(verified.payload);
  const { authorization, created } = await ctx.ra.newAuthorization(verified.account!, identifier);
  return jsonResponse(created ? 201 : 200, renderAuthorization(authorization, ctx.linker), { location: ctx.linker.authorization(authorization.id) });
}

/** POST-as-GET /acme/order/<id> (§7.1.3, §7.4). The RA refuses another account's order (unauthorized). */
export async function order(ctx: HandlerContext, request: AcmeRequest, orderId: string): Promise<AcmeResponse> {
  const verified = await ctx.verifier.verify(request.body, request.externalUrl, { key: 'kid', payload: 'postAsGet' });
  const found = await ctx.ra.getOrder(verified.account!, orderId);
  return jsonResponse(200, renderOrder(found, ctx.linker), orderHeaders(ctx, found));
}

/**
 * POST /acme/order/<id>/finalize (§7.4): the CSR; answers with the order, which is processing (poll it after
 * Retry-After) or already valid with its certificate URL.
 */
export async function finalize(ctx: HandlerContext, request: AcmeRequest, orderId: string): Promise<AcmeResponse> {
  const verified = await ctx.verifier.verify(request.body, request.externalUrl, { key: 'kid', payload: 'json' });
  const { csr } = parseFinalize(verified.payload);
  const finalized = await ctx.ra.finalizeOrder(verified.account!, orderId, csr);
  return jsonResponse(200, renderOrder(finalized, ctx.linker), orderHeaders(ctx, finalized));
}

/** POST /acme/authz/<id>: POST-as-GET reads it (§7.5); {"status": "deactivated"} deactivates it (§7.5.2). */
export async function authorization(ctx: HandlerContext, request: AcmeRequest, authorizationId: string): Promise<AcmeResponse> {
  const verified = await ctx.verifier.verify(request.body, request.externalUrl, { key: 'kid', payload: 'either' });
  const account = verified.account!;
  let authz;
  if (verified.postAsGet) {
    authz = await ctx.ra.getAuthorization(account, authorizationId);
  } else {
    parseAuthorizationUpdate(verified.payload);
    authz = await ctx.ra.deactivateAuthorization(account, authorizationId);
  }
  const headers: Record<string, string> = {};
  const pending = authz.challenges.find((c) => c.status === 'processing');
  if (authz.status === 'pending' && pending) headers['retry-after'] = retryAfterSeconds(ctx.clock, pending.nextAttemptAt);
  return jsonResponse(200, renderAuthorization(authz, ctx.linker), headers);
}

/**
 * POST /acme/chall/<id>: a JSON object (normally {}) tells the server to validate (§7.5.1); POST-as-GET reads
 * the challenge. The response links its authorization with rel="up" (§7.5.1) so clients can poll that.
 */
export async function challenge(ctx: HandlerContext, request: AcmeRequest, challengeId: string): Promise<AcmeResponse> {
  const verified = await ctx.verifier.verify(request.body, request.externalUrl, { key: 'kid', payload: 'either' });
  const account = verified.account!;
  let result;
  if (verified.postAsGet) {
    result = await ctx.ra.getChallenge(account, challengeId);
  } else {
    parseChallengeResponse(verified.payload);
    result = await ctx.ra.respondToChallenge(account, challengeId);
  }
  const headers: Record<string, string | string[]> = { link: [link(ctx.linker.authorization(result.authorization.id), 'up')] };
  if (result.challenge.status === 'processing') headers['retry-after'] = retryAfterSeconds(ctx.clock, result.challenge.nextAttemptAt);
  return jsonResponse(200, renderChallenge(result.challenge, ctx.linker), headers);
}
