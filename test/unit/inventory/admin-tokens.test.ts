import t from 'tap';
import { FakeClock, MINUTE, SECOND } from '../../../src/core/clock.js';
import { DomainEvents, type DomainEvent } from '../../../src/core/events.js';
import type { Page } from '../../../src/core/page.js';
import type { AdminToken } from '../../../src/core/principal.js';
import type { Queryable } from '../../../src/db/database.js';
import { AdminTokenService, type AdminTokenStore } from '../../../src/inventory/admin-tokens.js';
import { AuthFailureLimiter } from '../../../src/inventory/auth-failures.js';

/** Tokens in memory, counting writes of last use. */
function memoryStore(): AdminTokenStore & { uses: number; hashes: Map<string, Uint8Array> } {
  const tokens = new Map<string, AdminToken>();
  const hashes = new Map<string, Uint8Array>();
  const store = {
    uses: 0,
    hashes,
    async insert(token: AdminToken, sha256: Uint8Array) {
      tokens.set(token.id, { ...token });
      hashes.set(token.id, sha256);
    },
    async findForAuthentication(id: string) {
      const token = tokens.get(id);
      return token ? { token: { ...token }, sha256: hashes.get(id)! } : undefined;
    },
    async findById(id: string) {
      return tokens.get(id);
    },
    async list(): Promise<Page<AdminToken>> {
      return { items: [...tokens.values()] };
    },
    async revoke(id: string, at: Date, by: AdminToken['createdBy']) {
      const token = tokens.get(id);
      if (!token || token.revokedAt) return undefined;
      Object.assign(token, { revokedAt: at, revokedBy: by });
      return token;
    },
    async recordUse(id: string, at: Date, unlessAfter: Date) {
      const token = tokens.get(id)!;
      if (token.lastUsedAt === undefined || token.lastUsedAt <= unlessAfter) {
        token.lastUsedAt = at;
        store.uses += 1;
      }
    },
  };
  return store;
}

const clock = new FakeClock('2026-03-01T00:00:00Z');
const events = new DomainEvents<Queryable>();
const raised: DomainEvent[] = [];
events.onCommitted('admin.token.created', (e) => void raised.push(e));
const store = memoryStore();
const tokens = new AdminTokenService({
  access: { stores: store, transaction: (fn) => fn(store, {} as Queryable) },
  events,
  clock,
  settings: { defaultLifetimeMs: 90 * 24 * 60 * MINUTE, maxLifetimeMs: 365 * 24 * 60 * MINUTE },
  groupExists: async (name) => ['alpha', 'beta'].includes(name),
});
const admin = { actor: 'cli:root' as const, role: 'admin' as const, groups: [], via: 'local' as const };

t.test('ok/a token: recognisable prefix, 256 random bits, stored as SHA-256 only, 90 days by default', async (t) => {
  const { token, secret } = await tokens.create(admin, 'all', { role: 'auditor' });
  t.match(secret, /^chy_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/);
  t.equal(token.expiresAt.getTime() - clock.now().getTime(), 90 * 24 * 60 * MINUTE);
  t.equal(store.hashes.get(token.id)!.length, 32);
  t.notOk(JSON.stringify(raised).includes(secret.slice(22)), 'the event never carries the token');
  const outcome = await tokens.authenticate(secret);
  t.match(outcome, { principal: { actor: `token:${token.id}`, role: 'auditor', via: 'token' } });
});

t.test('ok/last use is written at most once a minute per token', async (t) => {
  const { secret } = await tokens.create(admin, 'all', { role: 'admin' });
  const before = store.uses;
  for (let i = 0; i < 50; i += 1) {
    await tokens.authenticate(secret);
    clock.advance(SECOND);
  }
  t.equal(store.uses - before, 1, '50 requests in 50 s: one write');
  clock.advance(MINUTE);
  await tokens.authenticate(secret);
  t.equal(store.uses - before, 2, 'a minute later: the next');
});

t.test('fail/bad, wrong, expired and revoked tokens', async (t) => {
  const { token, secret } = await tokens.create(admin, 'all', { role: 'admin', lifetimeMs: 2 * MINUTE });
  t.same(await tokens.authenticate('chy_nope'), { failure: 'malformed' });
  t.same(await tokens.authenticate(`chy_${'0'.repeat(16)}_${'A'.repeat(43)}`), { failure: 'unknown' });
  t.same(await tokens.authenticate(`${secret.slice(0, -1)}${secret.endsWith('A') ? 'B' : 'A'}`), { failure: 'mismatch' });
  clock.advance(3 * MINUTE);
  t.same(await tokens.authenticate(secret), { failure: 'expired' });
  const other = await tokens.create(admin, 'all', { role: 'admin' });
  await tokens.revoke(admin, 'all', other.token.id);
  t.same(await tokens.authenticate(other.secret), { failure: 'revoked' });
  t.ok(token);
});

t.test('fail/lifetimes beyond the maximum and malformed requests are refused before anything is stored', async (t) => {
  const count = (await store.list({}, { limit: 1000 })).items.length;
  await t.rejects(tokens.create(admin, 'all', { role: 'admin', lifetimeMs: 400 * 24 * 60 * MINUTE }), { kind: 'malformed', message: /./ });
  await t.rejects(tokens.create(admin, 'all', { role: 'group-admin' }), { kind: 'malformed', message: /./ });
  await t.rejects(tokens.create(admin, 'all', { role: 'admin', groups: ['alpha'] }), { kind: 'malformed', message: /./ });
  await t.rejects(tokens.create(admin, 'all', { role: 'group-admin', groups: ['gamma'] }), { kind: 'notFound', message: /./ });
  t.equal((await store.list({}, { limit: 1000 })).items.length, count);
});

t.test('ok/failed authentications: limited per source, one event per source per minute', async (t) => {
  const limiterClock = new FakeClock('2026-03-01T00:00:00Z');
  const limiterEvents = new DomainEvents<Queryable>();
  const failures: DomainEvent[] = [];
  limiterEvents.onCommitted('admin.auth.failed', (e) => void failures.push(e));
  // No database here: no recorder is registered, so the transaction is never written to.
  const limiter = new AuthFailureLimiter({ clock: limiterClock, events: limiterEvents, transaction: (fn) => fn({} as Queryable), maxPerMinute: 5 });
  t.teardown(() => limiter.stop());
  for (let i = 0; i < 7; i += 1) await limiter.failed('192.0.2.1', 'mismatch');
  await limiter.failed('192.0.2.2', 'unknown');
  t.ok(limiter.blocked('192.0.2.1'), 'past the limit: blocked');
  t.notOk(limiter.blocked('192.0.2.2'), 'another source is not');
  t.same(failures.map((e) => e.type === 'admin.auth.failed' && [e.source, e.failures]), [['192.0.2.1', 1], ['192.0.2.2', 1]], 'the first failure of each source at once');
  limiterClock.advance(MINUTE);
  await limiter.flush();
  t.notOk(limiter.blocked('192.0.2.1'), 'a minute later: free again');
  t.same(failures.slice(2).map((e) => e.type === 'admin.auth.failed' && [e.source, e.failures, e.reason]), [['192.0.2.1', 6, 'mismatch']], 'the rest of the minute together');
});
