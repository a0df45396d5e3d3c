// A token bucket on an injected clock: `rate` tokens per second, at most `burst` saved up.
// Used to bound what the prober sends and what the responder answers. Pure.

export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(
    readonly rate: number,
    readonly burst: number,
    now: number,
  ) {
    if (!(rate > 0) || !(burst >= 1)) throw new RangeError(`token bucket needs rate > 0 and burst >= 1 (got ${rate}, ${burst})`);
    this.tokens = burst;
    this.last = now;
  }

  private refill(now: number): void {
    if (now > this.last) {
      this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.rate);
      this.last = now;
    }
  }

  /** Takes `n` tokens if there are that many; `now` in milliseconds. */
  take(now: number, n = 1): boolean {
    this.refill(now);
    if (this.tokens < n) return false;
    this.tokens -= n;
    return true;
  }

  available(now: number): number {
    this.refill(now);
    return this.tokens;
  }
}

/**
 * One token bucket per source address, so one noisy or hostile source (a pod flooding a host's
 * responder) spends only its own budget, not its peers'. Remembers at most `maxSources`; when
 * full it starts over (a flood of spoofed sources then costs the global bucket, not memory).
 */
export class PerSourceLimiter {
  private readonly buckets = new Map<number, TokenBucket>();

  constructor(
    readonly rate: number,
    readonly burst: number,
    readonly maxSources = 4096,
  ) {}

  take(source: number, now: number): boolean {
    let b = this.buckets.get(source);
    if (!b) {
      if (this.buckets.size >= this.maxSources) this.buckets.clear();
      this.buckets.set(source, (b = new TokenBucket(this.rate, this.burst, now)));
    }
    return b.take(now);
  }
}
