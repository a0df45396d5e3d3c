// The userspace datapath against the kernel's own VXLAN as the oracle: two throwaway
// namespaces on a veth underlay, K with a kernel VXLAN device programmed by the reconciler
// (flannel's three entries), U with the vxlan backend's userspace driver (TAP + forwarder). If the kernel VTEP
// answers our pings, counts our frames as received and tcpdump decodes them as VXLAN, the wire
// format is right. `ip`, `tcpdump` and small node scripts are the independent observers.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { Netns, ipJson, deleteAll, isRoot, tcpTransfer, waitFor } from '../support/netns';
import { Teardown } from '../../src/lab/teardown';
import { NetlinkHandle } from '../../src/netlink/handle';
import { NetlinkEventSocket } from '../../src/netlink/events';
import { Reconciler } from '../../src/dataplane/reconciler';
import { computeDesired } from '../../src/backends/plan';
import { vxlanBackend } from '../../src/backends/vxlan/backend';
import { kernelVxlanDriver } from '../../src/backends/vxlan/drivers';
import type { VxlanData } from '../../src/backends/vxlan/codec';
import { parseNetworkConfig } from '../../src/config/network';
import { parseIp4, parsePrefix4 } from '../../src/ip/ipv4';
import type { Lease as AnyLease } from '../../src/subnet/lease';
import { DEVICE, type DesiredState } from '../../src/dataplane/model';
import { userspaceVxlanDriver, type UserspaceDriver } from '../../src/userspace/dataplane';
import { hasUserspaceNative, type NativeStats } from '../../src/userspace/native';
import { decodeVxlan, encapsulate } from '../../src/userspace/vxlan-codec';

type Lease = AnyLease<VxlanData>;
const stats = (r: Reconciler) => (r.driver as UserspaceDriver).stats();
const skip = !isRoot() ? 'needs root' : !hasUserspaceNative() ? 'native addon built without native/userspace.c' : false;
const quietLog = { info() {}, warn() {}, error() {}, debug() {} };
const config = parseNetworkConfig('{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan"}}');

function lease(subnet: string, publicIp: string, mac: string): Lease {
  return { subnet: parsePrefix4(subnet), publicIp: parseIp4(publicIp), publicIpv6: null, backendType: 'vxlan', backendData: { vni: 1, vtepMac: mac } };
}
const leaseK = lease('10.244.1.0/24', '192.0.2.1', '0e:00:00:00:01:01');
const leaseU = lease('10.244.2.0/24', '192.0.2.2', '0e:00:00:00:02:02');
const STRANGER = '192.0.2.99';

let K: Netns;
let U: Netns;
let hk: NetlinkHandle;
let hu: NetlinkHandle;
let rk: Reconciler;
let du: Reconciler;
let events: NetlinkEventSocket;
let desiredU: DesiredState;
let tmp: string;

function desiredFor(h: NetlinkHandle, own: Lease, peer: Lease, ip: string): DesiredState {
  return computeDesired(vxlanBackend, { config, own, ownHeld: true, peers: [peer], underlay: { index: h.getLink('ul0')!.index, ip, mtu: 1500 } }).desired;
}

function converged(r: { once(e: 'converged', f: () => void): unknown }): Promise<void> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('no convergence within 5 s')), 5000);
    r.once('converged', () => {
      clearTimeout(t);
      resolve();
    });
  });
}

function ping(ns: Netns, target: string, count = 3): boolean {
  return spawnSync('ip', ['netns', 'exec', ns.name, 'ping', '-n', '-q', '-c', String(count), '-i', '0.05', '-W', '1', target]).status === 0;
}

function linkStats(ns: Netns, dev: string): { rx: number; tx: number } {
  const [l] = ipJson<{ stats64: { rx: { packets: number }; tx: { packets: number } } }>(ns.name, '-s', 'link', 'show', dev);
  return { rx: l!.stats64.rx.packets, tx: l!.stats64.tx.packets };
}

const nodeEnv = (): NodeJS.ProcessEnv => {
  const env = { ...process.env };
  delete env['NODE_EXTRA_CA_CERTS'];
  return env;
};

