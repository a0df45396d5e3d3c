// The generic reconciler: converges the kernel to the desired state of whatever backend is
// active, and keeps it there. It knows tables only through their specs (tables.ts) and the
// device only through the driver (driver.ts).
//
// - Nothing is touched until the first desired state arrives (the daemon sets it only after
//   the first full etcd list), so a restart never removes a working entry early.
// - A full resync (start, periodic, device changed, event queue overflow) ensures the device,
//   sweeps links twill owns that the active backend does not want (a backend change), dumps
//   every listed table into the "actual" side of its delta tracker (entry by entry, as the
//   dump arrives); then only the differences are written, in one netlink batch.
// - Netlink events update the actual side incrementally: an entry someone deleted or changed
//   becomes pending and is rewritten on the next run (drift repair, typically < 10 ms).
//   Routes vanish silently when a device goes down or is deleted (IPv4 sends no RTM_DELROUTE
//   for those, nor when its last IPv4 address is removed): any event touching our device
//   therefore triggers a device check, and a full resync if the device was recreated or down
//   or lost an address (a new MTU, MAC or added address keeps the entries).
// - Order within a run: tables a driver keeps itself (the userspace FDB) get new entries, then
//   the netlink batch (src/dataplane/apply-order.ts), then those tables lose what is gone.
// - A failed entry stays pending; the rest still apply. Runs are synchronous (netlink
//   requests are answered inside sendmsg), so there is never more than one run at a time.
import { EventEmitter } from 'node:events';
import type { NetlinkHandle } from '../netlink/handle';
import type { NetlinkEvent } from '../netlink/events';
import type { NetlinkError } from '../netlink/errors';
import type { Request } from '../netlink/socket';
import { applyOrder } from './apply-order';
import { DeltaTracker } from './delta-tracker';
import type { AnyTable, Driver } from './driver';
import type { DesiredState, EntryChange, EntryKind, EntryMap } from './model';
import type { TableCtx } from './tables';

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

export interface ReconcilerOptions {
  resyncIntervalMs: number;
  /** Links twill owns by name (any backend's device): swept when the active backend does not want them. */
  ownsLink?: (name: string) => boolean;
}

const MAX_BACKOFF_MS = 30_000;

/** What the daemon needs from a dataplane. */
export interface Dataplane extends EventEmitter<ReconcilerEvents> {
  setDesired(d: DesiredState): void;
  /**
   * Entries of the last desired state's tables changed in place (one lease event): only these
   * keys are re-judged and written. Changes to tables it was not built from wait for setDesired.
   */
  changeEntries(changes: readonly EntryChange[]): void;
  onEvent(ev: NetlinkEvent): void;
  requestResync(reason: string): void;
  start(): void;
  stop(): void;
  readonly converged: boolean;
  counts(): Partial<Record<EntryKind, number>>;
}

interface Table {
  spec: AnyTable;
  /** Desired: the planner's entries themselves; actual: the kernel's values (bound to the device's index). */
  t: DeltaTracker<unknown, unknown>;
  /** The desired map the tracker was last built from. */
  from: EntryMap | undefined;
}

export class Reconciler extends EventEmitter<ReconcilerEvents> implements Dataplane {
  private desired: DesiredState | undefined;
  private devIndex = 0;
  private readonly tables: Table[];
  private readonly sinkSizes = new Map<EntryKind, number>();
  /** What each sink last took in full (its entries may still be relied on by kernel routes): a copy, and the desired map it came from. */
  private readonly sinkTables = new Map<EntryKind, { held: EntryMap; from: EntryMap }>();
  /** Sinks whose desired map changed in place since they took it. */
  private readonly sinkDirty = new Set<EntryKind>();
  private needFull = true;
  private needDeviceCheck = true;
  /** The desired device changed since it was last ensured: what ensure fixes then is not drift. */
  private deviceSpecChanged = true;
  private fullReason = 'start';
  private scheduled: NodeJS.Immediate | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private resyncTimer: NodeJS.Timeout | undefined;
  private backoffMs = 250;
  private lastError: string | undefined;
  private stopped = false;
  private isConverged = false;
  private readonly ctx: TableCtx;

  constructor(
    protected readonly h: NetlinkHandle,
    private readonly log: ReconcilerLog,
    private readonly opts: ReconcilerOptions,
    readonly driver: Driver,
  ) {
    super();
    this.tables = driver.tables.map((spec) => {
      const bind = (e: unknown): unknown => spec.bind(e as never, this.devIndex);
      return { spec, t: new DeltaTracker<unknown, unknown>((e, a) => spec.equal(bind(e), a), bind), from: undefined };
    });
    const routes = this.tables.find((x) => x.spec.kind === 'route');
    this.ctx = {
      devIndex: 0,
      wanted: (key) => routes !== undefined && routes.t.getDesired(key) !== undefined,
    };
  }

  start(): void {
    this.resyncTimer = setInterval(() => this.requestResync('periodic'), this.opts.resyncIntervalMs);
    this.resyncTimer.unref();
  }

