// Property: the incremental path (one lease event re-plans only the peers it can affect)
// gives exactly the desired state a full recompute gives — tables, conflicts, programmed
// peers and paths — after every step of seeded random join/leave/change sequences full of
// conflicts: nested and equal subnets, our subnet, our PublicIP, shared PublicIPs, shared VTEP
// MACs (also ours), unreachable peers, bad JSON. The deltas handed out, applied to a copy,
// must give the same tables and programmed peers as well (that copy is what the kernel gets).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { planPeers, type PlanInput } from '../../src/backends/plan';
import { PlanIndex, type PlanDelta } from '../../src/backends/plan-index';
import { hostGwBackend } from '../../src/backends/host-gw/backend';
import { vxlanBackend } from '../../src/backends/vxlan/backend';
import type { Backend, Reach } from '../../src/backends/types';
import { parseNetworkConfig, type NetworkConfig } from '../../src/config/network';
import type { Tables } from '../../src/dataplane/model';
import { formatPrefix4, parseIp4, parsePrefix4 } from '../../src/ip/ipv4';
import { PeerState } from '../../src/daemon/peer-state';
import { decodeLease, subnetKey, type Lease } from '../../src/subnet/lease';
import { mulberry32 } from '../support/prng';

const STEPS = 400;
const SEEDS = [1, 2, 3, 4, 5, 6, 7, 8];

