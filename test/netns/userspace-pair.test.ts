// Two userspace hosts on a veth underlay: the path where both offload halves are ours — TSO
// segmentation + UDP GSO on send, UDP GRO + TCP segment merging on receive. Data integrity is
// checked end to end (sha256 of what a TCP server received), because merged frames are handed
// to the kernel as already-checksummed: a merging bug would corrupt silently, not drop. Then
// the same with offloads off (one frame per TAP read/write), the diagnostic mode.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Netns, deleteAll, isRoot, tcpTransfer } from '../support/netns';
import { Teardown } from '../../src/lab/teardown';
import { NetlinkHandle } from '../../src/netlink/handle';
import { computeDesired } from '../../src/backends/plan';
import { vxlanBackend } from '../../src/backends/vxlan/backend';
import type { VxlanData } from '../../src/backends/vxlan/codec';
import { Reconciler } from '../../src/dataplane/reconciler';
import { parseNetworkConfig } from '../../src/config/network';
import { parseIp4, parsePrefix4 } from '../../src/ip/ipv4';
import type { Lease as AnyLease } from '../../src/subnet/lease';
import { userspaceVxlanDriver, type UserspaceDriver } from '../../src/userspace/dataplane';
import { hasUserspaceNative } from '../../src/userspace/native';

const skip = !isRoot() ? 'needs root' : !hasUserspaceNative() ? 'native addon built without native/userspace.c' : false;
const quietLog = { info() {}, warn() {}, error() {}, debug() {} };
const config = parseNetworkConfig('{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan","VNI":7,"Port":4789}}');
const lease = (subnet: string, ip: string, mac: string): Lease => ({ subnet: parsePrefix4(subnet), publicIp: parseIp4(ip), publicIpv6: null, backendType: 'vxlan', backendData: { vni: 7, vtepMac: mac } });
const L1 = lease('10.244.1.0/24', '192.0.2.1', '0e:00:00:00:01:01');
const L2 = lease('10.244.2.0/24', '192.0.2.2', '0e:00:00:00:02:02');

let A: Netns;
let B: Netns;
let ha: NetlinkHandle;
let hb: NetlinkHandle;
let da: Reconciler | undefined;
let db: Reconciler | undefined;
type Lease = AnyLease<VxlanData>;
const stats = (r: Reconciler) => (r.driver as UserspaceDriver).stats();

async function startPair(offloads: boolean): Promise<void> {
  da?.stop();
  db?.stop();
  da = new Reconciler(ha, quietLog, { resyncIntervalMs: 60_000 }, userspaceVxlanDriver({ netns: A.path, offloads }));
  db = new Reconciler(hb, quietLog, { resyncIntervalMs: 60_000 }, userspaceVxlanDriver({ netns: B.path, offloads }));
  const ready = [da, db].map((d) => new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('no convergence within 5 s')), 5000);
    d.once('converged', () => {
      clearTimeout(t);
      resolve();
    });
  }));
  da.setDesired(computeDesired(vxlanBackend, { config, own: L1, ownHeld: true, peers: [L2], underlay: { index: ha.getLink('ul0')!.index, ip: '192.0.2.1', mtu: 1500 } }).desired);
  db.setDesired(computeDesired(vxlanBackend, { config, own: L2, ownHeld: true, peers: [L1], underlay: { index: hb.getLink('ul0')!.index, ip: '192.0.2.2', mtu: 1500 } }).desired);
  await Promise.all(ready);
}


before(() => {
  if (skip) return;
  A = Netns.create('usa');
  B = Netns.create('usb');
  A.ip('link', 'add', 'ul0', 'type', 'veth', 'peer', 'name', 'ul0', 'netns', B.name);
  A.ip('addr', 'add', '192.0.2.1/24', 'dev', 'ul0');
  B.ip('addr', 'add', '192.0.2.2/24', 'dev', 'ul0');
  A.ip('link', 'set', 'ul0', 'up');
  B.ip('link', 'set', 'ul0', 'up');
  ha = NetlinkHandle.open({ netns: A.path });
  hb = NetlinkHandle.open({ netns: B.path });
});

after(async () => {
  if (skip) return;
  const t = new Teardown();
  await t.step('forwarder a', '-', () => da?.stop());
  await t.step('forwarder b', '-', () => db?.stop());
  await t.step('netlink handle a', '-', () => ha?.close());
  await t.step('netlink handle b', '-', () => hb?.close());
  await deleteAll(t, [A, B]);
  t.finish('userspace-pair teardown');
});

test('offloads on: 64 MB each way intact; sends are UDP GSO batches, receives are merged into superframes', { skip }, async () => {
  await startPair(true);
  const a0 = stats(da!)!;
  const b0 = stats(db!)!;
  const ab = await tcpTransfer(A.name, B.name, '10.244.2.0', 64 << 20);
  assert.match(ab.sent, /^67108864:[0-9a-f]{64}$/);
  assert.equal(ab.got, ab.sent, 'A -> B intact');
  const ba = await tcpTransfer(B.name, A.name, '10.244.1.0', 64 << 20);
  assert.equal(ba.got, ba.sent, 'B -> A intact');
  const a1 = stats(da!)!;
  const b1 = stats(db!)!;
  assert.equal(a1.udpGso, true);
  const dgrams = a1.txFrames - a0.txFrames;
  assert.ok(dgrams > (64 << 20) / 1500, `A sent MTU-sized datagrams (${dgrams})`);
  assert.ok(dgrams / (a1.udpSendCalls - a0.udpSendCalls) > 4, 'several datagrams per send call');
  const merged = b1.rxMergedFrames - b0.rxMergedFrames;
  const frames = b1.rxFrames - b0.rxFrames;
  assert.ok(merged > frames / 2, `B merged most received frames (${merged} of ${frames})`);
  assert.ok(frames / (b1.tapWrites - b0.tapWrites) > 4, 'several frames per TAP write');
  for (const s of [a1, b1]) {
    assert.equal(s.drops.tx['bad-offload'] + s.drops.tx['send-error'], 0);
    assert.equal(s.drops.rx['tap-write-error'] + s.drops.rx.truncated, 0);
  }
});

test('offloads off: one frame per read and write, still intact', { skip }, async () => {
  await startPair(false);
  const a0 = stats(da!)!;
  const ab = await tcpTransfer(A.name, B.name, '10.244.2.0', 16 << 20);
  assert.equal(ab.got, ab.sent, 'A -> B intact');
  const ba = await tcpTransfer(B.name, A.name, '10.244.1.0', 16 << 20);
  assert.equal(ba.got, ba.sent, 'B -> A intact');
  const a1 = stats(da!)!;
  assert.equal(a1.txGsoFrames, a0.txGsoFrames, 'no superframes without offloads');
  assert.equal(a1.rxMergedFrames, a0.rxMergedFrames, 'no merging without a vnet header');
});
