import { readFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { CaError } from '../core/errors.js';
import { parseIpNetwork } from '../core/ip-network.js';
import { packageRoot } from '../core/package-root.js';
import type { Config } from './config.js';
import { SETTINGS, type Setting } from './settings.js';
import { checkTlsPolicy } from './tls-policy.js';

type Tree = Record<string, unknown>;

export interface LoadConfigOptions {
  env?: NodeJS.ProcessEnv;
  /** Directory relative paths (dataDir, pinFile) are resolved against; default process.cwd(). */
  cwd?: string;
  defaultsFile?: string;
}

/**
 * Shipped defaults (config/default.yaml) < operator file (CHANCERY_CONFIG) < CHANCERY_* variables.
 * Every value is checked against SETTINGS; the first bad one stops start-up with a CaError('badConfig')
 * naming the key, its variable and what is allowed — secrets are named, never echoed.
 */
export function loadConfig(options: LoadConfigOptions = {}): Config {
  const env = options.env ?? process.env;
  const cwd = options.cwd ?? process.cwd();
  const tree = readYaml(options.defaultsFile ?? resolve(packageRoot(), 'config/default.yaml'), 'shipped defaults');
  const operatorFile = env.CHANCERY_CONFIG;
  if (operatorFile) {
    const operator = readYaml(resolve(cwd, operatorFile), `CHANCERY_CONFIG file ${operatorFile}`);
    rejectUnknownKeys(operator, '', operatorFile);
    merge(tree, operator);
  }
  for (const setting of SETTINGS) {
    const value = env[setting.env];
    if (value !== undefined) setPath(tree, setting.path, value);
  }
  const values = new Map<string, unknown>();
  for (const setting of SETTINGS) values.set(setting.path, parseSetting(setting, getPath(tree, setting.path)));
  const config = build(values);
  config.dataDir = resolve(cwd, config.dataDir);
  if (config.keys.pkcs11.pinFile && !isAbsolute(config.keys.pkcs11.pinFile)) {
    config.keys.pkcs11.pinFile = resolve(cwd, config.keys.pkcs11.pinFile);
  }
  if (config.keys.backend === 'pkcs11' && !config.keys.pkcs11.pin && !config.keys.pkcs11.pinFile) {
    throw new CaError('badConfig', 'CHANCERY_KEYS=pkcs11 needs CHANCERY_PKCS11_PIN or CHANCERY_PKCS11_PIN_FILE (keys.pkcs11.pin / keys.pkcs11.pinFile)');
  }
  checkTlsPolicy(config.tls);
  if (config.admin.tokens.defaultLifetime > config.admin.tokens.maxLifetime) {
    throw new CaError('badConfig', 'invalid setting admin.tokens.defaultLifetime (CHANCERY_ADMIN_TOKEN_DEFAULT_LIFETIME): must not exceed admin.tokens.maxLifetime (CHANCERY_ADMIN_TOKEN_MAX_LIFETIME)');
  }
  if (config.admin.tokens.maxLifetime > 365 * 86_400_000) {
    throw new CaError('badConfig', 'invalid setting admin.tokens.maxLifetime (CHANCERY_ADMIN_TOKEN_MAX_LIFETIME): an admin token may live at most 365d');
  }
  if (config.http.headersTimeoutSeconds > config.http.requestTimeoutSeconds) {
    // The headers are part of the request: Node refuses a headers timeout longer than the request's.
    throw new CaError(
      'badConfig',
      `invalid setting http.headersTimeoutSeconds (CHANCERY_HTTP_HEADERS_TIMEOUT_SECONDS): must not exceed http.requestTimeoutSeconds (CHANCERY_HTTP_REQUEST_TIMEOUT_SECONDS, ${config.http.requestTimeoutSeconds}); got ${config.http.headersTimeoutSeconds}`,
    );
  }
  return config;
}

function readYaml(file: string, what: string): Tree {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (cause) {
    throw new CaError('badConfig', `cannot read ${what} (${file}): ${(cause as Error).message}`, { cause });
  }
  let parsed: unknown;
  try {
    parsed = parseYaml(text) ?? {};
  } catch (cause) {
    throw new CaError('badConfig', `${what} is not valid YAML: ${(cause as Error).message}`, { cause });
  }
  if (!isTree(parsed)) throw new CaError('badConfig', `${what} must be a YAML mapping`);
  return parsed;
}

function rejectUnknownKeys(tree: Tree, prefix: string, file: string): void {
  for (const [key, value] of Object.entries(tree)) {
    const path = prefix ? `${prefix}.${key}` : key;
    const known = SETTINGS.some((s) => s.path === path || s.path.startsWith(`${path}.`));
    if (!known) throw new CaError('badConfig', `unknown setting "${path}" in ${file}; see config/chancery.example.yaml`);
    if (isTree(value) && !SETTINGS.some((s) => s.path === path)) rejectUnknownKeys(value, path, file);
  }
}

function parseSetting(setting: Setting, raw: unknown): unknown {
  const name = `${setting.path} (${setting.env})`;
  const shown = setting.secret ? '' : `; got ${JSON.stringify(raw)}`;
  const fail = (allowed: string): never => {
    throw new CaError('badConfig', `invalid setting ${name}: must be ${allowed}${shown}`);
  };
  const listOk = (setting.type.kind === 'hostPortList' || setting.type.kind === 'enumList' || setting.type.kind === 'cidrList') && Array.isArray(raw);
  const text = raw === undefined || raw === null || listOk ? '' : typeof raw === 'object' ? fail('a scalar') : String(raw).trim();
  const type = setting.type;
  switch (type.kind) {
    case 'string':
      if (type.nonEmpty && text === '') fail('a non-empty string');
      return text;
    case 'enum':
      if (!type.values.includes(text)) fail(`one of ${type.values.join(', ')}`);
      return text;
    case 'int': {
      const n = Number(text);
      if (!/^-?\d+$/.test(text) || n < type.min || n > type.max) fail(`an integer from ${type.min} to ${type.max}`);
      return n;
    }
    case 'url': {
      let url: URL | undefined;
      try {
        url = new URL(text);
      } catch {
        url = undefined;
      }
      if (!url || !type.protocols.includes(url.protocol) || url.search || url.hash) {
        fail(`an absolute ${type.protocols.join(' or ')} URL without query or fragment, e.g. http://ca.example.internal`);
      }
      return text.replace(/\/+$/, '');
    }
    case 'bool':
      if (!['true', 'false'].includes(text.toLowerCase())) fail('true or false');
      return text.toLowerCase() === 'true';
    case 'optionalUrl': {
      if (text === '') return '';
      let url: URL | undefined;
      try {
        url = new URL(text);
      } catch {
        url = undefined;
      }
      if (!url || !type.protocols.includes(url.protocol)) fail(`empty or an absolute ${type.protocols.join(' or ')} URL`);
      return text.replace(/\/+$/, '');
    }
    case 'hostPortList': {
      const items = Array.isArray(raw) ? raw.map((item) => String(item).trim()) : text.split(',').map((item) => item.trim());
      const list = items.filter((item) => item !== '');
      for (const item of list) {
        const match = /^(\[[0-9a-fA-F:]+\]|[^:\s\[\]]+):(\d{1,5})$/.exec(item);
        if (!match || Number(match[2]) < 1 || Number(match[2]) > 65_535) fail(`a comma-separated list of host:port, e.g. 127.0.0.1:53,[::1]:53 ("${item}" is not)`);
      }
      return list;
    }
    case 'cidrList': {
      const items = Array.isArray(raw) ? raw.map((item) => String(item).trim()) : text.split(',').map((item) => item.trim());
      const list = items.filter((item) => item !== '');
      for (const item of list) {
        const parsed = parseIpNetwork(item);
        if ('error' in parsed) fail(`a comma-separated list of CIDR networks, e.g. 10.0.0.0/8,fd00::/8 (${parsed.error})`);
      }
      return list;
    }
    case 'duration': {
      if (text === '' && type.optional) return undefined;
      const match = /^(\d{1,6})(m|h|d)$/.exec(text);
      const ms = match ? Number(match[1]) * { m: 60_000, h: 3_600_000, d: 86_400_000 }[match[2] as 'm' | 'h' | 'd'] : NaN;
      if (!(ms >= type.minMs && ms <= type.maxMs)) {
        fail(`${type.optional ? 'empty or ' : ''}a duration from ${type.minMs / 60_000}m to ${type.maxMs / 86_400_000}d, e.g. 90m, 12h or 30d`);
      }
      return ms;
    }
    case 'enumList': {
      const items = Array.isArray(raw) ? raw.map((item) => String(item).trim()) : text.split(',').map((item) => item.trim());
      const list = [...new Set(items.filter((item) => item !== ''))];
      if ((type.nonEmpty && list.length === 0) || list.some((item) => !type.values.includes(item))) {
        fail(`a ${type.nonEmpty ? 'non-empty ' : ''}comma-separated list of ${type.values.join(', ')}`);
      }
      return list;
    }
    case 'listen': {
      const match = /^(\[[0-9a-fA-F:]+\]|[^:\s]+):(\d{1,5})$/.exec(text);
      const port = match ? Number(match[2]) : -1;
      if (!match || port < 0 || port > 65_535) fail('host:port, e.g. 127.0.0.1:8080 or [::1]:8080 (port 0 picks a free port)');
      return { host: match![1]!.replace(/^\[|\]$/g, ''), port };
    }
  }
}

function build(values: Map<string, unknown>): Config {
  const tree: Tree = {};
  for (const [path, value] of values) setPath(tree, path, value);
  return tree as unknown as Config;
}

function isTree(value: unknown): value is Tree {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function merge(target: Tree, source: Tree): void {
  for (const [key, value] of Object.entries(source)) {
    const current = target[key];
    if (isTree(value) && isTree(current)) merge(current, value);
    else target[key] = value;
  }
}

function getPath(tree: Tree, path: string): unknown {
  let node: unknown = tree;
  for (const part of path.split('.')) node = isTree(node) ? node[part] : undefined;
  return node;
}

function setPath(tree: Tree, path: string, value: unknown): void {
  const parts = path.split('.');
  let node = tree;
  for (const part of parts.slice(0, -1)) {
    if (!isTree(node[part])) node[part] = {};
    node = node[part] as Tree;
  }
  node[parts.at(-1)!] = value;
}
