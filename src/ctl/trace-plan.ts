// `twillctl trace`: the path of a packet from one pod to another, hop by hop, as the kernel on
// the source host answers, each hop compared with what the leases say it should be. Pure: the
// facts are gathered in trace.ts, the verdicts are made here.
//
// The expected entries come from the same planner the daemon programs from (the active
// backend's per-peer plan, src/backends/plan.ts), so trace judges the kernel by the daemon's
// own rules, whatever the backend (VXLAN's three entries, host-gw's or DirectRouting's route). The two probes tell the failures apart:
// small answered + full-size lost over the overlay = MTU blackhole; if a full-size datagram
// over the underlay is lost as well, the underlay link itself carries less than its MTU says
// (the hop to blame); nothing answered over the overlay while the underlay answers = the
// overlay (VXLAN port filtered, a wrong entry on either host); nothing over the underlay = the
// peer host is cut off or its responder is down.
import { planPeers } from '../backends/plan';
import type { Backend, Reach, UnderlayFacts } from '../backends/types';
import type { NetworkConfig } from '../config/network';
import { formatIp4, formatPrefix4 } from '../ip/ipv4';
import type { Lease } from '../subnet/lease';
import type { LinkState, RouteState } from '../netlink/types';

export interface TraceProbe {
  /** Round trips in ms, null when unanswered. */
  small: number | null;
  full: number | null;
  fullBytes: number;
  underlaySmall: number | null;
  underlayFull: number | null;
  underlayFullBytes: number;
}

export interface TraceFacts {
  src: string;
  dst: string;
  /** The network config's backend and the config: the plan the daemon programs from. */
  backend: Backend<unknown>;
  config: NetworkConfig;
  /** This host's underlay (the interface holding its PublicIP); null when not found. */
  underlay: UnderlayFacts | null;
  own: { lease: Lease; name: string };
  /** The lease whose subnet holds dst (null: none). */
  peer: { lease: Lease; name: string } | null;
  route: RouteState | null;
  routeDev: LinkState | null;
  /** Expected MTU of the overlay device (underlay MTU − overhead). */
  expectedMtu: number;
  neigh: { ip: string; mac: string | undefined; permanent: boolean } | null;
  fdb: { mac: string; dst: string | undefined } | null;
  underlayRoute: RouteState | null;
  underlayDev: LinkState | null;
  probe: TraceProbe | null;
  /** How the peer's own summary rates the way back to us ('no report' when it has none). */
  reverse: string;
}

export interface Hop {
  ok: boolean;
  name: string;
  detail: string;
}

const ms = (v: number): string => `${v.toFixed(2)} ms`;