const pick = <T>(r: () => number, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;

const underlay = { index: 3, ip: '192.168.50.1', mtu: 1500 };
const OWN_MAC = '0e:00:00:00:00:01';
const macs = [OWN_MAC, '0e:00:00:00:00:02', '0e:00:00:00:00:03', '0e:00:00:00:00:04', '0e:00:00:00:00:05', '0e:00:00:00:00:06'];
// .1 is ours; 10.9.x is "not directly reachable" under DirectRouting.
const ips = ['192.168.50.1', '192.168.50.2', '192.168.50.3', '192.168.50.4', '10.9.0.5', '10.9.0.6', '192.168.50.7'];
const reach = (ip: number): Reach => ((ip >>> 24) === 10 ? { direct: false, why: 'through a router' } : { direct: true });

interface Case {
  name: string;
  backend: Backend<any>;
  config: NetworkConfig;
  own: Lease<any>;
}
const vx = (text: string): NetworkConfig => parseNetworkConfig(text);
const vxData = (mac: string): unknown => ({ vni: 1, vtepMac: mac });
const cases: Case[] = [
  { name: 'vxlan', backend: vxlanBackend, config: vx('{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan"}}'), own: lease('10.244.1.0/24', '192.168.50.1', vxData(OWN_MAC), 'vxlan') },
  { name: 'vxlan DirectRouting', backend: vxlanBackend, config: vx('{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan","DirectRouting":true}}'), own: lease('10.244.1.0/24', '192.168.50.1', vxData(OWN_MAC), 'vxlan') },
  { name: 'host-gw', backend: hostGwBackend, config: vx('{"Network":"10.244.0.0/16","Backend":{"Type":"host-gw"}}'), own: lease('10.244.1.0/24', '192.168.50.1', undefined, 'host-gw') },
];

function lease(subnet: string, ip: string, data: unknown, type: string): Lease<any> {
  return { subnet: parsePrefix4(subnet), publicIp: parseIp4(ip), publicIpv6: null, backendType: type, backendData: data };
}

/** Subnets that nest and collide: /24s, a /23 and /25s over them, our own /24 and a piece of it. */
const subnets = ['10.244.1.0/24', '10.244.1.128/25', '10.244.2.0/24', '10.244.3.0/24', '10.244.2.0/23', '10.244.2.0/25', '10.244.2.128/25', '10.244.4.0/24', '10.244.5.0/24', '10.244.0.0/22'];

function randomLease(r: () => number, c: Case): Lease<any> {
  return lease(pick(r, subnets), pick(r, ips), c.backend === hostGwBackend ? undefined : vxData(pick(r, macs)), c.backend.type);
}

const sorted = (t: Tables): Record<string, Array<[string, unknown]>> =>
  Object.fromEntries(Object.entries(t).map(([k, m]) => [k, [...(m as Map<string, unknown>)].sort(([a], [b]) => (a < b ? -1 : 1))]));

/** The programmed peers a full plan implies: every lease neither skipped nor our own. */
function programmedOf(leases: Array<Lease<any>>, conflicts: Array<{ lease: Lease<any> }>, own: Lease<any>): string[] {
  const skipped = new Set(conflicts.map((c) => c.lease));
  const isOwn = (l: Lease<any>): boolean => formatPrefix4(l.subnet) === formatPrefix4(own.subnet) && l.publicIp === own.publicIp;
  return leases.filter((l) => !skipped.has(l) && !isOwn(l)).map((l) => JSON.stringify(l)).sort();
}

/** A copy fed only by deltas: what the reconciler and the peer consumers see. */
class Mirror {
  tables: Record<string, Map<string, unknown>> = {};
  peers = new Map<string, string>();
  /** Skipped peers by subnet, with why (what the daemon's warnings follow). */
  skipped = new Map<string, string>();
  constructor(from: PlanIndex<any>) {
    for (const [k, m] of Object.entries(from.tables)) this.tables[k] = new Map(m as Map<string, unknown>);
    for (const l of from.programmed()) this.peers.set(formatPrefix4(l.subnet), JSON.stringify(l));
    for (const c of from.conflicts()) this.skipped.set(formatPrefix4(c.lease.subnet), c.reason);
  }
  apply(d: PlanDelta<any>): void {
    for (const e of d.entries) {
      // `was` is what the table held before (the reconciler's tracker shares the table).
      assert.deepEqual(e.was, this.tables[e.kind]!.get(e.key), `was of ${e.kind} ${e.key}`);
      if (e.entry === undefined) this.tables[e.kind]!.delete(e.key);
      else this.tables[e.kind]!.set(e.key, { ...e.entry });
    }
    for (const l of d.left) this.peers.delete(formatPrefix4(l.subnet));
    assert.equal(d.replaced.length, d.changed.length);
    d.replaced.forEach((old, i) => assert.equal(this.peers.get(formatPrefix4(old.subnet)), JSON.stringify(old), `replaced[${i}] is what was programmed`));
    for (const l of [...d.joined, ...d.changed]) this.peers.set(formatPrefix4(l.subnet), JSON.stringify(l));
    for (const l of d.unskipped) this.skipped.delete(formatPrefix4(l.subnet));
    for (const c of d.skipped) this.skipped.set(formatPrefix4(c.lease.subnet), c.reason);
  }
}

function assertSame(index: PlanIndex<any>, mirror: Mirror, byId: Map<string, Lease<any>>, c: Case, input: PlanInput<any>, where: string): void {
  const ids = [...byId.keys()].sort();
  const all = ids.map((id) => byId.get(id)!);
  const full = planPeers(c.backend, input, all);
  assert.deepEqual(sorted(index.tables), sorted(full.tables), `${where}: tables`);
  assert.deepEqual(sorted(mirror.tables as Tables), sorted(full.tables), `${where}: tables from deltas`);
  assert.deepEqual(index.conflicts(), full.conflicts, `${where}: conflicts`);
  assert.deepEqual([...index.paths].sort(), [...full.paths].sort(), `${where}: paths`);
  const reasons = new Map<string, number>();
  for (const x of full.conflicts) reasons.set(x.reason, (reasons.get(x.reason) ?? 0) + 1);
  assert.deepEqual([...index.reasons].sort(), [...reasons].sort(), `${where}: skipped by reason`);
  const want = programmedOf(all, full.conflicts, c.own);
  assert.deepEqual([...index.programmed()].map((l) => JSON.stringify(l)).sort(), want, `${where}: programmed peers`);
  assert.deepEqual([...mirror.peers.values()].sort(), want, `${where}: programmed peers from deltas`);
}

for (const c of cases) {
  test(`incremental plan equals a full plan after every random event (${c.name}, ${SEEDS.length} seeds × ${STEPS} steps)`, () => {
    const input: PlanInput<any> = { config: c.config, own: c.own, underlay, reach };
    for (const seed of SEEDS) {
      const r = mulberry32(seed);
      const byId = new Map<string, Lease<any>>();
      // Start from a few peers judged all at once, as the daemon's full recompute does.
      for (let i = 0; i < 4; i++) byId.set(`k${Math.floor(r() * 14)}`, randomLease(r, c));
      const index = PlanIndex.build(c.backend, input, byId);
      const mirror = new Mirror(index);
      assertSame(index, mirror, byId, c, input, `seed ${seed} start`);
      for (let step = 0; step < STEPS; step++) {
        const id = `k${Math.floor(r() * 14)}`;
        const leave = byId.has(id) && r() < 0.35;
        const next = leave ? null : randomLease(r, c);
        if (next) byId.set(id, next);
        else byId.delete(id);
        mirror.apply(index.set(id, next));
        assertSame(index, mirror, byId, c, input, `seed ${seed} step ${step} (${id} ${next ? 'set' : 'gone'})`);
        assert.equal(index.verify(c.backend, input), undefined, `seed ${seed} step ${step}: verify finds no difference`);
      }
    }
  });
}

test('verify reports how an index differs from a full build: a lost entry, a wrong count, a changed plan, another own lease', () => {
  const c = cases[0]!;
  const input: PlanInput<any> = { config: c.config, own: c.own, underlay, reach };
  const r = mulberry32(5);
  const byId = new Map<string, Lease<any>>();
  for (let i = 0; i < 8; i++) byId.set(`k${i}`, randomLease(r, c));
  const fresh = (): PlanIndex<any> => PlanIndex.build(c.backend, input, byId);
  assert.equal(fresh().verify(c.backend, input), undefined);
  const programmed = [...fresh().programmed()];
  assert.ok(programmed.length > 0, 'the seed programs some peers');

  const lost = fresh();
  const [kind, table] = Object.entries(lost.tables).find(([, t]) => t.size > 0)!;
  table.delete(table.keys().next().value!);
  assert.equal(lost.verify(c.backend, input), `${kind} table size`);

  const counted = fresh();
  counted.paths.set('bogus', 1);
  assert.equal(counted.verify(c.backend, input), 'paths');

  const changed = fresh();
  const entry = Object.values(changed.tables).find((t) => t.size > 0)!.values().next().value as unknown as Record<string, unknown>;
  const field = Object.keys(entry).find((k) => typeof entry[k] === 'string')!;
  entry[field] = `${String(entry[field])}-changed`;
  assert.match(changed.verify(c.backend, input) ?? '', /^plan of /);

  const moved: PlanInput<any> = { ...input, own: { ...c.own, subnet: programmed[0]!.subnet } };
  assert.match(fresh().verify(c.backend, moved) ?? '', /^(verdict on|paths|skip reasons|\w+ table size)/);
});

test('the daemon\'s peer state: raw etcd values, events one at a time, equal a full re-decode and plan (bad JSON, wrong lengths, our subnet, shared MACs); rebuilt from leases it keeps no text for, also under another own lease', () => {
  const c = cases[0]!;
  const prefix = '/coreos.com/network';
  const input: PlanInput<any> = { config: c.config, own: c.own, underlay, reach };
  const decode = (key: string, value: string): Lease<any> | null => {
    const res = decodeLease(key, value, { prefix, config: c.config, own: c.own, codec: vxlanBackend.codec });
    return res.ok ? res.lease : null;
  };
  const judge = { backend: c.backend, input, decode };
  // Another own lease: 10.244.2.0/24, where peers' values now overlap ours (and back).
  const own2 = lease('10.244.2.0/24', '192.168.50.1', vxData(OWN_MAC), 'vxlan');
  const decode2 = (key: string, value: string): Lease<any> | null => {
    const res = decodeLease(key, value, { prefix, config: c.config, own: own2, codec: vxlanBackend.codec });
    return res.ok ? res.lease : null;
  };
  const judge2 = { backend: c.backend, input: { ...input, own: own2 }, decode: decode2 };
  const same = (a: PlanIndex<any>, b: PlanIndex<any>, where: string): void => {
    assert.deepEqual(sorted(a.tables), sorted(b.tables), `${where}: tables`);
    assert.deepEqual(a.conflicts(), b.conflicts(), `${where}: conflicts`);
    assert.deepEqual([...a.programmed()].map((l) => JSON.stringify(l)).sort(), [...b.programmed()].map((l) => JSON.stringify(l)).sort(), `${where}: programmed`);
  };
  const keys = ['10.244.1.0/24', '10.244.1.0/25', '10.244.2.0/24', '10.244.3.0/24', '10.244.4.0/24', '10.244.5.0/24', '10.244.6.0/24', '10.245.0.0/24'].map((s) => subnetKey(prefix, parsePrefix4(s)));
  const value = (r: () => number): string => {
    const x = r();
    if (x < 0.08) return '{"PublicIP":';
    if (x < 0.12) return '{"PublicIP":"192.168.50.9","BackendType":"host-gw"}';
    if (x < 0.2) return JSON.stringify({ BackendType: 'vxlan', PublicIP: pick(r, ips), BackendData: { VNI: 1, VtepMAC: pick(r, macs) } }); // not canonical
    return `{"PublicIP":"${pick(r, ips)}","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"${pick(r, macs)}"}}`;
  };
  for (const seed of SEEDS) {
    const r = mulberry32(100 + seed);
    const state = new PeerState<any>();
    const raw = new Map<string, string>();
    for (let i = 0; i < 3; i++) raw.set(pick(r, keys), value(r));
    state.replaceAll(raw);
    let index = state.rebuild(judge);
    state.compact();
    let mirror = new Mirror(index);
    for (let step = 0; step < STEPS; step++) {
      const key = pick(r, keys);
      const v = raw.has(key) && r() < 0.35 ? undefined : value(r);
      if (v === undefined) raw.delete(key);
      else raw.set(key, v);
      if (r() < 0.3) state.compact(); // as the daemon does after a burst
      const d = state.apply(key, v);
      if (d) mirror.apply(d);
      assert.equal(state.verify(judge), undefined, `seed ${seed} step ${step}: verify finds no difference`);
      const fresh = new PeerState<any>();
      fresh.replaceAll(raw);
      const full = fresh.rebuild(judge);
      const where = `seed ${seed} step ${step}`;
      assert.deepEqual(sorted(index.tables), sorted(full.tables), `${where}: tables`);
      assert.deepEqual(sorted(mirror.tables as Tables), sorted(full.tables), `${where}: tables from deltas`);
      assert.deepEqual(index.conflicts(), full.conflicts(), `${where}: conflicts`);
      const want = [...full.programmed()].map((l) => JSON.stringify(l)).sort();
      assert.deepEqual([...index.programmed()].map((l) => JSON.stringify(l)).sort(), want, `${where}: programmed`);
      assert.deepEqual([...mirror.peers.values()].sort(), want, `${where}: programmed from deltas`);
      const skipped = full.conflicts().map((x) => [formatPrefix4(x.lease.subnet), x.reason]);
      assert.deepEqual([...mirror.skipped].sort(), skipped.sort(), `${where}: skipped peers from deltas`);
      if (r() < 0.1) {
        // A full recompute of this state (most values held only as leases), under another own
        // lease and back, equals one from the raw values.
        const fresh2 = new PeerState<any>();
        fresh2.replaceAll(raw);
        same(state.rebuild(judge2), fresh2.rebuild(judge2), `${where}: rebuilt under another own lease`);
        state.compact();
        index = state.rebuild(judge);
        same(index, full, `${where}: rebuilt under ours again`);
        mirror = new Mirror(index);
      }
    }
  }
});
