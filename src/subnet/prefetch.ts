// Early answers for a cold start: the network config, the subnet listing and (optionally) an
// etcd lease are requested at once, so their round trips (and etcd's work for a 10,000-key
// range) overlap whatever the daemon does next. Each answer is taken once; a failed one, or one
// older than PREFETCH_MAX_AGE_MS when it is wanted (a stale config, or a listing the watch
// would have to replay from), counts as none and the caller asks again. An early-granted lease
// nobody takes (our old lease is reused, or it grew stale) is revoked; it carries no key, and
// if the daemon dies first it simply expires.

/** How old a prefetched answer may be to be used. */
export const PREFETCH_MAX_AGE_MS = 2_000;

interface Timed<T> {
  value: T;
  at: number;
}

function timed<T>(p: Promise<T>): Promise<Timed<T>> {
  const t = p.then((value) => ({ value, at: Date.now() }));
  // Failures surface when (and if) the answer is used.
  t.catch(() => undefined);
  return t;
}

async function takeFresh<T>(p: Promise<Timed<T>> | null): Promise<{ value: T } | null> {
  if (!p) return null;
  const got = await p.catch(() => null);
  return got && Date.now() - got.at <= PREFETCH_MAX_AGE_MS ? { value: got.value } : null;
}

export class Prefetch<Listing> {
  private config: Promise<Timed<string | null>> | null = null;
  private listing: Promise<Timed<Listing>> | null = null;
  private grant: Promise<Timed<{ id: string; ttl: number }>> | null = null;

  constructor(private readonly revokeUnused: (leaseId: string) => Promise<void>) {}

  start(reads: { config: Promise<string | null>; listing: Promise<Listing>; grant?: { ttl: number; id: Promise<string> } }): void {
    this.config = timed(reads.config);
    this.listing = timed(reads.listing);
    const g = reads.grant;
    if (g) this.grant = timed(g.id.then((id) => ({ id, ttl: g.ttl })));
  }

  /** The early config read if it succeeded and is fresh (taken once); else null. */
  async takeConfig(): Promise<{ value: string | null } | null> {
    const p = this.config;
    this.config = null;
    return takeFresh(p);
  }

  /** The early listing if it arrived and is fresh (taken once); null means "list now". */
  async takeListing(): Promise<Listing | null> {
    const p = this.listing;
    this.listing = null;
    return (await takeFresh(p))?.value ?? null;
  }

  /** The early-granted lease if it is there, fresh and of this TTL (taken once); else null. */
  async takeGrant(ttlSeconds: number): Promise<string | null> {
    const p = this.grant;
    this.grant = null;
    if (!p) return null;
    const g = await p.catch(() => null);
    if (!g) return null;
    if (g.value.ttl === ttlSeconds && Date.now() - g.at <= PREFETCH_MAX_AGE_MS) return g.value.id;
    void this.revokeUnused(g.value.id);
    return null;
  }

  /** Gives back an early-granted lease nobody took. */
  dropGrant(): void {
    const p = this.grant;
    this.grant = null;
    if (p) p.then((g) => this.revokeUnused(g.value.id), () => undefined);
  }
}
