/**
 * Every ACME URL Chancery hands out or accepts, built from one base (CHANCERY_ACME_URL, DESIGN.md "URLs").
 *
 * Building and parsing live side by side so they cannot drift: the JWS `url` check (RFC 8555 §6.4) compares
 * the signed URL with the URL the request arrived on, and a `kid` is an account URL this linker produced
 * (RFC 8555 §6.2, §7.3). Resource ids are opaque to acme/ but restricted to a URL-safe alphabet so a URL
 * never needs percent-encoding and a parsed id can be handed to the RA as is.
 */

/** Ids the RA issues (accounts, orders, authorizations, challenges): URL-safe, bounded. */
const ID = '[A-Za-z0-9_-]{1,128}';
/** Certificate serials: lower-case hex (core/certificate.ts). Upper case is accepted and folded on parse. */
const SERIAL = '[0-9A-Fa-f]{1,64}';
/**
 * RFC 9773 §4.1 certID: base64url(AKI keyIdentifier) "." base64url(DER serial INTEGER value), no padding.
 * The RA decodes and checks it; here only its alphabet and shape, so a path cannot smuggle anything else.
 */
const CERT_ID_RE = /^[A-Za-z0-9_-]{1,128}\.[A-Za-z0-9_-]{1,128}$/;

export function isCertId(value: string): boolean {
  return CERT_ID_RE.test(value);
}

const ID_RE = new RegExp(`^${ID}$`);
/** Opaque paging cursors for the orders list (RFC 8555 §7.1.2.1); the RA chooses them. */
const CURSOR_RE = /^[A-Za-z0-9_.:-]{1,200}$/;

export type AcmeRoute =
  | { name: 'directory' }
  | { name: 'newNonce' }
  | { name: 'newAccount' }
  | { name: 'newOrder' }
  | { name: 'newAuthz' }
  | { name: 'revokeCert' }
  | { name: 'keyChange' }
  | { name: 'renewalInfo'; certId: string }
  | { name: 'account'; accountId: string }
  | { name: 'accountOrders'; accountId: string }
  | { name: 'order'; orderId: string }
  | { name: 'finalize'; orderId: string }
  | { name: 'authorization'; authorizationId: string }
  | { name: 'challenge'; challengeId: string }
  | { name: 'certificate'; serial: string };

export type AcmeRouteName = AcmeRoute['name'];

export interface AcmeLinker {
  /** The base without a trailing slash, e.g. https://127.0.0.1:8443 */
  readonly base: string;
  directory(): string;
  newNonce(): string;
  newAccount(): string;
  newOrder(): string;
  /** RFC 8555 §7.4.1 pre-authorization. */
  newAuthz(): string;
  revokeCert(): string;
  keyChange(): string;
  /** RFC 9773 §4: the directory advertises the bare URL; clients append "/<certID>". */
  renewalInfo(certId?: string): string;
  account(accountId: string): string;
  /** RFC 8555 §7.1.2.1; `cursor` selects a later page (Link rel="next"). */
  accountOrders(accountId: string, cursor?: string): string;
  order(orderId: string): string;
  finalize(orderId: string): string;
  authorization(authorizationId: string): string;
  challenge(challengeId: string): string;
  certificate(serial: string): string;
  /** The account id named by a `kid` URL (RFC 8555 §6.2), or undefined when it is not one of ours. */
  accountIdFromUrl(url: string): string | undefined;
  /** Which ACME resource a request path (without query) names, or undefined. */
  route(path: string): AcmeRoute | undefined;
  /**
   * The external URL a request arrived on (RFC 8555 §6.4 compares it with the JWS `url`), from the path and
   * query the server saw. Works whether a reverse proxy keeps or strips a base path prefix.
   */
  requestUrl(pathAndQuery: string): string;
}

