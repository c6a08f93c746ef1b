import type { Account } from '../core/account.js';
import type { Authorization, Challenge, Order } from '../core/order.js';
import type { AcmeLinker } from './linker.js';
import { renderStoredProblem, type ProblemDocument } from './problem.js';

/**
 * Core objects -> the JSON resources of RFC 8555 §7.1.2-§7.1.5. Only what the RFC defines (plus RFC 9773's
 * `replaces`) goes out: internal bookkeeping such as challenge attempt counters, the account's EAB kid or its
 * group stays inside. Timestamps are RFC 3339 in UTC ("Z"), as §7.1 requires for date-time fields.
 */

function time(date: Date): string {
  return date.toISOString();
}

export interface AccountResource {
  status: Account['status'];
  contact: string[];
  termsOfServiceAgreed: boolean;
  orders: string;
}

/** §7.1.2. `orders` is the URL of the account's order list (§7.1.2.1). */
export function renderAccount(account: Account, linker: AcmeLinker): AccountResource {
  return {
    status: account.status,
    contact: [...account.contacts],
    termsOfServiceAgreed: account.termsOfServiceAgreed,
    orders: linker.accountOrders(account.id),
  };
}

export interface OrderResource {
  status: Order['status'];
  expires: string;
  identifiers: { type: string; value: string }[];
  notBefore?: string;
  notAfter?: string;
  error?: ProblemDocument;
  authorizations: string[];
  finalize: string;
  certificate?: string;
  replaces?: string;
  /** draft-ietf-acme-profiles: the profile the order is issued under. */
  profile?: string;
}

/**
 * §7.1.3. `certificate` appears only once the order is valid (§7.4: the URL is where the client downloads the
 * issued certificate). `replaces` (RFC 9773 §5) is the ARI certID the order was created with; core Order keeps
 * only the replaced serial, so the caller passes the certID when it has it.
 */
export function renderOrder(order: Order, linker: AcmeLinker, extras: { replaces?: string } = {}): OrderResource {
  const resource: OrderResource = {
    status: order.status,
    expires: time(order.expires),
    identifiers: order.identifiers.map((id) => ({ type: id.type, value: id.value })),
    authorizations: order.authorizationIds.map((id) => linker.authorization(id)),
    finalize: linker.finalize(order.id),
  };
  if (order.notBefore) resource.notBefore = time(order.notBefore);
  if (order.notAfter) resource.notAfter = time(order.notAfter);
  if (order.error) resource.error = renderStoredProblem(order.error);
  if (order.status === 'valid' && order.certificateSerial) resource.certificate = linker.certificate(order.certificateSerial);
  if (extras.replaces !== undefined) resource.replaces = extras.replaces;
  if (order.profile !== undefined) resource.profile = order.profile;
  return resource;
}

export interface ChallengeResource {
  type: Challenge['type'];
  url: string;
  status: Challenge['status'];
  token: string;
  validated?: string;
  error?: ProblemDocument;
}

/**
 * §7.1.5 and §8.3/§8.4/RFC 8737 §3: type, url, status, token; `validated` once valid; `error` when validation
 * failed. The key authorization is never rendered: the client computes it from the token and its own key
 * (§8.1), and showing it would only help someone who lacks the key.
 */
export function renderChallenge(challenge: Challenge, linker: AcmeLinker): ChallengeResource {
  const resource: ChallengeResource = {
    type: challenge.type,
    url: linker.challenge(challenge.id),
    status: challenge.status,
    token: challenge.token,
  };
  if (challenge.validatedAt) resource.validated = time(challenge.validatedAt);
  if (challenge.error) resource.error = renderStoredProblem(challenge.error);
  return resource;
}

export interface AuthorizationResource {
  identifier: { type: string; value: string };
  status: Authorization['status'];
  expires: string;
  challenges: ChallengeResource[];
  wildcard?: true;
}

/**
 * §7.1.4. The identifier is the base name (no "*."), with `wildcard: true` for a wildcard authorization. For a
 * valid authorization §7.1.4 lists the challenge that was validated; for an invalid one the challenge that
 * failed; while pending, all challenges the client may choose from.
 */
export function renderAuthorization(authorization: Authorization, linker: AcmeLinker): AuthorizationResource {
  let challenges = authorization.challenges;
  if (authorization.status === 'valid' || authorization.status === 'invalid') {
    const decisive = challenges.filter((c) => c.status === authorization.status);
    if (decisive.length > 0) challenges = decisive;
  }
  const resource: AuthorizationResource = {
    identifier: { type: authorization.identifier.type, value: authorization.identifier.value },
    status: authorization.status,
    expires: time(authorization.expires),
    challenges: challenges.map((c) => renderChallenge(c, linker)),
  };
  if (authorization.wildcard) resource.wildcard = true;
  return resource;
}
