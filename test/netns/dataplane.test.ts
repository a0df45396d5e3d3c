// The kernel VXLAN drivers against real kernel objects in a throwaway namespace: create,
// converge, repair drift, sweep orphans. `ip`/`bridge` are the independent oracle.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Netns, bridgeJson, ipJson, deleteAll, isRoot, waitFor } from '../support/netns';
import { Teardown } from '../../src/lab/teardown';
import { nextConvergence, underlayNetns } from '../support/dataplane';
import { NetlinkHandle } from '../../src/netlink/handle';
import { NetlinkEventSocket } from '../../src/netlink/events';
import { ensureDevice } from '../../src/backends/vxlan/device';
import { Reconciler } from '../../src/dataplane/reconciler';
import { computeDesired } from '../../src/backends/plan';
import { vxlanBackend, type VxlanDeviceSpec } from '../../src/backends/vxlan/backend';
import { kernelVxlanDriver } from '../../src/backends/vxlan/drivers';
import type { VxlanData } from '../../src/backends/vxlan/codec';
import { parseNetworkConfig } from '../../src/config/network';
import { parseIp4, parsePrefix4 } from '../../src/ip/ipv4';
import type { Lease as AnyLease } from '../../src/subnet/lease';
import type { DesiredState } from '../../src/dataplane/model';

type Lease = AnyLease<VxlanData>;
const skip = !isRoot() ? 'needs root' : false;
const quietLog = { info() {}, warn() {}, error() {}, debug() {} };
const config = parseNetworkConfig('{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan"}}');

let ns: Netns;
let h: NetlinkHandle;
let underlayIndex: number;

function lease(subnet: string, publicIp: string, mac: string): Lease {
  return { subnet: parsePrefix4(subnet), publicIp: parseIp4(publicIp), publicIpv6: null, backendType: 'vxlan', backendData: { vni: 1, vtepMac: mac } };
}
const own = lease('10.244.1.0/24', '192.0.2.1', '0e:00:00:00:01:01');
const peerA = lease('10.244.2.0/24', '192.0.2.2', '0e:00:00:00:02:02');
const peerB = lease('10.244.3.0/24', '192.0.2.3', '0e:00:00:00:03:03');
const peerC = lease('10.244.4.0/24', '192.0.2.4', '0e:00:00:00:04:04');

function desired(peers: Lease[], mtu = 1500): DesiredState<VxlanDeviceSpec> {
  return computeDesired(vxlanBackend, { config, own, ownHeld: true, peers, underlay: { index: underlayIndex, ip: '192.0.2.1', mtu } }).desired;
}

interface IpRoute { dst: string; gateway?: string; dev: string; protocol?: string | number; flags: string[] }
interface IpNeigh { dst: string; lladdr?: string; state: string[] }
interface Fdb { mac: string; dst?: string; flags?: string[]; state?: string }

const routes = () => ipJson<IpRoute>(ns.name, 'route', 'show', 'proto', '113');
const neighs = () => ipJson<IpNeigh>(ns.name, 'neigh', 'show', 'dev', 'twill.1');
const fdb = () => bridgeJson<Fdb>(ns.name, 'fdb', 'show', 'dev', 'twill.1');

before(() => {
  if (skip) return;
  ns = underlayNetns('dp', '192.0.2.1/24');
  h = NetlinkHandle.open({ netns: ns.path });
  underlayIndex = h.getLink('ul0')!.index;
});

after(async () => {
  if (skip) return;
  const t = new Teardown();
  await t.step('netlink handle', '-', () => h?.close());
  await deleteAll(t, [ns]);
  t.finish('dataplane teardown');
});

const runToConvergence = nextConvergence;

