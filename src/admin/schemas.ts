/**
 * JSON Schemas of the admin API (/admin/v1): every request's parameters and body and every response, in the
 * dialect OpenAPI 3.1 uses (JSON Schema 2020-12). The listener validates requests with them and
 * @fastify/swagger turns them into the OpenAPI document at /admin/v1/openapi.json, so the document is what
 * the server enforces. Schemas are inlined (no $ref) so each route's is complete on its own.
 */
type Schema = Record<string, unknown>;

const dateTime: Schema = { type: 'string', format: 'date-time' };
const groupName: Schema = { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$' };
const role: Schema = { type: 'string', enum: ['admin', 'group-admin', 'auditor'] };
const actor: Schema = { type: 'string', description: 'who acted: cli:<user>, token:<id>, certificate:<name>, account:<id>, system:<what>' };

function object(properties: Record<string, Schema>, required: string[], extra: Schema = {}): Schema {
  return { type: 'object', additionalProperties: false, properties, required, ...extra };
}

/** A page of a list (DESIGN.md rule 9): `next` is the opaque cursor of the next page, absent on the last. */
export function page(item: Schema): Schema {
  return object({ items: { type: 'array', items: item }, next: { type: 'string' } }, ['items']);
}

export const problemSchema: Schema = {
  type: 'object',
  description: 'RFC 9457 problem details',
  properties: {
    type: { type: 'string' },
    title: { type: 'string' },
    status: { type: 'integer' },
    detail: { type: 'string' },
    issues: {
      type: 'array',
      items: object({ path: { type: 'array', items: { type: ['string', 'integer'] } }, rule: { type: 'string' }, message: { type: 'string' } }, ['path', 'rule', 'message']),
    },
  },
  required: ['type', 'title', 'status', 'detail'],
};

export const principalSchema = object(
  { actor, role, groups: { type: 'array', items: groupName }, via: { type: 'string', enum: ['token', 'certificate', 'local'] }, expiresAt: dateTime },
  ['actor', 'role', 'groups', 'via'],
);

export const tokenSchema = object(
  {
    id: { type: 'string', pattern: '^[0-9a-f]{16}$' },
    role,
    groups: { type: 'array', items: groupName },
    description: { type: 'string' },
    status: { type: 'string', enum: ['active', 'expired', 'revoked'] },
    createdAt: dateTime,
    createdBy: actor,
    expiresAt: dateTime,
    revokedAt: dateTime,
    revokedBy: actor,
    lastUsedAt: { ...dateTime, description: 'recorded at most once a minute' },
  },
  ['id', 'role', 'groups', 'description', 'status', 'createdAt', 'createdBy', 'expiresAt'],
);

export const newTokenSchema = object(
  {
    role,
    groups: { type: 'array', items: groupName, maxItems: 64 },
    expiresInDays: { type: 'integer', minimum: 1, maximum: 366, description: 'default 90 (admin.tokens.defaultLifetime); at most admin.tokens.maxLifetime' },
    description: { type: 'string', maxLength: 200 },
  },
  ['role'],
);

export const tokenCreatedSchema = object(
  { token: tokenSchema, secret: { type: 'string', pattern: '^chy_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$', description: 'shown only now: store it' } },
  ['token', 'secret'],
);

export const operatorSchema = object(
  {
    spkiSha256: { type: 'string', pattern: '^[0-9a-f]{64}$' },
    name: { type: 'string' },
    role,
    groups: { type: 'array', items: groupName },
    serial: { type: 'string' },
    createdAt: dateTime,
    createdBy: actor,
  },
  ['spkiSha256', 'name', 'role', 'groups', 'serial', 'createdAt', 'createdBy'],
);

export const newOperatorSchema = object(
  {
    serial: { type: 'string', pattern: '^[0-9a-fA-F:]{1,64}$', description: 'a certificate of the operator profile' },
    role,
    groups: { type: 'array', items: groupName, maxItems: 64 },
    name: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9.@_-]{0,127}$' },
  },
  ['serial', 'role'],
);

