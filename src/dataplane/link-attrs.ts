// What every twill device shares whatever its kind (vxlan, tap, bridge): MTU, MAC, up, and exactly
// <subnet>.0/32 as its address once our lease is held. Removing a device's last IPv4 address
// flushes every route on it, silently: ours is added before stale ones are removed.
import type { NetlinkHandle } from '../netlink/handle';
import { req } from '../netlink/handle';
import type { LinkState } from '../netlink/types';

export interface LinkAttrsSpec {
  mtu: number;
  /** undefined: a device without a MAC (WireGuard's TUN). */
  mac?: string;
  /** undefined: the addresses are left alone (our lease is not held yet). */
  address: string | undefined;
}

/** What every device backend reports (kernel VXLAN, userspace TAP). */
export interface DeviceEnsured {
  index: number;
  /** What had to change; empty when the device was already as desired. */
  changes: string[];
  /**
   * Entries on the device may be gone: it was (re)created, or it was down (IPv4 flushes a
   * device's routes and neighbours when it goes down). MTU, MAC and address changes keep them.
   */
  entriesLost: boolean;
}

export interface DeviceResult extends DeviceEnsured {
  recreated: boolean;
}

/** What convergeLinkAttrs changed, and whether the device had been down. */
export interface LinkAttrsResult {
  changes: string[];
  broughtUp: boolean;
}

/**
 * The attributes every twill device shares whatever its kind (vxlan or tap): MTU, MAC, up,
 * and exactly <subnet>.0/32 as its address (left alone while the spec has none). Returns what
 * had to change; throws on failure.
 */
export function convergeLinkAttrs(h: NetlinkHandle, link: LinkState, spec: LinkAttrsSpec): LinkAttrsResult {
  const changes: string[] = [];
  const set: { mtu?: number; mac?: string; up?: boolean } = {};
  if (link.mtu !== spec.mtu) set.mtu = spec.mtu;
  if (spec.mac !== undefined && link.mac !== spec.mac) set.mac = spec.mac;
  if (!link.up) set.up = true;
  if (Object.keys(set).length > 0) {
    h.setLink(link, set);
    for (const k of Object.keys(set)) changes.push(k);
  }
  const broughtUp = set.up === true;
  if (spec.address === undefined) return { changes, broughtUp };

  let haveAddr = false;
  const stale: Array<{ ip: string; prefixLen: number }> = [];
  for (const a of h.listAddrs(link.index)) {
    if (a.ip === spec.address && a.prefixLen === 32) haveAddr = true;
    else stale.push(a);
  }
  // Ours first: removing a device's last address would flush every route on it.
  const reqs = haveAddr ? [] : [req.addrReplace(link.index, spec.address, 32)];
  for (const a of stale) reqs.push(req.addrDelete(link.index, a.ip, a.prefixLen));
  if (reqs.length > 0) {
    const firstErr = h.apply(reqs, 'address').find((e) => e !== null);
    if (firstErr) throw firstErr;
    changes.push('address');
  }
  return { changes, broughtUp };
}

/** How one kind of device is checked and made, for ensureLink. */
export interface LinkMaker {
  /** Why an existing link under the name cannot be kept (wrong kind, fixed attributes), or undefined. */
  mismatch(link: LinkState): string | undefined;
  /** Creates the link under the spec's name. */
  create(): void;
  /** Whether entries on the device may be gone after this ensure (see DeviceEnsured). */
  entriesLost(recreated: boolean, broughtUp: boolean): boolean;
}

/**
 * The shape a device's ensure shares whatever its kind: a link that cannot be kept is deleted
 * and made again, a missing one is made, then the shared attributes are converged in place.
 */
export function ensureLink(h: NetlinkHandle, spec: LinkAttrsSpec & { name: string }, maker: LinkMaker): DeviceResult {
  const changes: string[] = [];
  let link = h.getLink(spec.name);
  const mismatch = link && maker.mismatch(link);
  if (link && mismatch) {
    h.deleteLink(link);
    changes.push(`recreate (${mismatch})`);
    link = undefined;
  }
  const recreated = !link;
  if (!link) {
    maker.create();
    link = h.getLink(spec.name);
    if (!link) throw new Error(`${spec.name} vanished right after creation`);
    changes.push('create');
  }
  const attrs = convergeLinkAttrs(h, link, spec);
  changes.push(...attrs.changes);
  return { index: link.index, changes, recreated, entriesLost: maker.entriesLost(recreated, attrs.broughtUp) };
}