test('device driver creates twill.1 as flannel does and fixes it in place or by recreation', { skip }, () => {
  const d = desired([]);
  const res = ensureDevice(h, d.device!);
  assert.equal(res.recreated, true);
  const [link] = ipJson<Record<string, any>>(ns.name, '-d', 'link', 'show', 'twill.1');
  assert.equal(link!['mtu'], 1450);
  assert.equal(link!['address'], own.backendData.vtepMac);
  assert.ok((link!['flags'] as string[]).includes('UP'));
  const vx = link!['linkinfo']['info_data'];
  assert.equal(vx['id'], 1);
  assert.equal(vx['local'], '192.0.2.1');
  assert.equal(vx['port'], 8472);
  assert.equal(vx['learning'], false);
  assert.equal(vx['link'], 'ul0');
  const addrs = ipJson<Record<string, any>>(ns.name, '-4', 'addr', 'show', 'dev', 'twill.1')[0]!['addr_info'];
  assert.deepEqual(addrs.map((a: any) => `${a.local}/${a.prefixlen}`), ['10.244.1.0/32']);

  assert.deepEqual(ensureDevice(h, d.device!).changes, [], 'second run changes nothing');

  ns.ip('link', 'set', 'twill.1', 'mtu', '1300');
  ns.ip('addr', 'add', '10.9.9.9/24', 'dev', 'twill.1');
  const fixed = ensureDevice(h, d.device!);
  assert.equal(fixed.recreated, false);
  assert.ok(fixed.changes.includes('mtu') && fixed.changes.includes('address'));
  assert.equal(ipJson<Record<string, any>>(ns.name, 'link', 'show', 'twill.1')[0]!['mtu'], 1450);

  ns.ip('link', 'set', 'twill.1', 'type', 'vxlan', 'learning');
  const rec = ensureDevice(h, d.device!);
  assert.equal(rec.recreated, true, 'learning cannot be changed in place: recreated');
  assert.equal(ipJson<Record<string, any>>(ns.name, '-d', 'link', 'show', 'twill.1')[0]!['linkinfo']['info_data']['learning'], false);
});

test('reconciler programs exactly three entries per peer, sweeps only its own orphans', { skip }, async () => {
  // Orphans from an "earlier run": a route with twill's protocol and an FDB/neighbour entry on
  // the device. A foreign route must survive.
  ensureDevice(h, desired([]).device!);
  ns.ip('route', 'add', '10.244.99.0/24', 'via', '10.244.99.0', 'dev', 'twill.1', 'onlink', 'proto', '113');
  ns.ip('neigh', 'add', '10.244.99.0', 'lladdr', '0e:00:00:00:99:99', 'dev', 'twill.1', 'nud', 'permanent');
  ns.exec('bridge', 'fdb', 'add', '0e:00:00:00:99:99', 'dev', 'twill.1', 'dst', '192.0.2.99', 'self', 'permanent');
  ns.ip('route', 'add', '10.250.0.0/24', 'via', '192.0.2.50', 'dev', 'ul0', 'proto', 'static');

  const r = new Reconciler(h, quietLog, { resyncIntervalMs: 60_000 }, kernelVxlanDriver());
  const done = runToConvergence(r);
  r.setDesired(desired([peerA, peerB]));
  await done;

  const rs = routes();
  assert.deepEqual(rs.map((x) => x.dst).sort(), ['10.244.2.0/24', '10.244.3.0/24']);
  for (const x of rs) {
    assert.equal(x.dev, 'twill.1');
    assert.equal(x.gateway, x.dst.replace('/24', ''));
    assert.ok(x.flags.includes('onlink'));
  }
  const ns_ = neighs();
  assert.deepEqual(ns_.map((n) => `${n.dst}=${n.lladdr}`).sort(), ['10.244.2.0=0e:00:00:00:02:02', '10.244.3.0=0e:00:00:00:03:03']);
  assert.ok(ns_.every((n) => n.state.includes('PERMANENT')));
  const f = fdb();
  assert.deepEqual(f.map((e) => `${e.mac}>${e.dst}`).sort(), ['0e:00:00:00:02:02>192.0.2.2', '0e:00:00:00:03:03>192.0.2.3']);
  assert.ok(f.every((e) => e.state === 'permanent' && e.flags?.includes('self')));
  assert.equal(ipJson(ns.name, 'route', 'show', '10.250.0.0/24').length, 1, 'foreign route untouched');
  assert.deepEqual(r.counts(), { route: 2, neigh: 2, fdb: 2 });
  r.stop();
});

