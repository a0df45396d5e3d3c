// The kernel-VXLAN reconciler: converges the kernel to the desired state and keeps it there.
//
// - Nothing is touched until the first desired state arrives (the daemon sets it only after
//   the first full etcd list), so a restart never removes a working entry early.
// - A full resync (start, periodic, device changed, event queue overflow) ensures the device,
//   dumps routes/neighbours/FDB and replaces the "actual" side of each delta tracker; then
//   only the differences are written, in one netlink batch.
// - Netlink events update the actual side incrementally: an entry someone deleted or changed
//   becomes pending and is rewritten on the next run (drift repair, typically < 10 ms).
//   Routes vanish silently when a device goes down or is deleted (IPv4 sends no RTM_DELROUTE
//   for those, nor when its last IPv4 address is removed): any event touching our device
//   therefore triggers a device check, and a full resync if the device was recreated or down
//   or lost an address (a new MTU, MAC or added address keeps the entries).
// - A failed entry stays pending; the rest still apply. Runs are synchronous (netlink
//   requests are answered inside sendmsg), so there is never more than one run at a time.
// The device side is a backend: the kernel VXLAN device (FDB entries in the kernel), or the
// userspace TAP + forwarder (src/userspace), whose FDB lives in the forwarder's table. Both
// share this loop, the route/neighbour tables and their delta trackers.
import { EventEmitter } from 'node:events';
import type { NetlinkHandle } from '../netlink/handle';
import type { NetlinkEvent } from '../netlink/events';
import type { NetlinkError } from '../netlink/errors';
import type { Request } from '../netlink/socket';
import { RT_TABLE_MAIN } from '../netlink/types';
import { DeltaTracker } from './delta-tracker';
import { ensureDevice, type DeviceEnsured } from './device-driver';
import { TWILL_ROUTE_PROTOCOL, type DesiredState, type DeviceSpec, type EntryKind } from './model';
import {
  deleteFdb, deleteNeigh, deleteRoute, desiredFdb, desiredNeighs, desiredRoutes, fdbEqual, fdbVal, neighEqual, neighVal,
  readFdb, readNeighs, readRoutes, routeEqual, routeKey, routeVal, writeFdb, writeNeigh, writeRoute,
  type FdbVal, type NeighVal, type RouteVal,
} from './tables';

export interface ReconcilerLog {
  info(o: object, m: string): void;
  warn(o: object, m: string): void;
  error(o: object, m: string): void;
  debug(o: object, m: string): void;
}

export interface ReconcilerEvents {
  /** Every run that left nothing pending. */
  converged: [{ durationMs: number; full: boolean }];
  applied: [{ kind: EntryKind | 'device'; writes: number; deletes: number }];
  failed: [{ kind: EntryKind | 'device'; error: Error }];
  drift: [{ kind: EntryKind | 'device'; key: string }];
  resync: [{ reason: string }];
}

const MAX_BACKOFF_MS = 30_000;

/** How a dataplane realises the device and the FDB. */
export interface DeviceBackend {
  /** For logs: "vxlan device", "tap device". */
  readonly label: string;
  /** Create or fix the device; what had to change, and its ifindex. Throws on failure. */
  ensureDevice(h: NetlinkHandle, spec: DeviceSpec): DeviceEnsured;
  /**
   * undefined: the FDB lives in the kernel and is converged with netlink like routes.
   * Otherwise: the backend takes the whole FDB (before routes are written) and says what changed.
   */
  pushFdb?(d: DesiredState): { writes: number; deletes: number; size: number } | null;
  stop?(): void;
}

export const kernelVxlanBackend: DeviceBackend = {
  label: 'vxlan device',
  ensureDevice,
};

/** What the daemon needs from a dataplane. */
export interface Dataplane extends EventEmitter<ReconcilerEvents> {
  setDesired(d: DesiredState): void;
  onEvent(ev: NetlinkEvent): void;
  requestResync(reason: string): void;
  start(): void;
  stop(): void;
  readonly converged: boolean;
  counts(): Record<EntryKind, number>;
}

