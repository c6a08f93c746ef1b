import { DAY } from '../core/clock.js';
import { CaError } from '../core/errors.js';
import { parseSerialText } from '../core/serial-number.js';
import type { AdminRole } from '../core/principal.js';
import { renderOperator, renderPage, renderPrincipal, renderToken } from './render.js';
import { ADMIN_PREFIX, type AdminRoute } from './route.js';
import { newOperatorSchema, newTokenSchema, operatorSchema, page, params, principalSchema, query, tokenCreatedSchema, tokenSchema } from './schemas.js';

const pageOf = (query: Record<string, unknown>): { cursor?: string; limit: number } => ({
  ...(typeof query.cursor === 'string' ? { cursor: query.cursor } : {}),
  limit: typeof query.limit === 'number' ? query.limit : 100,
});

/** Who am I, admin tokens and operator certificates. */
export const identityRoutes: AdminRoute[] = [
  {
    method: 'GET',
    url: `${ADMIN_PREFIX}/me`,
    operationId: 'getMe',
    summary: 'The authenticated principal: actor, role, groups',
    tag: 'tokens',
    action: 'self.read',
    schema: { response: principalSchema },
    handle: async (call) => ({ body: renderPrincipal(call.principal) }),
  },
  {
    method: 'GET',
    url: `${ADMIN_PREFIX}/tokens`,
    operationId: 'listTokens',
    summary: 'Admin tokens (a group-admin sees the tokens of its groups)',
    tag: 'tokens',
    action: 'token.list',
    schema: { querystring: query({}), response: page(tokenSchema) },
    handle: async (call, s) => {
      const now = s.clock.now();
      return { body: renderPage(await s.tokens.list(call.scope, pageOf(call.query)), (token) => renderToken(token, now)) };
    },
  },
  {
    method: 'POST',
    url: `${ADMIN_PREFIX}/tokens`,
    operationId: 'createToken',
    summary: 'Create an admin token; the token is in this response only',
    tag: 'tokens',
    action: 'token.create',
    schema: { body: newTokenSchema, response: tokenCreatedSchema },
    handle: async (call, s) => {
      const body = call.body as { role: AdminRole; groups?: string[]; expiresInDays?: number; description?: string };
      const { token, secret } = await s.tokens.create(call.principal, call.scope, {
        role: body.role,
        ...(body.groups ? { groups: body.groups } : {}),
        ...(body.expiresInDays === undefined ? {} : { lifetimeMs: body.expiresInDays * DAY }),
        ...(body.description === undefined ? {} : { description: body.description }),
      });
      return { body: { token: renderToken(token, s.clock.now()), secret } };
    },
  },
  {
    method: 'GET',
    url: `${ADMIN_PREFIX}/tokens/:id`,
    operationId: 'getToken',
    summary: 'One admin token',
    tag: 'tokens',
    action: 'token.list',
    schema: { params: params({ id: { type: 'string', maxLength: 64 } }), response: tokenSchema },
    handle: async (call, s) => ({ body: renderToken(await s.tokens.get(call.params.id!, call.scope), s.clock.now()) }),
  },
  {
    method: 'POST',
    url: `${ADMIN_PREFIX}/tokens/:id/revoke`,
    operationId: 'revokeToken',
    summary: 'Revoke an admin token (at once, on every instance)',
    tag: 'tokens',
    action: 'token.revoke',
    schema: { params: params({ id: { type: 'string', maxLength: 64 } }), response: tokenSchema },
    handle: async (call, s) => ({ body: renderToken(await s.tokens.revoke(call.principal, call.scope, call.params.id!), s.clock.now()) }),
  },
  {
    method: 'GET',
    url: `${ADMIN_PREFIX}/operators`,
    operationId: 'listOperators',
    summary: 'Operators: client-certificate keys bound to a role',
    tag: 'operators',
    action: 'operator.list',
    schema: { querystring: query({}), response: page(operatorSchema) },
    handle: async (call, s) => ({ body: renderPage(await s.operators.list(pageOf(call.query)), renderOperator) }),
  },
  {
    method: 'POST',
    url: `${ADMIN_PREFIX}/operators`,
    operationId: 'bindOperator',
    summary: 'Bind the key of an operator-profile certificate to a role and groups',
    tag: 'operators',
    action: 'operator.bind',
    schema: { body: newOperatorSchema, response: operatorSchema },
    handle: async (call, s) => {
      const body = call.body as { serial: string; role: AdminRole; groups?: string[]; name?: string };
      const serial = parseSerialText(body.serial);
      if (serial === undefined) throw new CaError('malformed', `"${body.serial.slice(0, 64)}" is not a serial number`);
      return { body: renderOperator(await s.operators.bind(call.principal, { ...body, serial })) };
    },
  },
  {
    method: 'DELETE',
    url: `${ADMIN_PREFIX}/operators/:spkiSha256`,
    operationId: 'unbindOperator',
    summary: 'Remove an operator binding',
    tag: 'operators',
    action: 'operator.unbind',
    schema: { params: params({ spkiSha256: { type: 'string', pattern: '^[0-9a-f]{64}$' } }), response: operatorSchema },
    handle: async (call, s) => ({ body: renderOperator(await s.operators.unbind(call.principal, call.params.spkiSha256!)) }),
  },
];

export { pageOf };
