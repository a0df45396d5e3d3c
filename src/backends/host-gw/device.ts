// host-gw's device twill-hostgw: a bridge without ports holding <subnet>.0/32 (why: see
// backend.ts). Anything else under that name (another kind) is deleted and recreated; MTU,
// up and the address are converged in place like every twill device's (link-attrs.ts).
// Nothing is routed over it, so no entry is lost when it is recreated or brought up.
import type { NetlinkHandle } from '../../netlink/handle';
import { convergeLinkAttrs, type DeviceResult } from '../../dataplane/link-attrs';
import type { HostGwDeviceSpec } from './backend';

export function ensureHostGwDevice(h: NetlinkHandle, spec: HostGwDeviceSpec): DeviceResult {
  const changes: string[] = [];
  let recreated = false;
  let link = h.getLink(spec.name);
  if (link && link.kind !== 'bridge') {
    h.deleteLink(link);
    changes.push(`recreate (kind ${link.kind ?? 'unknown'})`);
    link = undefined;
  }
  if (!link) {
    h.createBridge(spec.name, spec.mtu);
    link = h.getLink(spec.name);
    if (!link) throw new Error(`${spec.name} vanished right after creation`);
    recreated = true;
    changes.push('create');
  }
  const attrs = convergeLinkAttrs(h, link, spec);
  changes.push(...attrs.changes);
  // host-gw's routes sit on the underlay, not here: nothing to re-dump.
  return { index: link.index, changes, recreated, entriesLost: false };
}
