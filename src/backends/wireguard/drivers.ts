// WireGuard's drivers for one desired state: the kernel's WireGuard (generic netlink, see
// genetlink.ts) where the module exists, else wireguard-go through the UAPI. `auto` asks the
// kernel by creating (and at once deleting) a link of kind "wireguard" under a throwaway
// name, as the vxlan probe does: the module may be built in, autoloaded or blocked.
import { randomBytes } from 'node:crypto';
import type { DataplaneMode } from '../../config/daemon';
import type { DriverChoice } from '../../dataplane/driver';
import type { NetlinkHandle } from '../../netlink/handle';
import { NetlinkError } from '../../netlink/errors';
import { userspaceWireguardDriver, type WireguardDriverOptions } from './userspace-driver';

export function kernelHasWireguard(h: NetlinkHandle): { ok: boolean; reason: string } {
  const name = `twwgprobe${randomBytes(2).toString('hex')}`;
  try {
    h.createLinkOfKind(name, 'wireguard');
  } catch (err) {
    return { ok: false, reason: err instanceof NetlinkError ? err.errnoName : (err as Error).message };
  }
  const link = h.getLink(name);
  if (link) h.deleteLink(link);
  return { ok: true, reason: 'a wireguard link was created' };
}

export function wireguardDriver(requested: DataplaneMode, h: NetlinkHandle, opts: WireguardDriverOptions): DriverChoice {
  let mode: 'kernel' | 'userspace' = requested === 'kernel' ? 'kernel' : 'userspace';
  let reason = `--dataplane ${requested}`;
  if (requested === 'auto') {
    const probe = kernelHasWireguard(h);
    mode = probe.ok ? 'kernel' : 'userspace';
    reason = probe.ok ? 'auto: the kernel has WireGuard' : `auto: the kernel has no WireGuard (${probe.reason}); wireguard-go through its UAPI`;
  }
  if (mode === 'kernel') {
    // The kernel driver's messages are built and tested (genetlink.ts); its socket is not wired yet.
    return { driver: userspaceWireguardDriver(opts), mode: 'userspace', reason: `${reason}; the kernel driver is not wired to a generic netlink socket yet, using wireguard-go` };
  }
  const driver = userspaceWireguardDriver(opts);
  return { driver, mode, reason };
}