before(async () => {
  if (skip) return;
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'twill-us-'));
  K = Netns.create('usk');
  U = Netns.create('usu');
  K.ip('link', 'add', 'ul0', 'type', 'veth', 'peer', 'name', 'ul0', 'netns', U.name);
  K.ip('addr', 'add', '192.0.2.1/24', 'dev', 'ul0');
  K.ip('addr', 'add', `${STRANGER}/24`, 'dev', 'ul0');
  K.ip('link', 'set', 'ul0', 'up');
  U.ip('addr', 'add', '192.0.2.2/24', 'dev', 'ul0');
  U.ip('link', 'set', 'ul0', 'up');
  hk = NetlinkHandle.open({ netns: K.path });
  hu = NetlinkHandle.open({ netns: U.path });
  rk = new Reconciler(hk, quietLog, { resyncIntervalMs: 60_000 }, kernelVxlanDriver());
  du = new Reconciler(hu, quietLog, { resyncIntervalMs: 60_000 }, userspaceVxlanDriver({ netns: U.path }));
  events = new NetlinkEventSocket(U.path);
  events.on('event', (e) => du.onEvent(e));
  events.on('overflow', () => du.requestResync('overflow'));
  desiredU = desiredFor(hu, leaseU, leaseK, '192.0.2.2');
  const done = Promise.all([converged(rk), converged(du)]);
  rk.setDesired(desiredFor(hk, leaseK, leaseU, '192.0.2.1'));
  du.setDesired(desiredU);
  await done;
});

after(async () => {
  if (skip) return;
  const t = new Teardown();
  await t.step('event socket', '-', () => events?.close());
  await t.step('userspace driver', '-', () => du?.stop());
  await t.step('kernel reconciler', '-', () => rk?.stop());
  await t.step('netlink handle K', '-', () => hk?.close());
  await t.step('netlink handle U', '-', () => hu?.close());
  await deleteAll(t, [K, U]);
  await t.step(tmp, `rm -rf ${tmp}`, () => fs.rmSync(tmp, { recursive: true, force: true }));
  t.finish('userspace-forwarder teardown');
});

test('the TAP looks like kernel mode: twill.1, VTEP MAC, MTU underlay-50, <subnet>.0/32, up, same route and neighbour', { skip }, () => {
  const [link] = ipJson<Record<string, any>>(U.name, '-d', 'link', 'show', 'twill.1');
  assert.equal(link!['linkinfo']['info_kind'], 'tun');
  assert.equal(link!['linkinfo']['info_data']['type'], 'tap');
  assert.equal(link!['mtu'], 1450);
  assert.equal(link!['address'], leaseU.backendData.vtepMac);
  assert.ok((link!['flags'] as string[]).includes('UP'));
  const addrs = ipJson<Record<string, any>>(U.name, '-4', 'addr', 'show', 'dev', 'twill.1')[0]!['addr_info'];
  assert.deepEqual(addrs.map((a: any) => `${a.local}/${a.prefixlen}`), ['10.244.2.0/32']);
  const routes = ipJson<{ dst: string; gateway: string; dev: string; flags: string[] }>(U.name, 'route', 'show', 'proto', '113');
  assert.deepEqual(routes.map((r) => `${r.dst} via ${r.gateway} dev ${r.dev} ${r.flags.join(',')}`), ['10.244.1.0/24 via 10.244.1.0 dev twill.1 onlink']);
  const neighs = ipJson<{ dst: string; lladdr: string; state: string[] }>(U.name, 'neigh', 'show', 'dev', 'twill.1');
  assert.deepEqual(neighs.map((n) => `${n.dst} ${n.lladdr} ${n.state.join(',')}`), ['10.244.1.0 0e:00:00:00:01:01 PERMANENT']);
  assert.deepEqual(du.counts(), { route: 1, neigh: 1, fdb: 1 });
  assert.equal(du.converged, true);
});

