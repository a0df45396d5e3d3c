import { test } from 'node:test';
import assert from 'node:assert/strict';
import { selectUnderlay, type UnderlayChoice } from '../../src/daemon/underlay-select';

// A host with two NICs: eth0 (default route, 10.0.0.5) and eth1 (192.168.50.11, a second
// network reached through 192.168.50.1), plus a NIC without an address.
const links = [
  { index: 1, name: 'lo' },
  { index: 2, name: 'eth0' },
  { index: 3, name: 'eth1' },
  { index: 4, name: 'eth2' },
];
const addrs = [
  { index: 1, ip: '127.0.0.1' },
  { index: 2, ip: '10.0.0.5' },
  { index: 3, ip: '192.168.50.11' },
  { index: 3, ip: '192.168.50.12' },
];
const routes = [
  { dst: '0.0.0.0', dstLen: 0, gateway: '10.0.0.1', oif: 2, protocol: 4, type: 1 },
  { dst: '10.0.0.0', dstLen: 24, gateway: undefined, oif: 2, protocol: 2, type: 1 },
  { dst: '192.168.50.0', dstLen: 24, gateway: undefined, oif: 3, protocol: 2, type: 1 },
  { dst: '172.20.0.0', dstLen: 16, gateway: '192.168.50.1', oif: 3, protocol: 4, type: 1 },
  { dst: '172.21.0.0', dstLen: 16, gateway: undefined, oif: 3, protocol: 113, type: 1 }, // twill's: never counts
];
const none: UnderlayChoice = { iface: [], ifaceRegex: [], ifaceCanReach: undefined, publicIp: undefined };
const sel = (o: Partial<UnderlayChoice>) => selectUnderlay(links, addrs, routes, { ...none, ...o });
const picked = (o: Partial<UnderlayChoice>) => {
  const s = sel(o);
  return s.ok ? `${s.name} ${s.ip}` : `error: ${s.why}`;
};

test('nothing given: the default route’s interface, or the one holding --public-ip', () => {
  assert.equal(picked({}), 'eth0 10.0.0.5');
  assert.equal(picked({ publicIp: '192.168.50.12' }), 'eth1 192.168.50.12');
  assert.match(selectUnderlay(links, addrs, routes.slice(1), none).ok ? '' : (selectUnderlay(links, addrs, routes.slice(1), none) as { why: string }).why, /no IPv4 default route/);
});

test('--iface: names or addresses, first usable in the order given; a missing or address-less one is passed over', () => {
  assert.equal(picked({ iface: ['eth1'] }), 'eth1 192.168.50.11');
  assert.equal(picked({ iface: ['192.168.50.12'] }), 'eth1 192.168.50.12');
  assert.equal(picked({ iface: ['nope', 'eth2', 'eth1', 'eth0'] }), 'eth1 192.168.50.11');
  assert.equal(picked({ iface: ['eth1'], publicIp: '192.168.50.12' }), 'eth1 192.168.50.12');
  const err = picked({ iface: ['nope', 'eth2'] });
  assert.match(err, /--iface nope: no such interface/);
  assert.match(err, /--iface eth2: eth2 has no IPv4 address/);
  assert.ok(!err.includes('eth0'), 'a given choice never falls back to the default route');
});

test('--iface-regex: addresses first (that address), then names; after every --iface', () => {
  assert.equal(picked({ ifaceRegex: ['^192\\.168\\.50\\.12$'] }), 'eth1 192.168.50.12');
  assert.equal(picked({ ifaceRegex: ['^eth1$'] }), 'eth1 192.168.50.11');
  assert.equal(picked({ ifaceRegex: ['^10\\.', '^eth1$'] }), 'eth0 10.0.0.5');
  assert.equal(picked({ iface: ['nope'], ifaceRegex: ['^eth1$'] }), 'eth1 192.168.50.11');
  assert.equal(picked({ iface: ['eth0'], ifaceRegex: ['^eth1$'] }), 'eth0 10.0.0.5');
});

test('--iface-can-reach: the interface of the route to that address (twill’s routes ignored); tried last', () => {
  assert.equal(picked({ ifaceCanReach: '172.20.9.9' }), 'eth1 192.168.50.11');
  assert.equal(picked({ ifaceCanReach: '172.21.9.9' }), 'eth0 10.0.0.5', 'protocol-113 route ignored: default route');
  assert.equal(picked({ ifaceCanReach: '8.8.8.8' }), 'eth0 10.0.0.5');
  assert.equal(picked({ ifaceRegex: ['^eth0$'], ifaceCanReach: '172.20.9.9' }), 'eth0 10.0.0.5');
  assert.equal(picked({ ifaceRegex: ['^wlan'], ifaceCanReach: '172.20.9.9' }), 'eth1 192.168.50.11');
});
