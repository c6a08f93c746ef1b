import type { Account } from '../../core/account.js';
import { CaError } from '../../core/errors.js';
import type { VerifiedRequest } from '../jws-verifier.js';
import { isValidCursor } from '../linker.js';
import { renderAccount } from '../render.js';
import { parseAccountUpdate, parseNewAccount } from '../schemas.js';
import { jsonResponse, link, ResponseProblem, type AcmeRequest, type AcmeResponse, type HandlerContext } from './context.js';

/** Orders per page of an account's order list (RFC 8555 §7.1.2.1); further pages via Link rel="next". */
export const ORDERS_PAGE_SIZE = 100;

/**
 * Requests to /acme/acct/<id>[/orders] must be signed by that very account: §7.3.2 identifies the account by
 * the request URL and the `kid`, and they must agree.
 */
function requireSameAccount(ctx: HandlerContext, verified: VerifiedRequest, accountId: string): Account {
  const account = verified.account!;
  if (account.id !== accountId) {
    throw new CaError('unauthorized', `the request is signed by account ${ctx.linker.account(account.id)}, not by ${ctx.linker.account(accountId)}`);
  }
  return account;
}

/**
 * POST /acme/new-account (RFC 8555 §7.3). Signed with `jwk` (there is no account yet). 201 + Location for a new
 * account; 200 + Location when the key already has one (§7.3.1), which is also how onlyReturnExisting answers.
 */
export async function newAccount(ctx: HandlerContext, request: AcmeRequest): Promise<AcmeResponse> {
  const verified = await ctx.verifier.verify(request.body, request.externalUrl, { key: 'jwk', payload: 'json' });
  const payload = parseNewAccount(verified.payload);
  const { account, created } = await ctx.ra.newAccount({
    publicJwk: verified.jwk!,
    jwkThumbprint: verified.thumbprint!,
    contacts: payload.contacts,
    termsOfServiceAgreed: payload.termsOfServiceAgreed,
    onlyReturnExisting: payload.onlyReturnExisting,
    ...(payload.externalAccountBinding ? { externalAccountBinding: payload.externalAccountBinding } : {}),
    // §7.3.4: the EAB JWS must be bound to this URL; the RA compares it with the EAB's protected `url`.
    newAccountUrl: ctx.linker.newAccount(),
  });
  return jsonResponse(created ? 201 : 200, renderAccount(account, ctx.linker), { location: ctx.linker.account(account.id) });
}

/**
 * POST /acme/acct/<id>: POST-as-GET reads the account (§7.3.3 also allows the empty update `{}`); a payload
 * updates contacts (§7.3.2) or deactivates (§7.3.6).
 */
export async function account(ctx: HandlerContext, request: AcmeRequest, accountId: string): Promise<AcmeResponse> {
  const verified = await ctx.verifier.verify(request.body, request.externalUrl, { key: 'kid', payload: 'either' });
  let account = requireSameAccount(ctx, verified, accountId);
  if (!verified.postAsGet) {
    const update = parseAccountUpdate(verified.payload);
    if (update.deactivate || update.contacts !== undefined) {
      account = await ctx.ra.updateAccount(account, {
        ...(update.contacts !== undefined ? { contacts: update.contacts } : {}),
        ...(update.deactivate ? { deactivate: true } : {}),
      });
    }
  }
  return jsonResponse(200, renderAccount(account, ctx.linker), { location: ctx.linker.account(account.id) });
}

/**
 * POST-as-GET /acme/acct/<id>/orders[?cursor=...] (§7.1.2.1): order URLs, newest first, a page at a time with
 * Link rel="next" to the following page.
 */
export async function accountOrders(ctx: HandlerContext, request: AcmeRequest, accountId: string): Promise<AcmeResponse> {
  const verified = await ctx.verifier.verify(request.body, request.externalUrl, { key: 'kid', payload: 'postAsGet' });
  const account = requireSameAccount(ctx, verified, accountId);
  const cursor = new URL(request.externalUrl).searchParams.get('cursor') ?? undefined;
  if (cursor !== undefined && !isValidCursor(cursor)) throw new CaError('malformed', 'the "cursor" query parameter is not one this server issued');
  const page = await ctx.ra.listOrderIds(account, cursor, ORDERS_PAGE_SIZE);
  const headers: Record<string, string | string[]> = {};
  if (page.nextCursor !== undefined) headers.link = [link(ctx.linker.accountOrders(account.id, page.nextCursor), 'next')];
  return jsonResponse(200, { orders: page.ids.map((id) => ctx.linker.order(id)) }, headers);
}

/**
 * POST /acme/key-change (§7.3.5). The outer JWS is the account's (kid); the inner one proves possession of the
 * new key. A new key that already belongs to an account is a 409 whose Location names that account (§7.3.5).
 * The RA checks again inside its transaction (conflict) so two racing key changes cannot both win.
 */
export async function keyChange(ctx: HandlerContext, request: AcmeRequest): Promise<AcmeResponse> {
  const verified = await ctx.verifier.verify(request.body, request.externalUrl, { key: 'kid', payload: 'json' });
  const { newJwk, newThumbprint } = await ctx.verifier.verifyKeyChange(verified);
  const holder = await ctx.ra.findAccountByThumbprint(newThumbprint);
  if (holder) {
    throw new ResponseProblem('conflict', 'the new key is already the key of an account (RFC 8555 §7.3.5)', {
      headers: { location: ctx.linker.account(holder.id) },
    });
  }
  const account = await ctx.ra.changeAccountKey(verified.account!, newJwk, newThumbprint);
  return jsonResponse(200, renderAccount(account, ctx.linker), { location: ctx.linker.account(account.id) });
}
