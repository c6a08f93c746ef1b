import t from 'tap';
import type { Identifier } from '../../../src/core/identifier.js';
import { ALWAYS_DENIED, createNetworkPolicy, type NetworkPolicySettings } from '../../../src/va/network-policy.js';

/**
 * The validation network policy as a pure function: (address, port) -> allowed or the rule that denies it.
 * Nothing here opens a socket; the addresses are only compared.
 */

interface Case {
  name: string;
  settings?: NetworkPolicySettings;
  address: string;
  port?: number;
  /** undefined: allowed; a pattern: denied with a reason matching it. */
  denied?: RegExp;
}

const ALWAYS = /is always denied/;
const acmeOnLoopback: NetworkPolicySettings = { ownListeners: () => [{ name: 'ACME', host: '127.0.0.1', port: 8443 }] };

const cases: Case[] = [
  // Allowed by default: public and private unicast, loopback while allowLoopback is on (the quick start).
  { name: 'ok/public IPv4', address: '192.0.2.10' },
  { name: 'ok/public IPv6', address: '2001:db8::10' },
  { name: 'ok/private 10/8', address: '10.1.2.3' },
  { name: 'ok/private 172.16/12', address: '172.31.255.1' },
  { name: 'ok/private 192.168/16', address: '192.168.1.1' },
  { name: 'ok/unique local fc00::/7', address: 'fd12:3456::1' },
  { name: 'ok/loopback 127.0.0.1 by default', address: '127.0.0.1' },
  { name: 'ok/loopback 127.0.0.2 by default', address: '127.0.0.2' },
  { name: 'ok/loopback ::1 by default', address: '::1' },
  { name: 'ok/IPv4-mapped form of an allowed address', address: '::ffff:10.0.0.1' },
  { name: 'ok/neighbour of the Alibaba metadata address', address: '100.100.100.201' },
  { name: 'ok/neighbour of the AWS IPv6 metadata address', address: 'fd00:ec2::253' },
  { name: 'ok/NAT64 of a public address', address: '64:ff9b::c000:20a' },
  { name: 'ok/6to4 of a public address', address: '2002:c000:020a::1' },

  // Always denied, each range of ALWAYS_DENIED at its edges.
  { name: 'fail/0.0.0.0', address: '0.0.0.0', denied: /0\.0\.0\.0\/8/ },
  { name: 'fail/0.255.255.255 ("this network")', address: '0.255.255.255', denied: /0\.0\.0\.0\/8/ },
  { name: 'fail/169.254.169.254 (cloud metadata)', address: '169.254.169.254', denied: /169\.254\.0\.0\/16 is IPv4 link-local .*metadata/ },
  { name: 'fail/169.254.0.1 (link-local)', address: '169.254.0.1', denied: /169\.254\.0\.0\/16/ },
  { name: 'fail/169.254.255.255 (link-local)', address: '169.254.255.255', denied: /169\.254\.0\.0\/16/ },
  { name: 'fail/100.100.100.200 (Alibaba metadata)', address: '100.100.100.200', denied: /Alibaba/ },
  { name: 'fail/224.0.0.1 (multicast)', address: '224.0.0.1', denied: /multicast/ },
  { name: 'fail/239.255.255.250 (multicast)', address: '239.255.255.250', denied: /224\.0\.0\.0\/4/ },
  { name: 'fail/255.255.255.255 (broadcast)', address: '255.255.255.255', denied: /broadcast/ },
  { name: 'fail/:: (unspecified)', address: '::', denied: /unspecified/ },
  { name: 'fail/fe80::1 (IPv6 link-local)', address: 'fe80::1', denied: /fe80::\/10/ },
  { name: 'fail/febf:ffff::1 (end of fe80::/10)', address: 'febf:ffff::1', denied: /fe80::\/10/ },
  { name: 'fail/fd00:ec2::254 (AWS IPv6 metadata)', address: 'fd00:ec2::254', denied: /AWS/ },
  { name: 'fail/fd00:0ec2:0:0:0:0:0:254 (same, uncompressed)', address: 'fd00:0ec2:0:0:0:0:0:254', denied: /AWS/ },
  { name: 'fail/ff02::1 (IPv6 multicast)', address: 'ff02::1', denied: /ff00::\/8/ },
  { name: 'fail/always denied even when allowNetworks is everything', settings: { allowNetworks: ['0.0.0.0/0', '::/0'] }, address: '169.254.169.254', denied: ALWAYS },

  // IPv6 forms embedding IPv4 are judged by the IPv4 address.
  { name: 'fail/::ffff:169.254.169.254 (IPv4-mapped)', address: '::ffff:169.254.169.254', denied: /::ffff:169\.254\.169\.254 \(IPv4 169\.254\.169\.254\) is always denied/ },
  { name: 'fail/::ffff:a9fe:a9fe (IPv4-mapped, hex)', address: '::ffff:a9fe:a9fe', denied: /169\.254\.0\.0\/16/ },
  { name: 'fail/::169.254.169.254 (IPv4-compatible)', address: '::169.254.169.254', denied: /169\.254\.0\.0\/16/ },
  { name: 'fail/64:ff9b::a9fe:a9fe (NAT64)', address: '64:ff9b::a9fe:a9fe', denied: /IPv4 169\.254\.169\.254.*169\.254\.0\.0\/16/ },
  { name: 'fail/2002:a9fe:a9fe::1 (6to4)', address: '2002:a9fe:a9fe::1', denied: /IPv4 169\.254\.169\.254/ },
  { name: 'fail/64:ff9b::6464:64c8 (NAT64 of the Alibaba metadata address)', address: '64:ff9b::6464:64c8', denied: /Alibaba/ },
  { name: 'fail/::ffff:0.0.0.0', address: '::ffff:0.0.0.0', denied: /0\.0\.0\.0\/8/ },
  { name: 'fail/::ffff:255.255.255.255', address: '::ffff:255.255.255.255', denied: /broadcast/ },
  { name: 'fail/::ffff:127.0.0.1 when loopback is off', settings: { allowLoopback: false }, address: '::ffff:127.0.0.1', denied: /loopback/ },
  { name: 'fail/NAT64 of loopback when loopback is off', settings: { allowLoopback: false }, address: '64:ff9b::7f00:1', denied: /IPv4 127\.0\.0\.1\) is loopback/ },
  { name: 'fail/6to4 of a denyNetworks address', settings: { denyNetworks: ['10.9.0.0/16'] }, address: '2002:0a09:0001::1', denied: /denyNetworks \(10\.9\.0\.0\/16\)/ },
  { name: 'fail/denyNetworks written in IPv6 catches its embedded forms', settings: { denyNetworks: ['2002::/16'] }, address: '2002:c000:020a::1', denied: /denyNetworks \(2002::\/16\)/ },
  { name: 'fail/IPv4 denyNetworks catches the IPv4-mapped form', settings: { denyNetworks: ['192.0.2.0/24'] }, address: '::ffff:192.0.2.9', denied: /denyNetworks/ },
  { name: 'ok/::1 is IPv6 loopback, not IPv4-compatible 0.0.0.1', address: '::1' },

  // The loopback switch.
  { name: 'fail/127.0.0.1 when allowLoopback is false', settings: { allowLoopback: false }, address: '127.0.0.1', denied: /127\.0\.0\.1 is loopback and validation\.allowLoopback is false/ },
  { name: 'fail/127.255.255.254 when allowLoopback is false', settings: { allowLoopback: false }, address: '127.255.255.254', denied: /allowLoopback/ },
  { name: 'fail/::1 when allowLoopback is false', settings: { allowLoopback: false }, address: '::1', denied: /allowLoopback/ },
  { name: 'ok/private addresses stay allowed when loopback is off', settings: { allowLoopback: false }, address: '10.0.0.1' },

  // denyNetworks and allowNetworks.
  { name: 'fail/denyNetworks IPv4', settings: { denyNetworks: ['10.9.0.0/16'] }, address: '10.9.1.1', denied: /10\.9\.1\.1 is denied by validation\.denyNetworks \(10\.9\.0\.0\/16\)/ },
  { name: 'fail/denyNetworks IPv6', settings: { denyNetworks: ['fd00:1::/64'] }, address: 'fd00:1::5', denied: /denyNetworks \(fd00:1::\/64\)/ },
  { name: 'ok/outside denyNetworks', settings: { denyNetworks: ['10.9.0.0/16'] }, address: '10.10.0.1' },
  { name: 'fail/denyNetworks wins over allowNetworks', settings: { allowNetworks: ['10.0.0.0/8'], denyNetworks: ['10.9.0.0/16'] }, address: '10.9.0.1', denied: /denyNetworks/ },
  { name: 'ok/inside allowNetworks', settings: { allowNetworks: ['10.0.0.0/8'] }, address: '10.200.0.1' },
  { name: 'ok/a single address in allowNetworks', settings: { allowNetworks: ['192.0.2.7'] }, address: '192.0.2.7' },
  { name: 'fail/outside allowNetworks', settings: { allowNetworks: ['10.0.0.0/8', 'fd00::/8'] }, address: '192.0.2.1', denied: /outside validation\.allowNetworks \(10\.0\.0\.0\/8, fd00::\/8\)/ },
  { name: 'fail/IPv6 outside an IPv4-only allowNetworks', settings: { allowNetworks: ['10.0.0.0/8'] }, address: '2001:db8::1', denied: /outside validation\.allowNetworks/ },
  { name: 'fail/loopback outside a set allowNetworks, even with allowLoopback', settings: { allowNetworks: ['10.0.0.0/8'], allowLoopback: true }, address: '127.0.0.1', denied: /outside validation\.allowNetworks/ },
  { name: 'ok/loopback inside allowNetworks with allowLoopback', settings: { allowNetworks: ['127.0.0.0/8'], allowLoopback: true }, address: '127.0.0.1' },
  { name: 'fail/loopback inside allowNetworks without allowLoopback', settings: { allowNetworks: ['127.0.0.0/8'], allowLoopback: false }, address: '127.0.0.1', denied: /allowLoopback is false/ },

  // Chancery's own listeners: the (address, port) pairs, whatever allowLoopback says.
  { name: 'fail/own ACME listener 127.0.0.1:8443', settings: acmeOnLoopback, address: '127.0.0.1', port: 8443, denied: /127\.0\.0\.1 port 8443 is Chancery's own ACME listener \(bound to 127\.0\.0\.1:8443\)/ },
  { name: 'fail/own listener through its IPv4-mapped form', settings: acmeOnLoopback, address: '::ffff:127.0.0.1', port: 8443, denied: /own ACME listener/ },
  { name: 'ok/own listener address on another port', settings: acmeOnLoopback, address: '127.0.0.1', port: 80 },
  { name: 'ok/another loopback address on the own listener port (bound to 127.0.0.1 only)', settings: acmeOnLoopback, address: '127.0.0.2', port: 8443 },
  {
    name: 'fail/listener on 0.0.0.0 covers every loopback address on its port',
    settings: { ownListeners: () => [{ name: 'public', host: '0.0.0.0', port: 8080 }] },
    address: '127.0.0.5',
    port: 8080,
    denied: /own public listener \(bound to 0\.0\.0\.0:8080\)/,
  },
  {
    name: 'fail/listener on 0.0.0.0 covers the interface addresses on its port',
    settings: { ownListeners: () => [{ name: 'public', host: '0.0.0.0', port: 8080 }], localAddresses: () => ['10.1.1.1', 'fe80::1'] },
    address: '10.1.1.1',
    port: 8080,
    denied: /own public listener/,
  },
  {
    name: 'ok/listener on 0.0.0.0 does not cover another host on its port',
    settings: { ownListeners: () => [{ name: 'public', host: '0.0.0.0', port: 8080 }], localAddresses: () => ['10.1.1.1'] },
    address: '10.1.1.2',
    port: 8080,
  },
  {
    name: 'fail/listener on :: covers IPv4 interface addresses too (dual stack)',
    settings: { ownListeners: () => [{ name: 'ACME', host: '::', port: 443 }], localAddresses: () => ['192.168.7.7'] },
    address: '192.168.7.7',
    port: 443,
    denied: /own ACME listener/,
  },
  {
    name: 'fail/listener bound to a name is treated as every local address',
    settings: { ownListeners: () => [{ name: 'admin', host: 'localhost', port: 8444 }] },
    address: '::1',
    port: 8444,
    denied: /own admin listener/,
  },
  { name: 'fail/own listener even with allowNetworks covering it', settings: { ...acmeOnLoopback, allowNetworks: ['127.0.0.0/8'] }, address: '127.0.0.1', port: 8443, denied: /own ACME listener/ },
];

