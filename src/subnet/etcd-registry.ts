// The subnet registry in etcd: the only file that imports etcd3.
//
// What it does: reads `<prefix>/config`, lists and watches `<prefix>/subnets/`, and holds this
// host's lease key `<prefix>/subnets/<a.b.c.d>-<len>` (flannel's layout, see lease.ts) attached
// to an etcd lease, renewing it and putting the key back if etcd ever drops it.
//
// Hard-won rules:
// - Never revoke the etcd lease that holds our key, not even on shutdown: revoking deletes the
//   key, other hosts tear down their routes to us, and pods lose connectivity during a plain
//   restart. close() only stops timers and the client; the key lives out its TTL (24 h by
//   default) and the next start finds it again by PublicIP. For the same reason the high-level
//   `client.lease()` object is not used: its keepalive loop and teardown are not ours to steer,
//   and it cannot adopt the lease a previous run left behind. Grant/keepalive/time-to-live go
//   through the raw lease RPCs instead.
// - Creating a key is a transaction that succeeds only if the key is absent (Version == 0), so
//   two hosts can never both believe they own a subnet. A failed create revokes the fresh etcd
//   lease — unless the key turns out to carry that very lease: the client's retry policy may
//   resend a transaction whose first attempt landed, and revoking would delete our own key.
// - Watching from a compacted revision (also after an outage that spanned a compaction) makes
//   etcd3 emit 'error' "Watcher canceled" with an empty reason, and the watcher is dead: we
//   re-list, hand the handler a full snapshot (resync) and watch again from the new revision.
// - etcd3 re-throws exceptions from event listeners on a later tick (process crash), and an
//   EventEmitter 'error' without a listener throws: every listener here catches, every
//   watcher has an 'error' listener, and every promise started from a timer is caught.
// - During an outage writes fail fast (BrokenCircuitError from the client's circuit breaker);
//   renewal keeps retrying every few seconds, reporting 'renew-failed' each time.
// - etcd3's watch manager handles a failed watch stream twice (its 'error' and then its 'end'),
//   and each time arms a reconnect timer: while etcd is down every failed attempt spawns two
//   more, so reconnect attempts (and 'disconnected' events) doubled every few seconds — over
//   14,000 in a 60 s outage, found by the fault suite. dedupeWatchReconnects() lets one failure
//   arm one reconnect.
import { EventEmitter } from 'node:events';
import * as fs from 'node:fs';
import { Etcd3, EtcdLeaseInvalidError, type CallContext, type IKeyValue, type IOptions, type Watcher } from 'etcd3';
import { type NetworkConfig } from '../config/network';
import { formatIp4, formatPrefix4, prefixesOverlap, type Ip4, type Prefix4 } from '../ip/ipv4';
import { chooseFreeSubnet, describeRange, isSubnetCompatible } from './allocator';
import { etcdError, SubnetError } from './errors';
import { encodeLeaseValue, leaseValuePublicIp, parseSubnetKey, subnetKey, subnetsPrefix, type BackendDataCodec, type Lease } from './lease';

export interface EtcdOptions {
  endpoints: string[];
  prefix: string;
  caFile?: string;
  certFile?: string;
  keyFile?: string;
}

/** The part of a pino logger the registry uses. */
export interface RegistryLogger {
  info(o: object, m: string): void;
  warn(o: object, m: string): void;
  error(o: object, m: string): void;
  debug(o: object, m: string): void;
}

export interface AcquireRequest {
  config: NetworkConfig;
  publicIp: Ip4;
  /** The active backend's BackendData codec, and our BackendData (a VTEP MAC, nothing for host-gw). */
  codec: BackendDataCodec;
  backendData: unknown;
  /** E.g. the subnet recorded in the subnet file by a previous run. */
  preferred?: Prefix4;
  ttlSeconds: number;
  renewMarginSeconds: number;
  /**
   * Called once per attempt when the subnet is chosen, before anything is written, with the
   * listing it was chosen from. Peers' entries do not depend on which subnet we get, so a cold
   * start can program them while the lease is granted and written; the lease may still be
   * lost to a race (then this is called again) or fail (acquire rejects).
   */
  onPlanned?: (lease: Lease, listing: SubnetListing) => void;
}

/** Every key under `<prefix>/subnets/` and its value, as of `revision`. */
export interface SubnetListing {
  revision: string;
  entries: Map<string, string>;
}

export interface SubnetWatchHandler {
  put(key: string, value: string): void;
  delete(key: string): void;
  /** Full state of `<prefix>/subnets/` at `revision`; replaces everything seen before. */
  resync(entries: Map<string, string>, revision: string): void;
}

export type WatchErrorPhase = 'disconnected' | 'canceled' | 'relist';

export type EtcdRegistryEvents = {
  /** Our etcd lease was refreshed; `ttlSeconds` is what etcd reports now. */
  renewed: [lease: Lease, ttlSeconds: number];
  /** A renewal attempt failed (etcd unreachable, ...); it is retried in a few seconds. */
  'renew-failed': [err: SubnetError];
  /** Our key had vanished (lease expired/revoked, key deleted) and was put back. */
  reacquired: [lease: Lease];
  /** Another host holds our subnet now; renewal stopped. The daemon decides what to do. */
  lost: [info: { lease: Lease; holderValue: string }];
  /** The subnet watch had a problem (for metrics); it recovers by itself. */
  'watch-error': [err: SubnetError, phase: WatchErrorPhase];
};

