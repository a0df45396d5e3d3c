// WireGuard's drivers for one desired state: the kernel's WireGuard (generic netlink) where
// the kernel has it, else wireguard-go through its UAPI. The kernel is asked by resolving the
// generic netlink family "wireguard" (which loads the module when it may). `--dataplane
// userspace` forces wireguard-go; `kernel` (the flag's default) and `auto` take the kernel's
// when it has one and otherwise fall back to wireguard-go, logged: a kernel without the
// module is exactly the case wireguard-go exists for, and an encrypted overlay that does not
// start is worse than a slower one.
import type { DataplaneMode } from '../../config/daemon';
import type { DriverChoice } from '../../dataplane/driver';
import { kernelWireguardDriver, kernelWireguardProbe } from './kernel-driver';
import { userspaceWireguardDriver } from './userspace-driver';
import { registerWireguardMetrics } from './metrics';
import type { WireguardDriverOptions } from './wg-driver';

export function wireguardDriver(requested: DataplaneMode, opts: WireguardDriverOptions, probe = kernelWireguardProbe): DriverChoice {
  const p = requested === 'userspace' ? undefined : probe();
  const kernel = p?.ok === true;
  const driver = kernel ? kernelWireguardDriver(opts) : userspaceWireguardDriver(opts);
  const reason = !p
    ? '--dataplane userspace: wireguard-go'
    : kernel
      ? `--dataplane ${requested}: the kernel has WireGuard (${p.reason})`
      : `--dataplane ${requested}: the kernel has no WireGuard (${p.reason}); wireguard-go through its UAPI`;
  return { driver, mode: kernel ? 'kernel' : 'userspace', reason, registerMetrics: (m) => registerWireguardMetrics(m, () => driver.stats()) };
}
