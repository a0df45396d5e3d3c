// The VXLAN backend's drivers: the kernel's VXLAN device with routes, neighbours and FDB
// entries converged through netlink, or (src/userspace) a TAP device and the userspace
// forwarder holding the FDB. `--dataplane auto` asks the kernel whether it can create a
// VXLAN device (src/userspace/select.ts).
import type { DataplaneMode } from '../../config/daemon';
import type { Driver, DriverChoice } from '../../dataplane/driver';
import { fdbTable, neighTable, routeTable } from '../../dataplane/tables';
import type { NetlinkHandle } from '../../netlink/handle';
import { userspaceVxlanDriver, type UserspaceDataplaneOptions } from '../../userspace/dataplane';
import { chooseDataplane } from '../../userspace/select';
import { registerUserspaceMetrics } from '../../userspace/metrics';
import type { VxlanDeviceSpec } from './backend';
import { ensureDevice } from './device';

export function kernelVxlanDriver(): Driver<VxlanDeviceSpec> {
  return { device: { label: 'vxlan device', ensure: ensureDevice }, tables: [routeTable, neighTable, fdbTable] };
}

export function vxlanDriver(requested: DataplaneMode, h: NetlinkHandle, opts: UserspaceDataplaneOptions = {}): DriverChoice {
  const choice = chooseDataplane(requested, h);
  if (choice.mode === 'kernel') return { driver: kernelVxlanDriver(), mode: choice.mode, reason: choice.reason };
  const driver = userspaceVxlanDriver(opts);
  return { driver, mode: choice.mode, reason: choice.reason, registerMetrics: (m) => registerUserspaceMetrics(m, () => driver.stats()) };
}
