import { createSocket } from 'node:dgram';
import { promises as dnsPromises } from 'node:dns';
import t from 'tap';
import { createDnsResolverPool } from '../../../src/va/dns-resolver-pool.js';

/**
 * The pool lends each validation attempt a resolver of its own and keeps it for the next attempt. What makes
 * that as good as a new resolver per attempt is c-ares closing an idle resolver's socket, so the next query
 * leaves from a new source port (RFC 5452 §4.5). A stub DNS server records the port of every query.
 */

const ports: number[] = [];
const server = createSocket('udp4');
server.on('message', (query, remote) => {
  ports.push(remote.port);
  // "silent.test" gets no answer (an attempt that must be cancelled); everything else NXDOMAIN.
  if (query.includes(Buffer.from('\x06silent\x04test'))) return;
  const answer = Buffer.from(query);
  answer[2] = 0x81; // QR, RD
  answer[3] = 0x83; // RA, RCODE 3 (NXDOMAIN)
  answer.writeUInt16BE(0, 6);
  answer.writeUInt16BE(0, 8);
  answer.writeUInt16BE(0, 10);
  server.send(answer, remote.port, remote.address);
});
await new Promise<void>((resolve) => server.bind(0, '127.0.0.1', resolve));
t.teardown(() => server.close());

function countingPool(): { pool: ReturnType<typeof createDnsResolverPool>; created: () => number } {
  let created = 0;
  const pool = createDnsResolverPool(() => {
    created += 1;
    const resolver = new dnsPromises.Resolver({ timeout: 2000, tries: 1 });
    resolver.setServers([`127.0.0.1:${server.address().port}`]);
    return resolver;
  });
  return { pool, created: () => created };
}

async function lookUp(resolver: dnsPromises.Resolver, name: string): Promise<string> {
  return resolver.resolve4(name).then(
    () => 'found',
    (error: { code?: string }) => error.code ?? 'error',
  );
}

t.test('attempts one after another share a resolver, and each query leaves from a new source port', async (t) => {
  ports.length = 0;
  const { pool, created } = countingPool();
  const answers: string[] = [];
  for (let i = 0; i < 4; i += 1) answers.push(await pool.use(new AbortController().signal, (resolver) => lookUp(resolver, `n${i}.test`)));
  t.same(answers, ['ENOTFOUND', 'ENOTFOUND', 'ENOTFOUND', 'ENOTFOUND'], 'each query was answered');
  t.equal(created(), 1, 'one resolver was created and lent four times');
  t.equal(new Set(ports).size, 4, `four queries, four source ports (${ports.join(', ')})`);
});

t.test('attempts at the same time get resolvers (and sockets) of their own', async (t) => {
  ports.length = 0;
  const { pool, created } = countingPool();
  await Promise.all([0, 1, 2].map((i) => pool.use(new AbortController().signal, (resolver) => lookUp(resolver, `c${i}.test`))));
  t.equal(created(), 3);
  t.equal(new Set(ports).size, 3, `three concurrent queries, three source ports (${ports.join(', ')})`);
});

t.test('an aborted attempt cancels its query and its resolver is not lent again', async (t) => {
  const { pool, created } = countingPool();
  const controller = new AbortController();
  const pending = pool.use(controller.signal, (resolver) => lookUp(resolver, 'silent.test'));
  setTimeout(() => controller.abort(), 50);
  t.equal(await pending, 'ECANCELLED', 'the deadline cancelled the unanswered query');
  t.equal(await pool.use(new AbortController().signal, (resolver) => lookUp(resolver, 'after.test')), 'ENOTFOUND');
  t.equal(created(), 2, 'the next attempt got a new resolver');
});
