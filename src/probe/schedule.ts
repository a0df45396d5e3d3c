// When each peer is probed: a bounded, jittered round over every peer.
//
// - The configured interval is the fastest a peer is probed. The whole round is also bounded
//   by a packet budget: with N peers and P probes per peer (small + full size) a round takes at
//   least N·P / rate seconds, so the prober never sends more than `rate` probes per second,
//   whatever N is (Cilium learned this at scale: a fixed 60 s interval made every node send
//   N probes a minute, and large clusters were told to turn health checking off). At 10,000
//   peers, 2 probes each and 100 probes/s, a round is 200 s: 100 probes/s out, ≤100 replies
//   in, and — every host doing the same — about the same number answered for others.
// - New peers start at a random point of the round, and every reschedule is jittered, so a
//   cluster that starts at once does not probe in lockstep.
// - A token bucket (burst: a tenth of a second's budget) enforces the rate exactly; the round
//   length keeps the bucket from being the usual limit.
// Pure: an injected clock (ms) and random source.
import { TokenBucket } from './token-bucket';

export interface ScheduleOptions {
  intervalMs: number;
  /** Upper bound on probes sent per second, all peers together. */
  maxProbesPerSecond: number;
  /** Datagrams per peer per round (a small and a full-size probe: 2). */
  probesPerPeer: number;
  /** Each reschedule lands in round·(1 ± jitter). 0..0.5. */
  jitter: number;
}

interface Slot {
  key: string;
  due: number;
  /** Bumped when the slot is replaced; heap entries carrying an old gen are dropped lazily. */
  gen: number;
}

export class ProbeSchedule {
  private readonly slots = new Map<string, Slot>();
  private heap: Array<{ due: number; key: string; gen: number }> = [];
  private readonly bucket: TokenBucket;

  constructor(
    private readonly opts: ScheduleOptions,
    now: number,
    private readonly random: () => number = Math.random,
  ) {
    if (!(opts.intervalMs > 0) || !(opts.maxProbesPerSecond > 0) || !(opts.probesPerPeer >= 1) || !(opts.jitter >= 0 && opts.jitter <= 0.5)) {
      throw new RangeError('probe schedule: interval > 0, rate > 0, probes per peer >= 1, jitter 0..0.5');
    }
    this.bucket = new TokenBucket(opts.maxProbesPerSecond, Math.max(opts.probesPerPeer, opts.maxProbesPerSecond / 10), now);
  }

  get size(): number {
    return this.slots.size;
  }

  /** How long one round over every peer takes now (ms): the interval, or longer if the rate says so. */
  roundMs(): number {
    const byRate = (this.slots.size * this.opts.probesPerPeer * 1000) / this.opts.maxProbesPerSecond;
    return Math.max(this.opts.intervalMs, byRate);
  }

  /** Makes the schedule hold exactly `keys`: new ones start at a random point of the round. */
  setPeers(keys: Iterable<string>, now: number): void {
    const want = new Set(keys);
    for (const k of this.slots.keys()) if (!want.has(k)) this.slots.delete(k);
    const fresh: string[] = [];
    for (const k of want) if (!this.slots.has(k)) fresh.push(k);
    for (const k of fresh) this.slots.set(k, { key: k, due: 0, gen: 0 });
    const round = this.roundMs();
    for (const k of fresh) this.place(this.slots.get(k)!, now + this.random() * round);
    if (this.heap.length > 4 * this.slots.size + 64) this.compact();
  }

  /** Peers due now, as many as the budget allows; each is rescheduled one jittered round later. */
  take(now: number): string[] {
    const out: string[] = [];
    const round = this.roundMs();
    while (this.heap.length > 0) {
      const top = this.heap[0]!;
      const slot = this.slots.get(top.key);
      if (!slot || slot.gen !== top.gen) {
        this.pop();
        continue;
      }
      if (top.due > now) break;
      if (!this.bucket.take(now, this.opts.probesPerPeer)) break;
      this.pop();
      out.push(slot.key);
      this.place(slot, now + round * (1 + this.opts.jitter * (2 * this.random() - 1)));
    }
    return out;
  }

  /** Milliseconds until the next peer is due (0: now or overdue; Infinity: no peers). */
  nextDueIn(now: number): number {
    while (this.heap.length > 0) {
      const top = this.heap[0]!;
      const slot = this.slots.get(top.key);
      if (slot && slot.gen === top.gen) return Math.max(0, top.due - now);
      this.pop();
    }
    return Infinity;
  }

  private place(slot: Slot, due: number): void {
    slot.gen++;
    slot.due = due;
    this.push({ due, key: slot.key, gen: slot.gen });
  }

  private compact(): void {
    this.heap = [];
    for (const s of this.slots.values()) this.push({ due: s.due, key: s.key, gen: s.gen });
  }

  private push(e: { due: number; key: string; gen: number }): void {
    const h = this.heap;
    h.push(e);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (h[p]!.due <= e.due) break;
      h[i] = h[p]!;
      i = p;
    }
    h[i] = e;
  }

  private pop(): void {
    const h = this.heap;
    const last = h.pop()!;
    if (h.length === 0) return;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= h.length) break;
      const r = l + 1;
      const c = r < h.length && h[r]!.due < h[l]!.due ? r : l;
      if (h[c]!.due >= last.due) break;
      h[i] = h[c]!;
      i = c;
    }
    h[i] = last;
  }
}
