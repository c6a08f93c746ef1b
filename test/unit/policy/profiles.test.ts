import t from 'tap';
import { DAY, HOUR, MINUTE } from '../../../src/core/clock.js';
import { PROFILE_IDS, type ProfileId } from '../../../src/core/profile.js';
import { loadConfig } from '../../../src/config/load-config.js';
import { ProfileRegistry, profileRegistryFromConfig, type ProfileSettings } from '../../../src/policy/profiles.js';
import { validityWindow } from '../../../src/policy/validity.js';

/** The profile registry and the settings it is made from: table cases, ok/ and fail/. */
const base = (overrides: Partial<Record<ProfileId, Partial<ProfileSettings>>> = {}): Record<ProfileId, ProfileSettings> =>
  Object.fromEntries(
    PROFILE_IDS.map((id) => [id, { validityMs: id === 'short-lived' ? 160 * HOUR : undefined, ekus: id === 'operator' ? ['clientAuth'] : ['serverAuth'], description: id, ...overrides[id] }]),
  ) as Record<ProfileId, ProfileSettings>;

await t.test('ok/validity: own, or issuance.validityDays; backdate at most an hour and a tenth of the validity', async (t) => {
  const registry = new ProfileRegistry({ defaultId: 'tls-server', defaultValidityDays: 30, profiles: base({ 'short-lived': { validityMs: 10 * MINUTE } }) });
  t.equal(registry.resolve(undefined).name, 'tls-server');
  t.equal(registry.resolve(undefined).validityMs, 30 * DAY);
  t.equal(registry.resolve(undefined).backdateMs, HOUR);
  const short = registry.resolve('short-lived');
  t.equal(short.validityMs, 10 * MINUTE);
  t.equal(short.backdateMs, MINUTE, 'a tenth of ten minutes');
  t.equal(short.noRevAvail, true);
  t.equal(registry.resolve('mtls').noRevAvail, false);
  const now = new Date('2026-06-01T00:00:00Z');
  const window = validityWindow(short, {}, now);
  t.ok(window.notAfter.getTime() > now.getTime(), 'a short certificate is still valid when issued');
});

await t.test('fail/registry refusals', async (t) => {
  t.throws(() => new ProfileRegistry({ defaultId: 'tls-server', defaultValidityDays: 30, profiles: base({ 'short-lived': { validityMs: 8 * DAY } }) }), {
    kind: 'badConfig',
    message: /short-lived.validity must be at most 7d/,
  });
  t.throws(() => new ProfileRegistry({ defaultId: 'tls-server', defaultValidityDays: 30, profiles: base({ mtls: { ekus: [] } }) }), { kind: 'badConfig', message: /profiles.mtls.ekus/ });
  t.throws(() => new ProfileRegistry({ defaultId: 'tls-server', defaultValidityDays: 30, profiles: base({ operator: { ekus: ['clientAuth', 'serverAuth'] } }) }), { kind: 'badConfig', message: /profiles.operator.ekus must be clientAuth alone/ });
  const registry = new ProfileRegistry({ defaultId: 'tls-server', defaultValidityDays: 30, profiles: base() });
  t.throws(() => registry.resolve('gold'), { kind: 'invalidProfile', message: /profile "gold" is not offered/ });
});

const config = (env: Record<string, string>) => loadConfig({ env: { CHANCERY_DATA_DIR: '/tmp/x', ...env } });

await t.test('ok/settings: durations in minutes, hours, days; EKU lists', async (t) => {
  const c = config({ CHANCERY_PROFILE_TLS_SERVER_VALIDITY: '90m', CHANCERY_PROFILE_MTLS_EKUS: 'clientAuth, serverAuth', CHANCERY_PROFILE_DEFAULT: 'mtls' });
  const registry = profileRegistryFromConfig(c);
  t.equal(registry.resolve('tls-server').validityMs, 90 * MINUTE);
  t.same(registry.resolve('mtls').extendedKeyUsages, ['clientAuth', 'serverAuth']);
  t.equal(registry.resolve(undefined).name, 'mtls');
  t.equal(profileRegistryFromConfig(config({ CHANCERY_PROFILE_TLS_CLIENT_VALIDITY: '2d' })).resolve('tls-client').validityMs, 2 * DAY);
  t.equal(profileRegistryFromConfig(config({})).resolve('short-lived').validityMs, 160 * HOUR, 'shipped default');
});

await t.test('fail/settings name the key and what is allowed', async (t) => {
  const cases: [Record<string, string>, RegExp][] = [
    [{ CHANCERY_PROFILE_TLS_SERVER_VALIDITY: '30' }, /profiles\.tls-server\.validity \(CHANCERY_PROFILE_TLS_SERVER_VALIDITY\): must be empty or a duration/],
    [{ CHANCERY_PROFILE_TLS_SERVER_VALIDITY: '0m' }, /a duration from 1m to 398d/],
    [{ CHANCERY_PROFILE_TLS_SERVER_VALIDITY: '400d' }, /a duration from 1m to 398d/],
    [{ CHANCERY_PROFILE_MTLS_EKUS: 'serverAuth,codeSigning' }, /profiles\.mtls\.ekus .*serverAuth, clientAuth/],
    [{ CHANCERY_PROFILE_MTLS_EKUS: '' }, /non-empty comma-separated list/],
    [{ CHANCERY_PROFILE_DEFAULT: 'gold' }, /profiles\.default .*one of tls-server, tls-client, mtls, short-lived/],
  ];
  for (const [env, message] of cases) t.throws(() => config(env), { kind: 'badConfig', message }, JSON.stringify(env));
  t.throws(() => profileRegistryFromConfig(config({ CHANCERY_PROFILE_SHORT_LIVED_VALIDITY: '8d' })), { kind: 'badConfig', message: /at most 7d/ });
});