  stop(): void {
    this.stopped = true;
    if (this.scheduled) clearImmediate(this.scheduled);
    if (this.retryTimer) clearTimeout(this.retryTimer);
    if (this.resyncTimer) clearInterval(this.resyncTimer);
    this.driver.stop?.();
  }

  get converged(): boolean {
    return this.isConverged;
  }

  get deviceIndex(): number {
    return this.devIndex;
  }

  counts(): Partial<Record<EntryKind, number>> {
    const out: Partial<Record<EntryKind, number>> = {};
    for (const x of this.tables) out[x.spec.kind] = x.t.actualSize;
    for (const [kind, size] of this.sinkSizes) out[kind] = size;
    return out;
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

  changeEntries(changes: readonly EntryChange[]): void {
    const d = this.desired;
    if (!d || changes.length === 0) return;
    for (const c of changes) {
      const x = this.tables.find((t) => t.spec.kind === c.kind);
      if (!x) {
        this.sinkDirty.add(c.kind);
        continue;
      }
      // The tracker shares the map, already changed; one built from another map is rebuilt whole anyway.
      if (x.from === d.tables[c.kind]) x.t.changed(c.key, c.was);
    }
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
    const d = this.desired;
    if (!d) return;
    if (d.device && ev.kind === 'link' && (ev.link.name === d.device.name || (this.devIndex && ev.link.index === this.devIndex))) {
      this.needDeviceCheck = true;
      if (ev.action === 'del') this.emit('drift', { kind: 'device', key: d.device.name });
      this.kick();
      return;
    }
    if (ev.kind === 'addr' && this.devIndex && ev.addr.index === this.devIndex) {
      this.needDeviceCheck = true;
      // Removing a device's last IPv4 address flushes its routes, silently: dump again.
      if (ev.action === 'del') {
        this.needFull = true;
        if (!this.fullReason) this.fullReason = 'address removed';
      }
      this.kick();
      return;
    }
    for (const x of this.tables) {
      if (x.spec.onDevice && !this.devIndex) continue;
      const o = x.spec.observe(ev, this.ctx);
      if (o) this.observe(x, o.key, o.value, o.deleted);
    }
  }

  private observe(x: Table, key: string, value: unknown, deletedVal: unknown): void {
    const t = x.t;
    // A delete event for an entry other than the one we track (e.g. a route with a different
    // gateway) says nothing about ours.
    if (value === undefined && deletedVal !== undefined) {
      const held = t.getActual(key);
      if (held !== undefined && !x.spec.equal(held, deletedVal)) return;
    }
    const wasDesired = t.getDesired(key);
    const wasOk = wasDesired !== undefined && t.getActual(key) !== undefined && !t.isPendingWrite(key);
    t.setActual(key, value);
    const nowPending = wasDesired !== undefined && t.isPendingWrite(key);
    if (wasOk && nowPending) {
      this.emit('drift', { kind: x.spec.kind, key });
      this.isConverged = false;
      this.kick();
    } else if (!t.inSync()) {
      this.kick();
    }
  }

  private applyDesiredToTrackers(): void {
    const d = this.desired;
    if (!d || (d.device && !this.devIndex)) return;
    for (const x of this.tables) {
      const entries = (d.tables[x.spec.kind] ?? new Map()) as EntryMap;
      // At 10,000 peers a rebuild walks 30,000 entries: skipped for a table whose desired map
      // is the very one already applied (a new device spec alone, a cold start's full resync).
      if (x.from === entries) continue;
      x.from = entries;
      x.t.adopt(entries as Map<string, unknown>);
    }
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
        this.ensureDevice(desired);
      }
      if (this.needFull) {
        const reason = this.fullReason || 'device changed';
        this.needFull = false;
        this.fullReason = '';
        this.emit('resync', { reason });
        this.sweepLinks(desired);
        this.applyDesiredToTrackers();
        for (const x of this.tables) {
          const noDevice = x.spec.onDevice && !this.devIndex; // the kernel holds none of its entries
          x.t.fillActual((into) => {
            if (!noDevice) x.spec.read(this.h, this.ctx, into);
          });
        }
      }
    } catch (err) {
      ok = false;
      this.needFull = true;
      this.needDeviceCheck = true;
      this.fullReason = this.fullReason || 'retry after error';
      this.noteError('device', err as Error);
    }
    // A sink first gets what is new on top of what it holds, and loses what is gone only once
    // the netlink batch went through: a route switching path never points at a missing entry.
    if (ok) ok = this.pushSinks(desired, 'add');
    if (ok) ok = this.applyPending();
    if (ok) ok = this.pushSinks(desired, 'exact');
    this.isConverged = ok && this.tables.every((x) => x.t.inSync()) && !this.needFull && !(this.driver.sinks ?? []).some((k) => k.pending?.());
    if (this.isConverged) {
      this.backoffMs = 250;
      this.lastError = undefined;
      this.emit('converged', { durationMs: performance.now() - started, full });
    } else {
      this.scheduleRetry();
    }
  }

  private ensureDevice(desired: DesiredState): void {
    const spec = desired.device;
    const drv = this.driver.device;
    if (!spec || !drv) {
      this.setDevIndex(0);
      return;
    }
    const dev = drv.ensure(this.h, spec);
    const asked = this.deviceSpecChanged;
    this.deviceSpecChanged = false;
    if (dev.changes.length > 0) {
      this.log.info({ device: spec.name, changes: dev.changes, index: dev.index }, `${drv.label} converged`);
      this.emit('applied', { kind: 'device', writes: dev.changes.length, deletes: 0 });
      if (!this.needFull && !asked) this.emit('drift', { kind: 'device', key: spec.name });
      // An address, MTU or MAC change keeps the entries: no 30,000-entry dump for those.
      if (dev.entriesLost) {
        this.needFull = true;
        if (!this.fullReason) this.fullReason = 'device changed';
      }
    }
    this.setDevIndex(dev.index);
  }

  private setDevIndex(index: number): void {
    if (index === this.devIndex) return;
    // Entries bound to the old index are what the kernel holds until a dump says otherwise.
    for (const x of this.tables) x.t.pin();
    this.devIndex = index;
    this.ctx.devIndex = index;
    for (const x of this.tables) x.t.resettle();
    this.applyDesiredToTrackers();
  }

  /** Another backend's device (the config changed backend): deleted, and every entry on it with it. */
  private sweepLinks(desired: DesiredState): void {
    const owns = this.opts.ownsLink;
    if (!owns) return;
    for (const link of this.h.listLinks()) {
      if (link.name === desired.device?.name || !owns(link.name)) continue;
      this.h.deleteLink(link);
      this.log.info({ device: link.name, kind: link.kind }, 'removed a twill device the active backend does not use');
      this.emit('applied', { kind: 'device', writes: 0, deletes: 1 });
    }
  }

  /**
   * Tables a driver keeps itself: 'add' (before the netlink batch) pushes the desired table
   * plus what the sink held, 'exact' (after it) the desired table alone.
   */
  private pushSinks(d: DesiredState, phase: 'add' | 'exact'): boolean {
    for (const sink of this.driver.sinks ?? []) {
      const want = (d.tables[sink.kind] ?? new Map()) as EntryMap;
      const last = this.sinkTables.get(sink.kind);
      const current = last !== undefined && last.from === want && !this.sinkDirty.has(sink.kind);
      if (current) continue;
      let table = want;
      if (phase === 'add' && last !== undefined) {
        table = new Map(last.held);
        for (const [k, v] of want) table.set(k, v);
      }
      try {
        const res = sink.push(table as EntryMap<never>);
        if (table === want) {
          this.sinkTables.set(sink.kind, { held: new Map(want), from: want });
          this.sinkDirty.delete(sink.kind);
        }
        if (res) {
          this.sinkSizes.set(sink.kind, res.size);
          this.emit('applied', { kind: sink.kind, writes: res.writes, deletes: res.deletes });
        }
      } catch (err) {
        this.noteError(sink.kind, err as Error);
        return false;
      }
    }
    return true;
  }

  private applyPending(): boolean {
    // One entry per request, in parallel arrays: at a cold start with 10,000 peers this is
    // 30,000 requests, and per-request objects and closures were a measurable part of it.
    const reqs: Request[] = [];
    const keys: string[] = [];
    const groups: Array<{ x: Table; op: 'write' | 'delete'; end: number }> = [];
    for (const step of applyOrder(this.tables.map((x) => x.spec))) {
      const x = this.tables.find((y) => y.spec === step.table)!;
      if (step.op === 'delete') {
        for (const k of x.t.pendingDeleteKeys()) {
          keys.push(k);
          reqs.push(x.spec.remove(x.t.getActual(k)));
        }
      } else {
        for (const k of x.t.pendingWriteKeys()) {
          keys.push(k);
          reqs.push(x.spec.write(x.spec.bind(x.t.getDesired(k) as never, this.devIndex)));
        }
      }
      groups.push({ x, op: step.op, end: reqs.length });
    }
    if (reqs.length === 0) return true;

    let results: Array<NetlinkError | null>;
    try {
      results = this.h.apply(reqs, 'converge');
    } catch (err) {
      this.noteError(this.tables[0]!.spec.kind, err as Error);
      this.needFull = true;
      return false;
    }
    const counts = new Map<EntryKind, { writes: number; deletes: number }>();
    let failures = 0;
    let i = 0;
    for (const g of groups) {
      const kind = g.x.spec.kind;
      let ok = 0;
      for (; i < g.end; i++) {
        const err = results[i];
        if (err) {
          failures++;
          if (failures === 1) this.noteError(kind, err);
          else this.emit('failed', { kind, error: err });
          continue;
        }
        ok++;
        if (g.op === 'write') g.x.t.written(keys[i]!);
        else g.x.t.deleted(keys[i]!);
      }
      if (ok === 0) continue;
      const c = counts.get(kind) ?? { writes: 0, deletes: 0 };
      if (g.op === 'write') c.writes += ok;
      else c.deletes += ok;
      counts.set(kind, c);
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
