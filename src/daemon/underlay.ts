// Underlay facts: which interface carries the overlay, its IPv4 address and MTU. Chosen by
// src/daemon/underlay-select.ts (flannel's --iface / --iface-regex / --iface-can-reach
// precedence; by default the interface holding the default route). Read through netlink each
// time they may have changed (link/address events on that interface), so an MTU change follows.
import type { NetlinkHandle } from '../netlink/handle';
import { RT_TABLE_MAIN } from '../netlink/types';
import { TwillError } from '../base/twill-error';
import { selectUnderlay, type UnderlayChoice } from './underlay-select';

export interface Underlay {
  name: string;
  index: number;
  /** The address the VXLAN socket uses as source ("local"). */
  ip: string;
  /** What peers send to (PublicIP): --public-ip, else `ip`. */
  publicIp: string;
  mtu: number;
  /** Which rule chose it, for the log. */
  by: string;
}

export class UnderlayError extends TwillError<'ERR_UNDERLAY'> {
  constructor(message: string) {
    super('ERR_UNDERLAY', message);
    this.name = 'UnderlayError';
  }
}

export function resolveUnderlay(h: NetlinkHandle, opts: UnderlayChoice): Underlay {
  const links = h.listLinks();
  const sel = selectUnderlay(links, h.listAddrs(), h.listRoutes({ table: RT_TABLE_MAIN }), opts);
  if (!sel.ok) throw new UnderlayError(sel.why);
  const link = links.find((l) => l.index === sel.index)!;
  return { name: link.name, index: link.index, ip: sel.ip, publicIp: opts.publicIp ?? sel.ip, mtu: link.mtu, by: sel.by };
}

export function sameUnderlay(a: Underlay, b: Underlay): boolean {
  return a.name === b.name && a.index === b.index && a.ip === b.ip && a.publicIp === b.publicIp && a.mtu === b.mtu;
}
