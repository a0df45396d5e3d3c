// The trace's comparison logic: each hop judged against the daemon's own plan for the lease,
// and the probes telling an MTU blackhole on the underlay, a broken overlay and a dead peer apart.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseIp4, parsePrefix4 } from '../../src/ip/ipv4';
import type { Lease } from '../../src/subnet/lease';
import { parseNetworkConfig } from '../../src/config/network';
import { vxlanBackend } from '../../src/backends/vxlan/backend';
import { hostGwBackend } from '../../src/backends/host-gw/backend';
import type { Backend } from '../../src/backends/types';
import { renderTrace, traceHops, type TraceFacts } from '../../src/ctl/trace-plan';
import type { LinkState, RouteState } from '../../src/netlink/types';

const vx = (mac: string): { vni: number; vtepMac: string } => ({ vni: 1, vtepMac: mac });
const own: Lease = { subnet: parsePrefix4('10.244.1.0/24'), publicIp: parseIp4('172.30.0.11'), publicIpv6: null, backendType: 'vxlan', backendData: vx('0e:00:00:00:00:01') };
const peer: Lease = { subnet: parsePrefix4('10.244.3.0/24'), publicIp: parseIp4('172.30.0.13'), publicIpv6: null, backendType: 'vxlan', backendData: vx('0e:00:00:00:00:03') };
const config = parseNetworkConfig('{"Network":"10.244.0.0/16","SubnetLen":24,"Backend":{"Type":"vxlan","VNI":1}}');
const link = (name: string, index: number, mtu: number, up = true): LinkState => ({ index, name, kind: undefined, mtu, up, mac: undefined, master: undefined, vxlan: undefined });
const route = (dst: string, dstLen: number, gateway: string | undefined, oif: number, onlink: boolean): RouteState => ({ dst, dstLen, gateway, oif, protocol: 113, table: 254, scope: 0, type: 1, onlink });

function facts(over: Partial<TraceFacts> = {}): TraceFacts {
  return {
    src: '10.244.1.2',
    dst: '10.244.3.2',
    backend: vxlanBackend as Backend<unknown>,
    config,
    underlay: { index: 2, ip: '172.30.0.11', mtu: 1500 },
    own: { lease: own, name: 'h1' },
    peer: { lease: peer, name: 'h3' },
    route: route('10.244.3.0', 24, '10.244.3.0', 3, true),
    routeDev: link('twill.1', 3, 1450),
    expectedMtu: 1450,
    neigh: { ip: '10.244.3.0', mac: '0e:00:00:00:00:03', permanent: true },
    fdb: { mac: '0e:00:00:00:00:03', dst: '172.30.0.13' },
    underlayRoute: route('172.30.0.0', 24, undefined, 2, false),
    underlayDev: link('eth0', 2, 1500),
    probe: { small: 0.4, full: 0.5, fullBytes: 1450, underlaySmall: 0.1, underlayFull: 0.1, underlayFullBytes: 1500 },
    reverse: 'ok',
    ...over,
  };
}

const firstBroken = (f: TraceFacts): string | undefined => traceHops(f).find((h) => !h.ok)?.name;

test('a healthy path: every hop ✓', () => {
  const hops = traceHops(facts());
  assert.deepEqual(hops.map((h) => h.name), ['source', 'lease', 'route', 'device', 'neighbour', 'fdb', 'underlay', 'probe', 'full size', 'way back']);
  assert.ok(hops.every((h) => h.ok));
  assert.match(renderTrace(facts(), hops), /path OK/);
});

test('kernel entries that differ from the lease fail at their hop, saying what the lease wants', () => {
  assert.equal(firstBroken(facts({ route: null })), 'route');
  assert.equal(firstBroken(facts({ route: route('0.0.0.0', 0, '172.30.0.1', 2, false) })), 'route');
  assert.equal(firstBroken(facts({ routeDev: link('twill.1', 3, 1500) })), 'device');
  assert.equal(firstBroken(facts({ routeDev: link('twill.1', 3, 1450, false) })), 'device');
  const stale = traceHops(facts({ neigh: { ip: '10.244.3.0', mac: '0e:00:00:00:00:99', permanent: true } })).find((h) => !h.ok)!;
  assert.equal(stale.name, 'neighbour');
  assert.match(stale.detail, /the lease says lladdr 0e:00:00:00:00:03/);
  assert.equal(firstBroken(facts({ fdb: { mac: '0e:00:00:00:00:03', dst: '172.30.0.99' } })), 'fdb');
  assert.equal(firstBroken(facts({ fdb: null })), 'fdb');
  assert.equal(firstBroken(facts({ underlayDev: link('eth0', 2, 1500, false) })), 'underlay');
});