test('pings cross both ways; the kernel VTEP counts our frames as received; tcpdump decodes VXLAN vni 1', { skip }, async () => {
  const dump = spawn('ip', ['netns', 'exec', K.name, 'tcpdump', '-l', '-n', '-v', '-T', 'vxlan', '-c', '2', '-i', 'ul0', 'udp and src host 192.0.2.2 and dst port 8472'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  dump.stdout.on('data', (d) => (out += d));
  dump.stderr.on('data', (d) => (err += d));
  await waitFor(() => err.includes('listening on'), 5000, 'tcpdump listening', 20);
  const k0 = linkStats(K, 'twill.1');
  const u0 = stats(du)!;
  assert.ok(ping(U, '10.244.1.0', 5), 'userspace host -> kernel host');
  assert.ok(ping(K, '10.244.2.0', 5), 'kernel host -> userspace host');
  const k1 = linkStats(K, 'twill.1');
  const u1 = stats(du)!;
  assert.ok(k1.rx - k0.rx >= 10, `kernel VXLAN device received ${k1.rx - k0.rx} frames from us (5 requests + 5 replies)`);
  assert.ok(u1.txFrames - u0.txFrames >= 10 && u1.rxFrames - u0.rxFrames >= 10, 'forwarder counted both directions');
  await new Promise<void>((resolve) => (dump.exitCode !== null ? resolve() : dump.on('exit', () => resolve())));
  assert.match(out, /VXLAN, flags \[I\] \(0x08\), vni 1\b/, out);
  assert.match(out, /10\.244\.2\.0 > 10\.244\.1\.0: ICMP echo/, out);
});


test('TCP: 48 MB each way arrive intact (software TSO on send, partial checksums and superframes on receive)', { skip }, async () => {
  const before = stats(du)!;
  const a = await tcpTransfer(U.name, K.name, '10.244.1.0', 48 << 20);
  assert.match(a.sent, /^50331648:[0-9a-f]{64}$/);
  assert.equal(a.got, a.sent, 'userspace -> kernel: same bytes');
  const b = await tcpTransfer(K.name, U.name, '10.244.2.0', 48 << 20);
  assert.equal(b.got, b.sent, 'kernel -> userspace: same bytes');
  const s = stats(du)!;
  assert.ok(s.txGsoFrames > before.txGsoFrames, 'superframes from the TAP were segmented');
  assert.ok(s.txFrames - before.txFrames > (48 << 20) / 1500, 'sent as MTU-sized datagrams');
  assert.equal(s.drops.tx['bad-offload'], 0);
});

/** Sends datagrams from inside K: [sourceIp, hex payload][] */
function sendDatagrams(list: Array<[string, string]>): void {
  const file = path.join(tmp, `dgrams-${Math.random().toString(36).slice(2)}.json`);
  fs.writeFileSync(file, JSON.stringify(list));
  const script = `const d=require('dgram'),l=require(${JSON.stringify(file)});const socks={};let left=l.length;` +
    `const done=()=>{if(--left===0){for(const s of Object.values(socks))s.close()}};` +
    `for(const [src,hex] of l){const s=socks[src]??=(()=>{const x=d.createSocket('udp4');x.bind(0,src);return x})();` +
    `s.send(Buffer.from(hex,'hex'),8472,'192.0.2.2',done)}`;
  const r = spawnSync('ip', ['netns', 'exec', K.name, process.execPath, '-e', script], { env: nodeEnv(), encoding: 'utf8', timeout: 20_000 });
  assert.equal(r.status, 0, r.stderr);
}

function dropDelta(a: NativeStats, b: NativeStats): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(b.drops.rx)) if (v - (a.drops.rx as Record<string, number>)[k]! !== 0) out[k] = v - (a.drops.rx as Record<string, number>)[k]!;
  return out;
}

