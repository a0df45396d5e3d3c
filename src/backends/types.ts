// What a backend is (after flannel's backend.Backend and felix's per-concern managers): the
// pure half — its lease codec, device spec, MTU overhead and per-peer plan. The effectful
// half (how its device and tables are realised) is a Driver (src/dataplane/driver.ts) built
// by the backend's drivers.ts; src/backends/registry.ts pairs the two.
import type { BackendConfig, NetworkConfig } from '../config/network';
import type { DriverMode } from '../dataplane/driver';
import type { DeviceBase, EntryKind, EntryOf } from '../dataplane/model';
import type { Ip4 } from '../ip/ipv4';
import type { BackendDataCodec, Lease } from '../subnet/lease';

export interface UnderlayFacts {
  index: number;
  ip: string;
  mtu: number;
}

/** How the kernel reaches a peer's PublicIP: on the underlay's own link, or not (and why). */
export type Reach = { direct: true } | { direct: false; why: string };

export interface PlanContext<D> {
  config: NetworkConfig;
  own: Lease<D>;
  underlay: UnderlayFacts;
  reach(publicIp: Ip4): Reach;
}

/** One kernel entry a peer needs. */
export type PlannedEntry = { [K in EntryKind]: { kind: K; key: string; entry: EntryOf[K]; collision?: string } }[EntryKind];

export type PeerPlan =
  /** `path`: for logs and tests ("vxlan", "direct"). */
  | { ok: true; path: string; entries: PlannedEntry[] }
  /** Not programmed: a conflict or an unreachable peer (counted and warned once by the daemon). */
  | { ok: false; reason: string; detail: string };

/**
 * What this host brings to its lease and device, whatever the backend: each backend takes its
 * own part (vxlan the VTEP MAC, wireguard the public key and its device name). Chosen once and
 * kept in the state dir by the daemon.
 */
export interface HostIdentity {
  vtepMac: string;
  /** Base64 X25519 public key; set when the active backend is wireguard. */
  wireguardPublicKey?: string;
  /** The WireGuard device's name (twill-wg; one per lab host, see src/backends/wireguard/backend.ts). */
  wireguardDevice?: string;
}

export interface DeviceInput<D> {
  config: NetworkConfig;
  /** Our lease, or the one we are about to write. */
  own: Lease<D>;
  /** Whether the lease is held: the device gets its address only then. */
  ownHeld: boolean;
  underlay: UnderlayFacts;
  identity?: HostIdentity;
}

export interface Backend<D = unknown, S extends DeviceBase = DeviceBase> {
  readonly type: BackendConfig['type'];
  readonly codec: BackendDataCodec<D>;
  /** Our lease's BackendData. */
  ownData(input: { config: NetworkConfig } & HostIdentity): D;
  /** The pod MTU (subnet file) for an underlay MTU. */
  podMtu(config: NetworkConfig, underlayMtu: number): number;
  device(input: DeviceInput<D>): S | undefined;
  /** Whether plans ask `reach` (the daemon then follows underlay routes). */
  needsReach(config: NetworkConfig): boolean;
  /** Pure; one peer at a time, so a single lease event can be applied on its own. */
  planPeer(ctx: PlanContext<D>, peer: Lease<D>): PeerPlan;
  /** Entries wanted whatever the peers (wireguard: the cluster network's fail-closed route). */
  fixedEntries?(ctx: PlanContext<D>): PlannedEntry[];
  /**
   * The UDP port on which the kernel, with the driver in `mode`, takes this backend's
   * encapsulated traffic in from any source: the firewall then accepts datagrams to it from
   * peers' PublicIPs only (src/firewall/rules.ts). Absent or undefined: nothing to filter.
   */
  sourceFilterPort?(config: NetworkConfig, mode: DriverMode): number | undefined;
  /** The device names this backend owns (swept when another backend is active). */
  ownsLink(name: string): boolean;
  readonly tables: readonly EntryKind[];
}