/** The paths of the ACME resources, relative to the base. Kept in one table for route() below. */
const PATTERNS: { re: RegExp; make: (m: RegExpExecArray) => AcmeRoute }[] = [
  { re: /^\/acme\/directory$/, make: () => ({ name: 'directory' }) },
  { re: /^\/acme\/new-nonce$/, make: () => ({ name: 'newNonce' }) },
  { re: /^\/acme\/new-account$/, make: () => ({ name: 'newAccount' }) },
  { re: /^\/acme\/new-order$/, make: () => ({ name: 'newOrder' }) },
  { re: /^\/acme\/new-authz$/, make: () => ({ name: 'newAuthz' }) },
  { re: /^\/acme\/revoke-cert$/, make: () => ({ name: 'revokeCert' }) },
  { re: /^\/acme\/key-change$/, make: () => ({ name: 'keyChange' }) },
  // Any single segment routes here so a bad certID gets a 400 malformed naming it rather than a 404 (the handler
  // checks it against isCertId()).
  { re: /^\/acme\/renewal-info\/([^/]+)$/, make: (m) => ({ name: 'renewalInfo', certId: m[1]! }) },
  { re: new RegExp(`^/acme/acct/(${ID})$`), make: (m) => ({ name: 'account', accountId: m[1]! }) },
  { re: new RegExp(`^/acme/acct/(${ID})/orders$`), make: (m) => ({ name: 'accountOrders', accountId: m[1]! }) },
  { re: new RegExp(`^/acme/order/(${ID})$`), make: (m) => ({ name: 'order', orderId: m[1]! }) },
  { re: new RegExp(`^/acme/order/(${ID})/finalize$`), make: (m) => ({ name: 'finalize', orderId: m[1]! }) },
  { re: new RegExp(`^/acme/authz/(${ID})$`), make: (m) => ({ name: 'authorization', authorizationId: m[1]! }) },
  { re: new RegExp(`^/acme/chall/(${ID})$`), make: (m) => ({ name: 'challenge', challengeId: m[1]! }) },
  { re: new RegExp(`^/acme/cert/(${SERIAL})$`), make: (m) => ({ name: 'certificate', serial: m[1]!.toLowerCase() }) },
];

function checkId(kind: string, id: string): string {
  // A malformed id here is a programming error (the RA made an id acme/ cannot put in a URL), not bad input.
  if (!ID_RE.test(id)) throw new Error(`${kind} id ${JSON.stringify(id)} cannot be placed in an ACME URL`);
  return id;
}

export function isValidCursor(cursor: string): boolean {
  return CURSOR_RE.test(cursor);
}

export function acmeLinker(baseUrl: string): AcmeLinker {
  const parsed = new URL(baseUrl);
  if (parsed.search || parsed.hash) throw new Error(`ACME base URL ${baseUrl} must not carry a query or fragment`);
  // URL() lower-cases scheme and host and drops a default port, so what we print matches what clients
  // canonicalise; a trailing slash would double up with the paths below.
  const base = `${parsed.origin}${parsed.pathname}`.replace(/\/+$/, '');
  const acme = `${base}/acme`;
  const accountPrefix = `${acme}/acct/`;
  // With a base path (https://host/ca1), a reverse proxy may forward /ca1/acme/... or strip it to /acme/...
  const pathPrefix = parsed.pathname.replace(/\/+$/, '');
  const stripPrefix = (path: string): string =>
    pathPrefix && (path === pathPrefix || path.startsWith(`${pathPrefix}/`)) ? path.slice(pathPrefix.length) : path;

  return {
    base,
    directory: () => `${acme}/directory`,
    newNonce: () => `${acme}/new-nonce`,
    newAccount: () => `${acme}/new-account`,
    newOrder: () => `${acme}/new-order`,
    newAuthz: () => `${acme}/new-authz`,
    revokeCert: () => `${acme}/revoke-cert`,
    keyChange: () => `${acme}/key-change`,
    renewalInfo: (certId) => (certId === undefined ? `${acme}/renewal-info` : `${acme}/renewal-info/${certId}`),
    account: (id) => `${accountPrefix}${checkId('account', id)}`,
    accountOrders: (id, cursor) => {
      const url = `${accountPrefix}${checkId('account', id)}/orders`;
      if (cursor === undefined) return url;
      if (!isValidCursor(cursor)) throw new Error(`orders cursor ${JSON.stringify(cursor)} cannot be placed in a URL`);
      return `${url}?cursor=${cursor}`;
    },
    order: (id) => `${acme}/order/${checkId('order', id)}`,
    finalize: (id) => `${acme}/order/${checkId('order', id)}/finalize`,
    authorization: (id) => `${acme}/authz/${checkId('authorization', id)}`,
    challenge: (id) => `${acme}/chall/${checkId('challenge', id)}`,
    certificate: (serial) => `${acme}/cert/${serial}`,
    accountIdFromUrl(url) {
      // RFC 8555 §6.2: "kid" is the account URL returned by newAccount, compared exactly: no other host,
      // no trailing path, no query.
      if (!url.startsWith(accountPrefix)) return undefined;
      const id = url.slice(accountPrefix.length);
      return ID_RE.test(id) ? id : undefined;
    },
    route(path) {
      const relative = stripPrefix(path);
      for (const { re, make } of PATTERNS) {
        const m = re.exec(relative);
        if (m) return make(m);
      }
      return undefined;
    },
    requestUrl: (pathAndQuery) => `${base}${stripPrefix(pathAndQuery)}`,
  };
}