test('hostile datagrams are dropped and counted by reason; forwarding goes on', { skip }, async () => {
  const frameFrom = (srcMac: string) => Buffer.concat([Buffer.from('0e0000000202', 'hex'), Buffer.from(srcMac.replace(/:/g, ''), 'hex'), Buffer.from('0800', 'hex'), randomBytes(46)]);
  const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
  const list: Array<[string, string]> = [
    ['192.0.2.1', ''],
    ['192.0.2.1', 'deadbeef'],
    ['192.0.2.1', '0c000000000001' + '00' + hex(frameFrom('0e:00:00:00:01:01'))],
    ['192.0.2.1', '08000000000001' + '01' + hex(frameFrom('0e:00:00:00:01:01'))],
    ['192.0.2.1', hex(encapsulate(2, frameFrom('0e:00:00:00:01:01')))],
    ['192.0.2.1', hex(encapsulate(1, randomBytes(13)))],
    ['192.0.2.1', hex(encapsulate(1, frameFrom(leaseU.backendData.vtepMac)))],
    [STRANGER, hex(encapsulate(1, frameFrom('0e:00:00:00:01:01')))],
    [STRANGER, hex(encapsulate(1, frameFrom('0e:00:00:00:01:01')))],
  ];
  const want: Record<string, number> = { short: 2, 'bad-flags': 2, 'wrong-vni': 1, 'runt-frame': 1, 'own-mac': 1, 'unknown-peer': 2 };
  // Plus noise from a known peer, classified by the TS codec (the native check is proven equal to it).
  let accepted = 0;
  for (let i = 0; i < 3000; i++) {
    const d = randomBytes(i % 5 === 0 ? i % 30 : 1 + (i % 1400));
    if (i % 3 === 0) d.set([0x08, 0, 0, 0, 0, 0, 1, 0].slice(0, Math.min(8, d.length)));
    const r = decodeVxlan(d, 1);
    if (!r.ok) want[r.reason] = (want[r.reason] ?? 0) + 1;
    else if (Buffer.from(r.frame.subarray(6, 12)).equals(Buffer.from('0e0000000202', 'hex'))) want['own-mac'] = (want['own-mac'] ?? 0) + 1;
    else accepted++;
    list.push(['192.0.2.1', hex(d)]);
  }
  const before = stats(du)!;
  sendDatagrams(list);
  const total = Object.values(want).reduce((a, b) => a + b, 0) + accepted;
  await waitFor(() => {
    const s = stats(du)!;
    const dropped = Object.values(dropDelta(before, s)).reduce((a, b) => a + b, 0);
    return dropped + (s.rxFrames - before.rxFrames) >= total;
  }, 5000, 'every datagram accounted for', 20);
  const after = stats(du)!;
  assert.deepEqual(dropDelta(before, after), want);
  assert.equal(after.rxFrames - before.rxFrames, accepted, 'well-formed noise goes to the TAP (the kernel ignores frames not for it)');
  assert.ok(ping(U, '10.244.1.0', 2) && ping(K, '10.244.2.0', 2), 'still forwarding');
});

test('a frame for a MAC without a forwarding entry is dropped and counted, never flooded', { skip }, async () => {
  // A route and permanent neighbour whose MAC has no FDB entry (what a stale table would look like).
  const routes = new Map(desiredU.tables.route);
  const neighs = new Map(desiredU.tables.neigh);
  routes.set('10.244.9.0/24', { dst: '10.244.9.0', dstLen: 24, gateway: '10.244.9.0', oif: DEVICE, onlink: true });
  neighs.set('10.244.9.0', { ip: '10.244.9.0', mac: '0e:00:00:00:09:09' });
  const d: DesiredState = { ...desiredU, tables: { ...desiredU.tables, route: routes, neigh: neighs } };
  let done = converged(du);
  du.setDesired(d);
  await done;
  const k0 = linkStats(K, 'twill.1');
  const before = stats(du)!;
  assert.equal(ping(U, '10.244.9.0', 3), false);
  const after = stats(du)!;
  assert.equal(after.drops.tx['unknown-mac'] - before.drops.tx['unknown-mac'], 3);
  assert.equal(after.txFrames, before.txFrames, 'nothing sent');
  assert.equal(linkStats(K, 'twill.1').rx, k0.rx, 'nothing arrived at the kernel peer');
  done = converged(du);
  du.setDesired(desiredU);
  await done;
});

