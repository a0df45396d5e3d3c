// The VXLAN device twill.<VNI>: created with nolearning (entries are static, programmed from
// leases), the underlay interface as its lower device and the underlay IP as its local
// address, so the kernel's VXLAN socket sends from the right source. VNI, local IP, port,
// lower device and learning cannot be changed on a live vxlan link: if any differs the device
// is deleted and recreated (everything on it goes with it; the caller then resyncs entries).
// MTU, MAC and up/down are changed in place. The device carries exactly <subnet>.0/32 once
// our lease is held; before that (a cold start programming peers while the lease is written)
// its addresses are left alone.
import type { NetlinkHandle } from '../netlink/handle';
import { req } from '../netlink/handle';
import type { LinkState } from '../netlink/types';
import type { DeviceSpec } from './model';

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

function vxlanMismatch(link: LinkState, spec: DeviceSpec): string | undefined {
  if (link.kind !== 'vxlan' || !link.vxlan) return `kind ${link.kind ?? 'unknown'}`;
  const v = link.vxlan;
  if (v.vni !== spec.vni) return `vni ${v.vni}`;
  if (v.local !== spec.local) return `local ${v.local ?? 'none'}`;
  if ((v.port ?? 8472) !== spec.port) return `port ${v.port}`;
  if (v.link !== spec.lowerIndex) return `lower device ${v.link ?? 'none'}`;
  if (v.learning) return 'learning on';
  return undefined;
}

export function ensureDevice(h: NetlinkHandle, spec: DeviceSpec): DeviceResult {
  const changes: string[] = [];
  let recreated = false;
  let link = h.getLink(spec.name);
  if (link) {
    const mismatch = vxlanMismatch(link, spec);
    if (mismatch) {
      h.deleteLink(link);
      changes.push(`recreate (${mismatch})`);
      link = undefined;
    }
  }
  if (!link) {
    h.createVxlan({
      name: spec.name,
      vni: spec.vni,
      local: spec.local,
      port: spec.port,
      lowerIndex: spec.lowerIndex,
      mac: spec.mac,
      mtu: spec.mtu,
      learning: false,
    });
    link = h.getLink(spec.name);
    if (!link) throw new Error(`${spec.name} vanished right after creation`);
    recreated = true;
    changes.push('create');
  }
  const attrs = convergeLinkAttrs(h, link, spec);
  changes.push(...attrs.changes);
  return { index: link.index, changes, recreated, entriesLost: recreated || attrs.broughtUp };
}

/**
 * The attributes every twill device shares whatever its kind (vxlan or tap): MTU, MAC, up,
 * and exactly <subnet>.0/32 as its address (left alone while the spec has none). Returns what
 * had to change; throws on failure.
 */
export function convergeLinkAttrs(h: NetlinkHandle, link: LinkState, spec: Pick<DeviceSpec, 'mtu' | 'mac' | 'address'>): LinkAttrsResult {
  const changes: string[] = [];
  const set: { mtu?: number; mac?: string; up?: boolean } = {};
  if (link.mtu !== spec.mtu) set.mtu = spec.mtu;
  if (link.mac !== spec.mac) set.mac = spec.mac;
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

/** Removes the device (and with it every entry on it). Missing is fine. */
export function removeDevice(h: NetlinkHandle, name: string): boolean {
  const link = h.getLink(name);
  if (!link) return false;
  h.deleteLink(link);
  return true;
}
