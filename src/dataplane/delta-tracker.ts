// Desired vs actual for one kind of kernel entry, after felix's deltatracker: the difference
// (what to write, what to delete) is maintained incrementally as either side changes. Drivers
// apply the pending work and report back; failures simply stay pending. Pure: no I/O, no timers.
//
// Memory (issue 13): the actual side is kept only where it differs from the desired one. A
// converged table — at rest, every entry of 10,000 peers — holds one map (desired) and an
// empty `diff`, not a second map of 30,000 kernel copies plus pending-write/delete sets:
//   key not in diff                 → actual equals desired (or both absent): in sync
//   diff[key] = ABSENT, key desired → nothing in the kernel: pending write
//   diff[key] = v,      key desired → the kernel holds v, not equal to desired: pending write
//   diff[key] = v,      not desired → the kernel holds v and we do not want it: pending delete
// Where the sides agree the desired value stands for the actual one (`actualOf`).
//
// The desired side holds what the planner made (D, e.g. a route entry, shared with the plan's
// tables), the actual side what the kernel reports (A); `matches` compares across, `actualOf`
// says what the kernel holds when in sync. So no kernel-shaped copy of each desired entry is
// kept (issue 13: 30,000 objects at 10,000 peers).

const ABSENT: unique symbol = Symbol('absent');

/** Where a full dump goes, entry by entry (DeltaTracker.fillActual). */
export interface ActualSink<A> {
  see(key: string, value: A): void;
  /** What this dump already showed under `key` (an FDB MAC listed with several remotes). */
  seen(key: string): A | undefined;
  /** The dump starts over (the kernel flagged it interrupted): what it showed so far is forgotten. */
  restart(): void;
}

export class DeltaTracker<D, A = D> {
  /** Its owner's map (adopt), changed in place and reported through `changed`. */
  private desired = new Map<string, D>();
  private readonly diff = new Map<string, A | typeof ABSENT>();

  /**
   * `matches(d, a)`: the kernel's `a` is what `d` asks for. `actualOf(d)`: what the kernel holds
   * when in sync with `d` (they may depend on outside state, such as a device's index, that
   * changes only between `pin` and `resettle`).
   */
  constructor(
    private readonly matches: (d: D, a: A) => boolean,
    private readonly actualOf: (d: D) => A,
  ) {}

  /** Records `actual` for `key` against the current desired value. */
  private settle(key: string, actual: A | undefined): void {
    const d = this.desired.get(key);
    if (d !== undefined) {
      if (actual !== undefined && this.matches(d, actual)) this.diff.delete(key);
      else this.diff.set(key, actual === undefined ? ABSENT : actual);
    } else if (actual === undefined) this.diff.delete(key);
    else this.diff.set(key, actual);
  }

  /**
   * Makes `next` itself the desired side, not a copy (issue 13: the reconciler's trackers share
   * the plan index's tables, one map per table at 10,000 peers instead of two); also a new one
   * (a rebuilt index). Its owner changes
   * it in place afterwards and reports each change through `changed`, before anything else
   * reads this tracker. Keys no longer desired become deletions if present; an entry replaced
   * by another object that asks for the same stays in sync.
   */
  adopt(next: Map<string, D>): void {
    const prev = this.desired;
    if (next === prev) return;
    if (prev.size === 0 && this.diff.size === 0) {
      // First fill (a cold start: 30,000 entries): nothing is known to be in the kernel yet.
      this.desired = next;
      for (const key of next.keys()) this.diff.set(key, ABSENT);
      return;
    }
    // What the kernel holds for keys in sync, unless the new entry asks for just that.
    for (const [k, d] of prev) {
      if (this.diff.has(k)) continue;
      const n = next.get(k);
      if (n === d || (n !== undefined && this.matches(n, this.actualOf(d)))) continue;
      this.diff.set(k, this.actualOf(d));
    }
    // New keys, for which the kernel holds nothing as far as we know (not in the diff).
    for (const k of next.keys()) if (!prev.has(k) && !this.diff.has(k)) this.diff.set(k, ABSENT);
    this.desired = next;
    this.resettle();
  }