test('peer added, changed and removed converge incrementally', { skip }, async () => {
  const r = new Reconciler(h, quietLog, { resyncIntervalMs: 60_000 }, kernelVxlanDriver());
  let done = runToConvergence(r);
  r.setDesired(desired([peerA, peerB]));
  await done;

  done = runToConvergence(r);
  const movedB: Lease = { ...peerB, publicIp: parseIp4('192.0.2.33'), backendData: { vni: 1, vtepMac: '0e:00:00:00:33:33' } };
  r.setDesired(desired([peerA, movedB, peerC]));
  await done;
  assert.deepEqual(fdb().map((e) => `${e.mac}>${e.dst}`).sort(), [
    '0e:00:00:00:02:02>192.0.2.2', '0e:00:00:00:04:04>192.0.2.4', '0e:00:00:00:33:33>192.0.2.33',
  ], 'old MAC of the moved peer is gone');
  assert.deepEqual(neighs().map((n) => `${n.dst}=${n.lladdr}`).sort(), [
    '10.244.2.0=0e:00:00:00:02:02', '10.244.3.0=0e:00:00:00:33:33', '10.244.4.0=0e:00:00:00:04:04',
  ]);

  done = runToConvergence(r);
  r.setDesired(desired([peerC]));
  await done;
  assert.deepEqual(routes().map((x) => x.dst), ['10.244.4.0/24']);
  assert.equal(neighs().length, 1);
  assert.equal(fdb().length, 1);
  r.stop();
});

test('a resync (its dump read entry by entry) repairs a changed FDB entry and removes orphans, one with several remotes', { skip }, async () => {
  const r = new Reconciler(h, quietLog, { resyncIntervalMs: 60_000 }, kernelVxlanDriver());
  let done = runToConvergence(r);
  r.setDesired(desired([peerA, peerB]));
  await done;
  // Changed behind the reconciler's back (it gets no events here): only the resync's dump shows it.
  ns.exec('bridge', 'fdb', 'replace', '0e:00:00:00:02:02', 'dev', 'twill.1', 'dst', '192.0.2.77', 'self', 'permanent');
  ns.exec('bridge', 'fdb', 'add', '0e:00:00:00:98:98', 'dev', 'twill.1', 'dst', '192.0.2.98', 'self', 'permanent');
  // Only the all-zero (and multicast) MAC takes several remotes: one dump entry per remote.
  ns.exec('bridge', 'fdb', 'append', '00:00:00:00:00:00', 'dev', 'twill.1', 'dst', '192.0.2.61', 'self', 'permanent');
  ns.exec('bridge', 'fdb', 'append', '00:00:00:00:00:00', 'dev', 'twill.1', 'dst', '192.0.2.62', 'self', 'permanent');
  assert.equal(fdb().length, 5, JSON.stringify(fdb()));
  done = runToConvergence(r);
  r.requestResync('test');
  await done;
  assert.deepEqual(fdb().map((e) => `${e.mac}>${e.dst}`).sort(), ['0e:00:00:00:02:02>192.0.2.2', '0e:00:00:00:03:03>192.0.2.3']);
  assert.deepEqual(r.counts(), { route: 2, neigh: 2, fdb: 2 });
  r.stop();
});