export class Reconciler extends EventEmitter<ReconcilerEvents> implements Dataplane {
  private desired: DesiredState | undefined;
  private devIndex = 0;
  private readonly routes = new DeltaTracker<RouteVal>(routeEqual);
  private readonly neighs = new DeltaTracker<NeighVal>(neighEqual);
  private readonly fdb = new DeltaTracker<FdbVal>(fdbEqual);
  private needFull = true;
  private needDeviceCheck = true;
  /** The desired device changed since it was last ensured: what ensureDevice fixes then is not drift. */
  private deviceSpecChanged = true;
  private fullReason = 'start';
  private scheduled: NodeJS.Immediate | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private resyncTimer: NodeJS.Timeout | undefined;
  private backoffMs = 250;
  private lastError: string | undefined;
  private stopped = false;
  private isConverged = false;
  private externalFdbSize = 0;

  constructor(
    protected readonly h: NetlinkHandle,
    private readonly log: ReconcilerLog,
    private readonly resyncIntervalMs: number,
    private readonly backend: DeviceBackend,
  ) {
    super();
  }

  private get kernelFdb(): boolean {
    return this.backend.pushFdb === undefined;
  }

  start(): void {
    this.resyncTimer = setInterval(() => this.requestResync('periodic'), this.resyncIntervalMs);
    this.resyncTimer.unref();
  }

  stop(): void {
    this.stopped = true;
    if (this.scheduled) clearImmediate(this.scheduled);
    if (this.retryTimer) clearTimeout(this.retryTimer);
    if (this.resyncTimer) clearInterval(this.resyncTimer);
    this.backend.stop?.();
  }

  get converged(): boolean {
    return this.isConverged;
  }

  get deviceIndex(): number {
    return this.devIndex;
  }

  counts(): Record<EntryKind, number> {
    return { route: this.routes.actualSize, neigh: this.neighs.actualSize, fdb: this.kernelFdb ? this.fdb.actualSize : this.externalFdbSize };
  }

  setDesired(d: DesiredState): void {
    const prev = this.desired;
    this.desired = d;
    if (!prev || JSON.stringify(prev.device) !== JSON.stringify(d.device)) {
      this.needDeviceCheck = true;
      this.deviceSpecChanged = true;
    }
    if (!prev) this.needFull = true;
    this.applyDesiredToTrackers();
    this.isConverged = false;
    this.kick();
  }

  requestResync(reason: string): void {
    this.needFull = true;
    this.needDeviceCheck = true;
    this.fullReason = reason;
    this.kick();
  }

  /** Feed every kernel event here; entries that are not ours are ignored. */
  onEvent(ev: NetlinkEvent): void {
    if (!this.desired) return;
    const devName = this.desired.device.name;
    switch (ev.kind) {
      case 'link':
        if (ev.link.name === devName || (this.devIndex && ev.link.index === this.devIndex)) {
          this.needDeviceCheck = true;
          if (ev.action === 'del') this.emit('drift', { kind: 'device', key: devName });
          this.kick();
        }
        return;
      case 'addr':
        if (this.devIndex && ev.addr.index === this.devIndex) {
          this.needDeviceCheck = true;
          // Removing a device's last IPv4 address flushes its routes, silently: dump again.
          if (ev.action === 'del') {
            this.needFull = true;
            if (!this.fullReason) this.fullReason = 'address removed';
          }
          this.kick();
        }
        return;
      case 'route': {
        const r = ev.route;
        if (r.table !== RT_TABLE_MAIN) return;
        const key = routeKey(r);
        if (r.protocol !== TWILL_ROUTE_PROTOCOL && this.routes.getDesired(key) === undefined) return;
        this.observe('route', this.routes, key, ev.action === 'del' ? undefined : routeVal(r), ev.action === 'del' ? routeVal(r) : undefined);
        return;
      }
      case 'neigh':
        if (!this.devIndex || ev.neigh.index !== this.devIndex) return;
        this.observe('neigh', this.neighs, ev.neigh.ip, ev.action === 'del' ? undefined : neighVal(ev.neigh), undefined);
        return;
      case 'fdb':
        if (!this.kernelFdb || !this.devIndex || ev.fdb.index !== this.devIndex) return;
        this.observe('fdb', this.fdb, ev.fdb.mac, ev.action === 'del' ? undefined : fdbVal(ev.fdb), undefined);
        return;
    }
  }

