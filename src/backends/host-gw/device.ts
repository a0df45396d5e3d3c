// host-gw's device twill-hostgw: a bridge without ports holding <subnet>.0/32 (why: see
// backend.ts). Anything else under that name (another kind) is deleted and recreated; MTU,
// up and the address are converged in place like every twill device's (link-attrs.ts).
// Nothing is routed over it, so no entry is lost when it is recreated or brought up.
import type { NetlinkHandle } from '../../netlink/handle';
import { ensureLink, type DeviceResult } from '../../dataplane/link-attrs';
import type { HostGwDeviceSpec } from './backend';

export function ensureHostGwDevice(h: NetlinkHandle, spec: HostGwDeviceSpec): DeviceResult {
  return ensureLink(h, spec, {
    mismatch: (link) => (link.kind !== 'bridge' ? `kind ${link.kind ?? 'unknown'}` : undefined),
    create: () => h.createBridge(spec.name, spec.mtu),
    // host-gw's routes sit on the underlay, not here: nothing to re-dump.
    entriesLost: () => false,
  });
}
