// Choosing the dataplane for --dataplane kernel|userspace|auto. `auto` asks the kernel itself:
// it creates (and at once deletes) a VXLAN link under a throwaway name. That answers "is the
// vxlan module there and may we create links" without guessing from /proc/modules, /sys or
// the kernel version (the module may be built in, autoloaded, or blocked by policy). The probe
// link is never brought up, so it binds no UDP port and cannot disturb a running VTEP.
import { randomBytes } from 'node:crypto';
import type { DataplaneMode } from '../config/daemon';
import { NetlinkError, EEXIST } from '../netlink/errors';
import type { NetlinkHandle } from '../netlink/handle';

export interface KernelVxlanProbe {
  ok: boolean;
  /** errno name (EOPNOTSUPP: no vxlan module; EPERM: not allowed), or why the probe failed. */
  reason: string;
}

export function canCreateKernelVxlan(h: NetlinkHandle): KernelVxlanProbe {
  const name = `twprobe${randomBytes(3).toString('hex')}`;
  try {
    h.createVxlan({ name, vni: 0xffffff, local: '0.0.0.0', port: 4789, lowerIndex: 0, mac: '02:00:00:00:00:01', mtu: 1450, learning: false });
  } catch (err) {
    if (err instanceof NetlinkError) {
      // EEXIST: a vxlan link with this (random) name exists, so the kernel has vxlan.
      return err.errno === EEXIST ? { ok: true, reason: 'EEXIST' } : { ok: false, reason: err.errnoName };
    }
    return { ok: false, reason: (err as Error).message };
  }
  try {
    const link = h.getLink(name);
    if (link) h.deleteLink(link);
  } catch {
    /* a leftover probe link is harmless: down, no address, no socket */
  }
  return { ok: true, reason: 'vxlan link created' };
}

export interface DataplaneChoice {
  mode: 'kernel' | 'userspace';
  /** For the log line: why this mode. */
  reason: string;
}

export function chooseDataplane(requested: DataplaneMode, h: NetlinkHandle): DataplaneChoice {
  if (requested !== 'auto') return { mode: requested, reason: `--dataplane ${requested}` };
  const probe = canCreateKernelVxlan(h);
  return probe.ok
    ? { mode: 'kernel', reason: 'auto: the kernel can create VXLAN devices' }
    : { mode: 'userspace', reason: `auto: the kernel cannot create a VXLAN device (${probe.reason})` };
}
