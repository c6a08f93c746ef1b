import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { loadConfig } from '../../../src/config/load-config.js';
import { CaError } from '../../../src/core/errors.js';

const cwd = await mkdtemp(join(tmpdir(), 'chancery-config-'));

t.test('ok/shipped defaults: embedded database, software keys, ./data', async (t) => {
  const config = loadConfig({ env: {}, cwd });
  t.equal(config.dataDir, join(cwd, 'data'));
  t.equal(config.database.url, '');
  t.equal(config.keys.backend, 'software');
  t.equal(config.ca.rootAlgorithm, 'ecdsa-p384');
  t.equal(config.ca.intermediateAlgorithm, 'ecdsa-p256');
  t.equal(config.issuance.validityDays, 30);
  t.same(config.public.listen, { host: '127.0.0.1', port: 8080 });
});

t.test('ok/environment overrides the operator file, which overrides defaults', async (t) => {
  const file = join(cwd, 'operator.yaml');
  await writeFile(file, 'issuance:\n  validityDays: 7\npublic:\n  url: http://pki.example.internal\n');
  const config = loadConfig({ env: { CHANCERY_CONFIG: file, CHANCERY_ISSUANCE_VALIDITY_DAYS: '14', CHANCERY_PUBLIC_LISTEN: '[::1]:9090' }, cwd });
  t.equal(config.issuance.validityDays, 14);
  t.equal(config.public.url, 'http://pki.example.internal');
  t.same(config.public.listen, { host: '::1', port: 9090 });
});

const bad: { name: string; env: Record<string, string>; message: RegExp; secret?: string }[] = [
  { name: 'fail/unknown key backend', env: { CHANCERY_KEYS: 'hsm' }, message: /keys\.backend \(CHANCERY_KEYS\): must be one of software, pkcs11; got "hsm"/ },
  { name: 'fail/validity not a number', env: { CHANCERY_ISSUANCE_VALIDITY_DAYS: 'thirty' }, message: /issuance\.validityDays \(CHANCERY_ISSUANCE_VALIDITY_DAYS\): must be an integer from 1 to 398; got "thirty"/ },
  { name: 'fail/validity out of range', env: { CHANCERY_ISSUANCE_VALIDITY_DAYS: '1000' }, message: /from 1 to 398; got "1000"/ },
  { name: 'fail/public URL over https', env: { CHANCERY_PUBLIC_URL: 'https://pki.example' }, message: /public\.url \(CHANCERY_PUBLIC_URL\): must be an absolute http: URL/ },
  { name: 'fail/listen without port', env: { CHANCERY_PUBLIC_LISTEN: 'localhost' }, message: /public\.listen \(CHANCERY_PUBLIC_LISTEN\): must be host:port/ },
  { name: 'fail/unknown algorithm', env: { CHANCERY_CA_ROOT_ALGORITHM: 'ecdsa-p521' }, message: /must be one of ecdsa-p256, ecdsa-p384, rsa-2048, rsa-3072, rsa-4096/ },
  { name: 'fail/pkcs11 without a PIN', env: { CHANCERY_KEYS: 'pkcs11' }, message: /needs CHANCERY_PKCS11_PIN or CHANCERY_PKCS11_PIN_FILE/ },
  {
    name: 'fail/a secret is named but never echoed',
    env: { CHANCERY_KEYS: 'pkcs11', CHANCERY_PKCS11_PIN: 'hunter2-secret', CHANCERY_PKCS11_SESSIONS: '0' },
    message: /keys\.pkcs11\.sessions \(CHANCERY_PKCS11_SESSIONS\): must be an integer from 1 to 256/,
    secret: 'hunter2-secret',
  },
];

for (const c of bad) {
  t.test(c.name, async (t) => {
    try {
      loadConfig({ env: c.env, cwd });
      t.fail('loadConfig accepted a bad value');
    } catch (error) {
      t.type(error, CaError);
      t.equal((error as CaError).kind, 'badConfig');
      t.match((error as CaError).detail, c.message);
      if (c.secret) t.notMatch((error as CaError).detail, c.secret);
    }
  });
}

t.test('fail/unknown key in the operator file is named', async (t) => {
  const file = join(cwd, 'typo.yaml');
  await writeFile(file, 'issuance:\n  validityDayz: 7\n');
  t.throws(() => loadConfig({ env: { CHANCERY_CONFIG: file }, cwd }), { kind: 'badConfig', message: /unknown setting "issuance\.validityDayz"/ });
});

t.test('fail/operator file that is not YAML', async (t) => {
  const file = join(cwd, 'broken.yaml');
  await writeFile(file, 'issuance: [unclosed\n');
  t.throws(() => loadConfig({ env: { CHANCERY_CONFIG: file }, cwd }), { kind: 'badConfig', message: /is not valid YAML/ });
});