/** Conflicts tolerated per acquire before giving up (flannel uses the same bound). */
const RACE_RETRIES = 10;
/** Deadline for every unary etcd call, so no await hangs forever during an outage. */
const CALL_TIMEOUT_MS = 10_000;
const RETRY_MAX_MS = 5_000;
const WATCH_BACKOFF_MIN_MS = 100;
const WATCH_BACKOFF_MAX_MS = 5_000;
const CANCEL_TIMEOUT_MS = 1_000;
/** How old a prefetched subnet listing may be for acquire to use it (see prefetch()). */
const PREFETCH_MAX_AGE_MS = 2_000;
const WATCH_RECONNECT_MIN_MS = 200;
const WATCH_RECONNECT_MAX_MS = 5_000;

let keyFileWarned = false;

/** One key of a subnet listing, decoded once. */
interface ListedKey {
  kv: IKeyValue;
  key: string;
  value: string;
  /** null: not a lease key (see parseSubnetKey). */
  subnet: Prefix4 | null;
}

interface Held {
  lease: Lease;
  key: string;
  value: string;
  leaseId: string;
  ttlSeconds: number;
  renewMarginSeconds: number;
}

interface WatchState {
  handler: SubnetWatchHandler;
  watcher: Watcher | null;
  failures: number;
  timer: NodeJS.Timeout | null;
}

/**
 * How long to wait between renewals: TTL minus the margin, but at least 1 s and at most half
 * the TTL, so that even a renewal that fails leaves half a TTL of retries before expiry.
 */
export function renewIntervalMs(ttlSeconds: number, renewMarginSeconds: number): number {
  const upper = Math.max(1, ttlSeconds / 2);
  return Math.round(1000 * Math.min(upper, Math.max(1, ttlSeconds - renewMarginSeconds)));
}

/**
 * etcd3's watch-stream reconnect backoff (cockatiel's IBackoff shape). Its default grows to
 * 30 s, and the client arms that timer — referenced, so it keeps Node running — every time the
 * stream ends, including when we cancel our last watcher or close the client. Ours is capped at
 * 5 s and reports 0 once the registry is closed, so close() lets the process exit at once.
 */
class WatchBackoff {
  constructor(
    private readonly attempt: number,
    private readonly isClosed: () => boolean,
  ) {}

  get duration(): number {
    if (this.isClosed()) return 0;
    const cap = Math.min(WATCH_RECONNECT_MAX_MS, WATCH_RECONNECT_MIN_MS * 2 ** Math.max(0, this.attempt));
    return Math.round(cap / 2 + (Math.random() * cap) / 2);
  }

  next(): WatchBackoff {
    return new WatchBackoff(this.attempt + 1, this.isClosed);
  }
}

/** The parts of etcd3 1.1.2's (private) WatchManager that dedupeWatchReconnects() wraps. */
interface WatchManagerInternals {
  handleError(err: Error): void;
  establishStream(): void;
}

/**
 * Makes etcd3's watch manager arm at most one reconnect per stream failure (see the note at the
 * top). A failure reported while a reconnect is already pending is dropped: the stream is gone
 * and its watchers were told once. The pending reconnect (or a new watcher attaching) calls
 * establishStream(), which re-arms failure handling. etcd3 is pinned, so the private shape is
 * stable; if it ever differs, nothing is wrapped.
 */
function dedupeWatchReconnects(client: Etcd3): void {
  const wm = (client as unknown as { watchManager?: Partial<WatchManagerInternals> }).watchManager;
  if (!wm || typeof wm.handleError !== 'function' || typeof wm.establishStream !== 'function') return;
  const handleError = wm.handleError.bind(wm);
  const establishStream = wm.establishStream.bind(wm);
  let reconnectPending = false;
  wm.handleError = (err: Error): void => {
    if (reconnectPending) return;
    reconnectPending = true;
    handleError(err);
  };
  wm.establishStream = (): void => {
    reconnectPending = false;
    establishStream();
  };
}

function retryIntervalMs(renewMs: number): number {
  return Math.min(RETRY_MAX_MS, Math.max(500, Math.round(renewMs / 2)));
}

function nextRevision(rev: string): string {
  return (BigInt(rev) + 1n).toString();
}

function toEntries(kvs: IKeyValue[]): Map<string, string> {
  const entries = new Map<string, string>();
  for (const kv of kvs) {
    const { key, value } = kvString(kv);
    entries.set(key, value);
  }
  return entries;
}

function kvString(kv: IKeyValue): { key: string; value: string } {
  return { key: kv.key.toString('utf8'), value: kv.value.toString('utf8') };
}

function readFileFor(what: string, path: string): Buffer {
  try {
    return fs.readFileSync(path);
  } catch (err) {
    throw new SubnetError('ERR_ETCD', `cannot read etcd ${what} file ${path}`, { cause: err });
  }
}

export class EtcdRegistry extends EventEmitter<EtcdRegistryEvents> {
  readonly prefix: string;
  private readonly client: Etcd3;
  private readonly log: RegistryLogger;
  private closed = false;
  /** Serialises acquire and lease maintenance: they read-modify-write the same key. */
  private chain: Promise<unknown> = Promise.resolve();
  private held: Held | null = null;
  /** The lease another host took from us ('lost'): taken back as soon as its key is free again. */
  private lostHeld: Held | null = null;
  private renewTimer: NodeJS.Timeout | null = null;
  private maintenanceQueued = false;
  private watchState: WatchState | null = null;

  private constructor(prefix: string, options: IOptions, log: RegistryLogger) {
    super();
    this.prefix = prefix;
    this.log = log;
    this.client = new Etcd3({ ...options, faultHandling: { watchBackoff: new WatchBackoff(-1, () => this.closed) } });
    dedupeWatchReconnects(this.client);
  }

