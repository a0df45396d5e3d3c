// Is a peer "directly reachable"? host-gw and VXLAN DirectRouting may send a pod packet
// straight to a peer's PublicIP only when that address is on the underlay's own link: the
// kernel's route to it has no gateway and leaves by the underlay interface. Through a router
// the peer's pod subnet is unknown to the router, so such a route would blackhole.
//
// Decided from the main table (longest prefix, as the kernel's FIB lookup does for the main
// table; policy rules are not consulted), leaving out twill's own routes (protocol 113: pod
// subnets, never a way to an underlay address). Pure: the daemon hands in the routes it read
// and re-decides when underlay routes or addresses change.
import { formatIp4, ipInPrefix, parseIp4, type Ip4 } from '../ip/ipv4';
import type { Reach } from './types';

export interface UnderlayRoute {
  dst: string;
  dstLen: number;
  gateway: string | undefined;
  oif: number | undefined;
  protocol: number;
  /** RTN_* type: only unicast (1) routes forward. */
  type: number;
}

const RTN_UNICAST = 1;

interface Compiled {
  ip: Ip4;
  len: number;
  r: UnderlayRoute;
}

/** Longest-prefix match over a snapshot of the main table, twill's own routes left out. */
export function routeLookup<R extends UnderlayRoute>(routes: readonly R[], ownProtocol: number): (ip: Ip4) => R | undefined {
  const table: Array<Compiled & { r: R }> = routes
    .filter((r) => r.protocol !== ownProtocol)
    .map((r) => ({ ip: parseIp4(r.dst), len: r.dstLen, r }))
    .sort((a, b) => b.len - a.len);
  return (ip) => table.find((c) => ipInPrefix(ip, { ip: c.ip, len: c.len }))?.r;
}

/** How each PublicIP is reached, over a snapshot of the main table. */
export function reachability(routes: readonly UnderlayRoute[], underlayIndex: number, ownProtocol: number): (ip: Ip4) => Reach {
  const lookup = routeLookup(routes, ownProtocol);
  return (ip) => {
    const r = lookup(ip);
    const where = formatIp4(ip);
    if (!r) return { direct: false, why: `no route to ${where}` };
    if (r.type !== RTN_UNICAST) return { direct: false, why: `the route to ${where} (${r.dst}/${r.dstLen}) is not unicast` };
    if (r.gateway !== undefined) return { direct: false, why: `${where} is reached through gateway ${r.gateway}` };
    if (r.oif !== underlayIndex) return { direct: false, why: `${where} is reached by interface index ${r.oif ?? 'none'}, not the underlay's` };
    return { direct: true };
  };
}

/** A stable text of what decides reachability: the routes that matter, to skip re-planning when they did not change. */
export function reachSignature(routes: readonly UnderlayRoute[], ownProtocol: number): string {
  return routes
    .filter((r) => r.protocol !== ownProtocol)
    .map((r) => `${r.dst}/${r.dstLen}>${r.gateway ?? ''}@${r.oif ?? ''}:${r.type}`)
    .sort()
    .join(',');
}
