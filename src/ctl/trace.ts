// `twillctl trace <src> <dst>`: gathers the facts trace-plan.ts judges — the leases and health
// summaries from etcd, the source host's kernel answers over netlink (route lookup, device,
// neighbour, FDB, underlay route), and live probes over the overlay and the underlay. Runs on
// the source pod's host (its kernel is the one asked); elsewhere it says which host that is.
import { parseNetworkConfig } from '../config/network';
import { backendFor } from '../backends/registry';
import type { Backend } from '../backends/types';
import { formatIp4, formatPrefix4, ipInPrefix, parseIp4 } from '../ip/ipv4';
import { NetlinkHandle } from '../netlink/handle';
import { routeGet } from '../netlink/route-get';
import { NUD_PERMANENT, type RouteState } from '../netlink/types';
import { probeOnce } from '../probe/probe-once';
import { SMALL_PROBE_BYTES } from '../probe/prober';
import { decodeSummary, healthPrefix, type HealthSummary } from '../probe/summary';
import { overlayAddress } from '../probe/targets';
import { fullProbeSize } from '../probe/wire';
import type { EtcdAdmin } from '../subnet/etcd-admin';
import { decodeLease, subnetsPrefix, type Lease } from '../subnet/lease';
import type { TraceFacts } from './trace-plan';
import { TwillError } from '../base/twill-error';

export class TraceError extends TwillError<'ERR_TRACE_ARGS' | 'ERR_TRACE_HOST' | 'ERR_TRACE_CONFIG'> {
  constructor(code: 'ERR_TRACE_ARGS' | 'ERR_TRACE_HOST' | 'ERR_TRACE_CONFIG', message: string) {
    super(code, message);
    this.name = 'TraceError';
  }
}

export async function gatherTrace(admin: EtcdAdmin, prefix: string, src: string, dst: string, probePort: number): Promise<TraceFacts> {
  let srcIp: number;
  let dstIp: number;
  try {
    srcIp = parseIp4(src);
    dstIp = parseIp4(dst);
  } catch {
    throw new TraceError('ERR_TRACE_ARGS', `trace takes two pod IPv4 addresses (got "${src}" "${dst}")`);
  }
  const configText = await admin.get(`${prefix}/config`);
  if (configText === null) throw new TraceError('ERR_TRACE_CONFIG', `no network config at ${prefix}/config`);
  const config = parseNetworkConfig(configText);
  const backend: Backend<unknown> = backendFor(config).backend;
  const [rawLeases, rawHealth] = await Promise.all([admin.list(subnetsPrefix(prefix)), admin.list(healthPrefix(prefix))]);
  const leases: Lease[] = [];
  for (const [k, v] of rawLeases) {
    const r = decodeLease(k, v, { prefix, config, codec: backend.codec });
    if (r.ok) leases.push(r.lease);
  }
  const summaries = new Map<string, HealthSummary>();
  for (const v of rawHealth.values()) {
    try {
      const s = decodeSummary(v);
      summaries.set(s.subnet, s);
    } catch {
      // unreadable summaries are check's business
    }
  }
  const nameOf = (l: Lease): string => summaries.get(formatPrefix4(l.subnet))?.name ?? formatIp4(l.publicIp);
  const own = leases.find((l) => ipInPrefix(srcIp, l.subnet));
  if (!own) throw new TraceError('ERR_TRACE_ARGS', `no lease covers ${src}: it is not a pod address of this cluster`);
  const peer = leases.find((l) => l !== own && ipInPrefix(dstIp, l.subnet)) ?? null;

  const h = NetlinkHandle.open();
  try {
    const links = h.listLinks();
    const ownAddr = h.listAddrs().find((a) => a.ip === formatIp4(own.publicIp));
    if (!ownAddr) throw new TraceError('ERR_TRACE_HOST', `${src} lives on ${nameOf(own)} (${formatIp4(own.publicIp)}): run trace there, where its kernel can be asked`);
    const linkOf = (i: number | undefined) => links.find((l) => l.index === i) ?? null;
    const get = (ip: string): RouteState | null => {
      try {
        return routeGet(h, ip) ?? null;
      } catch {
        return null; // ENETUNREACH: no route, reported as such
      }
    };
    const underlayLink = linkOf(ownAddr.index);
    const expectedMtu = backend.podMtu(config, underlayLink?.mtu ?? 1500);
    const route = get(dst);
    const routeDev = linkOf(route?.oif);
    const n = route?.gateway && routeDev ? h.listNeighs(routeDev.index).find((x) => x.ip === route.gateway) : undefined;
    const fdbEntry = n?.mac && routeDev ? h.listFdb(routeDev.index).find((x) => x.mac === n.mac) : undefined;
    const facts: TraceFacts = {
      src,
      dst,
      backend,
      config,
      underlay: underlayLink ? { index: underlayLink.index, ip: formatIp4(own.publicIp), mtu: underlayLink.mtu } : null,
      own: { lease: own, name: nameOf(own) },
      peer: peer ? { lease: peer, name: nameOf(peer) } : null,
      route,
      routeDev,
      expectedMtu,
      neigh: n ? { ip: n.ip, mac: n.mac, permanent: (n.state & NUD_PERMANENT) !== 0 } : null,
      fdb: fdbEntry ? { mac: fdbEntry.mac, dst: fdbEntry.dst } : null,
      underlayRoute: null,
      underlayDev: null,
      probe: null,
      reverse: 'no report',
    };
    if (!peer) return facts;
    facts.underlayRoute = get(formatIp4(peer.publicIp));
    facts.underlayDev = linkOf(facts.underlayRoute?.oif);
    const underlayMtu = facts.underlayDev?.mtu ?? 1500;
    const over = { from: overlayAddress(own.subnet), to: overlayAddress(peer.subnet), port: probePort };
    const under = { from: own.publicIp, to: peer.publicIp, port: probePort };
    const [small, full, underlaySmall, underlayFull] = await Promise.all([
      probeOnce({ ...over, size: SMALL_PROBE_BYTES, full: false }),
      probeOnce({ ...over, size: fullProbeSize(expectedMtu), full: true }),
      probeOnce({ ...under, size: SMALL_PROBE_BYTES, full: false }),
      probeOnce({ ...under, size: fullProbeSize(underlayMtu), full: true }),
    ]);
    facts.probe = { small, full, fullBytes: expectedMtu, underlaySmall, underlayFull, underlayFullBytes: underlayMtu };
    const back = summaries.get(formatPrefix4(peer.subnet));
    const bad = back?.bad.find((b) => b.subnet === formatPrefix4(own.subnet));
    facts.reverse = !back ? 'no report' : bad ? bad.kind : back.unknown > 0 ? 'ok or not judged yet' : 'ok';
    return facts;
  } finally {
    h.close();
  }
}