test('before our lease is held peers are programmed and the device addresses left alone; then the address comes without a resync', { skip }, async () => {
  const old = h.getLink('twill.1');
  if (old) h.deleteLink(old);
  const events = new NetlinkEventSocket(ns.path);
  const r = new Reconciler(h, quietLog, { resyncIntervalMs: 60_000 }, kernelVxlanDriver());
  events.on('event', (e) => r.onEvent(e));
  const seen: string[] = [];
  r.on('resync', ({ reason }) => seen.push(`resync:${reason}`));
  r.on('drift', ({ kind }) => seen.push(`drift:${kind}`));
  const addrs = () => (ipJson<Record<string, any>>(ns.name, '-4', 'addr', 'show', 'dev', 'twill.1')[0]?.['addr_info'] ?? []).map((a: any) => `${a.local}/${a.prefixlen}`);

  const pending = computeDesired(vxlanBackend, { config, own, ownHeld: false, peers: [peerA, peerB], underlay: { index: underlayIndex, ip: '192.0.2.1', mtu: 1500 } }).desired;
  assert.equal(pending.device!.address, undefined);
  let done = runToConvergence(r);
  r.setDesired(pending);
  await done;
  assert.deepEqual(routes().map((x) => x.dst).sort(), ['10.244.2.0/24', '10.244.3.0/24']);
  assert.equal(neighs().length, 2);
  assert.equal(fdb().length, 2);
  assert.deepEqual(addrs(), [], 'no address for a subnet not yet held');
  assert.deepEqual(seen, ['resync:start']);

  // A restart finds last run's address in place: left alone until the lease is held again.
  ns.ip('addr', 'add', '10.244.1.0/32', 'dev', 'twill.1');
  done = runToConvergence(r);
  const smaller: VxlanDeviceSpec = { ...pending.device!, mtu: 1450 };
  r.setDesired({ ...pending, device: smaller });
  await done;
  assert.deepEqual(addrs(), ['10.244.1.0/32']);
  // Removing a device's last address flushes its routes without a word: the address event
  // makes the reconciler dump and rewrite them.
  seen.length = 0;
  ns.ip('addr', 'del', '10.244.1.0/32', 'dev', 'twill.1');
  await waitFor(() => routes().length === 2 && seen.includes('resync:address removed'), 2000, 'routes back after the address flush');
  assert.deepEqual(addrs(), []);

  // Held: the same peer entries (the same maps) and the address. No dump of every entry for
  // it, and not counted as drift: it was asked for.
  seen.length = 0;
  done = runToConvergence(r);
  const held: VxlanDeviceSpec = { ...pending.device!, address: '10.244.1.0' };
  r.setDesired({ ...pending, device: held });
  await done;
  assert.deepEqual(addrs(), ['10.244.1.0/32']);
  assert.deepEqual(seen, [], 'no resync, no drift');
  assert.equal(routes().length, 2);
  r.stop();
  events.close();
});

test('drift: deleted route, neighbour, FDB entry, address, device and changed MTU are repaired', { skip }, async () => {
  const events = new NetlinkEventSocket(ns.path);
  const r = new Reconciler(h, quietLog, { resyncIntervalMs: 60_000 }, kernelVxlanDriver());
  events.on('event', (e) => r.onEvent(e));
  events.on('overflow', () => r.requestResync('overflow'));
  let repaired = 0;
  r.on('drift', () => repaired++);
  const done = runToConvergence(r);
  r.setDesired(desired([peerA, peerB]));
  await done;

  const allThere = () =>
    routes().length === 2 && neighs().length === 2 && fdb().length === 2 &&
    ipJson<Record<string, any>>(ns.name, 'link', 'show', 'twill.1')[0]?.['mtu'] === 1450 &&
    ipJson<Record<string, any>>(ns.name, '-4', 'addr', 'show', 'dev', 'twill.1')[0]?.['addr_info']?.length === 1;

  const cases: Array<[string, () => void]> = [
    ['route', () => ns.ip('route', 'del', '10.244.2.0/24')],
    ['neighbour', () => ns.ip('neigh', 'del', '10.244.3.0', 'dev', 'twill.1')],
    ['fdb', () => ns.exec('bridge', 'fdb', 'del', '0e:00:00:00:02:02', 'dev', 'twill.1', 'dst', '192.0.2.2')],
    ['address', () => ns.ip('addr', 'del', '10.244.1.0/32', 'dev', 'twill.1')],
    ['mtu', () => ns.ip('link', 'set', 'twill.1', 'mtu', '1400')],
    ['device down', () => ns.ip('link', 'set', 'twill.1', 'down')],
    ['device', () => ns.ip('link', 'del', 'twill.1')],
  ];
  for (const [what, breakIt] of cases) {
    breakIt();
    assert.equal(allThere(), false, `${what} was broken`);
    const ms = await waitFor(allThere, 1000, `${what} repaired`);
    assert.ok(ms < 1000, `${what} repaired in ${ms.toFixed(1)} ms`);
  }
  assert.ok(repaired >= cases.length, `drift counted (${repaired})`);
  r.stop();
  events.close();
});

test('MTU follows the underlay', { skip }, async () => {
  const r = new Reconciler(h, quietLog, { resyncIntervalMs: 60_000 }, kernelVxlanDriver());
  const done = runToConvergence(r);
  r.setDesired(desired([peerA], 1400));
  await done;
  assert.equal(ipJson<Record<string, any>>(ns.name, 'link', 'show', 'twill.1')[0]!['mtu'], 1350);
  r.stop();
});
