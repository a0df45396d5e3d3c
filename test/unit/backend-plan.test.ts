import { test } from 'node:test';
import assert from 'node:assert/strict';
import { computeDesired } from '../../src/backends/plan';
import { reachability } from '../../src/backends/reach';
import { HOST_GW_DEVICE, hostGwBackend } from '../../src/backends/host-gw/backend';
import { ownedByAnyBackend } from '../../src/backends/registry';
import { wireguardBackend } from '../../src/backends/wireguard/backend';
import { deviceName, vxlanBackend } from '../../src/backends/vxlan/backend';
import type { VxlanData } from '../../src/backends/vxlan/codec';
import type { Reach } from '../../src/backends/types';
import { parseNetworkConfig } from '../../src/config/network';
import { DEVICE } from '../../src/dataplane/model';
import { parseIp4, parsePrefix4 } from '../../src/ip/ipv4';
import type { Lease as AnyLease } from '../../src/subnet/lease';

type Lease = AnyLease<VxlanData>;
const config = parseNetworkConfig('{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan","VNI":7,"Port":4789}}');
const direct = parseNetworkConfig('{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan","VNI":7,"Port":4789,"DirectRouting":true}}');
const hostGw = parseNetworkConfig('{"Network":"10.244.0.0/16","Backend":{"Type":"host-gw"}}');
const underlay = { index: 3, ip: '192.168.50.11', mtu: 1500 };

function lease(subnet: string, ip: string, mac: string): Lease {
  return { subnet: parsePrefix4(subnet), publicIp: parseIp4(ip), publicIpv6: null, backendType: 'vxlan', backendData: { vni: 7, vtepMac: mac } };
}
const own = lease('10.244.1.0/24', '192.168.50.11', '0e:00:00:00:00:01');

test('vxlan device follows config, own lease and underlay (MTU = underlay - 50)', () => {
  const { desired } = computeDesired(vxlanBackend, { config, own, ownHeld: true, peers: [], underlay });
  assert.deepEqual(desired.device, {
    name: 'twill.7', vni: 7, port: 4789, local: '192.168.50.11', lowerIndex: 3, mac: '0e:00:00:00:00:01', mtu: 1450, address: '10.244.1.0',
  });
  assert.equal(deviceName(1), 'twill.1');
  assert.deepEqual(Object.keys(desired.tables).sort(), ['fdb', 'neigh', 'route']);
  assert.equal(desired.tables.route!.size + desired.tables.neigh!.size + desired.tables.fdb!.size, 0);
  assert.equal(vxlanBackend.podMtu(config, 1500), 1450);
  assert.equal(vxlanBackend.podMtu(direct, 9000), 8950);
});

test('vxlan: exactly three entries per peer, flannel style', () => {
  const peers = [lease('10.244.2.0/24', '192.168.50.12', '0e:00:00:00:00:02'), lease('10.244.3.0/24', '192.168.50.13', '0e:00:00:00:00:03')];
  const { desired, conflicts, paths } = computeDesired(vxlanBackend, { config, own, ownHeld: true, peers, underlay });
  assert.deepEqual(conflicts, []);
  assert.deepEqual([...paths], [['vxlan', 2]]);
  assert.deepEqual([...desired.tables.route!.values()], [
    { dst: '10.244.2.0', dstLen: 24, gateway: '10.244.2.0', oif: DEVICE, onlink: true },
    { dst: '10.244.3.0', dstLen: 24, gateway: '10.244.3.0', oif: DEVICE, onlink: true },
  ]);
  assert.deepEqual([...desired.tables.neigh!.values()], [
    { ip: '10.244.2.0', mac: '0e:00:00:00:00:02' },
    { ip: '10.244.3.0', mac: '0e:00:00:00:00:03' },
  ]);
  assert.deepEqual([...desired.tables.fdb!.values()], [
    { mac: '0e:00:00:00:00:02', dst: '192.168.50.12' },
    { mac: '0e:00:00:00:00:03', dst: '192.168.50.13' },
  ]);
});

test('our own lease in the peer list is not programmed; conflicts are reported, never programmed', () => {
  const peers = [
    own,
    lease('10.244.1.0/24', '192.168.50.66', '0e:00:00:00:00:66'), // our subnet, another host
    lease('10.244.2.0/24', '192.168.50.12', '0e:00:00:00:00:02'),
    lease('10.244.2.0/24', '192.168.50.99', '0e:00:00:00:00:99'), // same subnet as a peer
    lease('10.244.4.0/24', '192.168.50.14', '0e:00:00:00:00:02'), // duplicate VTEP MAC
    lease('10.244.5.0/24', '192.168.50.11', '0e:00:00:00:00:05'), // our public IP
    lease('10.244.6.0/24', '192.168.50.16', '0e:00:00:00:00:01'), // our VTEP MAC
  ];
  const { desired, conflicts } = computeDesired(vxlanBackend, { config, own, ownHeld: true, peers, underlay });
  assert.deepEqual([...desired.tables.route!.keys()], ['10.244.2.0/24']);
  assert.deepEqual(conflicts.map((c) => c.reason).sort(), ['duplicate-vtep-mac', 'duplicate-vtep-mac', 'overlaps-own', 'overlaps-peer', 'same-public-ip']);
});

