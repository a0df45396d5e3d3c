// Plain views of the kernel objects twill reads and writes. Addresses are dotted-quad strings
// and MACs lowercase colon-separated: the netlink layer stays independent of the rest.

export interface VxlanState {
  vni: number;
  local: string | undefined;
  port: number | undefined;
  learning: boolean;
  link: number | undefined;
}

export interface LinkState {
  index: number;
  name: string;
  kind: string | undefined;
  mtu: number;
  up: boolean;
  mac: string | undefined;
  master: number | undefined;
  vxlan: VxlanState | undefined;
}

export interface AddrState {
  index: number;
  ip: string;
  prefixLen: number;
}

export interface RouteState {
  dst: string;
  dstLen: number;
  gateway: string | undefined;
  oif: number | undefined;
  protocol: number;
  table: number;
  scope: number;
  type: number;
  onlink: boolean;
}

export interface NeighState {
  index: number;
  ip: string;
  mac: string | undefined;
  /** NUD_* bits; NUD_PERMANENT = 0x80. */
  state: number;
}

export interface FdbState {
  index: number;
  mac: string;
  dst: string | undefined;
  state: number;
  self: boolean;
}

export const NUD_PERMANENT = 0x80;
export const NUD_NOARP = 0x40;
export const RT_TABLE_MAIN = 254;
export const RT_SCOPE_UNIVERSE = 0;
export const RT_SCOPE_LINK = 253;
export const RTN_UNICAST = 1;
/** A route that drops with ICMP host unreachable (fail closed: src/backends/wireguard). */
export const RTN_UNREACHABLE = 7;
export const RTNH_F_ONLINK = 4;
export const AF_INET = 2;
export const AF_BRIDGE = 7;
