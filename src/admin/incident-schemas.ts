/**
 * JSON Schemas of the incident routes (/admin/v1/incidents), as the rest of admin/ writes them (JSON Schema
 * 2020-12, inlined). Request bodies are described, not constrained, beyond their shape: the incident
 * service checks every value and its refusal names the field precisely (a serials file's line, a deadline
 * in the past), as the CLI's flags are judged.
 */
type Schema = Record<string, unknown>;

const dateTime: Schema = { type: 'string', format: 'date-time' };
const integer: Schema = { type: 'integer', minimum: 0 };
const text = (description: string): Schema => ({ type: 'string', description });

function object(properties: Record<string, Schema>, required: string[]): Schema {
  return { type: 'object', additionalProperties: false, properties, required };
}

const selection: Record<string, Schema> = {
  select: {
    anyOf: [{ type: 'object' }, { type: 'string' }],
    description: 'the inventory filter grammar (GET /admin/v1/certificates): parameters, or a query string such as group=payments&label=env:prod',
  },
  serials: text('a serials file: one serial per line (hex, colons allowed), blank lines and # comments ignored'),
  key: text('a PEM public key, or a PEM certificate holding it: every certificate of that subject key'),
};

export const selectionBodySchema = object(selection, []);

export const declareBodySchema = object(
  {
    name: text('unique: a letter or digit, then up to 63 letters, digits, ".", "_" or "-"'),
    reason: text('RFC 5280 §5.3.1 reason name: keyCompromise, cACompromise, affiliationChanged, superseded, cessationOfOperation, privilegeWithdrawn, ...'),
    renewBy: text('the deadline: a date or RFC 3339 date-time in the future'),
    revoke: text('when-replaced (default), at-deadline or now'),
    explanationUrl: text('sent as explanationURL with renewalInfo (RFC 9773 §4.2)'),
    drill: { type: 'boolean', description: 'a rehearsal: everything except revocation' },
    ...selection,
  },
  [],
);

const selectionRecord: Schema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    kind: { type: 'string', enum: ['filter', 'serials', 'key'] },
    parameters: { type: 'object', additionalProperties: true },
    count: integer,
    spkiSha256: { type: 'string' },
  },
  required: ['kind'],
};

export const incidentSchema = object(
  {
    id: { type: 'string' },
    name: { type: 'string' },
    state: { type: 'string', enum: ['open', 'closed'] },
    reason: { type: 'string' },
    revoke: { type: 'string', enum: ['when-replaced', 'at-deadline', 'now'] },
    drill: { type: 'boolean' },
    renewBy: dateTime,
    explanationUrl: { type: 'string' },
    selection: selectionRecord,
    affected: integer,
    shortLived: { ...integer, description: 'noRevAvail certificates (RFC 9608): covered, never revoked' },
    blockedKeys: integer,
    declaredAt: dateTime,
    declaredBy: { type: 'string' },
    closedAt: dateTime,
    closedBy: { type: 'string' },
  },
  ['id', 'name', 'state', 'reason', 'revoke', 'drill', 'renewBy', 'selection', 'affected', 'shortLived', 'blockedKeys', 'declaredAt', 'declaredBy'],
);

export const previewSchema = object(
  {
    affected: integer,
    shortLived: object({ count: integer, until: dateTime }, ['count']),
    byGroup: { type: 'array', items: object({ group: { type: 'string', description: "'' for no group" }, count: integer, owners: { type: 'array', items: { type: 'string' } } }, ['group', 'count', 'owners']) },
    byIssuer: { type: 'array', items: object({ issuer: { type: 'string' }, count: integer }, ['issuer', 'count']) },
    byExpiry: object({ within7Days: integer, within30Days: integer, within90Days: integer, later: integer }, ['within7Days', 'within30Days', 'within90Days', 'later']),
    sample: {
      type: 'array',
      items: object({ serial: { type: 'string' }, group: { type: 'string' }, issuer: { type: 'string' }, notAfter: dateTime, identifiers: { type: 'array', items: { type: 'string' } } }, ['serial', 'group', 'issuer', 'notAfter']),
    },
    excluded: object({ revoked: integer, expired: integer }, ['revoked', 'expired']),
    ariRetryAfterSeconds: integer,
    notes: { type: 'array', items: { type: 'string' } },
  },
  ['affected', 'shortLived', 'byGroup', 'byIssuer', 'byExpiry', 'sample', 'excluded', 'ariRetryAfterSeconds', 'notes'],
);

export const declaredSchema = object({ incident: incidentSchema, radius: previewSchema }, ['incident', 'radius']);

const runSchema = object(
  {
    id: { type: 'string' },
    origin: { type: 'string' },
    label: { type: 'string' },
    reason: { type: 'string' },
    state: { type: 'string', enum: ['running', 'publishing', 'done'] },
    total: integer,
    revoked: integer,
    skipped: integer,
    shortLived: integer,
    shortLivedUntil: dateTime,
    unknown: integer,
    chunks: integer,
    createdAt: dateTime,
    finishedAt: dateTime,
    publishedAt: { ...dateTime, description: 'every CRL the run touched published' },
  },
  ['id', 'origin', 'label', 'reason', 'state', 'total', 'revoked', 'skipped', 'shortLived', 'unknown', 'chunks', 'createdAt'],
);

const counts: Record<string, Schema> = {
  affected: integer,
  shortLived: integer,
  replaced: integer,
  revoked: integer,
  expired: integer,
  outstanding: integer,
  blocked: { ...integer, description: 'renewals refused for presenting a blocked key' },
};
const countNames = Object.keys(counts);

export const statusSchema = object(
  {
    incident: incidentSchema,
    at: dateTime,
    deadlinePassed: { type: 'boolean' },
    totals: object(counts, countNames),
    byGroup: { type: 'array', items: object({ group: { type: 'string' }, owners: { type: 'array', items: { type: 'string' } }, ...counts }, ['group', 'owners', ...countNames]) },
    revocation: object({ planned: integer, revoked: integer, running: { type: 'boolean' }, runs: { type: 'array', items: runSchema } }, ['planned', 'revoked', 'running', 'runs']),
    series: object(
      {
        bucketSeconds: integer,
        points: { type: 'array', items: object({ at: dateTime, replaced: integer, revoked: integer, blocked: integer }, ['at', 'replaced', 'revoked', 'blocked']) },
      },
      ['bucketSeconds', 'points'],
    ),
    replacedWithin: object({ half: integer, ninetyPercent: integer, all: integer }, []),
    ariRetryAfterSeconds: integer,
  },
  ['incident', 'at', 'deadlinePassed', 'totals', 'byGroup', 'revocation', 'series', 'replacedWithin', 'ariRetryAfterSeconds'],
);

export const incidentCertificateSchema = object(
  {
    serial: { type: 'string' },
    group: { type: 'string' },
    issuer: { type: 'string' },
    notAfter: dateTime,
    shortLived: { type: 'boolean' },
    identifiers: { type: 'array', items: { type: 'string' } },
    status: { type: 'string', enum: ['valid', 'revoked'] },
    revokedAt: dateTime,
    replacedBy: { type: 'string' },
    replacedAt: dateTime,
  },
  ['serial', 'group', 'issuer', 'notAfter', 'shortLived', 'identifiers', 'status'],
);

export const incidentNameSchema: Schema = { type: 'string', minLength: 1, maxLength: 64 };
export const certificateStateSchema: Schema = { type: 'string', enum: ['outstanding', 'replaced', 'revoked', 'expired', 'short-lived'] };