const labels: Schema = { type: 'object', additionalProperties: { type: 'string' } };

export const groupSchema = object(
  {
    name: groupName,
    contacts: { type: 'array', items: { type: 'string' } },
    policy: { type: 'object', additionalProperties: true, description: 'the narrowing of the configured limits (see `chancery policy export`)' },
    updatedAt: dateTime,
  },
  ['name', 'contacts', 'policy'],
);

export const policyDocumentSchema: Schema = {
  type: 'object',
  additionalProperties: true,
  description: 'a policy document, as `chancery policy export` writes it (groups keyed by name)',
};

export const policyChangeSchema = object(
  {
    applied: { type: 'boolean' },
    changes: {
      type: 'array',
      items: object(
        {
          group: groupName,
          change: { type: 'string', enum: ['created', 'updated', 'removed'] },
          fields: { type: 'array', items: object({ field: { type: 'string' }, before: {}, after: {} }, ['field']) },
        },
        ['group', 'change', 'fields'],
      ),
    },
  },
  ['applied', 'changes'],
);

export const eabSchema = object(
  {
    kid: { type: 'string' },
    group: groupName,
    labels,
    status: { type: 'string', enum: ['unused', 'bound', 'revoked'] },
    createdAt: dateTime,
    boundAccountId: { type: 'string' },
    boundAt: dateTime,
    revokedAt: dateTime,
  },
  ['kid', 'group', 'status', 'createdAt'],
);

export const newEabSchema = object({ group: groupName, labels: { ...labels, maxProperties: 32 } }, []);

export const eabCreatedSchema = object(
  { credential: eabSchema, hmacKey: { type: 'string', description: 'base64url; shown only now' } },
  ['credential', 'hmacKey'],
);

export const certificateSchema = object(
  {
    serial: { type: 'string' },
    issuerId: { type: 'string' },
    status: { type: 'string', enum: ['valid', 'revoked', 'expired'] },
    identifiers: { type: 'array', items: object({ type: { type: 'string' }, value: { type: 'string' } }, ['type', 'value']) },
    notBefore: dateTime,
    notAfter: dateTime,
    profile: { type: 'string' },
    group: groupName,
    labels,
    accountId: { type: 'string' },
    createdAt: dateTime,
    revokedAt: dateTime,
    revocationReason: { type: 'string' },
    pem: { type: 'string' },
  },
  ['serial', 'issuerId', 'status', 'identifiers', 'notBefore', 'notAfter', 'profile', 'createdAt', 'pem'],
);

export const revokeSchema = object(
  {
    reason: { type: 'string', description: 'RFC 5280 §5.3.1 reason name; unspecified when absent' },
    invalidityDate: { ...dateTime, description: 'RFC 5280 §5.3.2: since when the key is known or suspected compromised' },
  },
  [],
);

export const accountSchema = object(
  {
    id: { type: 'string' },
    status: { type: 'string', enum: ['valid', 'deactivated', 'revoked'] },
    contacts: { type: 'array', items: { type: 'string' } },
    group: groupName,
    labels,
    eabKid: { type: 'string' },
    jwkThumbprint: { type: 'string' },
    createdAt: dateTime,
  },
  ['id', 'status', 'contacts', 'group', 'jwkThumbprint', 'createdAt'],
);

/** Query parameters every list takes. */
export const pageQuery: Record<string, Schema> = {
  cursor: { type: 'string', maxLength: 512 },
  limit: { type: 'integer', minimum: 1, maximum: 500, default: 100 },
};

export function query(properties: Record<string, Schema>): Schema {
  return object({ ...pageQuery, ...properties }, []);
}

export function params(properties: Record<string, Schema>): Schema {
  return object(properties, Object.keys(properties));
}

export const serialParam: Schema = { type: 'string', pattern: '^[0-9a-fA-F]{1,64}$' };
export { groupName as groupNameSchema };
