// Returns a burst's garbage to the system once the burst is over (issue 13: RSS ≤ 100 MB at
// 10,000 peers).
//
// Why: a full convergence at 10,000 peers — the cold start, and the periodic resync every 60 s
// (a re-decode and re-plan of every peer, a dump of 30,000 kernel entries, their bound copies)
// — allocates tens of MB that are garbage a moment later, most of it promoted to V8's old
// generation because it lives through the burst. V8 then keeps those pages committed until its
// memory reducer gets to them: measured here, RSS 116 MB for ~15 s after a cold start (then
// 98 MB) and 118–133 MB for ~10 s after every periodic resync, with ~36 MB of the heap live.
// One compacting full collection when such a burst has converged returns them at once (what the
// memory reducer does later): ~20–50 ms of CPU per full convergence (once a minute), off the
// lease-event path. Compacting, because a plain full GC frees the dead objects but leaves the
// pages they shared with live ones committed (measured: heap committed 67 → 52 MB plain, → 37 MB
// compacting); V8 compacts only on this one collection, not on every full GC.
//
// Between bursts, garbage that outlives the young generation (probe rounds, health summaries
// written to etcd, scrapes) still piles up in the old one until V8 decides to collect, and a
// plain full GC leaves the pages committed. So a governor checks the committed heap every few
// seconds and collects (compacting) when it has grown a few MB past what the last collection
// left: RSS stays near the live size for one ~30-50 ms collection per few MB of garbage.
//
// `gc` exists only when node runs with --expose-gc (TWILLD_NODE_FLAGS, src/install/layout.ts:
// the installed wrapper and the lab pass it); without it only `beforeCollect` runs.
import { getHeapStatistics, setFlagsFromString } from 'node:v8';

/** Delay after the last burst: lets its follow-ups (subnet file, READY=1, code cache save) finish first. */
export const BURST_SETTLE_MS = 1000;
/** Committed V8 heap allowed above what the last collection left before the governor collects. */
export const HEAP_SLACK_BYTES = 4 * 1024 * 1024;
export const HEAP_CHECK_MS = 5000;

/** A full GC that compacts, or undefined when node runs without --expose-gc. */
function compactingGc(): (() => void) | undefined {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (typeof gc !== 'function') return undefined;
  return () => {
    setFlagsFromString('--compact-on-every-full-gc');
    try {
      gc();
    } finally {
      setFlagsFromString('--no-compact-on-every-full-gc');
    }
  };
}

export class BurstCollector {
  private timer: NodeJS.Timeout | undefined;
  private governor: NodeJS.Timeout | undefined;
  /** Committed heap after the last collection. */
  private floor = 0;
  /** Collections run (for tests and logs). */
  runs = 0;

  /** `beforeCollect`: drops what the burst left that is not needed (the peers' compaction). */
  constructor(
    private readonly beforeCollect: () => void = () => undefined,
    private readonly gc: (() => void) | undefined = compactingGc(),
    private readonly settleMs = BURST_SETTLE_MS,
    private readonly heapSize: () => number = () => getHeapStatistics().total_heap_size,
  ) {}

  get available(): boolean {
    return typeof this.gc === 'function';
  }

  /** A burst converged: collect `settleMs` after the last of several bursts in a row (once). */
  burstDone(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.beforeCollect();
      this.collect();
    }, this.settleMs);
    this.timer.unref();
  }

  /** Starts the governor (after the cold start): a collection whenever the heap grew `slack` past the last one's. */
  watchHeap(intervalMs = HEAP_CHECK_MS, slack = HEAP_SLACK_BYTES): void {
    if (!this.gc || this.governor) return;
    if (this.floor === 0) this.floor = this.heapSize();
    this.governor = setInterval(() => {
      if (!this.timer && this.heapSize() > this.floor + slack) this.collect();
    }, intervalMs);
    this.governor.unref();
  }

  private collect(): void {
    if (!this.gc) return;
    this.runs++;
    this.gc();
    this.floor = this.heapSize();
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    if (this.governor) clearInterval(this.governor);
    this.timer = undefined;
    this.governor = undefined;
  }
}
