// The desired dataplane as plain data, whatever the backend: an optional device and, per
// table kind the backend uses, the entries wanted in it. Addresses are dotted quads, like the
// netlink layer. Entries that live on the backend's device name it symbolically (DEVICE):
// the reconciler binds them to the device's current ifindex, so a recreated device makes
// every entry on it pending again.

/** twill's own route protocol number: how we recognise our routes without memory of earlier runs. */
export const TWILL_ROUTE_PROTOCOL = 113;

/** In an entry: "on the backend's device", resolved to its ifindex by the reconciler. */
export const DEVICE = 'device' as const;
export type OnLink = number | typeof DEVICE;

/** What every backend's device spec has: the name twill owns it by. */
export interface DeviceBase {
  name: string;
}

export interface RouteEntry {
  dst: string;
  dstLen: number;
  /** undefined: a route on the link itself (wireguard: `<subnet> dev twill-wg`). */
  gateway: string | undefined;
  oif: OnLink;
  onlink: boolean;
  /** 'unreachable': drops with ICMP host unreachable, no device (wireguard's fail-closed route). */
  type?: 'unreachable';
}

/** A WireGuard peer: its public key (base64, the key), where to send, which inner addresses it may use. */
export interface WgPeerEntry {
  publicKey: string;
  /** "PublicIP:Port". */
  endpoint: string;
  /** Peer subnets as "a.b.c.d/len", sorted. */
  allowedIps: string[];
  /** Seconds; 0 = off. */
  keepalive: number;
  /** Base64 pre-shared key, or undefined. */
  presharedKey: string | undefined;
}

export interface NeighEntry {
  ip: string;
  mac: string;
}

export interface FdbEntry {
  mac: string;
  dst: string;
}

/** Table kinds a backend may list; each has a spec in tables.ts (or a driver's own sink). */
export type EntryKind = 'route' | 'neigh' | 'fdb' | 'wgpeer';

export interface EntryOf {
  route: RouteEntry;
  neigh: NeighEntry;
  fdb: FdbEntry;
  wgpeer: WgPeerEntry;
}

/** Entries of one table, keyed as the kernel keys them (route "dst/len", neigh IP, FDB MAC, wgpeer public key). */
export type EntryMap<K extends EntryKind = EntryKind> = Map<string, EntryOf[K]>;

/** One entry of a table set (entry) or removed (undefined): a lease event's share of desired state. */
export interface EntryChange {
  kind: EntryKind;
  key: string;
  entry: EntryOf[EntryKind] | undefined;
  /** What the table held under `key` before (undefined: nothing); the reconciler's tracker shares the table. */
  was: EntryOf[EntryKind] | undefined;
}

export type Tables = { [K in EntryKind]?: EntryMap<K> };

export interface DesiredState<D extends DeviceBase = DeviceBase> {
  /** undefined: the backend wants no device. */
  device: D | undefined;
  tables: Tables;
}
