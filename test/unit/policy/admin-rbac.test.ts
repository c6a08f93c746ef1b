import t from 'tap';
import { ADMIN_ACTIONS, decide, RBAC, tokenEscalation } from '../../../src/policy/admin-rbac.js';

const groupAdmin = { role: 'group-admin' as const, groups: ['alpha'], expiresAt: new Date('2026-06-01T00:00:00Z') };

t.test('ok/admin may do everything, everywhere', async (t) => {
  for (const action of ADMIN_ACTIONS) t.same(decide({ role: 'admin', groups: [] }, action), { allowed: true, scope: 'all' }, action);
});

t.test('ok/auditor reads everything and changes nothing', async (t) => {
  for (const action of ADMIN_ACTIONS) {
    const reads = /\.(list|read|export)$/.test(action);
    t.equal(decide({ role: 'auditor', groups: [] }, action).allowed, reads, action);
  }
});

t.test('ok/group-admin acts on its own groups only; operators, the whole policy and incidents are an admin’s (an auditor follows incidents)', async (t) => {
  for (const action of ADMIN_ACTIONS) {
    const decision = decide(groupAdmin, action);
    if (['operator.list', 'operator.bind', 'operator.unbind', 'policy.replace', 'incident.list', 'incident.read', 'incident.declare', 'incident.close'].includes(action)) t.same(decision, { allowed: false }, action);
    else if (action === 'self.read') t.same(decision, { allowed: true, scope: 'all' });
    else t.same(decision, { allowed: true, scope: ['alpha'] }, action);
  }
  t.same(Object.keys(RBAC['group-admin']).sort(), [...ADMIN_ACTIONS].sort(), 'every action is in the table');
});

t.test('fail/token escalation', async (t) => {
  const at = new Date('2026-05-01T00:00:00Z');
  t.equal(tokenEscalation(groupAdmin, { role: 'group-admin', groups: ['alpha'], expiresAt: at }), undefined, 'ok/its own kind, its groups, within its lifetime');
  t.match(tokenEscalation(groupAdmin, { role: 'admin', groups: [], expiresAt: at }), /only group-admin tokens/);
  t.match(tokenEscalation(groupAdmin, { role: 'auditor', groups: [], expiresAt: at }), /only group-admin tokens/);
  t.match(tokenEscalation(groupAdmin, { role: 'group-admin', groups: ['alpha', 'beta'], expiresAt: at }), /only for its own groups/);
  t.match(tokenEscalation(groupAdmin, { role: 'group-admin', groups: ['alpha'], expiresAt: new Date('2026-07-01T00:00:00Z') }), /expiring no later/);
  t.match(tokenEscalation({ role: 'auditor', groups: [] }, { role: 'auditor', groups: [], expiresAt: at }), /may not create tokens/);
  t.equal(tokenEscalation({ role: 'admin', groups: [] }, { role: 'admin', groups: [], expiresAt: at }), undefined);
});
