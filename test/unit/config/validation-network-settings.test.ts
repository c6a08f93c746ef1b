import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { loadConfig } from '../../../src/config/load-config.js';

/** The validation network policy's settings: shipped defaults, both list forms, and a bad CIDR stopping start-up. */
const cwd = await mkdtemp(join(tmpdir(), 'chancery-config-vnp-'));

t.test('ok/defaults: no lists, loopback allowed (the quick start on one machine)', async (t) => {
  const config = loadConfig({ env: {}, cwd });
  t.same(config.validation.allowNetworks, []);
  t.same(config.validation.denyNetworks, []);
  t.equal(config.validation.allowLoopback, true);
});

t.test('ok/variables: comma-separated CIDR lists and the loopback switch', async (t) => {
  const config = loadConfig({
    env: {
      CHANCERY_VALIDATION_ALLOW_NETWORKS: '10.0.0.0/8, fd00::/8',
      CHANCERY_VALIDATION_DENY_NETWORKS: '10.9.0.0/16,192.0.2.7',
      CHANCERY_VALIDATION_ALLOW_LOOPBACK: 'false',
    },
    cwd,
  });
  t.same(config.validation.allowNetworks, ['10.0.0.0/8', 'fd00::/8']);
  t.same(config.validation.denyNetworks, ['10.9.0.0/16', '192.0.2.7']);
  t.equal(config.validation.allowLoopback, false);
});

t.test('ok/operator file: a YAML sequence', async (t) => {
  const file = join(cwd, 'networks.yaml');
  await writeFile(file, 'validation:\n  denyNetworks:\n    - 10.20.0.0/16\n    - fd00:1::/64\n  allowLoopback: false\n');
  const config = loadConfig({ env: { CHANCERY_CONFIG: file }, cwd });
  t.same(config.validation.denyNetworks, ['10.20.0.0/16', 'fd00:1::/64']);
  t.equal(config.validation.allowLoopback, false);
});

const bad: { name: string; env: Record<string, string>; message: RegExp }[] = [
  {
    name: 'fail/denyNetworks prefix out of range names the key',
    env: { CHANCERY_VALIDATION_DENY_NETWORKS: '10.0.0.0/33' },
    message: /invalid setting validation\.denyNetworks \(CHANCERY_VALIDATION_DENY_NETWORKS\): must be a comma-separated list of CIDR networks.*"10\.0\.0\.0\/33" has an invalid prefix length/,
  },
  {
    name: 'fail/allowNetworks entry that is a name names the key',
    env: { CHANCERY_VALIDATION_ALLOW_NETWORKS: '10.0.0.0/8,intranet' },
    message: /validation\.allowNetworks \(CHANCERY_VALIDATION_ALLOW_NETWORKS\).*"intranet" is not an IPv4 or IPv6 address/,
  },
  {
    name: 'fail/host bits set',
    env: { CHANCERY_VALIDATION_DENY_NETWORKS: '192.168.1.1/16' },
    message: /validation\.denyNetworks.*did you mean 192\.168\.0\.0\/16\?/,
  },
  {
    name: 'fail/allowLoopback not a boolean',
    env: { CHANCERY_VALIDATION_ALLOW_LOOPBACK: 'no' },
    message: /validation\.allowLoopback \(CHANCERY_VALIDATION_ALLOW_LOOPBACK\): must be true or false/,
  },
];

for (const c of bad) {
  t.test(c.name, async (t) => {
    t.throws(() => loadConfig({ env: c.env, cwd }), { kind: 'badConfig', message: c.message });
  });
}