  static create(opts: EtcdOptions, log: RegistryLogger): EtcdRegistry {
    if (opts.endpoints.length === 0) throw new SubnetError('ERR_ETCD', 'no etcd endpoints given');
    if (Boolean(opts.certFile) !== Boolean(opts.keyFile)) {
      throw new SubnetError('ERR_ETCD', 'etcd certFile and keyFile must be given together');
    }
    const options: IOptions = {
      hosts: opts.endpoints,
      dialTimeout: CALL_TIMEOUT_MS,
      defaultCallOptions: (ctx: CallContext) => (ctx.isStream ? {} : { deadline: Date.now() + CALL_TIMEOUT_MS }),
      grpcOptions: {
        // gRPC's own reconnect backoff grows to 2 minutes; after an etcd outage we want the
        // watch and renewals back within seconds.
        'grpc.initial_reconnect_backoff_ms': 500,
        'grpc.max_reconnect_backoff_ms': WATCH_RECONNECT_MAX_MS,
        // A watch on a silently dead TCP connection (etcd host powered off) would otherwise
        // wait forever; etcd permits pings every 5 s or more.
        'grpc.keepalive_time_ms': 30_000,
        'grpc.keepalive_timeout_ms': 10_000,
      },
    };
    if (opts.caFile || opts.certFile) {
      if (opts.keyFile) warnIfKeyFileReadable(opts.keyFile, log);
      // Without a CA file gRPC falls back to the system roots (the typings insist on a Buffer).
      options.credentials = {
        rootCertificate: (opts.caFile ? readFileFor('CA', opts.caFile) : undefined) as Buffer,
        ...(opts.certFile ? { certChain: readFileFor('certificate', opts.certFile) } : {}),
        ...(opts.keyFile ? { privateKey: readFileFor('key', opts.keyFile) } : {}),
      };
    }
    // flannel joins with path.Join, which drops a trailing slash.
    const prefix = opts.prefix.length > 1 ? opts.prefix.replace(/\/+$/, '') : opts.prefix;
    const tls = Boolean(options.credentials) || opts.endpoints.some((e) => e.startsWith('https:'));
    log.info({ endpoints: opts.endpoints, prefix, tls, clientCert: Boolean(opts.certFile) }, 'etcd registry created');
    return new EtcdRegistry(prefix, options, log);
  }

  /** The lease this registry currently holds, if any. */
  get ownLease(): Lease | null {
    return this.held ? this.held.lease : null;
  }

  // ---- reads ---------------------------------------------------------------------------------

  /**
   * Starts reading the network config and the subnet listing now, so that both round trips
   * (and etcd's work for a 10,000-key range) overlap whatever the caller does next. The next
   * getConfigText() and the first acquire attempt use the answers; a failed read is simply
   * made again then, and so is one older than PREFETCH_MAX_AGE_MS when it is wanted (a stale
   * config, or a listing the watch would have to replay from).
   * With `grantTtlSeconds`, an etcd lease is granted now too, for the first acquire that needs
   * a fresh one: one round trip fewer between choosing a subnet and holding it. It carries no
   * key until then; if unused (our old lease is reused, or it grew stale) it is revoked, and
   * if the daemon dies first it simply expires.
   */
  prefetch(opts: { grantTtlSeconds?: number } = {}): void {
    this.assertOpen();
    const config = this.getConfigText().then((text) => ({ text, at: Date.now() }));
    const listing = this.listRaw().then((l) => ({ ...l, at: Date.now() }));
    // Failures surface when (and if) the answer is used.
    config.catch(() => undefined);
    listing.catch(() => undefined);
    this.prefetchedConfig = config;
    this.prefetchedListing = listing;
    const ttl = opts.grantTtlSeconds;
    if (ttl !== undefined) {
      const grant = this.grant(ttl).then((id) => ({ id, ttl, at: Date.now() }));
      grant.catch(() => undefined);
      this.prefetchedGrant = grant;
    }
  }

  private prefetchedConfig: Promise<{ text: string | null; at: number }> | null = null;
  private prefetchedListing: Promise<{ revision: string; kvs: IKeyValue[]; at: number }> | null = null;
  private prefetchedGrant: Promise<{ id: string; ttl: number; at: number }> | null = null;

  /** The early-granted lease if it is there, fresh and of this TTL (taken once); else null. */
  private async takePrefetchedGrant(ttlSeconds: number): Promise<string | null> {
    const p = this.prefetchedGrant;
    this.prefetchedGrant = null;
    if (!p) return null;
    const g = await p.catch(() => null);
    if (!g) return null;
    if (g.ttl === ttlSeconds && Date.now() - g.at <= PREFETCH_MAX_AGE_MS) return g.id;
    void this.revokeUnused(g.id);
    return null;
  }

  /** Gives back an early-granted lease nobody took. */
  private dropPrefetchedGrant(): void {
    const p = this.prefetchedGrant;
    this.prefetchedGrant = null;
    if (p) p.then((g) => this.revokeUnused(g.id), () => undefined);
  }

  /** The prefetched listing if it arrived and is fresh enough; null means "list now". */
  private async takePrefetchedListing(): Promise<{ revision: string; kvs: IKeyValue[] } | null> {
    const p = this.prefetchedListing;
    this.prefetchedListing = null;
    if (!p) return null;
    try {
      const l = await p;
      return Date.now() - l.at <= PREFETCH_MAX_AGE_MS ? l : null;
    } catch {
      return null;
    }
  }

  async getConfigText(): Promise<string | null> {
    this.assertOpen();
    const pre = this.prefetchedConfig;
    this.prefetchedConfig = null;
    if (pre) {
      // A failed or stale early read: read again (the same call as below).
      const got = await pre.catch(() => null);
      if (got && Date.now() - got.at <= PREFETCH_MAX_AGE_MS) return got.text;
    }
    try {
      return await this.client.get(`${this.prefix}/config`).string();
    } catch (err) {
      throw etcdError('get config', err);
    }
  }

