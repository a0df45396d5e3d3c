import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { formatPrefix4, parseIp4, parsePrefix4 } from '../../src/ip/ipv4';
import type { Lease as AnyLease } from '../../src/subnet/lease';
import { vxlanCodec, type VxlanData } from '../../src/backends/vxlan/codec';

type Lease = AnyLease<VxlanData>;
import { diffLeases, isEmptyDiff } from '../../src/subnet/lease-diff';

function L(subnet: string, publicIp: string, mac = '0e:00:00:00:00:01', vni = 1): Lease {
  return { subnet: parsePrefix4(subnet), publicIp: parseIp4(publicIp), publicIpv6: null, backendType: 'vxlan', backendData: { vni, vtepMac: mac } };
}

function byKey(...ls: Lease[]): Map<string, Lease> {
  return new Map(ls.map((l) => [formatPrefix4(l.subnet), l]));
}

const names = (ls: Lease[]): string[] => ls.map((l) => formatPrefix4(l.subnet));

test('empty to empty is empty', () => {
  assert.ok(isEmptyDiff(diffLeases(new Map(), new Map(), vxlanCodec)));
});

test('added, removed, changed and unchanged', () => {
  const a = L('10.244.1.0/24', '192.168.50.1');
  const b = L('10.244.2.0/24', '192.168.50.2');
  const c = L('10.244.3.0/24', '192.168.50.3');
  const bNewMac = L('10.244.2.0/24', '192.168.50.2', '0e:00:00:00:00:99');
  const cNewIp = L('10.244.3.0/24', '192.168.50.33');
  const d = L('10.244.4.0/24', '192.168.50.4');
  const e = L('10.244.0.0/24', '192.168.50.5');
  const diff = diffLeases(byKey(a, b, c), byKey(d, cNewIp, a, bNewMac, e), vxlanCodec);
  assert.deepEqual(names(diff.added), ['10.244.0.0/24', '10.244.4.0/24']);
  assert.deepEqual(diff.removed, []);
  assert.equal(diff.changed.length, 2);
  assert.deepEqual(diff.changed[0], { before: b, after: bNewMac });
  assert.deepEqual(diff.changed[1], { before: c, after: cNewIp });
  assert.ok(!isEmptyDiff(diff));
});

test('removed entries, sorted by subnet', () => {
  const x = L('10.244.9.0/24', '192.168.50.9');
  const y = L('10.244.1.0/24', '192.168.50.1');
  const z = L('10.244.5.0/24', '192.168.50.5');
  const diff = diffLeases(byKey(x, y, z), byKey(z), vxlanCodec);
  assert.deepEqual(names(diff.removed), ['10.244.1.0/24', '10.244.9.0/24']);
  assert.deepEqual(diff.added, []);
  assert.deepEqual(diff.changed, []);
});

test('a VNI change counts as changed; equal copies do not', () => {
  const before = L('10.244.1.0/24', '192.168.50.1');
  assert.ok(isEmptyDiff(diffLeases(byKey(before), byKey({ ...before, subnet: { ...before.subnet } }), vxlanCodec)));
  const diff = diffLeases(byKey(before), byKey(L('10.244.1.0/24', '192.168.50.1', '0e:00:00:00:00:01', 2)), vxlanCodec);
  assert.equal(diff.changed.length, 1);
});

test('inputs are not modified', () => {
  const prev = byKey(L('10.244.1.0/24', '192.168.50.1'));
  const next = byKey(L('10.244.2.0/24', '192.168.50.2'));
  const p0 = [...prev.entries()];
  const n0 = [...next.entries()];
  diffLeases(prev, next, vxlanCodec);
  assert.deepEqual([...prev.entries()], p0);
  assert.deepEqual([...next.entries()], n0);
});