  private observe<V>(kind: EntryKind, t: DeltaTracker<V>, key: string, value: V | undefined, deletedVal: V | undefined): void {
    // A delete event for a route other than the one we track (e.g. a different gateway) says
    // nothing about ours.
    if (value === undefined && deletedVal !== undefined) {
      if (t.getActual(key) !== undefined && !t.actualEquals(key, deletedVal)) return;
    }
    const wasDesired = t.getDesired(key);
    const wasOk = wasDesired !== undefined && t.getActual(key) !== undefined && !t.isPendingWrite(key);
    t.setActual(key, value);
    const nowPending = wasDesired !== undefined && t.isPendingWrite(key);
    if (wasOk && nowPending) {
      this.emit('drift', { kind, key });
      this.isConverged = false;
      this.kick();
    } else if (!t.inSync()) {
      this.kick();
    }
  }

  /** What the trackers' desired sides were last built from: rebuilding from the same is a no-op. */
  private trackersFrom: (Pick<DesiredState, 'routes' | 'neighs' | 'fdb'> & { devIndex: number }) | undefined;

  private applyDesiredToTrackers(): void {
    if (!this.desired || !this.devIndex) return;
    // At 10,000 peers a rebuild walks 30,000 entries: skipped for a table whose desired map
    // is the very one already applied (a new device spec alone, a cold start's full resync).
    const d = this.desired;
    const from = this.trackersFrom;
    const same = from !== undefined && from.devIndex === this.devIndex;
    this.trackersFrom = { routes: d.routes, neighs: d.neighs, fdb: d.fdb, devIndex: this.devIndex };
    if (!same || from.routes !== d.routes) this.routes.replaceDesired(desiredRoutes(d, this.devIndex));
    if (!same || from.neighs !== d.neighs) this.neighs.replaceDesired(desiredNeighs(d, this.devIndex));
    if (this.kernelFdb && (!same || from.fdb !== d.fdb)) this.fdb.replaceDesired(desiredFdb(d, this.devIndex));
  }

  private kick(): void {
    if (this.stopped || this.scheduled || !this.desired) return;
    this.scheduled = setImmediate(() => {
      this.scheduled = undefined;
      this.run();
    });
  }