  /**
   * The full listing the last successful acquire worked from (taken once). A cold start can
   * watch from its revision instead of reading 10,000 keys again: our own write comes after
   * it and arrives through the watch like any other change.
   */
  takeAcquireListing(): SubnetListing | null {
    const l = this.acquireListing;
    this.acquireListing = null;
    return l;
  }

  async listSubnets(): Promise<SubnetListing> {
    const { revision, kvs } = await this.listRaw();
    return { revision, entries: toEntries(kvs) };
  }

  private acquireListing: SubnetListing | null = null;

  private async listRaw(): Promise<{ revision: string; kvs: IKeyValue[] }> {
    this.assertOpen();
    try {
      const res = await this.client.getAll().prefix(subnetsPrefix(this.prefix)).exec();
      return { revision: res.header.revision, kvs: res.kvs };
    } catch (err) {
      throw etcdError('list subnets', err);
    }
  }

  // ---- acquiring -----------------------------------------------------------------------------

  /**
   * Leases a subnet for this host: our existing key (same PublicIP) if there is one, else
   * `preferred` if free, else a random free subnet. Keeps it renewed until close().
   */
  acquire(req: AcquireRequest): Promise<Lease> {
    try {
      this.assertOpen();
      if (!Number.isInteger(req.ttlSeconds) || req.ttlSeconds < 1) throw new RangeError(`ttlSeconds must be a positive integer, got ${req.ttlSeconds}`);
      if (!(req.renewMarginSeconds >= 0)) throw new RangeError(`renewMarginSeconds must not be negative, got ${req.renewMarginSeconds}`);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.serial(() => this.doAcquire(req));
  }

  private async doAcquire(req: AcquireRequest): Promise<Lease> {
    for (let attempt = 1; attempt <= RACE_RETRIES; attempt++) {
      const { revision, kvs } = (attempt === 1 ? await this.takePrefetchedListing() : null) ?? (await this.listRaw());
      this.log.debug({ keys: kvs.length, revision, attempt }, 'subnet listing in');
      // Keys and values as strings, and key → subnet, once: tryAcquire and the daemon's first
      // desired state both read all of them (10,000 at a large cluster's cold start).
      const listed: ListedKey[] = new Array(kvs.length);
      for (let i = 0; i < kvs.length; i++) {
        const kv = kvs[i]!;
        const key = kv.key.toString('utf8');
        listed[i] = { kv, key, value: kv.value.toString('utf8'), subnet: parseSubnetKey(this.prefix, key) };
      }
      const entries = new Map<string, string>();
      for (const e of listed) entries.set(e.key, e.value);
      const listing: SubnetListing = { revision, entries };
      const held = await this.tryAcquire(req, listed, listing);
      if (held) {
        // An early grant nobody needed (our old lease was adopted): give it back.
        this.dropPrefetchedGrant();
        this.acquireListing = listing;
        this.stopRenewing();
        this.held = held;
        this.scheduleRenew(renewIntervalMs(held.ttlSeconds, held.renewMarginSeconds));
        this.log.info({ subnet: formatPrefix4(held.lease.subnet), publicIp: formatIp4(req.publicIp), leaseId: held.leaseId, attempt }, 'subnet lease acquired');
        return held.lease;
      }
      this.log.debug({ attempt }, 'lost a race for a subnet, retrying');
    }
    throw new SubnetError('ERR_LEASE_CONFLICT', `could not lease a subnet after ${RACE_RETRIES} attempts: other hosts kept taking the chosen subnets`);
  }

  /** One round: null means "someone changed the key under us, list again". */
  private async tryAcquire(req: AcquireRequest, listed: ListedKey[], listing: SubnetListing): Promise<Held | null> {
    const planned = (subnet: Prefix4): void => {
      try {
        req.onPlanned?.(this.leaseFor(req, subnet), listing);
      } catch (err) {
        // The caller's early start is an optimisation: its failure must not cost the lease.
        this.log.warn({ err }, 'onPlanned hook failed');
      }
    };
    const { config } = req;
    // In key order (etcd answers a range in key order already: then this is one pass).
    const byKey = (a: ListedKey, b: ListedKey): number => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0);
    let sorted = true;
    for (let i = 1; i < listed.length && sorted; i++) sorted = byKey(listed[i - 1]!, listed[i]!) <= 0;
    const entries = sorted ? listed : [...listed].sort(byKey);

    // 1. Our own key from an earlier run, found by PublicIP as flannel does.
    let mine: ListedKey | null = null;
    // A value without escapes can name our PublicIP only if it contains its dotted form (the
    // one form parseIp4 accepts): a cheap test that skips decoding 10,000 foreign leases.
    const ipText = formatIp4(req.publicIp);
    for (const e of entries) {
      if (!e.subnet || (!e.value.includes(ipText) && !e.value.includes('\\'))) continue;
      if (leaseValuePublicIp(e.value) !== req.publicIp) continue;
      if (!isSubnetCompatible(config, e.subnet)) {
        // The network config changed under it: flannel deletes such a lease; so do we, but only
        // if nobody rewrote it meanwhile.
        this.log.info({ subnet: formatPrefix4(e.subnet) }, 'own lease does not fit the network config, deleting it');
        await this.deleteIfUnchanged(e.key, e.kv.mod_revision);
        continue;
      }
      if (mine) {
        this.log.warn({ subnet: formatPrefix4(e.subnet), using: formatPrefix4(mine.subnet!) }, 'another lease names our PublicIP too; leaving it to expire');
        continue;
      }
      mine = e;
    }
    if (mine) {
      planned(mine.subnet!);
      return this.reuse(req, mine.subnet!, mine.kv);
    }

    const taken: Prefix4[] = [];
    for (const e of entries) if (e.subnet) taken.push(e.subnet);

    // 2. The subnet we had before (subnet file), if it is still free and fits the config.
    if (req.preferred) {
      const p = req.preferred;
      if (!isSubnetCompatible(config, p)) {
        this.log.warn({ preferred: formatPrefix4(p) }, 'preferred subnet does not fit the network config, ignoring it');
      } else if (!taken.some((t) => prefixesOverlap(t, p))) {
        planned(p);
        return this.create(req, p);
      }
    }

    // 3. A random free one.
    const chosen = chooseFreeSubnet(config, taken, Math.random);
    if (!chosen) {
      throw new SubnetError('ERR_OUT_OF_SUBNETS', `out of subnets: all of ${describeRange(config)} in ${formatPrefix4(config.network)} are leased`);
    }
    planned(chosen);
    return this.create(req, chosen);
  }

