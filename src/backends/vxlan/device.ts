// The VXLAN device twill.<VNI>: created with nolearning (entries are static, programmed from
// leases), the underlay interface as its lower device and the underlay IP as its local
// address, so the kernel's VXLAN socket sends from the right source. VNI, local IP, port,
// lower device and learning cannot be changed on a live vxlan link: if any differs the device
// is deleted and recreated (everything on it goes with it; the caller then resyncs entries).
// MTU, MAC and up/down are changed in place. The device carries exactly <subnet>.0/32 once
// our lease is held; before that (a cold start programming peers while the lease is written)
// its addresses are left alone.
import type { NetlinkHandle } from '../../netlink/handle';
import type { LinkState } from '../../netlink/types';
import { ensureLink, type DeviceResult } from '../../dataplane/link-attrs';
import type { VxlanDeviceSpec } from './backend';

function vxlanMismatch(link: LinkState, spec: VxlanDeviceSpec): string | undefined {
  if (link.kind !== 'vxlan' || !link.vxlan) return `kind ${link.kind ?? 'unknown'}`;
  const v = link.vxlan;
  if (v.vni !== spec.vni) return `vni ${v.vni}`;
  if (v.local !== spec.local) return `local ${v.local ?? 'none'}`;
  if ((v.port ?? 8472) !== spec.port) return `port ${v.port}`;
  if (v.link !== spec.lowerIndex) return `lower device ${v.link ?? 'none'}`;
  if (v.learning) return 'learning on';
  return undefined;
}

export function ensureDevice(h: NetlinkHandle, spec: VxlanDeviceSpec): DeviceResult {
  return ensureLink(h, spec, {
    mismatch: (link) => vxlanMismatch(link, spec),
    create: () =>
      h.createVxlan({
        name: spec.name,
        vni: spec.vni,
        local: spec.local,
        port: spec.port,
        lowerIndex: spec.lowerIndex,
        mac: spec.mac,
        mtu: spec.mtu,
        learning: false,
      }),
    entriesLost: (recreated, broughtUp) => recreated || broughtUp,
  });
}
