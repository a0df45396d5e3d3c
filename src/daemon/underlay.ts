// Underlay facts: which interface carries VXLAN, its IPv4 address and MTU. Default: the
// interface holding the IPv4 default route (flannel's rule). Read through netlink each time
// they may have changed (link/address events on that interface), so an MTU change follows.
import type { NetlinkHandle } from '../netlink/handle';
import { RT_TABLE_MAIN } from '../netlink/types';
import { TwillError } from '../base/twill-error';

export interface Underlay {
  name: string;
  index: number;
  /** The address the VXLAN socket uses as source ("local"). */
  ip: string;
  /** What peers send to (PublicIP): --public-ip, else `ip`. */
  publicIp: string;
  mtu: number;
}

export class UnderlayError extends TwillError<'ERR_UNDERLAY'> {
  constructor(message: string) {
    super('ERR_UNDERLAY', message);
    this.name = 'UnderlayError';
  }
}

export function resolveUnderlay(h: NetlinkHandle, opts: { iface?: string; publicIp?: string }): Underlay {
  const links = h.listLinks();
  let link = opts.iface ? links.find((l) => l.name === opts.iface) : undefined;
  if (opts.iface && !link) throw new UnderlayError(`interface ${opts.iface} (--iface) does not exist`);
  const addrs = h.listAddrs();
  if (!link && opts.publicIp) {
    const holder = addrs.find((a) => a.ip === opts.publicIp);
    if (holder) link = links.find((l) => l.index === holder.index);
  }
  if (!link) {
    const def = h.listRoutes({ table: RT_TABLE_MAIN }).find((r) => r.dstLen === 0 && r.oif !== undefined);
    if (!def) throw new UnderlayError('no --iface given and no IPv4 default route to pick the underlay interface from');
    link = links.find((l) => l.index === def.oif);
    if (!link) throw new UnderlayError(`default route points at interface index ${def.oif}, which does not exist`);
  }
  const own = addrs.filter((a) => a.index === link!.index);
  if (own.length === 0) throw new UnderlayError(`interface ${link.name} has no IPv4 address`);
  const ip = opts.publicIp && own.some((a) => a.ip === opts.publicIp) ? opts.publicIp : own[0]!.ip;
  return { name: link.name, index: link.index, ip, publicIp: opts.publicIp ?? ip, mtu: link.mtu };
}

export function sameUnderlay(a: Underlay, b: Underlay): boolean {
  return a.name === b.name && a.index === b.index && a.ip === b.ip && a.publicIp === b.publicIp && a.mtu === b.mtu;
}