test('no lease for the destination, or one this host skips', () => {
  assert.equal(firstBroken(facts({ peer: null })), 'lease');
  const clash: Lease = { ...peer, backendData: own.backendData };
  assert.match(traceHops(facts({ peer: { lease: clash, name: 'h3' } })).find((h) => !h.ok)!.detail, /duplicate-vtep-mac/);
});

test('probes: MTU blackhole on the underlay, overlay-only MTU, broken overlay, dead peer', () => {
  const p = facts().probe!;
  const blackhole = traceHops(facts({ probe: { ...p, full: null, underlayFull: null } })).find((h) => !h.ok)!;
  assert.equal(blackhole.name, 'full size');
  assert.match(blackhole.detail, /underlay between 172\.30\.0\.11 and 172\.30\.0\.13 carries less than its MTU \(1500\)/);
  assert.match(traceHops(facts({ probe: { ...p, full: null } })).find((h) => !h.ok)!.detail, /check h3's overlay device MTU/);
  assert.match(traceHops(facts({ probe: { ...p, small: null, full: null } })).find((h) => !h.ok)!.detail, /the overlay is broken/);
  assert.match(traceHops(facts({ probe: { ...p, small: null, full: null, underlaySmall: null, underlayFull: null } })).find((h) => !h.ok)!.detail, /h3 \(172\.30\.0\.13\) is unreachable/);
});

test('the way back as the peer reports it', () => {
  assert.equal(firstBroken(facts({ reverse: 'mtu' })), 'way back');
  assert.equal(firstBroken(facts({ reverse: 'no report' })), undefined);
});

test('host-gw: the route via the peer’s PublicIP on the underlay is the path; an underlay MTU blackhole breaks it at full size', () => {
  const hg = (l: Lease): Lease => ({ ...l, backendType: 'host-gw', backendData: {} as never });
  const hostGw = (over: Partial<TraceFacts> = {}): TraceFacts =>
    facts({
      backend: hostGwBackend as Backend<unknown>,
      config: parseNetworkConfig('{"Network":"10.244.0.0/16","SubnetLen":24,"Backend":{"Type":"host-gw"}}'),
      own: { lease: hg(own), name: 'h1' },
      peer: { lease: hg(peer), name: 'h3' },
      route: route('10.244.3.0', 24, '172.30.0.13', 2, false),
      routeDev: link('eth0', 2, 1500),
      expectedMtu: 1500,
      neigh: null,
      fdb: null,
      probe: { small: 0.4, full: 0.5, fullBytes: 1500, underlaySmall: 0.1, underlayFull: 0.1, underlayFullBytes: 1500 },
      ...over,
    });
  const hops = traceHops(hostGw());
  assert.deepEqual(hops.map((h) => h.name), ['source', 'lease', 'route', 'device', 'underlay', 'probe', 'full size', 'way back']);
  assert.ok(hops.every((h) => h.ok), JSON.stringify(hops));
  assert.match(hops[1]!.detail, /leased by h3 \(172\.30\.0\.13\), host-gw$/);
  assert.equal(hops[2]!.detail, '10.244.3.0/24 via 172.30.0.13 dev eth0 proto 113');
  // The VXLAN-style route (via <subnet>.0 onlink) is not what a host-gw lease asks for.
  assert.equal(firstBroken(hostGw({ route: route('10.244.3.0', 24, '10.244.3.0', 3, true) })), 'route');
  const mtu = hostGw({ probe: { small: 0.4, full: null, fullBytes: 1500, underlaySmall: 0.1, underlayFull: null, underlayFullBytes: 1500 }, reverse: 'mtu' });
  assert.equal(firstBroken(mtu), 'full size');
  assert.match(traceHops(mtu).find((h) => h.name === 'full size')!.detail, /1500-byte DF probes lost while small ones pass, and 1500-byte DF datagrams over the underlay are lost too/);
});
