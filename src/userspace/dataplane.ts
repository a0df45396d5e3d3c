// The userspace dataplane: the shared reconciler (src/dataplane/reconciler.ts) with a TAP
// device and the forwarder in place of the kernel's VXLAN device and FDB.
//
// - Same desired state, same per-peer route and permanent neighbour as kernel mode, so a
//   userspace host looks the same to `ip route`/`ip neigh` and to the twill CNI plugin. The
//   FDB part (VTEP MAC → peer underlay IP) becomes the forwarder's table, pushed before
//   routes/neighbours are written so a route never exists before its traffic is forwardable.
// - Same convergence rules (drift repair, full resyncs, backoff); a deleted TAP is recreated
//   and the forwarding loop moved to the new fd.
// - stop() stops the forwarding threads; the TAP (persistent), its address, routes and
//   neighbours stay, as kernel mode leaves its state for the next start.
import type { DesiredState, DeviceSpec } from '../dataplane/model';
import type { DeviceEnsured } from '../dataplane/device-driver';
import { Reconciler, type DeviceBackend, type ReconcilerLog } from '../dataplane/reconciler';
import type { NetlinkHandle } from '../netlink/handle';
import { Forwarder, type ForwarderOptions } from './forwarder';
import type { NativeStats } from './native';
import { ensureTapDevice } from './tap-device';

export type { Dataplane } from '../dataplane/reconciler';
export type UserspaceDataplaneOptions = ForwarderOptions;

class TapBackend implements DeviceBackend {
  readonly label = 'tap device';
  fwd: Forwarder | undefined;
  /** The table the forwarder holds ("mac>dst" sorted), to push only on change. */
  private pushed = '';

  constructor(private readonly opts: UserspaceDataplaneOptions) {}

  /** The TAP, its attributes, and the forwarder's socket and config. */
  ensureDevice(h: NetlinkHandle, spec: DeviceSpec): DeviceEnsured {
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

  pushFdb(d: DesiredState): { writes: number; deletes: number; size: number } | null {
    const entries = [...d.fdb.values()];
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

  stop(): void {
    this.fwd?.close();
  }
}

export class UserspaceDataplane extends Reconciler {
  private readonly tap: TapBackend;

  constructor(h: NetlinkHandle, log: ReconcilerLog, resyncIntervalMs: number, opts: UserspaceDataplaneOptions = {}) {
    const tap = new TapBackend(opts);
    super(h, log, resyncIntervalMs, tap);
    this.tap = tap;
  }

  /** The forwarder's counters (undefined before the first desired state). */
  stats(): NativeStats | undefined {
    return this.tap.fwd?.stats();
  }
}