test('deterministic: input order does not change the result', () => {
  const peers = Array.from({ length: 50 }, (_, i) => lease(`10.244.${i + 2}.0/24`, `192.168.51.${i + 2}`, `0e:00:00:00:01:${(i + 2).toString(16).padStart(2, '0')}`));
  const a = computeDesired(vxlanBackend, { config, own, ownHeld: true, peers, underlay }).desired;
  const b = computeDesired(vxlanBackend, { config, own, ownHeld: true, peers: [...peers].reverse(), underlay }).desired;
  assert.deepEqual([...a.tables.route!.entries()].sort(), [...b.tables.route!.entries()].sort());
  assert.deepEqual([...a.tables.fdb!.entries()].sort(), [...b.tables.fdb!.entries()].sort());
});

test('10,000 peers compute in well under a second (no quadratic conflict check)', () => {
  const bigConfig = parseNetworkConfig('{"Network":"10.0.0.0/8","Backend":{"Type":"vxlan"}}');
  const me: Lease = { subnet: parsePrefix4('10.0.0.0/24'), publicIp: parseIp4('172.16.0.1'), publicIpv6: null, backendType: 'vxlan', backendData: { vni: 1, vtepMac: '0e:00:00:00:00:01' } };
  const peers: Lease[] = [];
  for (let i = 1; i <= 10_000; i++) {
    const mac = `0e:01:00:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}:00`;
    peers.push({ subnet: { ip: (10 << 24 | i << 8) >>> 0, len: 24 }, publicIp: (172 << 24 | 17 << 16 | i) >>> 0, publicIpv6: null, backendType: 'vxlan', backendData: { vni: 1, vtepMac: mac } });
  }
  const t = performance.now();
  const { desired } = computeDesired(vxlanBackend, { config: bigConfig, own: me, ownHeld: true, peers, underlay });
  const ms = performance.now() - t;
  assert.equal(desired.tables.route!.size, 10_000);
  assert.ok(ms < 1000, `took ${ms} ms`);
});

// 192.168.50.0/24 is the underlay's link (index 3); 192.168.60.0/24 is behind router .1.
const mainTable = [
  { dst: '0.0.0.0', dstLen: 0, gateway: '192.168.50.1', oif: 3, protocol: 4, type: 1 },
  { dst: '192.168.50.0', dstLen: 24, gateway: undefined, oif: 3, protocol: 2, type: 1 },
  { dst: '192.168.60.0', dstLen: 24, gateway: '192.168.50.1', oif: 3, protocol: 4, type: 1 },
  { dst: '192.168.70.0', dstLen: 24, gateway: undefined, oif: 9, protocol: 2, type: 1 },
  { dst: '192.168.50.77', dstLen: 32, gateway: undefined, oif: 3, protocol: 113, type: 1 }, // ours: ignored
  { dst: '192.168.50.99', dstLen: 32, gateway: undefined, oif: undefined, protocol: 4, type: 6 }, // prohibit
];

test('reachability: on-link through the underlay only; the longest prefix decides; twill routes never count', () => {
  const reach = reachability(mainTable, 3, 113);
  const r = (ip: string): Reach => reach(parseIp4(ip));
  assert.deepEqual(r('192.168.50.12'), { direct: true });
  assert.deepEqual(r('192.168.50.77'), { direct: true });
  assert.equal(r('192.168.60.5').direct, false);
  assert.match((r('192.168.60.5') as { why: string }).why, /gateway 192\.168\.50\.1/);
  assert.match((r('192.168.70.5') as { why: string }).why, /interface index 9/);
  assert.match((r('192.168.50.99') as { why: string }).why, /not unicast/);
  assert.match((r('10.9.9.9') as { why: string }).why, /gateway/);
  assert.match((reachability([], 3, 113)(parseIp4('10.9.9.9')) as { why: string }).why, /no route/);
});

const near = lease('10.244.2.0/24', '192.168.50.12', '0e:00:00:00:00:02');
const far = lease('10.244.3.0/24', '192.168.60.13', '0e:00:00:00:00:03');
const reach = reachability(mainTable, 3, 113);

