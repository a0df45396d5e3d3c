// The registry's public types: what acquire takes, what a listing and the subnet watch hand
// over, and the events it emits. A file of its own so the registry's parts (lease keeper,
// subnet watch) and the registry share them without importing each other.
import type { NetworkConfig } from '../config/network';
import type { Ip4, Prefix4 } from '../ip/ipv4';
import type { SubnetError } from './errors';
import type { BackendDataCodec, Lease } from './lease';

export interface AcquireRequest {
  config: NetworkConfig;
  publicIp: Ip4;
  /** The active backend's BackendData codec, and our BackendData (a VTEP MAC, nothing for host-gw). */
  codec: BackendDataCodec;
  backendData: unknown;
  /** E.g. the subnet recorded in the subnet file by a previous run. */
  preferred?: Prefix4;
  ttlSeconds: number;
  renewMarginSeconds: number;
  /**
   * Called once per attempt when the subnet is chosen, before anything is written, with the
   * listing it was chosen from. Peers' entries do not depend on which subnet we get, so a cold
   * start can program them while the lease is granted and written; the lease may still be
   * lost to a race (then this is called again) or fail (acquire rejects).
   */
  onPlanned?: (lease: Lease, listing: SubnetListing) => void;
}

/** Every key under `<prefix>/subnets/` and its value, as of `revision`. */
export interface SubnetListing {
  revision: string;
  entries: Map<string, string>;
}

export interface SubnetWatchHandler {
  put(key: string, value: string): void;
  delete(key: string): void;
  /** Full state of `<prefix>/subnets/` at `revision`; replaces everything seen before. */
  resync(entries: Map<string, string>, revision: string): void;
}

export type WatchErrorPhase = 'disconnected' | 'canceled' | 'relist';

export type EtcdRegistryEvents = {
  /** Our etcd lease was refreshed; `ttlSeconds` is what etcd reports now. */
  renewed: [lease: Lease, ttlSeconds: number];
  /** A renewal attempt failed (etcd unreachable, ...); it is retried in a few seconds. */
  'renew-failed': [err: SubnetError];
  /** Our key had vanished (lease expired/revoked, key deleted) and was put back. */
  reacquired: [lease: Lease];
  /** Another host holds our subnet now; renewal stopped. The daemon decides what to do. */
  lost: [info: { lease: Lease; holderValue: string }];
  /** The subnet watch had a problem (for metrics); it recovers by itself. */
  'watch-error': [err: SubnetError, phase: WatchErrorPhase];
};

/** How the registry's parts emit its events (never throws: a listener's exception is logged). */
export type EmitRegistryEvent = <E extends keyof EtcdRegistryEvents>(event: E, ...args: EtcdRegistryEvents[E]) => void;
