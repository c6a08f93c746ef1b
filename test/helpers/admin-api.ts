import { generateKeyPairSync } from 'node:crypto';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import type { Chancery } from '../../src/compose.js';
import type { IssuedCertificate } from '../../src/core/certificate.js';
import { profileRegistryFromConfig } from '../../src/policy/profiles.js';

/** What an inject()ed admin API response looks like to the tests. */
export interface AdminAnswer {
  status: number;
  contentType: string;
  body: unknown;
}

type Operation = { responses: Record<string, { content?: Record<string, { schema: object }> }> };
export type OpenApiDocument = { paths: Record<string, Record<string, Operation>> };

/**
 * Checks admin API answers against the OpenAPI document the server publishes: the 200 body against the
 * operation's application/json schema, a problem against its 4XX/5XX application/problem+json schema.
 */
export function responseChecker(document: OpenApiDocument): (path: string, method: string, answer: AdminAnswer) => string | undefined {
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  (addFormats as unknown as (a: Ajv2020) => void)(ajv);
  const compiled = new Map<object, ReturnType<Ajv2020['compile']>>();
  return (path, method, answer) => {
    const operation = document.paths[path]?.[method.toLowerCase()];
    if (operation === undefined) return `no operation ${method} ${path} in the document`;
    const key = answer.status === 200 ? '200' : `${String(answer.status)[0]}XX`;
    const response = operation.responses[key] ?? operation.responses[String(answer.status)];
    const mediaType = answer.contentType.split(';')[0]!.trim();
    const schema = response?.content?.[mediaType]?.schema;
    if (schema === undefined) return `${method} ${path}: ${answer.status} ${mediaType} is not documented`;
    let validate = compiled.get(schema);
    if (validate === undefined) {
      validate = ajv.compile(schema);
      compiled.set(schema, validate);
    }
    return validate(answer.body) ? undefined : `${method} ${path} ${answer.status}: ${ajv.errorsText(validate.errors)}`;
  };
}

/** A certificate issued by the test CA under `profile`, recorded with `group` (a real leaf, for mTLS too). */
export async function issueFor(chancery: Chancery, options: { name: string; group?: string; profile?: string }): Promise<{ certificate: IssuedCertificate; keyPem: string }> {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const profile = profileRegistryFromConfig(chancery.config).get(options.profile ?? 'tls-server');
  const certificate = await chancery.services.issuance.issueForKey(publicKey.export({ type: 'spki', format: 'der' }), [{ type: 'dns', value: options.name }], {
    ...(profile ? { profile } : {}),
    ...(options.group ? { metadata: { group: options.group } } : {}),
  });
  return { certificate, keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString() };
}
