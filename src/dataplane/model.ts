// The desired dataplane as plain data. Addresses are dotted quads, like the netlink layer.

/** twill's own route protocol number: how we recognise our routes without memory of earlier runs. */
export const TWILL_ROUTE_PROTOCOL = 113;

export interface DeviceSpec {
  /** twill.<VNI> */
  name: string;
  vni: number;
  port: number;
  /** Underlay (local) IP the VXLAN socket binds to. */
  local: string;
  lowerIndex: number;
  mac: string;
  /** Underlay MTU − 50 (VXLAN over IPv4 overhead). */
  mtu: number;
  /**
   * <subnet>.0, configured as /32. Undefined while our lease is not yet held (a cold start
   * programs peers meanwhile): the device's addresses are then left as they are.
   */
  address: string | undefined;
}

export interface RouteEntry {
  dst: string;
  dstLen: number;
  gateway: string;
}

export interface NeighEntry {
  ip: string;
  mac: string;
}

export interface FdbEntry {
  mac: string;
  dst: string;
}

export interface DesiredState {
  device: DeviceSpec;
  /** Keyed by "dst/len". */
  routes: Map<string, RouteEntry>;
  /** Keyed by IP. */
  neighs: Map<string, NeighEntry>;
  /** Keyed by MAC. */
  fdb: Map<string, FdbEntry>;
}

export type EntryKind = 'route' | 'neigh' | 'fdb';

export const VXLAN_OVERHEAD = 50;
