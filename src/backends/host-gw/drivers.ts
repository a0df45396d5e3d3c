// host-gw's one driver: routes via the peers' PublicIPs on the underlay, through netlink. No device.
import type { Driver } from '../../dataplane/driver';
import { routeTable } from '../../dataplane/tables';

export function hostGwDriver(): Driver {
  return { tables: [routeTable] };
}