test('vxlan DirectRouting: a peer on the link gets one route via its PublicIP, a routed peer the three VXLAN entries', () => {
  const { desired, paths, conflicts } = computeDesired(vxlanBackend, { config: direct, own, ownHeld: true, peers: [near, far], underlay, reach });
  assert.deepEqual(conflicts, []);
  assert.deepEqual([...paths].sort(), [['direct', 1], ['vxlan', 1]]);
  assert.deepEqual([...desired.tables.route!.values()], [
    { dst: '10.244.2.0', dstLen: 24, gateway: '192.168.50.12', oif: 3, onlink: false },
    { dst: '10.244.3.0', dstLen: 24, gateway: '10.244.3.0', oif: DEVICE, onlink: true },
  ]);
  assert.deepEqual([...desired.tables.neigh!.keys()], ['10.244.3.0']);
  assert.deepEqual([...desired.tables.fdb!.keys()], ['0e:00:00:00:00:03']);
  assert.equal((desired.device as unknown as { mtu: number }).mtu, 1450, 'the pod MTU stays VXLAN’s');
  assert.equal(vxlanBackend.needsReach(direct), true);
  assert.equal(vxlanBackend.needsReach(config), false);
  // Without DirectRouting reachability is not asked: both encapsulated.
  const plain = computeDesired(vxlanBackend, { config, own, ownHeld: true, peers: [near, far], underlay, reach });
  assert.deepEqual([...plain.paths], [['vxlan', 2]]);
});

test('host-gw: route via the PublicIP on the underlay; a device only for <subnet>.0/32; MTU = underlay; an unreachable peer is reported, not programmed', () => {
  const hg = (l: Lease): AnyLease<Record<string, never>> => ({ ...l, backendType: 'host-gw', backendData: {} });
  const { desired, conflicts, paths } = computeDesired(hostGwBackend, { config: hostGw, own: hg(own), ownHeld: true, peers: [hg(near), hg(far)], underlay, reach });
  // The overlay address peer probes run from, on a device of its own; no entry refers to it.
  assert.deepEqual(desired.device, { name: 'twill-hostgw', mtu: 1500, address: '10.244.1.0' });
  assert.ok([...desired.tables.route!.values()].every((r) => r.oif === underlay.index), 'every route on the underlay');
  const cold = computeDesired(hostGwBackend, { config: hostGw, own: hg(own), ownHeld: false, peers: [], underlay: { ...underlay, mtu: 9000 }, reach });
  assert.deepEqual(cold.desired.device, { name: HOST_GW_DEVICE, mtu: 9000, address: undefined }, 'no address before the lease is held');
  assert.deepEqual(Object.keys(desired.tables), ['route']);
  assert.deepEqual([...desired.tables.route!.values()], [{ dst: '10.244.2.0', dstLen: 24, gateway: '192.168.50.12', oif: 3, onlink: false }]);
  assert.deepEqual([...paths], [['direct', 1]]);
  assert.equal(conflicts.length, 1);
  assert.equal(conflicts[0]!.reason, 'not-directly-reachable');
  assert.match(conflicts[0]!.detail, /192\.168\.60\.13 is reached through gateway 192\.168\.50\.1/);
  assert.equal(hostGwBackend.podMtu(hostGw, 1500), 1500);
  assert.equal(hostGwBackend.ownsLink('twill.1'), false);
  assert.equal(hostGwBackend.ownsLink('twill-hostgw'), true);
  assert.equal(hostGwBackend.ownsLink('twill-hostgw0'), false);
  assert.equal(hostGwBackend.ownsLink('twill0'), false, 'the CNI bridge is never a backend device');
  assert.equal(vxlanBackend.ownsLink('twill-hostgw'), false);
  assert.equal(wireguardBackend.ownsLink('twill-hostgw'), false);
  assert.equal(ownedByAnyBackend('twill-hostgw'), true, 'swept when another backend is active');
  assert.equal(vxlanBackend.ownsLink('twill.1'), true);
  assert.equal(vxlanBackend.ownsLink('twill0'), false, 'the CNI bridge is never a backend device');
  assert.equal(vxlanBackend.ownsLink('twill.1x'), false);
});

test('source filter port: the VXLAN port with the kernel VXLAN device only; nothing for userspace VXLAN, host-gw or wireguard', () => {
  const wg = parseNetworkConfig('{"Network":"10.244.0.0/16","Backend":{"Type":"wireguard","ListenPort":51821}}');
  const plain = parseNetworkConfig('{"Network":"10.244.0.0/16"}');
  const port = (b: { sourceFilterPort?: typeof vxlanBackend.sourceFilterPort }, c: typeof config, mode: 'kernel' | 'userspace') => b.sourceFilterPort?.(c, mode);
  assert.equal(port(vxlanBackend, config, 'kernel'), 4789);
  assert.equal(port(vxlanBackend, direct, 'kernel'), 4789, 'DirectRouting keeps the filter (routed peers are still encapsulated)');
  assert.equal(port(vxlanBackend, plain, 'kernel'), 8472, 'flannel’s default port');
  // The userspace forwarder owns the socket and drops unknown sources itself.
  assert.equal(port(vxlanBackend, config, 'userspace'), undefined);
  for (const mode of ['kernel', 'userspace'] as const) {
    assert.equal(port(hostGwBackend, hostGw, mode), undefined, 'host-gw: nothing encapsulated');
    assert.equal(port(wireguardBackend, wg, mode), undefined, 'wireguard: its keys authenticate every datagram');
  }
  assert.throws(() => port(vxlanBackend, hostGw, 'kernel'), RangeError, 'the vxlan backend never reads another backend’s config');
});