  /** The owner of an adopted map changed it under `key`; `was` is what it held before (undefined: nothing). */
  changed(key: string, was: D | undefined): void {
    let actual: A | undefined;
    if (this.diff.has(key)) {
      const a = this.diff.get(key)!;
      actual = a === ABSENT ? undefined : a;
    } else actual = was === undefined ? undefined : this.actualOf(was);
    this.settle(key, actual);
  }

  /**
   * Before what `actualOf` and `matches` make of a desired value changes (a device's new index):
   * every key in sync keeps, as what the kernel holds, what the binding in force made of it.
   * `resettle` then judges those keys again under the new binding.
   */
  pin(): void {
    for (const [k, d] of this.desired) if (!this.diff.has(k)) this.diff.set(k, this.actualOf(d));
  }

  resettle(): void {
    for (const [k, a] of [...this.diff]) this.settle(k, a === ABSENT ? undefined : a);
  }

  /** The kernel's truth, from a full dump. */
  replaceActual(next: ReadonlyMap<string, A>): void {
    this.fillActual((into) => {
      for (const [k, v] of next) into.see(k, v);
    });
  }

  /**
   * The kernel's truth from a full dump fed entry by entry as it is read (`fill` runs the
   * dump): each entry is settled and dropped, none is kept for a second pass (issue 13: a
   * resync at 10,000 peers built a map of every table's 10,000 entries first). Keys the dump
   * did not show are gone from the kernel.
   */
  fillActual(fill: (into: ActualSink<A>) => void): void {
    let seen = new Set<string>();
    fill({
      restart: () => {
        seen = new Set();
      },
      see: (k, v) => {
        seen.add(k);
        this.settle(k, v);
      },
      seen: (k) => (seen.has(k) ? this.getActual(k) : undefined),
    });
    // Every key the kernel held before (desired ones in sync, and the diff's) and not now.
    for (const k of [...this.diff.keys()]) if (!seen.has(k)) this.settle(k, undefined);
    for (const k of this.desired.keys()) if (!seen.has(k)) this.settle(k, undefined);
  }

  /** One observed change (a netlink event, or a write we made). undefined = gone. */
  setActual(key: string, value: A | undefined): void {
    this.settle(key, value);
  }

  /** A write succeeded: the kernel now holds the desired value. */
  written(key: string): void {
    if (this.desired.has(key)) this.diff.delete(key);
  }

  /** A delete succeeded (or found nothing). */
  deleted(key: string): void {
    this.settle(key, undefined);
  }

  /** Keys with a pending write (a snapshot: writing them back changes the live set). */
  pendingWriteKeys(): string[] {
    const out: string[] = [];
    for (const k of this.diff.keys()) if (this.desired.has(k)) out.push(k);
    return out;
  }

  /** Keys with a pending delete (a snapshot). */
  pendingDeleteKeys(): string[] {
    const out: string[] = [];
    for (const k of this.diff.keys()) if (!this.desired.has(k)) out.push(k);
    return out;
  }

  pendingWrites(): Array<[string, D]> {
    return this.pendingWriteKeys().map((k) => [k, this.desired.get(k)!]);
  }

  pendingDeletes(): Array<[string, A]> {
    return this.pendingDeleteKeys().map((k) => [k, this.diff.get(k) as A]);
  }

  isPendingWrite(key: string): boolean {
    return this.diff.has(key) && this.desired.has(key);
  }

  getDesired(key: string): D | undefined {
    return this.desired.get(key);
  }

  /** What the kernel holds under `key` (made by `actualOf` for a key in sync). */
  getActual(key: string): A | undefined {
    if (!this.diff.has(key)) {
      const d = this.desired.get(key);
      return d === undefined ? undefined : this.actualOf(d);
    }
    const a = this.diff.get(key);
    return a === ABSENT ? undefined : a;
  }

  get desiredSize(): number {
    return this.desired.size;
  }

  /** Entries the kernel holds: O(entries not in sync), nothing to walk when converged. */
  get actualSize(): number {
    let n = this.desired.size;
    for (const [k, a] of this.diff) {
      if (a === ABSENT) n--;
      else if (!this.desired.has(k)) n++;
    }
    return n;
  }

  inSync(): boolean {
    return this.diff.size === 0;
  }
}
