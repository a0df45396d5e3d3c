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

/** What the schedule keeps on each peer's record (the caller's object: no map or slot here). */
export interface ScheduleSlot {
  /** When the peer is due next, ms, rounded up. */
  due: number;
  /** Where the record sits in the schedule's heap; -1 while not scheduled. */
  pos: number;
}

/**
 * Memory (issue 13): the schedule holds the caller's records (the prober's ProbePeer) in an
 * indexed binary heap and nothing else: no key map, no slot object per peer. Each record knows
 * its position, so a reschedule or removal moves the record itself: no heap entries copied per
 * reschedule and left behind until a compaction.
 */
export class ProbeSchedule<S extends ScheduleSlot> {
  private readonly heap: S[] = [];
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
    return this.heap.length;
  }

  /** How long one round over every peer takes now (ms): the interval, or longer if the rate says so. */
  roundMs(): number {
    return this.roundFor(this.heap.length);
  }

  has(peer: S): boolean {
    return peer.pos >= 0 && this.heap[peer.pos] === peer;
  }

  /** Makes the schedule hold exactly `peers`: new ones start at a random point of the round. */
  setPeers(peers: Iterable<S>, now: number): void {
    const want = new Set(peers);
    for (const p of this.heap.filter((x) => !want.has(x))) this.unlink(p);
    const fresh: S[] = [];
    for (const p of want) if (!this.has(p)) fresh.push(p);
    const round = this.roundFor(this.heap.length + fresh.length);
    for (const p of fresh) this.push(p, Math.ceil(now + this.random() * round));
  }

  /** One peer more (a lease event), at a random point of the round; nothing if it is there. */
  add(peer: S, now: number): void {
    if (this.has(peer)) return;
    this.push(peer, Math.ceil(now + this.random() * this.roundFor(this.heap.length + 1)));
  }

  /** One peer less (a lease event); nothing if it is not scheduled. */
  remove(peer: S): void {
    if (this.has(peer)) this.unlink(peer);
  }

  /** Peers due now, as many as the budget allows; each is rescheduled one jittered round later. */
  take(now: number): S[] {
    const out: S[] = [];
    const round = this.roundMs();
    while (this.heap.length > 0) {
      const top = this.heap[0]!;
      if (top.due > now) break;
      if (!this.bucket.take(now, this.opts.probesPerPeer)) break;
      out.push(top);
      top.due = Math.ceil(now + round * (1 + this.opts.jitter * (2 * this.random() - 1)));
      this.down(0);
    }
    return out;
  }

  /** Milliseconds until the next peer is due (0: now or overdue; Infinity: no peers). */
  nextDueIn(now: number): number {
    const top = this.heap[0];
    return top === undefined ? Infinity : Math.max(0, top.due - now);
  }

  private roundFor(peers: number): number {
    const byRate = (peers * this.opts.probesPerPeer * 1000) / this.opts.maxProbesPerSecond;
    return Math.max(this.opts.intervalMs, byRate);
  }

  private push(peer: S, due: number): void {
    peer.due = due;
    peer.pos = this.heap.length;
    this.heap.push(peer);
    this.up(peer.pos);
  }

  private unlink(peer: S): void {
    const h = this.heap;
    const last = h.pop()!;
    const at = peer.pos;
    peer.pos = -1;
    if (last === peer) return;
    h[at] = last;
    last.pos = at;
    this.up(at);
    this.down(last.pos);
  }

  private up(i: number): void {
    const h = this.heap;
    const e = h[i]!;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (h[p]!.due <= e.due) break;
      h[i] = h[p]!;
      h[i]!.pos = i;
      i = p;
    }
    h[i] = e;
    e.pos = i;
  }

  private down(i: number): void {
    const h = this.heap;
    const e = h[i]!;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= h.length) break;
      const r = l + 1;
      const c = r < h.length && h[r]!.due < h[l]!.due ? r : l;
      if (h[c]!.due >= e.due) break;
      h[i] = h[c]!;
      h[i]!.pos = i;
      i = c;
    }
    h[i] = e;
    e.pos = i;
  }
}