export function traceHops(f: TraceFacts): Hop[] {
  const hops: Hop[] = [];
  const own = f.own.lease;
  hops.push({ ok: true, name: 'source', detail: `${f.src} is in ${formatPrefix4(own.subnet)}, this host's lease (${f.own.name}, ${formatIp4(own.publicIp)})` });
  if (!f.peer) {
    hops.push({ ok: false, name: 'lease', detail: `no lease covers ${f.dst}: no host owns that address` });
    return hops;
  }
  const peer = f.peer.lease;
  const peerIp = formatIp4(peer.publicIp);
  const identity = f.backend.codec.describe(peer.backendData); // '' for host-gw: its lease has no BackendData
  hops.push({ ok: true, name: 'lease', detail: `${f.dst} is in ${formatPrefix4(peer.subnet)}, leased by ${f.peer.name} (${peerIp}), ${f.backend.type}${identity ? ` ${identity}` : ''}` });

  // Directly reachable (host-gw, DirectRouting) as the daemon decides it: the kernel's route to
  // the peer's PublicIP has no gateway and leaves by the underlay interface.
  const u0 = f.underlayRoute;
  const reach = (): Reach =>
    u0 && !u0.gateway && f.underlay && u0.oif === f.underlay.index
      ? { direct: true }
      : { direct: false, why: !u0 ? `no route to ${peerIp}` : u0.gateway ? `${peerIp} is reached via ${u0.gateway}` : `${peerIp} is reached by another interface` };
  const underlay = f.underlay ?? { index: 0, ip: formatIp4(own.publicIp), mtu: f.expectedMtu };
  const plan = planPeers(f.backend, { config: f.config, own, underlay, reach }, [peer]);
  if (plan.conflicts.length > 0) {
    const c = plan.conflicts[0]!;
    hops.push({ ok: false, name: 'lease', detail: `this host does not program that lease: ${c.reason} (${c.detail})` });
    return hops;
  }
  const want = [...(plan.tables.route?.values() ?? [])][0];
  if (!want) {
    hops.push({ ok: false, name: 'route', detail: `the ${f.backend.type} backend plans no route to ${formatPrefix4(peer.subnet)}` });
    return hops;
  }
  const wantNeigh = [...(plan.tables.neigh?.values() ?? [])][0];
  const wantFdb = [...(plan.tables.fdb?.values() ?? [])][0];
  const r = f.route;
  const dev = f.routeDev;
  const wantText = `${want.dst}/${want.dstLen} via ${want.gateway}${want.onlink ? ' onlink' : ''}`;
  if (!r) hops.push({ ok: false, name: 'route', detail: `the kernel has no route to ${f.dst}; the lease says ${wantText}` });
  else {
    const got = `${r.dst}/${r.dstLen}${r.gateway ? ` via ${r.gateway}` : ''}${dev ? ` dev ${dev.name}` : ''}${r.onlink ? ' onlink' : ''} proto ${r.protocol}`;
    const ok = r.dst === want.dst && r.dstLen === want.dstLen && r.gateway === want.gateway && (!want.onlink || r.onlink);
    hops.push({ ok, name: 'route', detail: ok ? got : `${got}, but the lease says ${wantText}` });
  }
  if (dev) {
    const ok = dev.up && dev.mtu === f.expectedMtu;
    const why = !dev.up ? ' — the device is DOWN' : dev.mtu !== f.expectedMtu ? ` — expected mtu ${f.expectedMtu} (underlay − overhead)` : '';
    hops.push({ ok, name: 'device', detail: `${dev.name} ${dev.up ? 'up' : 'down'}, mtu ${dev.mtu}${why}` });
  }
  if (wantNeigh) {
    const n = f.neigh;
    const ok = !!n && n.mac === wantNeigh.mac && n.permanent;
    hops.push({
      ok,
      name: 'neighbour',
      detail: !n ? `no entry for ${wantNeigh.ip}; the lease says lladdr ${wantNeigh.mac}` : `${n.ip} lladdr ${n.mac ?? '-'}${n.permanent ? ' PERMANENT' : ''}${ok ? '' : `, but the lease says lladdr ${wantNeigh.mac} PERMANENT`}`,
    });
  }
  if (wantFdb) {
    const e = f.fdb;
    const ok = !!e && e.dst === wantFdb.dst;
    hops.push({ ok, name: 'fdb', detail: !e ? `no entry for ${wantFdb.mac}; the lease says dst ${wantFdb.dst}` : `${e.mac} dst ${e.dst ?? '-'}${ok ? '' : `, but the lease says dst ${wantFdb.dst}`}` });
  }
  const u = f.underlayRoute;
  const ud = f.underlayDev;
  if (!u || !ud) hops.push({ ok: false, name: 'underlay', detail: `no route to ${peerIp} on this host` });
  else {
    const ok = ud.up && ud.mtu >= f.expectedMtu;
    hops.push({ ok, name: 'underlay', detail: `${peerIp} ${u.gateway ? `via ${u.gateway} ` : ''}dev ${ud.name} ${ud.up ? 'up' : 'DOWN'}, mtu ${ud.mtu}` });
  }
  const p = f.probe;
  if (p) {
    if (p.small !== null) hops.push({ ok: true, name: 'probe', detail: `small probe over the overlay answered in ${ms(p.small)}` });
    else if (p.underlaySmall !== null)
      hops.push({ ok: false, name: 'probe', detail: `nothing answered over the overlay, though ${peerIp} answers over the underlay (${ms(p.underlaySmall)}): the overlay is broken (VXLAN port filtered between the hosts, or a wrong entry on either)` });
    else hops.push({ ok: false, name: 'probe', detail: `nothing answered, over the overlay or the underlay: ${f.peer.name} (${peerIp}) is unreachable (host down, cut off, or twilld not running)` });
    if (p.small !== null || p.full !== null) {
      if (p.full !== null) hops.push({ ok: true, name: 'full size', detail: `${p.fullBytes}-byte DF probe answered in ${ms(p.full)}` });
      else if (p.underlayFull === null)
        hops.push({ ok: false, name: 'full size', detail: `${p.fullBytes}-byte DF probes lost while small ones pass, and ${p.underlayFullBytes}-byte DF datagrams over the underlay are lost too: the underlay between ${formatIp4(own.publicIp)} and ${peerIp} carries less than its MTU (${p.underlayFullBytes}); MTU blackhole` });
      else hops.push({ ok: false, name: 'full size', detail: `${p.fullBytes}-byte DF probes lost while small ones pass, though the underlay carries ${p.underlayFullBytes} bytes: check ${f.peer.name}'s overlay device MTU` });
    }
  }
  hops.push({ ok: f.reverse !== 'mtu' && f.reverse !== 'unreachable', name: 'way back', detail: `${f.peer.name} reports ${formatPrefix4(own.subnet)} as ${f.reverse}` });
  return hops;
}

export function renderTrace(f: Pick<TraceFacts, 'src' | 'dst' | 'own' | 'peer'>, hops: readonly Hop[]): string {
  const head = `trace ${f.src} → ${f.dst}  (${f.own.name} → ${f.peer?.name ?? '?'})`;
  const w = Math.max(...hops.map((h) => h.name.length));
  const lines = hops.map((h) => `  ${h.ok ? '✓' : '✗'} ${h.name.padEnd(w)}  ${h.detail}`);
  const broken = hops.find((h) => !h.ok);
  return [head, ...lines, broken ? `BROKEN at ${broken.name}` : 'path OK', ''].join('\n');
}
