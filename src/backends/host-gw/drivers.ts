// host-gw's one driver: routes via the peers' PublicIPs on the underlay, through netlink, and
// the port-less bridge that holds this host's overlay address.
import type { Driver } from '../../dataplane/driver';
import { routeTable } from '../../dataplane/tables';
import type { HostGwDeviceSpec } from './backend';
import { ensureHostGwDevice } from './device';

export function hostGwDriver(): Driver<HostGwDeviceSpec> {
  return { device: { label: 'host-gw device', ensure: ensureHostGwDevice }, tables: [routeTable] };
}