for (const c of cases) {
  t.test(c.name, async (t) => {
    const policy = createNetworkPolicy(c.settings);
    const why = policy.denies(c.address, c.port ?? 80);
    if (c.denied) t.match(why, c.denied);
    else t.equal(why, undefined, `allowed (got: ${why})`);
  });
}

t.test('ok/every ALWAYS_DENIED range is denied whatever the settings', async (t) => {
  const permissive = createNetworkPolicy({ allowNetworks: ['0.0.0.0/0', '::/0'], allowLoopback: true });
  for (const { cidr } of ALWAYS_DENIED) {
    const base = cidr.slice(0, cidr.indexOf('/'));
    t.match(permissive.denies(base, 80), ALWAYS, cidr);
  }
});

interface IdentifierCase {
  name: string;
  settings?: NetworkPolicySettings;
  identifier: Identifier;
  refused?: RegExp;
}

const identifierCases: IdentifierCase[] = [
  { name: 'fail/ip identifier 169.254.169.254', identifier: { type: 'ip', value: '169.254.169.254' }, refused: /always denied/ },
  { name: 'fail/ip identifier ::ffff:169.254.169.254', identifier: { type: 'ip', value: '::ffff:169.254.169.254' }, refused: /IPv4 169\.254\.169\.254\) is always denied/ },
  { name: 'fail/ip identifier fe80::1', identifier: { type: 'ip', value: 'fe80::1' }, refused: /fe80::\/10/ },
  { name: 'fail/ip identifier in denyNetworks', settings: { denyNetworks: ['10.9.0.0/16'] }, identifier: { type: 'ip', value: '10.9.0.1' }, refused: /denyNetworks/ },
  { name: 'fail/ip identifier on loopback when loopback is off', settings: { allowLoopback: false }, identifier: { type: 'ip', value: '127.0.0.1' }, refused: /allowLoopback/ },
  { name: 'fail/ip identifier outside allowNetworks', settings: { allowNetworks: ['10.0.0.0/8'] }, identifier: { type: 'ip', value: '192.0.2.1' }, refused: /outside/ },
  { name: 'ok/ip identifier in a private range', identifier: { type: 'ip', value: '10.0.0.1' } },
  { name: 'ok/ip identifier of our own listener address (only the listener port is denied)', settings: acmeOnLoopback, identifier: { type: 'ip', value: '127.0.0.1' } },
  { name: 'ok/dns identifiers are judged at validation, by their addresses', settings: { allowLoopback: false }, identifier: { type: 'dns', value: 'localhost' } },
];

