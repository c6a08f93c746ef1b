import { fileURLToPath } from 'node:url';
import { ESLint } from 'eslint';
import t from 'tap';

/**
 * DESIGN.md's layer table as eslint.config.js encodes it: the rule set must refuse a forbidden import and
 * allow what the table allows, or `npm test`'s lint step (`eslint src test bench`, before tap) would pass
 * whatever the imports. Each case lints one line as if it were a file at `file`.
 */
const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const eslint = new ESLint({ cwd: ROOT });

async function lint(file: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(`${code}\nexport {};\n`, { filePath: `${ROOT}${file}` });
  return (result?.messages ?? []).filter((m) => m.ruleId === '@typescript-eslint/no-restricted-imports').map((m) => m.message);
}

const cases: [name: string, file: string, code: string, refused: RegExp | undefined][] = [
  ['fail/acme imports db', 'src/acme/x.ts', "import { migrate } from '../db/migrate.js';", /acme\/ may not import this layer/],
  ['fail/acme imports a value of ra', 'src/acme/x.ts', "import { AcmeRa } from '../ra/acme-ra.js';", /only the interfaces/],
  ['ok/acme imports a type of ra', 'src/acme/x.ts', "import type { AcmeRegistrationAuthority } from '../ra/acme-registration-authority.js';", undefined],
  ['fail/acme/handlers climbs two levels into ca', 'src/acme/handlers/x.ts', "import { parseCsr } from '../../ca/csr.js';", /acme\/ may not import/],
  ['fail/core imports anything of ours', 'src/core/x.ts', "import { newId } from '../ra/x.js';", /core\/ may not import/],
  ['fail/db imports keys', 'src/db/x.ts', "import type { KeyStore } from '../keys/signer.js';", /db\/ may not import/],
  ['ok/db imports core', 'src/db/repositories/x.ts', "import { CaError } from '../../core/errors.js';", undefined],
  ['fail/cli imports http', 'src/cli/commands/x.ts', "import { buildAcmeApp } from '../../http/acme-app.js';", /cli\/ may not import/],
  ['ok/cli imports the composition root', 'src/cli/commands/x.ts', "import { compose } from '../../compose.js';", undefined],
  ['fail/ra imports revocation', 'src/ra/x.ts', "import { Revoker } from '../revocation/revoker.js';", /ra\/ may not import/],
  ['fail/ra imports a value of va', 'src/ra/x.ts', "import { createValidationAuthority } from '../va/validation-authority.js';", /only the interfaces/],
  ['ok/ra imports a type of db', 'src/ra/x.ts', "import type { Queryable } from '../db/database.js';", undefined],
  ['fail/admin imports acme', 'src/admin/x.ts', "import { problemFromError } from '../acme/problem.js';", /admin\/ may not import/],
  ['fail/inventory imports http', 'src/inventory/x.ts', "import { buildAcmeApp } from '../http/acme-app.js';", /inventory\/ may not import/],
  ['ok/inventory imports revocation', 'src/inventory/x.ts', "import { Revoker } from '../revocation/revoker.js';", undefined],
  ['fail/http imports ra', 'src/http/x.ts', "import type { AcmeRa } from '../ra/acme-ra.js';", /http\/ may not import/],
  ['fail/fastify outside http', 'src/acme/x.ts', "import Fastify from 'fastify';", /lives in src\/http/],
  ['fail/pg outside db', 'src/ra/x.ts', "import pg from 'pg';", /lives in src\/db/],
  ['fail/pkijs outside ca', 'src/revocation/x.ts', "import * as pkijs from 'pkijs';", /lives in src\/ca/],
  ['ok/pkijs in the signature-format helper', 'src/keys/signature-format.ts', "import * as asn1js from 'asn1js';", undefined],
  ['fail/graphene outside keys/pkcs11', 'src/keys/software/x.ts', "import * as graphene from 'graphene-pk11';", /lives in src\/keys\/pkcs11/],
  ['ok/graphene in keys/pkcs11', 'src/keys/pkcs11/x.ts', "import * as graphene from 'graphene-pk11';", undefined],
  ['fail/jose outside acme', 'src/ra/x.ts', "import { calculateJwkThumbprint } from 'jose';", /lives in src\/acme/],
  ['fail/prom-client outside metrics', 'src/http/x.ts', "import client from 'prom-client';", /lives in src\/metrics/],
];

for (const [name, file, code, refused] of cases) {
  await t.test(name, async (t) => {
    const messages = await lint(file, code);
    if (refused === undefined) t.same(messages, [], `${file}: ${code}`);
    else t.match(messages.join('\n'), refused, `${file}: ${code}`);
  });
}