test('drift: route, neighbour, address, MTU, down and a deleted TAP are repaired; traffic resumes on the new TAP', { skip }, async () => {
  const allThere = () => {
    try {
      const l = ipJson<Record<string, any>>(U.name, 'link', 'show', 'twill.1')[0];
      return ipJson(U.name, 'route', 'show', 'proto', '113').length === 1 &&
        ipJson(U.name, 'neigh', 'show', 'dev', 'twill.1').length === 1 &&
        l?.['mtu'] === 1450 && (l?.['flags'] as string[]).includes('UP') &&
        ipJson<Record<string, any>>(U.name, '-4', 'addr', 'show', 'dev', 'twill.1')[0]?.['addr_info']?.length === 1;
    } catch {
      return false; // device missing
    }
  };
  let drift = 0;
  const onDrift = () => drift++;
  du.on('drift', onDrift);
  const cases: Array<[string, () => void]> = [
    ['route', () => U.ip('route', 'del', '10.244.1.0/24')],
    ['neighbour', () => U.ip('neigh', 'del', '10.244.1.0', 'dev', 'twill.1')],
    ['address', () => U.ip('addr', 'del', '10.244.2.0/32', 'dev', 'twill.1')],
    ['mtu', () => U.ip('link', 'set', 'twill.1', 'mtu', '1400')],
    ['device down', () => U.ip('link', 'set', 'twill.1', 'down')],
    ['device', () => U.ip('link', 'del', 'twill.1')],
  ];
  for (const [what, breakIt] of cases) {
    breakIt();
    assert.equal(allThere(), false, `${what} was broken`);
    const ms = await waitFor(allThere, 2000, `${what} repaired`);
    assert.ok(ms < 2000, `${what} repaired in ${ms.toFixed(1)} ms`);
  }
  du.off('drift', onDrift);
  assert.ok(drift >= cases.length, `drift counted (${drift})`);
  await waitFor(() => du.converged, 2000, 'converged again');
  assert.ok(ping(U, '10.244.1.0', 3) && ping(K, '10.244.2.0', 3), 'forwarding on the recreated TAP');
  assert.equal(stats(du)!.running, true);
});

test('one forwarder per TAP (EBUSY); after stop the TAP, route and neighbour stay and a new dataplane reattaches', { skip }, async () => {
  const h2 = NetlinkHandle.open({ netns: U.path });
  const second = new Reconciler(h2, quietLog, { resyncIntervalMs: 60_000 }, userspaceVxlanDriver({ netns: U.path }));
  const failed = new Promise<Error>((resolve) => second.once('failed', ({ error }) => resolve(error)));
  second.setDesired(desiredU);
  const err = (await failed) as Error & { errno?: number; code?: string };
  second.stop();
  h2.close();
  assert.equal(err.code, 'ERR_USERSPACE_FORWARDER');
  assert.equal(err.errno, os.constants.errno.EBUSY, err.message);
  assert.ok(ping(U, '10.244.1.0', 2), 'the first forwarder was not disturbed');

  du.stop();
  assert.equal(stats(du)!.running, false, 'threads stopped');
  assert.equal(ipJson(U.name, 'link', 'show', 'twill.1').length, 1, 'persistent TAP stays');
  assert.equal(ipJson(U.name, 'route', 'show', 'proto', '113').length, 1, 'route stays');
  assert.equal(ping(U, '10.244.1.0', 1), false, 'no forwarding while stopped');

  du = new Reconciler(hu, quietLog, { resyncIntervalMs: 60_000 }, userspaceVxlanDriver({ netns: U.path }));
  events.removeAllListeners('event');
  events.on('event', (e) => du.onEvent(e));
  const writes: string[] = [];
  du.on('applied', ({ kind, writes: w }) => {
    if ((kind === 'route' || kind === 'neigh') && w > 0) writes.push(kind);
  });
  const done = converged(du);
  du.setDesired(desiredU);
  await done;
  assert.deepEqual(writes, [], 'routes and neighbours were already right: nothing rewritten');
  assert.ok(ping(U, '10.244.1.0', 3) && ping(K, '10.244.2.0', 3), 'forwarding again after reattach');
});