  private scheduleRetry(): void {
    if (this.retryTimer || this.stopped) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.run();
    }, this.backoffMs);
    this.retryTimer.unref();
    this.backoffMs = Math.min(this.backoffMs * 2, MAX_BACKOFF_MS);
  }

  /** One convergence pass. Synchronous; never throws. */
  run(): void {
    const desired = this.desired;
    if (!desired || this.stopped) return;
    const started = performance.now();
    const full = this.needFull;
    let ok = true;
    try {
      if (this.needDeviceCheck || this.needFull) {
        this.needDeviceCheck = false;
        const dev = this.backend.ensureDevice(this.h, desired.device);
        const asked = this.deviceSpecChanged;
        this.deviceSpecChanged = false;
        if (dev.changes.length > 0) {
          this.log.info({ device: desired.device.name, changes: dev.changes, index: dev.index }, `${this.backend.label} converged`);
          this.emit('applied', { kind: 'device', writes: dev.changes.length, deletes: 0 });
          if (!this.needFull && !asked) this.emit('drift', { kind: 'device', key: desired.device.name });
          // An address, MTU or MAC change keeps the entries: no 30,000-entry dump for those.
          if (dev.entriesLost) {
            this.needFull = true;
            if (!this.fullReason) this.fullReason = 'device changed';
          }
        }
        if (dev.index !== this.devIndex) {
          this.devIndex = dev.index;
          this.applyDesiredToTrackers();
        }
      }
      if (this.needFull) {
        const reason = this.fullReason || 'device changed';
        this.needFull = false;
        this.fullReason = '';
        this.emit('resync', { reason });
        this.applyDesiredToTrackers();
        this.routes.replaceActual(readRoutes(this.h, (k) => this.routes.getDesired(k) !== undefined));
        this.neighs.replaceActual(readNeighs(this.h, this.devIndex));
        if (this.kernelFdb) this.fdb.replaceActual(readFdb(this.h, this.devIndex));
      }
    } catch (err) {
      ok = false;
      this.needFull = true;
      this.needDeviceCheck = true;
      this.fullReason = this.fullReason || 'retry after error';
      this.noteError('device', err as Error);
    }
    if (ok) ok = this.pushExternalFdb(desired);
    if (ok) ok = this.applyPending();
    this.isConverged = ok && this.routes.inSync() && this.neighs.inSync() && this.fdb.inSync() && !this.needFull;
    if (this.isConverged) {
      this.backoffMs = 250;
      this.lastError = undefined;
      this.emit('converged', { durationMs: performance.now() - started, full });
    } else {
      this.scheduleRetry();
    }
  }

  /** Backends that keep the FDB themselves get it before any route that relies on it. */
  private pushExternalFdb(d: DesiredState): boolean {
    if (!this.backend.pushFdb) return true;
    try {
      const res = this.backend.pushFdb(d);
      if (res) {
        this.externalFdbSize = res.size;
        this.emit('applied', { kind: 'fdb', writes: res.writes, deletes: res.deletes });
      }
      return true;
    } catch (err) {
      this.noteError('fdb', err as Error);
      return false;
    }
  }

  private applyPending(): boolean {
    // One entry per request, in parallel arrays: at a cold start with 10,000 peers this is
    // 30,000 requests, and per-request objects and closures were a measurable part of it.
    const reqs: Request[] = [];
    const keys: string[] = [];
    const groups: Array<{ kind: EntryKind; op: 'write' | 'delete'; t: DeltaTracker<never>; end: number }> = [];
    const add = <V>(kind: EntryKind, op: 'write' | 'delete', t: DeltaTracker<V>, keyList: Iterable<string>, val: (k: string) => V, enc: (v: V) => Request): void => {
      for (const k of keyList) {
        keys.push(k);
        reqs.push(enc(val(k)));
      }
      groups.push({ kind, op, t: t as unknown as DeltaTracker<never>, end: reqs.length });
    };
    const desired = <V>(t: DeltaTracker<V>) => (k: string) => t.getDesired(k)!;
    const actual = <V>(t: DeltaTracker<V>) => (k: string) => t.getActual(k)!;
    // Deletes first (routes before the entries they rely on), then writes in the opposite
    // order so a route never exists before its neighbour and FDB entry.
    add('route', 'delete', this.routes, this.routes.pendingDeleteKeys(), actual(this.routes), deleteRoute);
    add('neigh', 'delete', this.neighs, this.neighs.pendingDeleteKeys(), actual(this.neighs), deleteNeigh);
    add('fdb', 'delete', this.fdb, this.fdb.pendingDeleteKeys(), actual(this.fdb), deleteFdb);
    add('fdb', 'write', this.fdb, this.fdb.pendingWriteKeys(), desired(this.fdb), writeFdb);
    add('neigh', 'write', this.neighs, this.neighs.pendingWriteKeys(), desired(this.neighs), writeNeigh);
    add('route', 'write', this.routes, this.routes.pendingWriteKeys(), desired(this.routes), writeRoute);
    if (reqs.length === 0) return true;

    let results: Array<NetlinkError | null>;
    try {
      results = this.h.apply(reqs, 'converge');
    } catch (err) {
      this.noteError('route', err as Error);
      this.needFull = true;
      return false;
    }
    const counts = new Map<EntryKind, { writes: number; deletes: number }>();
    let failures = 0;
    let i = 0;
    for (const g of groups) {
      let ok = 0;
      for (; i < g.end; i++) {
        const err = results[i];
        if (err) {
          failures++;
          if (failures === 1) this.noteError(g.kind, err);
          else this.emit('failed', { kind: g.kind, error: err });
          continue;
        }
        ok++;
        if (g.op === 'write') g.t.written(keys[i]!);
        else g.t.deleted(keys[i]!);
      }
      if (ok === 0) continue;
      const c = counts.get(g.kind) ?? { writes: 0, deletes: 0 };
      if (g.op === 'write') c.writes += ok;
      else c.deletes += ok;
      counts.set(g.kind, c);
    }
    for (const [kind, c] of counts) this.emit('applied', { kind, ...c });
    if (failures > 1) this.log.warn({ failures }, 'some dataplane entries failed; they stay pending and are retried');
    return failures === 0;
  }

  private noteError(kind: EntryKind | 'device', err: Error): void {
    this.emit('failed', { kind, error: err });
    const msg = err.message;
    // Log the first occurrence of each distinct failure, not every retry.
    if (msg !== this.lastError) {
      this.lastError = msg;
      this.log.error({ err, kind }, 'dataplane programming failed; will retry');
    }
  }
}

/** The kernel VXLAN dataplane: device twill.<VNI>, routes, neighbours and FDB via netlink. */
export class KernelReconciler extends Reconciler {
  constructor(h: NetlinkHandle, log: ReconcilerLog, resyncIntervalMs: number) {
    super(h, log, resyncIntervalMs, kernelVxlanBackend);
  }
}
