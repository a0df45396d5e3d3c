import { test } from 'node:test';
import assert from 'node:assert/strict';
import { computeDesired, deviceName } from '../../src/dataplane/compute';
import { parseNetworkConfig } from '../../src/config/network';
import { parseIp4, parsePrefix4 } from '../../src/ip/ipv4';
import type { Lease } from '../../src/subnet/lease';

const config = parseNetworkConfig('{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan","VNI":7,"Port":4789}}');
const underlay = { index: 3, ip: '192.168.50.11', mtu: 1500 };

function lease(subnet: string, ip: string, mac: string): Lease {
  return { subnet: parsePrefix4(subnet), publicIp: parseIp4(ip), vni: 7, vtepMac: mac };
}
const own = lease('10.244.1.0/24', '192.168.50.11', '0e:00:00:00:00:01');

test('device follows config, own lease and underlay (MTU = underlay - 50)', () => {
  const { desired } = computeDesired({ config, own, ownHeld: true, peers: [], underlay });
  assert.deepEqual(desired.device, {
    name: 'twill.7', vni: 7, port: 4789, local: '192.168.50.11', lowerIndex: 3, mac: '0e:00:00:00:00:01', mtu: 1450, address: '10.244.1.0',
  });
  assert.equal(deviceName(1), 'twill.1');
  assert.equal(desired.routes.size + desired.neighs.size + desired.fdb.size, 0);
});

test('exactly three entries per peer, flannel style', () => {
  const peers = [lease('10.244.2.0/24', '192.168.50.12', '0e:00:00:00:00:02'), lease('10.244.3.0/24', '192.168.50.13', '0e:00:00:00:00:03')];
  const { desired, conflicts } = computeDesired({ config, own, ownHeld: true, peers, underlay });
  assert.deepEqual(conflicts, []);
  assert.deepEqual([...desired.routes.values()], [
    { dst: '10.244.2.0', dstLen: 24, gateway: '10.244.2.0' },
    { dst: '10.244.3.0', dstLen: 24, gateway: '10.244.3.0' },
  ]);
  assert.deepEqual([...desired.neighs.values()], [
    { ip: '10.244.2.0', mac: '0e:00:00:00:00:02' },
    { ip: '10.244.3.0', mac: '0e:00:00:00:00:03' },
  ]);
  assert.deepEqual([...desired.fdb.values()], [
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
  ];
  const { desired, conflicts } = computeDesired({ config, own, ownHeld: true, peers, underlay });
  assert.deepEqual([...desired.routes.keys()], ['10.244.2.0/24']);
  assert.deepEqual(conflicts.map((c) => c.reason).sort(), ['duplicate-vtep-mac', 'overlaps-own', 'overlaps-peer', 'same-public-ip']);
});

test('deterministic: input order does not change the result', () => {
  const peers = Array.from({ length: 50 }, (_, i) => lease(`10.244.${i + 2}.0/24`, `192.168.51.${i + 2}`, `0e:00:00:00:01:${(i + 2).toString(16).padStart(2, '0')}`));
  const a = computeDesired({ config, own, ownHeld: true, peers, underlay }).desired;
  const b = computeDesired({ config, own, ownHeld: true, peers: [...peers].reverse(), underlay }).desired;
  assert.deepEqual([...a.routes.entries()].sort(), [...b.routes.entries()].sort());
  assert.deepEqual([...a.fdb.entries()].sort(), [...b.fdb.entries()].sort());
});

test('10,000 peers compute in well under a second (no quadratic conflict check)', () => {
  const bigConfig = parseNetworkConfig('{"Network":"10.0.0.0/8","Backend":{"Type":"vxlan"}}');
  const me: Lease = { subnet: parsePrefix4('10.0.0.0/24'), publicIp: parseIp4('172.16.0.1'), vni: 1, vtepMac: '0e:00:00:00:00:01' };
  const peers: Lease[] = [];
  for (let i = 1; i <= 10_000; i++) {
    peers.push({ subnet: { ip: (10 << 24 | i << 8) >>> 0, len: 24 }, publicIp: (172 << 24 | 17 << 16 | i) >>> 0, vni: 1, vtepMac: `0e:01:00:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}:00` });
  }
  const t = performance.now();
  const { desired } = computeDesired({ config: bigConfig, own: me, ownHeld: true, peers, underlay });
  const ms = performance.now() - t;
  assert.equal(desired.routes.size, 10_000);
  assert.ok(ms < 1000, `took ${ms} ms`);
});
