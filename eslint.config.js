// Lint rules that encode ../shared/DESIGN.md's layer table ("which layer may import which") and the
// one-place rule for third-party libraries, so they are checked by `npm test`, not by memory.
// test/unit/lint/layer-rules.test.ts proves a forbidden import fails.
import tseslint from 'typescript-eslint';

/** Every folder of src/ that is a layer; `compose` and `main` are the composition root's files. */
const LAYERS = ['core', 'policy', 'keys', 'va', 'db', 'ca', 'ra', 'revocation', 'inventory', 'metrics', 'acme', 'admin', 'http', 'cli', 'config', 'compose', 'main'];

/**
 * What each layer may import: `values` (anything), `types` (`import type` only: the consumer declares the
 * interface it needs, the provider implements it). Its own folder and node:/npm packages are always allowed
 * (npm packages are limited separately by LIBRARIES).
 */
const RULES = {
  core: { values: [], types: [] },
  policy: { values: ['core'], types: [] },
  keys: { values: ['core'], types: [] },
  va: { values: ['core'], types: [] },
  db: { values: ['core'], types: [] },
  config: { values: ['core'], types: [] },
  metrics: { values: ['core'], types: [] },
  ca: { values: ['core'], types: ['keys'] },
  ra: { values: ['core', 'policy'], types: ['va', 'ca', 'db', 'keys'] },
  revocation: { values: ['core', 'policy'], types: ['va', 'ca', 'db', 'keys'] },
  inventory: { values: ['core', 'policy', 'revocation'], types: ['va', 'ca', 'db', 'keys', 'ra'] },
  acme: { values: ['core'], types: ['ra'] },
  admin: { values: ['core'], types: ['inventory', 'ra', 'revocation'] },
  http: { values: ['core', 'acme', 'admin', 'revocation', 'config'], types: [] },
  cli: { values: LAYERS.filter((l) => l !== 'http' && l !== 'cli'), types: [] },
};

/** Third-party libraries and the only folders (globs under src/) that may import them. */
const LIBRARIES = [
  { names: ['graphene-pk11', 'pkcs11js'], where: ['src/keys/pkcs11/**'] },
  { names: ['pg', 'pg-*', '@electric-sql/*'], where: ['src/db/**'] },
  { names: ['pkijs', 'asn1js'], where: ['src/ca/**', 'src/keys/signature-format.ts'] },
  { names: ['fastify', '@fastify/*'], where: ['src/http/**'] },
  { names: ['jose'], where: ['src/acme/**'] },
  { names: ['prom-client'], where: ['src/metrics/**'] },
];

/** A relative import that climbs out of the importing folder into one of `layers` (src/<layer>/... or src/<layer>.ts). */
function crossing(layers) {
  return `^(\\.\\./)+(${layers.join('|')})(/|\\.js$)`;
}

function layerPatterns(layer) {
  const { values, types } = RULES[layer];
  const others = LAYERS.filter((l) => l !== layer && !values.includes(l));
  const forbidden = others.filter((l) => !types.includes(l));
  const patterns = [];
  if (forbidden.length > 0) {
    patterns.push({ regex: crossing(forbidden), message: `DESIGN.md: ${layer}/ may not import this layer (allowed: ${[...values, ...types.map((t) => `type-only ${t}`)].join(', ') || 'nothing of ours'}).` });
  }
  if (types.length > 0) {
    patterns.push({ regex: crossing(types), allowTypeImports: true, message: `DESIGN.md: ${layer}/ may import only the interfaces (import type) of this layer.` });
  }
  return patterns;
}

function libraryPatterns(file) {
  return LIBRARIES.filter(({ where }) => !where.some((glob) => matches(file, glob))).map(({ names, where }) => ({
    group: names,
    message: `DESIGN.md: this library lives in ${where.join(', ')} only.`,
  }));
}

/** Enough of glob matching for the LIBRARIES table: `dir/**` and exact files. */
function matches(file, glob) {
  return glob.endsWith('/**') ? file.startsWith(glob.slice(0, -2)) : file === glob;
}

/** One config block per layer (and per library-owning folder inside it) with its combined patterns. */
function layerConfigs() {
  const configs = [];
  for (const layer of Object.keys(RULES)) {
    const folder = `src/${layer}`;
    // Library owners are sub-folders or single files; give each its own block so the patterns differ.
    const owners = LIBRARIES.flatMap(({ where }) => where).filter((w) => w.startsWith(`${folder}/`) && w !== `${folder}/**`);
    const ownerFiles = owners.map((w) => (w.endsWith('/**') ? `${w.slice(0, -3)}/**/*.ts` : w));
    configs.push({
      files: [`${folder}/**/*.ts`],
      ignores: ownerFiles,
      rules: { '@typescript-eslint/no-restricted-imports': ['error', { patterns: [...layerPatterns(layer), ...libraryPatterns(`${folder}/any.ts`)] }] },
    });
    for (const [index, owner] of owners.entries()) {
      const probe = owner.endsWith('/**') ? `${owner.slice(0, -3)}/any.ts` : owner;
      configs.push({
        files: [ownerFiles[index]],
        rules: { '@typescript-eslint/no-restricted-imports': ['error', { patterns: [...layerPatterns(layer), ...libraryPatterns(probe)] }] },
      });
    }
  }
  return configs;
}

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'data/**', 'dashboard/**', 'coverage/**', '.tap/**'] },
  {
    files: ['**/*.ts'],
    languageOptions: { parser: tseslint.parser },
    plugins: { '@typescript-eslint': tseslint.plugin },
    rules: {
      '@typescript-eslint/consistent-type-imports': ['error', { prefer: 'type-imports', fixStyle: 'inline-type-imports', disallowTypeAnnotations: false }],
    },
  },
  ...layerConfigs(),
);
