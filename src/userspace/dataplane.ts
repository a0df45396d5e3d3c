// The VXLAN backend's userspace driver: a TAP device and the forwarder in place of the
// kernel's VXLAN device and FDB, under the same generic reconciler.
//
// - Same desired state, same per-peer route and permanent neighbour as kernel mode, so a
//   userspace host looks the same to `ip route`/`ip neigh` and to the twill CNI plugin. The
//   FDB table (VTEP MAC → peer underlay IP) is a sink: the forwarder's table, pushed before
//   routes/neighbours are written so a route never exists before its traffic is forwardable.
// - Same convergence rules (drift repair, full resyncs, backoff); a deleted TAP is recreated
//   and the forwarding loop moved to the new fd.
// - stop() stops the forwarding threads; the TAP (persistent), its address, routes and
//   neighbours stay, as kernel mode leaves its state for the next start.
import type { VxlanDeviceSpec } from '../backends/vxlan/backend';
import type { DeviceDriver, Driver, SinkResult, TableSink } from '../dataplane/driver';
import type { DeviceEnsured } from '../dataplane/link-attrs';
import type { EntryMap } from '../dataplane/model';
import { neighTable, routeTable } from '../dataplane/tables';
import type { NetlinkHandle } from '../netlink/handle';
import { Forwarder, type ForwarderOptions } from './forwarder';
import type { NativeStats } from './native';
import { ensureTapDevice } from './tap-device';

export type UserspaceDataplaneOptions = ForwarderOptions;

class TapDriver implements DeviceDriver<VxlanDeviceSpec>, TableSink<'fdb'> {
  readonly label = 'tap device';
  readonly kind = 'fdb';
  fwd: Forwarder | undefined;
  /** The table the forwarder holds ("mac>dst" sorted), to push only on change. */
  private pushed = '';

  constructor(private readonly opts: UserspaceDataplaneOptions) {}

  /** The TAP, its attributes, and the forwarder's socket and config. */
  ensure(h: NetlinkHandle, spec: VxlanDeviceSpec): DeviceEnsured {
    if (!this.fwd) this.fwd = new Forwarder(spec.name, spec.vni, spec.port, spec.mac, spec.mtu, this.opts);
    const fwd = this.fwd;
    fwd.setConfig(spec.vni, spec.port, spec.mac, spec.mtu);
    const dev = ensureTapDevice(h, spec, fwd);
    const changes = [...dev.changes];
    const newSocket = fwd.ensureUdp(spec.local, spec.port);
    if (newSocket) changes.push(`socket ${spec.local}:${spec.port}`);
    // A new socket touches no kernel entry; resynced anyway, as any other device repair.
    return { index: dev.index, changes, entriesLost: dev.entriesLost || newSocket };
  }

  push(fdb: EntryMap<'fdb'>): SinkResult | null {
    const entries = [...fdb.values()];
    const sig = entries.map((e) => `${e.mac}>${e.dst}`).sort().join(',');
    if (sig === this.pushed || !this.fwd) return null;
    this.fwd.setTable(entries);
    const before = new Set(this.pushed ? this.pushed.split(',') : []);
    const after = new Set(sig ? sig.split(',') : []);
    const writes = [...after].filter((x) => !before.has(x)).length;
    const deletes = [...before].filter((x) => !after.has(x)).length;
    this.pushed = sig;
    return { writes, deletes, size: entries.length };
  }
}

export interface UserspaceDriver extends Driver<VxlanDeviceSpec> {
  /** The forwarder's counters (undefined before the first desired state). */
  stats(): NativeStats | undefined;
}

export function userspaceVxlanDriver(opts: UserspaceDataplaneOptions = {}): UserspaceDriver {
  const tap = new TapDriver(opts);
  return {
    device: tap,
    tables: [routeTable, neighTable],
    sinks: [tap],
    stop: () => tap.fwd?.close(),
    stats: () => tap.fwd?.stats(),
  };
}