  private leaseFor(req: AcquireRequest, subnet: Prefix4): Lease {
    return { subnet, publicIp: req.publicIp, publicIpv6: null, backendType: req.codec.type, backendData: req.backendData };
  }

  private heldFor(req: AcquireRequest, lease: Lease, leaseId: string): Held {
    return {
      lease,
      key: subnetKey(this.prefix, lease.subnet),
      value: encodeLeaseValue(lease, req.codec),
      leaseId,
      ttlSeconds: req.ttlSeconds,
      renewMarginSeconds: req.renewMarginSeconds,
    };
  }

  /** Create-if-absent under a fresh etcd lease. */
  private async create(req: AcquireRequest, subnet: Prefix4): Promise<Held | null> {
    const lease = this.leaseFor(req, subnet);
    const held = this.heldFor(req, lease, '0');
    const leaseId = (await this.takePrefetchedGrant(req.ttlSeconds)) ?? (await this.grant(req.ttlSeconds));
    this.log.debug({ leaseId }, 'etcd lease granted');
    const existing = await this.putIf(held.key, held.value, leaseId, null);
    if (existing === 'ok') return { ...held, leaseId };
    await this.revokeUnused(leaseId);
    return null;
  }

  /** Take our existing key back, adopting its etcd lease when that is alive and of the right TTL. */
  private async reuse(req: AcquireRequest, subnet: Prefix4, kv: IKeyValue): Promise<Held | null> {
    const lease = this.leaseFor(req, subnet);
    const held = this.heldFor(req, lease, '0');
    let leaseId: string | null = null;
    if (kv.lease !== '0') {
      try {
        const info = await this.client.leaseClient.leaseTimeToLive({ ID: kv.lease });
        if (Number(info.TTL) > 0 && Number(info.grantedTTL) === req.ttlSeconds && (await this.keepaliveOnce(kv.lease)) > 0) {
          leaseId = kv.lease;
        }
      } catch (err) {
        throw etcdError('lease time-to-live', err);
      }
    }
    if (leaseId !== null && kv.value.toString('utf8') === held.value) {
      this.log.info({ subnet: formatPrefix4(subnet), leaseId }, 'reusing our existing lease unchanged');
      return { ...held, leaseId };
    }
    const fresh = leaseId === null;
    const useId = leaseId ?? (await this.takePrefetchedGrant(req.ttlSeconds)) ?? (await this.grant(req.ttlSeconds));
    const res = await this.putIf(held.key, held.value, useId, kv.mod_revision);
    if (res === 'ok') {
      this.log.info({ subnet: formatPrefix4(subnet), leaseId: useId, freshLease: fresh }, 'reusing our existing subnet, value rewritten');
      return { ...held, leaseId: useId };
    }
    if (fresh) await this.revokeUnused(useId);
    return null;
  }

  private async grant(ttlSeconds: number): Promise<string> {
    try {
      const res = await this.client.leaseClient.leaseGrant({ TTL: ttlSeconds, ID: 0 });
      return res.ID;
    } catch (err) {
      throw etcdError('lease grant', err);
    }
  }

  /**
   * Puts key=value attached to leaseId, if the key is absent (modRevision null) or still at
   * modRevision. Returns 'ok', or the key's current state when the condition failed.
   */
  private async putIf(key: string, value: string, leaseId: string, modRevision: string | null): Promise<'ok' | { kv: IKeyValue | null }> {
    let res;
    try {
      const cond = modRevision === null ? this.client.if(key, 'Version', '==', 0) : this.client.if(key, 'Mod', '==', modRevision);
      res = await cond.then(this.client.put(key).value(value).lease(leaseId)).else(this.client.get(key)).commit();
    } catch (err) {
      throw etcdError('transaction', err);
    }
    if (res.succeeded) return 'ok';
    const kv = res.responses[0]?.response_range?.kvs[0] ?? null;
    // A retried transaction whose first attempt landed: the key already carries our lease.
    if (kv && kv.lease === leaseId && kv.value.toString('utf8') === value) return 'ok';
    return { kv };
  }

  private async deleteIfUnchanged(key: string, modRevision: string): Promise<void> {
    try {
      await this.client.if(key, 'Mod', '==', modRevision).then(this.client.delete().key(key)).commit();
    } catch (err) {
      throw etcdError('delete stale lease', err);
    }
  }

  /** Revokes a lease we granted that holds no key (so revoking cannot delete anything). */
  private async revokeUnused(leaseId: string): Promise<void> {
    try {
      await this.client.leaseClient.leaseRevoke({ ID: leaseId });
    } catch (err) {
      // Harmless: it holds nothing and expires by itself.
      this.log.debug({ leaseId, err }, 'could not revoke an unused etcd lease');
    }
  }

