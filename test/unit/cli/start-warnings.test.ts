import t from 'tap';
import { startWarnings } from '../../../src/cli/start-warnings.js';

/** The start banner warns about loopback validation where the deployment looks like production. */
const cases: { name: string; allowLoopback: boolean; databaseDriver: string; keysBackend: string; warns: boolean }[] = [
  { name: 'fail/PostgreSQL with loopback validation on warns', allowLoopback: true, databaseDriver: 'pg', keysBackend: 'software', warns: true },
  { name: 'fail/pkcs11 keys with loopback validation on warns', allowLoopback: true, databaseDriver: 'pglite', keysBackend: 'pkcs11', warns: true },
  { name: 'ok/the quick start (PGlite, software keys) does not warn', allowLoopback: true, databaseDriver: 'pglite', keysBackend: 'software', warns: false },
  { name: 'ok/production with loopback validation off does not warn', allowLoopback: false, databaseDriver: 'pg', keysBackend: 'pkcs11', warns: false },
];

for (const c of cases) {
  t.test(c.name, async (t) => {
    const lines = startWarnings(c);
    if (c.warns) {
      t.equal(lines.length, 1);
      t.match(lines[0], /validation may connect to loopback.*CHANCERY_VALIDATION_ALLOW_LOOPBACK=false/);
    } else {
      t.same(lines, []);
    }
  });
}
