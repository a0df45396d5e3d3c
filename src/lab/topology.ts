// The lab's network, built through twill's own netlink seam (no `ip` commands):
//
//   underlay namespace <lab>-ul:  bridge br0 172.30.0.1/24, etcd listens here
//        |  veth u-<host>  <->  eth0 in <lab>-<host>: 172.30.0.<10+i>/24, default route via .1
//   host namespaces <lab>-h1..hN: each runs its own twilld, which picks eth0 by default route
//   outside namespace <lab>-out: eth0 172.30.0.250/24 on the same bridge, no other route: the
//        world beyond the cluster. It reaches the hosts' underlay addresses but not one pod, so
//        a pod reaches it only when its host masquerades (--ip-masq).
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

export function hostIp(i: number): string {
  return `${UNDERLAY_PREFIX}.${10 + i}`;
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

/** A host namespace wired to the underlay bridge; idempotent. */
export function buildHost(underlayNs: string, hostNs: string, index: number, mtu: number): { nsPath: string; ip: string } {
  const ip = hostIp(index);
  const p = attachToUnderlay(underlayNs, hostNs, ip, mtu, true);
  sysctlInNetns(p, 'net.ipv4.ip_forward', '1');
  return { nsPath: p, ip };
}

/** The outside namespace (see the note at the top); idempotent. */
export function buildOutside(underlayNs: string, outsideNs: string, mtu: number): string {
  return attachToUnderlay(underlayNs, outsideNs, OUTSIDE_IP, mtu, false);
}

/** A namespace with eth0 on the underlay bridge at `ip`; a default route via the bridge if asked. */
function attachToUnderlay(underlayNs: string, hostNs: string, ip: string, mtu: number, defaultRoute: boolean): string {
  const ulPath = `/run/netns/${underlayNs}`;
  const p = createNetns(hostNs);
  const ul = NetlinkHandle.open({ netns: ulPath });
  const h = NetlinkHandle.open({ netns: p });
  try {
    bringUpLo(h);
    const portName = `u-${hostNs.slice(-12)}`.slice(0, 15);
    let port = ul.getLink(portName);
    if (!port || !h.getLink('eth0')) {
      if (port) ul.deleteLink(port);
      const fd = fs.openSync(p, 'r');
      try {
        ul.createVeth({ name: portName, mtu, peerName: 'eth0', peerNetnsFd: fd });
      } finally {
        fs.closeSync(fd);
      }
      port = ul.getLink(portName)!;
    }
    const br = ul.getLink('br0')!;
    ul.setLink(port, { master: br.index, up: true, mtu });
    const eth0 = h.getLink('eth0')!;
    h.setLink(eth0, { up: true, mtu });
    h.do(req.addrReplace(eth0.index, ip, UNDERLAY_LEN));
    if (defaultRoute) h.do(req.routeReplace({ dst: '0.0.0.0', dstLen: 0, gateway: BRIDGE_IP, oif: eth0.index, protocol: 4 /* static */ }));
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
