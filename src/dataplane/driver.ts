// What a backend hands the generic reconciler: how to realise its device (if it has one),
// the kernel tables to converge through netlink, and tables it keeps itself (a sink: the
// userspace forwarder's FDB). A backend may have several drivers for the same plan (vxlan:
// kernel device + kernel FDB, or TAP + forwarder); the reconciler knows none of them.
import type { NetlinkHandle } from '../netlink/handle';
import type { Metrics } from '../observe/metrics';
import type { DeviceEnsured } from './link-attrs';
import type { DeviceBase, EntryKind, EntryMap } from './model';
import type { TableSpec } from './tables';

export interface DeviceDriver<D extends DeviceBase = DeviceBase> {
  /** For logs: "vxlan device", "tap device". */
  readonly label: string;
  /** Create or fix the device; what had to change, and its ifindex. Throws on failure. */
  ensure(h: NetlinkHandle, spec: D): DeviceEnsured;
}

export interface SinkResult {
  writes: number;
  deletes: number;
  size: number;
}

/** A table the driver keeps outside the kernel: it takes the whole table, before any netlink write. */
export interface TableSink<K extends EntryKind = EntryKind> {
  readonly kind: K;
  /** null: nothing changed. Throws on failure (retried). */
  push(entries: EntryMap<K>): SinkResult | null;
  /** An asynchronous sink: true while what was pushed is not applied yet (not converged; re-checked on retry). */
  pending?(): boolean;
}

/** Value types differ per table: `any` is confined to this alias, each spec is typed where written. */
export type AnyTable = TableSpec<EntryKind, any>;

export interface Driver<D extends DeviceBase = DeviceBase> {
  readonly device?: DeviceDriver<D>;
  /** Value types differ per table; the reconciler treats them as opaque. */
  readonly tables: readonly AnyTable[];
  readonly sinks?: readonly TableSink[];
  stop?(): void;
}

/** Where a driver does its work: the kernel's own device, or twill's userspace process. */
export type DriverMode = 'kernel' | 'userspace';

/** A backend's pick among its drivers (vxlan: kernel or userspace). */
export interface DriverChoice {
  driver: Driver;
  /** Which driver (logged with `reason`; Backend.sourceFilterPort asks it too). */
  mode: DriverMode;
  reason: string;
  /** Metrics only this driver has (the userspace forwarder's counters). */
  registerMetrics?: (m: Metrics) => void;
}