for (const c of identifierCases) {
  t.test(c.name, async (t) => {
    const why = createNetworkPolicy(c.settings).refusesIdentifier(c.identifier);
    if (c.refused) t.match(why, c.refused);
    else t.equal(why, undefined, `accepted (got: ${why})`);
  });
}

const badSettings: { name: string; settings: NetworkPolicySettings; message: RegExp }[] = [
  { name: 'fail/denyNetworks entry that is not a network', settings: { denyNetworks: ['10.0.0.0/33'] }, message: /validation\.denyNetworks: "10\.0\.0\.0\/33" has an invalid prefix length/ },
  { name: 'fail/allowNetworks entry with host bits set', settings: { allowNetworks: ['10.0.0.1/8'] }, message: /validation\.allowNetworks: "10\.0\.0\.1\/8" has host bits set; did you mean 10\.0\.0\.0\/8\?/ },
  { name: 'fail/allowNetworks cannot widen an always-denied range', settings: { allowNetworks: ['169.254.169.254/32'] }, message: /169\.254\.169\.254\/32 lies inside 169\.254\.0\.0\/16 .* always denied; no setting widens it/ },
  { name: 'fail/allowNetworks cannot widen fe80::/10', settings: { allowNetworks: ['fe80::/64'] }, message: /lies inside fe80::\/10/ },
];

for (const c of badSettings) {
  t.test(c.name, async (t) => {
    t.throws(() => createNetworkPolicy(c.settings), { kind: 'badConfig', message: c.message });
  });
}