  /** One keepalive on the raw stream; resolves to the TTL etcd reports (0: lease gone). */
  private async keepaliveOnce(leaseId: string): Promise<number> {
    const stream = await this.client.leaseClient.leaseKeepAlive();
    return new Promise<number>((resolve, reject) => {
      let done = false;
      const finish = (f: () => void): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        try {
          stream.end();
        } catch {
          // already closed
        }
        f();
      };
      const timer = setTimeout(() => finish(() => reject(new SubnetError('ERR_ETCD', `etcd keepalive of lease ${leaseId} timed out`))), CALL_TIMEOUT_MS);
      stream.on('data', (res) => finish(() => resolve(Number(res.TTL))));
      stream.on('error', (err) => finish(() => reject(err)));
      stream.on('end', () => finish(() => reject(new SubnetError('ERR_ETCD', `etcd keepalive stream for lease ${leaseId} ended without an answer`))));
      stream.write({ ID: leaseId });
    });
  }

  // ---- keeping the lease ---------------------------------------------------------------------

  private scheduleRenew(ms: number): void {
    if (this.closed || !this.held) return;
    if (this.renewTimer) clearTimeout(this.renewTimer);
    this.renewTimer = setTimeout(() => {
      this.renewTimer = null;
      this.queueMaintenance();
    }, ms);
    // The daemon's own servers keep the process alive; a pending renewal should not.
    this.renewTimer.unref();
  }

  private stopRenewing(): void {
    if (this.renewTimer) clearTimeout(this.renewTimer);
    this.renewTimer = null;
  }

  /** Runs maintenance soon (after any acquire in flight); coalesces repeated requests. */
  private queueMaintenance(): void {
    if (this.closed || !this.held || this.maintenanceQueued) return;
    this.maintenanceQueued = true;
    this.serial(async () => {
      this.maintenanceQueued = false;
      await this.maintain();
    }).catch((err: unknown) => {
      // maintain() catches its own failures; this is a last line of defence.
      this.log.error({ err }, 'lease maintenance failed unexpectedly');
    });
  }

  private async maintain(): Promise<void> {
    const h = this.held;
    if (!h || this.closed) return;
    const renewMs = renewIntervalMs(h.ttlSeconds, h.renewMarginSeconds);
    try {
      let ttl: number;
      try {
        ttl = await this.keepaliveOnce(h.leaseId);
      } catch (err) {
        // etcd 3.4 answers an unknown lease with TTL 0, but "lease not found" means the same.
        if (!(err instanceof EtcdLeaseInvalidError)) throw etcdError('lease keepalive', err);
        ttl = 0;
      }
      if (ttl > 0) {
        let kv: IKeyValue | null;
        try {
          kv = (await this.client.get(h.key).exec()).kvs[0] ?? null;
        } catch (err) {
          throw etcdError('get own lease', err);
        }
        if (kv && kv.lease === h.leaseId && kv.value.toString('utf8') === h.value) {
          this.log.debug({ subnet: formatPrefix4(h.lease.subnet), ttl }, 'subnet lease renewed');
          this.emitSafe('renewed', h.lease, ttl);
          this.scheduleRenew(renewMs);
          return;
        }
        await this.reput(h, h.leaseId, kv);
      } else {
        this.log.warn({ subnet: formatPrefix4(h.lease.subnet), leaseId: h.leaseId }, 'etcd lease expired or was revoked, granting a new one');
        await this.reput(h, null, undefined);
      }
    } catch (err) {
      if (this.closed || this.held !== h) return;
      const e = etcdError('renew', err);
      this.log.warn({ err: e, subnet: formatPrefix4(h.lease.subnet) }, 'subnet lease renewal failed, will retry');
      this.emitSafe('renew-failed', e);
      this.scheduleRenew(retryIntervalMs(renewMs));
    }
  }

  /**
   * Puts our key back: create-if-absent, or overwrite if it still names our PublicIP.
   * `liveLeaseId` is our etcd lease when it is still alive (null: grant a new one).
   * `known` is the key's state if just read (undefined: read it).
   */
  private async reput(h: Held, liveLeaseId: string | null, known: IKeyValue | null | undefined): Promise<void> {
    let fresh: string | null = null;
    let kv = known;
    for (let attempt = 1; attempt <= RACE_RETRIES; attempt++) {
      if (kv === undefined) {
        try {
          kv = (await this.client.get(h.key).exec()).kvs[0] ?? null;
        } catch (err) {
          throw etcdError('get own lease', err);
        }
      }
      if (kv && leaseValuePublicIp(kv.value.toString('utf8')) !== h.lease.publicIp) {
        const holderValue = kv.value.toString('utf8');
        this.log.error({ subnet: formatPrefix4(h.lease.subnet), holderValue }, 'our subnet is now held by another host');
        this.held = null;
        this.lostHeld = h;
        this.stopRenewing();
        if (fresh) await this.revokeUnused(fresh);
        this.emitSafe('lost', { lease: h.lease, holderValue });
        return;
      }
      const leaseId = liveLeaseId ?? (fresh ??= await this.grant(h.ttlSeconds));
      const res = await this.putIf(h.key, h.value, leaseId, kv ? kv.mod_revision : null);
      if (res === 'ok') {
        if (this.held === h) {
          h.leaseId = leaseId;
          this.log.warn({ subnet: formatPrefix4(h.lease.subnet), leaseId }, 'subnet lease put back');
          this.emitSafe('reacquired', h.lease);
          this.scheduleRenew(renewIntervalMs(h.ttlSeconds, h.renewMarginSeconds));
        }
        return;
      }
      kv = res.kv;
    }
    if (fresh) await this.revokeUnused(fresh);
    throw new SubnetError('ERR_LEASE_CONFLICT', `could not put back the lease for ${formatPrefix4(h.lease.subnet)}: the key kept changing`);
  }

  /** Called when the watch shows our key deleted or rewritten: check at once, not at the next renewal. */
  private onOwnKeyEvent(key: string, value: string | null): void {
    const h = this.held ?? this.lostHeld;
    if (!h || key !== h.key) return;
    if (value !== null && value === h.value) return;
    if (!this.held) {
      // Lost to another host: our pods still use this subnet, so take it back once it is free
      // (maintain() re-creates the key only if it is absent or names our PublicIP).
      if (value !== null && leaseValuePublicIp(value) !== h.lease.publicIp) return;
      this.log.info({ subnet: formatPrefix4(h.lease.subnet) }, 'the subnet we lost is free again, taking it back');
      this.held = h;
      this.lostHeld = null;
    }
    this.log.info({ subnet: formatPrefix4(h.lease.subnet), deleted: value === null }, 'our lease key changed in etcd, checking it now');
    this.stopRenewing();
    this.queueMaintenance();
  }

  // ---- watching ------------------------------------------------------------------------------

  /**
   * Streams changes under `<prefix>/subnets/` after `fromRevision` (the revision of the list
   * the caller built its state from). When the watch cannot continue (compaction), the handler
   * gets a fresh full snapshot via resync() and the watch resumes after it. Replaces any
   * previous watch of this registry.
   */
  watchSubnets(fromRevision: string, handler: SubnetWatchHandler): void {
    this.assertOpen();
    const start = nextRevision(fromRevision);
    this.stopWatch();
    const state: WatchState = { handler, watcher: null, failures: 0, timer: null };
    this.watchState = state;
    this.startWatcher(state, start);
  }

  private startWatcher(state: WatchState, startRevision: string): void {
    if (this.closed || this.watchState !== state) return;
    const watcher = this.client.watch().prefix(subnetsPrefix(this.prefix)).startRevision(startRevision).watcher();
    state.watcher = watcher;
    const live = (): boolean => !this.closed && this.watchState === state && state.watcher === watcher;
    this.log.debug({ startRevision }, 'watching subnets');

    watcher.on('connected', () => {
      if (live()) state.failures = 0;
    });
    watcher.on('put', (kv: IKeyValue) => {
      if (!live()) return;
      const { key, value } = kvString(kv);
      this.callHandler('put', () => state.handler.put(key, value));
      this.onOwnKeyEvent(key, value);
    });
    watcher.on('delete', (kv: IKeyValue) => {
      if (!live()) return;
      const { key } = kvString(kv);
      this.callHandler('delete', () => state.handler.delete(key));
      this.onOwnKeyEvent(key, null);
    });
    watcher.on('disconnected', (err: Error) => {
      // etcd3 reconnects by itself and replays from the last revision it saw.
      if (live()) this.emitSafe('watch-error', etcdError('watch (disconnected)', err), 'disconnected');
    });
    watcher.on('error', (err: Error) => {
      if (!live()) return;
      // Typically a compacted start revision; the watcher is dead either way.
      state.watcher = null;
      this.detachWatcher(watcher);
      const e = etcdError('watch (canceled)', err);
      this.log.warn({ err: e }, 'subnet watch canceled by etcd, re-listing');
      this.emitSafe('watch-error', e, 'canceled');
      this.scheduleRelist(state);
    });
  }

  private scheduleRelist(state: WatchState): void {
    if (this.closed || this.watchState !== state) return;
    const delay = state.failures === 0 ? 0 : Math.min(WATCH_BACKOFF_MAX_MS, WATCH_BACKOFF_MIN_MS * 2 ** (state.failures - 1));
    state.failures++;
    state.timer = setTimeout(() => {
      state.timer = null;
      this.relist(state).catch((err: unknown) => this.log.error({ err }, 'subnet re-list failed unexpectedly'));
    }, delay);
    state.timer.unref();
  }

  private async relist(state: WatchState): Promise<void> {
    if (this.closed || this.watchState !== state) return;
    let snapshot: { revision: string; entries: Map<string, string> };
    try {
      snapshot = await this.listSubnets();
    } catch (err) {
      if (this.closed || this.watchState !== state) return;
      const e = etcdError('re-list subnets', err);
      this.log.warn({ err: e }, 'subnet re-list failed, retrying');
      this.emitSafe('watch-error', e, 'relist');
      this.scheduleRelist(state);
      return;
    }
    if (this.closed || this.watchState !== state) return;
    this.log.info({ revision: snapshot.revision, count: snapshot.entries.size }, 'subnet watch resynced from a full list');
    this.callHandler('resync', () => state.handler.resync(snapshot.entries, snapshot.revision));
    for (const [key, value] of snapshot.entries) this.onOwnKeyEvent(key, value);
    const h = this.held ?? this.lostHeld;
    if (h && !snapshot.entries.has(h.key)) this.onOwnKeyEvent(h.key, null);
    this.startWatcher(state, nextRevision(snapshot.revision));
  }

  private callHandler(what: string, f: () => void): void {
    try {
      f();
    } catch (err) {
      this.log.error({ err, event: what }, 'subnet watch handler threw');
    }
  }

  /** Cancels a watcher without waiting long and without letting its late events throw. */
  private detachWatcher(watcher: Watcher): Promise<void> {
    watcher.removeAllListeners();
    watcher.on('error', () => undefined);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, CANCEL_TIMEOUT_MS);
      timer.unref();
    });
    const cancel = watcher.cancel().catch((err: unknown) => this.log.debug({ err }, 'watch cancel failed'));
    return Promise.race([cancel, timeout]).finally(() => clearTimeout(timer));
  }

  private stopWatch(): Promise<void> {
    const state = this.watchState;
    this.watchState = null;
    if (!state) return Promise.resolve();
    if (state.timer) clearTimeout(state.timer);
    const w = state.watcher;
    state.watcher = null;
    return w ? this.detachWatcher(w) : Promise.resolve();
  }

  // ---- lifecycle -----------------------------------------------------------------------------

  /**
   * Stops renewing and watching and closes the client. Our etcd lease is NOT revoked: the key
   * stays until its TTL runs out, so a restart finds and reuses it without other hosts noticing.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.stopRenewing();
    await this.stopWatch();
    this.held = null;
    this.lostHeld = null;
    this.client.close();
    this.log.debug({}, 'etcd registry closed');
  }

  private assertOpen(): void {
    if (this.closed) throw new SubnetError('ERR_ETCD', 'etcd registry is closed');
  }

  private serial<T>(f: () => Promise<T>): Promise<T> {
    const run = this.chain.then(f, f);
    this.chain = run.catch(() => undefined);
    return run;
  }

  private emitSafe<E extends keyof EtcdRegistryEvents>(event: E, ...args: EtcdRegistryEvents[E]): void {
    try {
      (this.emit as (e: E, ...a: EtcdRegistryEvents[E]) => boolean)(event, ...args);
    } catch (err) {
      this.log.error({ err, event }, 'registry event listener threw');
    }
  }
}

function warnIfKeyFileReadable(path: string, log: RegistryLogger): void {
  if (keyFileWarned) return;
  try {
    const mode = fs.statSync(path).mode;
    if ((mode & 0o044) !== 0) {
      keyFileWarned = true;
      log.warn({ keyFile: path, mode: `0${(mode & 0o777).toString(8)}` }, 'etcd key file is readable by group or others; chmod 600 it');
    }
  } catch {
    // Unreadable files are reported when they are read.
  }
}

// ---- administration (twillctl, the lab, tests, benchmarks) ---------------------------------

/**
 * Plain key/value access for tools that manage a twill network (writing the config, listing
 * or removing leases, compaction in fault tests). Kept here so etcd3 has one importer.
 */
