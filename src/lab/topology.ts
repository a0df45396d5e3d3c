// The lab's network, built through twill's own netlink seam (no `ip` commands):
//
//   underlay namespace <lab>-ul:  bridge br0 172.30.0.1/24, etcd listens here
//        |  veth u-<host>  <->  eth0 in <lab>-<host>: 172.30.0.<10+i>/24, default route via .1
//   host namespaces <lab>-h1..hN: each runs its own twilld, which picks eth0 by default route
//   outside namespace <lab>-out: eth0 172.30.0.250/24 on the same bridge, no other route: the
//        world beyond the cluster. It reaches the hosts' underlay addresses but not one pod, so
//        a pod reaches it only when its host masquerades (--ip-masq).
//
// Optionally a second underlay segment B behind a router (some peers L2-adjacent, some not):
//   underlay namespace also holds bridge br1 (no address: segment B's switch)
//   router namespace <lab>-rt: eth0 172.30.0.254/24 on br0, eth1 172.31.0.1/24 on br1, forwarding
//   hosts on B: eth0 172.31.0.<10+i>/24 on br1, default route via 172.31.0.1
//   hosts on A (and the underlay namespace, for etcd's replies): 172.31.0.0/24 via 172.30.0.254
//
// Every address lives inside these namespaces; nothing touches the root namespace.
import * as fs from 'node:fs';
import { NetlinkHandle, req } from '../netlink/handle';
import { createNetns, inNetns } from '../netns/netns';

export const UNDERLAY_PREFIX = '172.30.0';
export const UNDERLAY_LEN = 24;
export const BRIDGE_IP = `${UNDERLAY_PREFIX}.1`;

/** The outside's address: on the underlay, outside the cluster network. */
export const OUTSIDE_IP = `${UNDERLAY_PREFIX}.250`;

export const SEGMENT_B_PREFIX = '172.31.0';
/** The router's address on segment A: the gateway A hosts use to reach segment B. */
export const ROUTER_A_IP = `${UNDERLAY_PREFIX}.254`;
/** The router's address on segment B: B hosts' default gateway. */
export const ROUTER_B_IP = `${SEGMENT_B_PREFIX}.1`;

export type Segment = 'a' | 'b';

export function hostIp(i: number, segment: Segment = 'a'): string {
  return `${segment === 'a' ? UNDERLAY_PREFIX : SEGMENT_B_PREFIX}.${10 + i}`;
}

/** Writes a sysctl inside a namespace (/proc/sys/net is per namespace of the opener). */
export function sysctlInNetns(nsPath: string, key: string, value: string): void {
  inNetns(nsPath, () => fs.writeFileSync(`/proc/sys/${key.replace(/\./g, '/')}`, value));
}

function bringUpLo(h: NetlinkHandle): void {
  const lo = h.getLink('lo');
  if (lo && !lo.up) h.setLink(lo, { up: true });
}

export function buildUnderlay(nsName: string, mtu: number): string {
  const p = createNetns(nsName);
  const h = NetlinkHandle.open({ netns: p });
  try {
    bringUpLo(h);
    let br = h.getLink('br0');
    if (!br) {
      h.createBridge('br0', mtu);
      br = h.getLink('br0')!;
    }
    h.setLink(br, { up: true, mtu });
    h.do(req.addrReplace(br.index, BRIDGE_IP, UNDERLAY_LEN));
  } finally {
    h.close();
  }
  return p;
}

/** A veth from the underlay namespace's bridge into `nsPath` (as `peerName`), up, at `mtu`; idempotent. */
function plugInto(ul: NetlinkHandle, h: NetlinkHandle, nsPath: string, portName: string, peerName: string, bridge: string, mtu: number): number {
  let port = ul.getLink(portName);
  if (!port || !h.getLink(peerName)) {
    if (port) ul.deleteLink(port);
    const fd = fs.openSync(nsPath, 'r');
    try {
      ul.createVeth({ name: portName, mtu, peerName, peerNetnsFd: fd });
    } finally {
      fs.closeSync(fd);
    }
    port = ul.getLink(portName)!;
  }
  ul.setLink(port, { master: ul.getLink(bridge)!.index, up: true, mtu });
  const link = h.getLink(peerName)!;
  h.setLink(link, { up: true, mtu });
  return link.index;
}

