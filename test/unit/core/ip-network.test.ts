import t from 'tap';
import { formatIp, inNetwork, ipAddress16, ipBytes, networkWithin, parseIpNetwork, type IpNetwork } from '../../../src/core/ip-network.js';

/** Addresses and CIDR networks as bytes: what the configuration loader and the validation network policy share. */

const net = (text: string): IpNetwork => {
  const parsed = parseIpNetwork(text);
  if ('error' in parsed) throw new Error(parsed.error);
  return parsed;
};
const addr = (text: string): Uint8Array => ipAddress16(text)!;

t.test('ok/addresses parse to bytes; IPv4 and its mapped form are the same 16 bytes', async (t) => {
  t.same([...ipBytes('192.0.2.1')!], [192, 0, 2, 1]);
  t.equal(ipBytes('2001:db8::1')!.length, 16);
  t.same(addr('10.0.0.1'), addr('::ffff:10.0.0.1'));
  t.same(addr('::ffff:a9fe:a9fe'), addr('169.254.169.254'));
  t.same(addr('fd00:0ec2:0000:0000:0000:0000:0000:0254'), addr('fd00:ec2::254'));
});

t.test('fail/not addresses', async (t) => {
  for (const text of ['', '1.2.3', '01.2.3.4', '0x7f.0.0.1', '256.0.0.1', 'fe80::1%eth0', '1::2::3', 'example.test', '::ffff:1.2.3']) {
    t.equal(ipBytes(text), undefined, JSON.stringify(text));
  }
});

t.test('ok/format: dotted quad for IPv4, RFC 5952 for IPv6', async (t) => {
  t.equal(formatIp(addr('::ffff:169.254.169.254')), '169.254.169.254');
  t.equal(formatIp(addr('2001:0db8:0000:0000:0001:0000:0000:0001')), '2001:db8::1:0:0:1');
  t.equal(formatIp(addr('::')), '::');
  t.equal(formatIp(addr('::1')), '::1');
  t.equal(formatIp(addr('fe80::')), 'fe80::');
  t.equal(formatIp(addr('1:2:3:4:5:6:7:8')), '1:2:3:4:5:6:7:8');
});

const membership: { name: string; network: string; address: string; inside: boolean }[] = [
  { name: 'ok/IPv4 /8 contains its addresses', network: '10.0.0.0/8', address: '10.255.255.255', inside: true },
  { name: 'ok/IPv4 /8 excludes its neighbour', network: '10.0.0.0/8', address: '11.0.0.0', inside: false },
  { name: 'ok/IPv4 /12 boundary', network: '172.16.0.0/12', address: '172.31.255.255', inside: true },
  { name: 'ok/IPv4 /12 just outside', network: '172.16.0.0/12', address: '172.32.0.0', inside: false },
  { name: 'ok/IPv4 network contains the mapped form', network: '169.254.0.0/16', address: '::ffff:169.254.1.1', inside: true },
  { name: 'ok/IPv6 /10', network: 'fe80::/10', address: 'febf:ffff::1', inside: true },
  { name: 'ok/IPv6 /10 just outside', network: 'fe80::/10', address: 'fec0::1', inside: false },
  { name: 'ok/an address alone is a /32', network: '100.100.100.200', address: '100.100.100.201', inside: false },
  { name: 'ok/0.0.0.0/0 is every IPv4 address and no IPv6 one', network: '0.0.0.0/0', address: '2001:db8::1', inside: false },
  { name: 'ok/::/0 is every address', network: '::/0', address: '192.0.2.1', inside: true },
  { name: 'ok/mapped IPv6 notation of an IPv4 network', network: '::ffff:10.0.0.0/104', address: '10.1.2.3', inside: true },
];

for (const c of membership) {
  t.test(c.name, async (t) => {
    t.equal(inNetwork(net(c.network), addr(c.address)), c.inside);
  });
}

t.test('ok/networkWithin', async (t) => {
  t.ok(networkWithin(net('169.254.169.0/24'), net('169.254.0.0/16')));
  t.notOk(networkWithin(net('169.0.0.0/8'), net('169.254.0.0/16')));
  t.notOk(networkWithin(net('0.0.0.0/0'), net('169.254.0.0/16')));
});

const badNetworks: { name: string; text: string; error: RegExp }[] = [
  { name: 'fail/prefix beyond 32 for IPv4', text: '10.0.0.0/33', error: /invalid prefix length \(0-32 for IPv4\)/ },
  { name: 'fail/prefix beyond 128 for IPv6', text: 'fd00::/129', error: /0-128 for IPv6/ },
  { name: 'fail/prefix not a number', text: '10.0.0.0/eight', error: /invalid prefix length/ },
  { name: 'fail/empty prefix', text: '10.0.0.0/', error: /invalid prefix length/ },
  { name: 'fail/host bits set', text: '192.168.1.1/16', error: /host bits set; did you mean 192\.168\.0\.0\/16\?/ },
  { name: 'fail/IPv6 host bits set', text: 'fd00::1/8', error: /did you mean fd00::\/8\?/ },
  { name: 'fail/not an address', text: 'intranet/8', error: /is not an IPv4 or IPv6 address/ },
  { name: 'fail/zone id', text: 'fe80::%eth0/10', error: /is not an IPv4 or IPv6 address/ },
];

for (const c of badNetworks) {
  t.test(c.name, async (t) => {
    const parsed = parseIpNetwork(c.text);
    t.ok('error' in parsed);
    if ('error' in parsed) t.match(parsed.error, c.error);
  });
}