export class EtcdAdmin {
  private constructor(private readonly client: Etcd3) {}

  static async connect(endpoints: string[], tls?: { caFile?: string; certFile?: string; keyFile?: string }): Promise<EtcdAdmin> {
    const options: IOptions = {
      hosts: endpoints,
      dialTimeout: CALL_TIMEOUT_MS,
      defaultCallOptions: (ctx: CallContext) => (ctx.isStream ? {} : { deadline: Date.now() + CALL_TIMEOUT_MS }),
    };
    if (tls && (tls.caFile || tls.certFile)) {
      options.credentials = {
        rootCertificate: (tls.caFile ? readFileFor('CA', tls.caFile) : undefined) as Buffer,
        ...(tls.certFile ? { certChain: readFileFor('certificate', tls.certFile) } : {}),
        ...(tls.keyFile ? { privateKey: readFileFor('key', tls.keyFile) } : {}),
      };
    }
    return new EtcdAdmin(new Etcd3(options));
  }

  async get(key: string): Promise<string | null> {
    return this.client.get(key).string();
  }

  async put(key: string, value: string, leaseTtlSeconds?: number): Promise<void> {
    if (leaseTtlSeconds) {
      const lease = this.client.lease(leaseTtlSeconds, { autoKeepAlive: false });
      await lease.put(key).value(value);
      return;
    }
    await this.client.put(key).value(value);
  }