const SEGMENT_B: { dst: string; dstLen: number } = { dst: `${SEGMENT_B_PREFIX}.0`, dstLen: UNDERLAY_LEN };

/** Segment B (bridge br1) and the router namespace joining it to A; idempotent. */
export function buildRouter(underlayNs: string, routerNs: string, mtu: number): void {
  const ulPath = `/run/netns/${underlayNs}`;
  const p = createNetns(routerNs);
  const ul = NetlinkHandle.open({ netns: ulPath });
  const h = NetlinkHandle.open({ netns: p });
  try {
    bringUpLo(h);
    if (!ul.getLink('br1')) ul.createBridge('br1', mtu);
    ul.setLink(ul.getLink('br1')!, { up: true, mtu });
    const a = plugInto(ul, h, p, `r-a-${routerNs.slice(-9)}`.slice(0, 15), 'eth0', 'br0', mtu);
    const b = plugInto(ul, h, p, `r-b-${routerNs.slice(-9)}`.slice(0, 15), 'eth1', 'br1', mtu);
    h.do(req.addrReplace(a, ROUTER_A_IP, UNDERLAY_LEN));
    h.do(req.addrReplace(b, ROUTER_B_IP, UNDERLAY_LEN));
    // etcd (in the underlay namespace) answers B hosts through the router.
    ul.do(req.routeReplace({ ...SEGMENT_B, gateway: ROUTER_A_IP, oif: ul.getLink('br0')!.index, protocol: 4 /* static */ }));
  } finally {
    ul.close();
    h.close();
  }
  sysctlInNetns(p, 'net.ipv4.ip_forward', '1');
}

/**
 * A host namespace wired to the underlay bridge of its segment; idempotent. With a router
 * (`routed`), A hosts reach segment B through it; B hosts always do.
 */
export function buildHost(underlayNs: string, hostNs: string, index: number, mtu: number, segment: Segment = 'a', routed = false): { nsPath: string; ip: string } {
  const ulPath = `/run/netns/${underlayNs}`;
  const p = createNetns(hostNs);
  const ip = hostIp(index, segment);
  const ul = NetlinkHandle.open({ netns: ulPath });
  const h = NetlinkHandle.open({ netns: p });
  try {
    bringUpLo(h);
    const eth0 = plugInto(ul, h, p, `u-${hostNs.slice(-12)}`.slice(0, 15), 'eth0', segment === 'a' ? 'br0' : 'br1', mtu);
    h.do(req.addrReplace(eth0, ip, UNDERLAY_LEN));
    h.do(req.routeReplace({ dst: '0.0.0.0', dstLen: 0, gateway: segment === 'a' ? BRIDGE_IP : ROUTER_B_IP, oif: eth0, protocol: 4 /* static */ }));
    if (segment === 'a' && routed) h.do(req.routeReplace({ ...SEGMENT_B, gateway: ROUTER_A_IP, oif: eth0, protocol: 4 /* static */ }));
  } finally {
    ul.close();
    h.close();
  }
  sysctlInNetns(p, 'net.ipv4.ip_forward', '1');
  return { nsPath: p, ip };
}

/**
 * The outside namespace (see the note at the top): on segment A's bridge, no default route;
 * with a router it also knows the way to segment B's hosts (as every A host does). Idempotent.
 */
export function buildOutside(underlayNs: string, outsideNs: string, mtu: number, routed = false): string {
  const p = createNetns(outsideNs);
  const ul = NetlinkHandle.open({ netns: `/run/netns/${underlayNs}` });
  const h = NetlinkHandle.open({ netns: p });
  try {
    bringUpLo(h);
    const eth0 = plugInto(ul, h, p, `u-${outsideNs.slice(-12)}`.slice(0, 15), 'eth0', 'br0', mtu);
    h.do(req.addrReplace(eth0, OUTSIDE_IP, UNDERLAY_LEN));
    if (routed) h.do(req.routeReplace({ ...SEGMENT_B, gateway: ROUTER_A_IP, oif: eth0, protocol: 4 /* static */ }));
  } finally {
    ul.close();
    h.close();
  }
  return p;
}

export function setUnderlayMtu(hostNs: string, mtu: number): void {
  const h = NetlinkHandle.open({ netns: `/run/netns/${hostNs}` });
  try {
    const eth0 = h.getLink('eth0')!;
    h.setLink(eth0, { mtu });
  } finally {
    h.close();
  }
}
