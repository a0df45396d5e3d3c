// The userspace host's device twill.<VNI>: a TAP instead of a VXLAN link, with what kernel
// mode gives its device — the VTEP MAC, MTU = underlay − 50 (so mixed clusters fragment
// nothing), exactly <subnet>.0/32, up. Routes and neighbours then look identical to kernel
// mode; only the FDB lives in the forwarder instead of the kernel.
//
// - A link of another kind with our name (the VXLAN device of an earlier kernel-mode run) is
//   deleted: the name is the contract, the kind follows --dataplane.
// - An L3 TUN with our name makes TUNSETIFF(IFF_TAP) fail with EINVAL: deleted and retried.
// - "Our fd is attached" is checked with TUNGETIFF, not remembered: after `ip link del` the fd
//   is detached for good and must be replaced (the forwarder restarts its loop on the new fd).
import { convergeLinkAttrs, type DeviceResult } from '../dataplane/link-attrs';
import type { VxlanDeviceSpec as DeviceSpec } from '../backends/vxlan/backend';
import { EINVAL } from '../netlink/errors';
import type { NetlinkHandle } from '../netlink/handle';
import type { LinkState } from '../netlink/types';

/** What the device driver needs from the forwarder. */
export interface TapPort {
  tapAttached(): boolean;
  openTap(): void;
}

function openTap(h: NetlinkHandle, name: string, tap: TapPort, changes: string[]): LinkState {
  try {
    tap.openTap();
  } catch (err) {
    const errno = (err as { errno?: number }).errno;
    const link = h.getLink(name);
    if (errno !== EINVAL || !link) throw err;
    // A TUN (L3) device by that name: not ours to reuse.
    h.deleteLink(link);
    changes.push('recreate (tun, not tap)');
    tap.openTap();
  }
  const link = h.getLink(name);
  if (!link) throw new Error(`${name} vanished right after the TAP was opened`);
  return link;
}

export function ensureTapDevice(h: NetlinkHandle, spec: DeviceSpec, tap: TapPort): DeviceResult {
  const changes: string[] = [];
  let recreated = false;
  let link = h.getLink(spec.name);
  if (link && link.kind !== 'tun') {
    h.deleteLink(link);
    changes.push(`recreate (kind ${link.kind ?? 'unknown'})`);
    link = undefined;
  }
  if (!link || !tap.tapAttached()) {
    const existed = link !== undefined;
    link = openTap(h, spec.name, tap, changes);
    recreated = true;
    changes.push(existed ? 'attach' : 'create');
  }

  const attrs = convergeLinkAttrs(h, link, spec);
  changes.push(...attrs.changes);
  return { index: link.index, changes, recreated, entriesLost: recreated || attrs.broughtUp };
}