  /** Many puts in transactions of `chunk` operations (etcd's default limit is 128 per txn). */
  async putMany(entries: Iterable<[string, string]>, chunk = 128): Promise<void> {
    let ops: Array<[string, string]> = [];
    const flush = async () => {
      if (ops.length === 0) return;
      const batch = ops;
      ops = [];
      await this.client.stm({ retries: 0 }).transact((tx) => Promise.all(batch.map(([k, v]) => tx.put(k).value(v))));
    };
    for (const e of entries) {
      ops.push(e);
      if (ops.length >= chunk) await flush();
    }
    await flush();
  }

  async delete(key: string): Promise<void> {
    await this.client.delete().key(key);
  }

  async deletePrefix(prefix: string): Promise<void> {
    await this.client.delete().prefix(prefix);
  }

  async list(prefix: string): Promise<Map<string, string>> {
    return new Map(Object.entries(await this.client.getAll().prefix(prefix).strings()));
  }

  async revision(): Promise<string> {
    const res = await this.client.get('/').exec();
    return res.header.revision;
  }

  /** Compacts history up to the current revision (watchers from older revisions are cancelled). */
  async compact(): Promise<string> {
    const rev = await this.revision();
    await this.client.kv.compact({ revision: rev, physical: true });
    return rev;
  }

  close(): void {
    this.client.close();
  }

  /**
   * Every key under `prefix` with the etcd lease it is attached to ('0': none) and that lease's
   * remaining TTL in seconds (null: no lease, or the lease is gone). For `twillctl leases`.
   */
  async listWithTtl(prefix: string): Promise<Array<{ key: string; value: string; leaseId: string; ttlSeconds: number | null }>> {
    const res = await this.client.getAll().prefix(prefix).exec();
    const ttls = new Map<string, number | null>();
    for (const kv of res.kvs) {
      if (kv.lease === '0' || ttls.has(kv.lease)) continue;
      ttls.set(kv.lease, await this.leaseTtl(kv.lease));
    }
    return res.kvs.map((kv) => ({
      key: kv.key.toString('utf8'),
      value: kv.value.toString('utf8'),
      leaseId: kv.lease,
      ttlSeconds: kv.lease === '0' ? null : (ttls.get(kv.lease) ?? null),
    }));
  }

  /** Remaining TTL of an etcd lease in seconds; null when the lease has expired or never existed. */
  async leaseTtl(leaseId: string): Promise<number | null> {
    const res = await this.client.leaseClient.leaseTimeToLive({ ID: leaseId, keys: false });
    const ttl = Number(res.TTL);
    // etcd answers TTL -1 for an expired or unknown lease.
    return Number.isFinite(ttl) && ttl >= 0 ? ttl : null;
  }
}
