// The subnet registry in etcd: the daemon's one way to its leases. It reads `<prefix>/config`,
// lists and watches `<prefix>/subnets/`, and holds this host's lease key
// `<prefix>/subnets/<a.b.c.d>-<len>` (flannel's layout, see lease.ts) attached to an etcd lease,
// renewing it and putting the key back if etcd ever drops it. Its parts, by concern:
//   etcd-client.ts    client options, TLS, the etcd3 patches applied (etcd3-patches.ts)
//   acquire-plan.ts   which subnet to take from a listing (pure)
//   lease-rpc.ts      the key and lease requests; lease-keeper.ts  renewal, put-back, 'lost'
//   subnet-watch.ts   the watch, re-list on compaction;  prefetch.ts  a cold start's early reads
//   etcd-admin.ts     plain key/value access for tools (not the daemon)
// Only these files import etcd3.
//
// Hard-won rules:
// - Never revoke the etcd lease that holds our key, not even on shutdown: revoking deletes the
//   key, other hosts tear down their routes to us, and pods lose connectivity during a plain
//   restart. close() only stops timers and the client; the key lives out its TTL (24 h by
//   default) and the next start finds it again by PublicIP. For the same reason the high-level
//   `client.lease()` object is not used (see lease-rpc.ts).
// - Creating a key is a transaction that succeeds only if the key is absent (Version == 0), so
//   two hosts can never both believe they own a subnet. A failed create revokes the fresh etcd
//   lease — unless the key turns out to carry that very lease: the client's retry policy may
//   resend a transaction whose first attempt landed, and revoking would delete our own key.
// - etcd3 re-throws exceptions from event listeners on a later tick (process crash): every
//   event is emitted through emitSafe, and every promise started from a timer is caught.
import { EventEmitter } from 'node:events';
import type { Etcd3, IKeyValue } from 'etcd3';
import { formatIp4, formatPrefix4, type Prefix4 } from '../ip/ipv4';
import { planAcquire, type ListedKey } from './acquire-plan';
import { describeRange } from './allocator';
import { patchedClient, registryOptions, type EtcdOptions, type RegistryLogger } from './etcd-client';
import { etcdError, SubnetError } from './errors';
import { encodeLeaseValue, parseSubnetKey, subnetKey, subnetsPrefix, type Lease } from './lease';
import { LeaseKeeper, RACE_RETRIES, type Held } from './lease-keeper';
import { LeaseRpc } from './lease-rpc';
import { Prefetch } from './prefetch';
import type { AcquireRequest, EtcdRegistryEvents, SubnetListing, SubnetWatchHandler } from './registry-types';
import { SubnetWatch } from './subnet-watch';

export type { EtcdOptions, RegistryLogger } from './etcd-client';
export { renewIntervalMs } from './lease-keeper';
export type { AcquireRequest, EtcdRegistryEvents, SubnetListing, SubnetWatchHandler, WatchErrorPhase } from './registry-types';

interface RawListing {
  revision: string;
  kvs: IKeyValue[];
}

export class EtcdRegistry extends EventEmitter<EtcdRegistryEvents> {
  readonly prefix: string;
  private readonly client: Etcd3;
  private readonly log: RegistryLogger;
  private closed = false;
  private readonly rpc: LeaseRpc;
  private readonly keeper: LeaseKeeper;
  private readonly watch: SubnetWatch;
  private readonly early: Prefetch<RawListing>;
  private acquireListing: SubnetListing | null = null;

  private constructor(opts: EtcdOptions, log: RegistryLogger) {
    super();
    const { prefix, options } = registryOptions(opts, log);
    this.prefix = prefix;
    this.log = log;
    this.client = patchedClient(options, () => this.closed);
    const emit = this.emitSafe.bind(this);
    this.rpc = new LeaseRpc(this.client, log);
    this.keeper = new LeaseKeeper(this.rpc, log, emit);
    this.early = new Prefetch((id) => this.rpc.revokeUnused(id));
    this.watch = new SubnetWatch({
      client: this.client,
      prefix,
      log,
      emit,
      isClosed: () => this.closed,
      listSubnets: () => this.listSubnets(),
      ownKey: () => this.keeper.ownKey,
      onOwnKeyEvent: (key, value) => this.keeper.onOwnKeyEvent(key, value),
    });
  }

  static create(opts: EtcdOptions, log: RegistryLogger): EtcdRegistry {
    return new EtcdRegistry(opts, log);
  }

  /** This registry's etcd connection, shared by the health-summary store (health-store.ts). */
  get sharedClient(): Etcd3 {
    return this.client;
  }

  /** The lease this registry currently holds, if any. */
  get ownLease(): Lease | null {
    return this.keeper.held?.lease ?? null;
  }

  // ---- reads ---------------------------------------------------------------------------------

  /**
   * Starts reading the network config and the subnet listing now (see prefetch.ts); the next
   * getConfigText() and the first acquire attempt use the answers. With `grantTtlSeconds`, an
   * etcd lease is granted now too, for the first acquire that needs a fresh one: one round trip
   * fewer between choosing a subnet and holding it.
   */
  prefetch(opts: { grantTtlSeconds?: number } = {}): void {
    this.assertOpen();
    const ttl = opts.grantTtlSeconds;
    this.early.start({
      config: this.readConfig(),
      listing: this.listRaw(),
      ...(ttl !== undefined ? { grant: { ttl, id: this.rpc.grant(ttl) } } : {}),
    });
  }

  async getConfigText(): Promise<string | null> {
    this.assertOpen();
    // A failed or stale early read: read again.
    const pre = await this.early.takeConfig();
    return pre ? pre.value : this.readConfig();
  }

  private async readConfig(): Promise<string | null> {
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
    const entries = new Map<string, string>();
    for (const kv of kvs) entries.set(kv.key.toString('utf8'), kv.value.toString('utf8'));
    return { revision, entries };
  }

  private async listRaw(): Promise<RawListing> {
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
   * `preferred` if free, else a random free subnet (acquire-plan.ts). Keeps it renewed until
   * close().
   */
  acquire(req: AcquireRequest): Promise<Lease> {
    try {
      this.assertOpen();
      if (!Number.isInteger(req.ttlSeconds) || req.ttlSeconds < 1) throw new RangeError(`ttlSeconds must be a positive integer, got ${req.ttlSeconds}`);
      if (!(req.renewMarginSeconds >= 0)) throw new RangeError(`renewMarginSeconds must not be negative, got ${req.renewMarginSeconds}`);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.keeper.serial(() => this.doAcquire(req));
  }

  private async doAcquire(req: AcquireRequest): Promise<Lease> {
    for (let attempt = 1; attempt <= RACE_RETRIES; attempt++) {
      const { revision, kvs } = (attempt === 1 ? await this.early.takeListing() : null) ?? (await this.listRaw());
      this.log.debug({ keys: kvs.length, revision, attempt }, 'subnet listing in');
      // Keys and values as strings, and key → subnet, once: the plan and the daemon's first
      // desired state both read all of them (10,000 at a large cluster's cold start).
      const listed: ListedKey[] = new Array(kvs.length);
      const entries = new Map<string, string>();
      for (let i = 0; i < kvs.length; i++) {
        const kv = kvs[i]!;
        const key = kv.key.toString('utf8');
        const value = kv.value.toString('utf8');
        listed[i] = { key, value, subnet: parseSubnetKey(this.prefix, key), modRevision: kv.mod_revision, lease: kv.lease };
        entries.set(key, value);
      }
      const listing: SubnetListing = { revision, entries };
      const held = await this.tryAcquire(req, listed, listing);
      if (held) {
        // An early grant nobody needed (our old lease was adopted): give it back.
        this.early.dropGrant();
        this.acquireListing = listing;
        this.keeper.hold(held);
        this.log.info({ subnet: formatPrefix4(held.lease.subnet), publicIp: formatIp4(req.publicIp), leaseId: held.leaseId, attempt }, 'subnet lease acquired');
        return held.lease;
      }
      this.log.debug({ attempt }, 'lost a race for a subnet, retrying');
    }
    throw new SubnetError('ERR_LEASE_CONFLICT', `could not lease a subnet after ${RACE_RETRIES} attempts: other hosts kept taking the chosen subnets`);
  }

  /** One round: null means "someone changed the key under us, list again". */
  private async tryAcquire(req: AcquireRequest, listed: ListedKey[], listing: SubnetListing): Promise<Held | null> {
    const plan = planAcquire(req, listed, Math.random);
    for (const e of plan.deleteStale) {
      this.log.info({ subnet: formatPrefix4(e.subnet!) }, 'own lease does not fit the network config, deleting it');
      await this.rpc.deleteIfUnchanged(e.key, e.modRevision);
    }
    const { choice } = plan;
    for (const e of plan.duplicates) {
      if (choice.kind === 'reuse') this.log.warn({ subnet: formatPrefix4(e.subnet!), using: formatPrefix4(choice.subnet) }, 'another lease names our PublicIP too; leaving it to expire');
    }
    if (plan.preferredMisfit) this.log.warn({ preferred: formatPrefix4(plan.preferredMisfit) }, 'preferred subnet does not fit the network config, ignoring it');
    if (choice.kind === 'full') {
      const { config } = req;
      throw new SubnetError('ERR_OUT_OF_SUBNETS', `out of subnets: all of ${describeRange(config)} in ${formatPrefix4(config.network)} are leased`);
    }
    try {
      req.onPlanned?.(this.leaseFor(req, choice.subnet), listing);
    } catch (err) {
      // The caller's early start is an optimisation: its failure must not cost the lease.
      this.log.warn({ err }, 'onPlanned hook failed');
    }
    return choice.kind === 'reuse' ? this.reuse(req, choice.entry) : this.create(req, choice.subnet);
  }

  private leaseFor(req: AcquireRequest, subnet: Prefix4): Lease {
    return { subnet, publicIp: req.publicIp, publicIpv6: null, backendType: req.codec.type, backendData: req.backendData };
  }

  private heldFor(req: AcquireRequest, subnet: Prefix4, leaseId: string): Held {
    const lease = this.leaseFor(req, subnet);
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
    const held = this.heldFor(req, subnet, '0');
    const leaseId = (await this.early.takeGrant(req.ttlSeconds)) ?? (await this.rpc.grant(req.ttlSeconds));
    this.log.debug({ leaseId }, 'etcd lease granted');
    const existing = await this.rpc.putIf(held.key, held.value, leaseId, null);
    if (existing === 'ok') return { ...held, leaseId };
    await this.rpc.revokeUnused(leaseId);
    return null;
  }

  /** Take our existing key back, adopting its etcd lease when that is alive and of the right TTL. */
  private async reuse(req: AcquireRequest, entry: ListedKey): Promise<Held | null> {
    const subnet = entry.subnet!;
    const held = this.heldFor(req, subnet, '0');
    let leaseId: string | null = null;
    if (entry.lease !== '0') {
      try {
        const t = await this.rpc.timeToLive(entry.lease);
        if (t.ttl > 0 && t.grantedTtl === req.ttlSeconds && (await this.rpc.keepaliveOnce(entry.lease)) > 0) leaseId = entry.lease;
      } catch (err) {
        throw etcdError('lease time-to-live', err);
      }
    }
    if (leaseId !== null && entry.value === held.value) {
      this.log.info({ subnet: formatPrefix4(subnet), leaseId }, 'reusing our existing lease unchanged');
      return { ...held, leaseId };
    }
    const fresh = leaseId === null;
    const useId = leaseId ?? (await this.early.takeGrant(req.ttlSeconds)) ?? (await this.rpc.grant(req.ttlSeconds));
    const res = await this.rpc.putIf(held.key, held.value, useId, entry.modRevision);
    if (res === 'ok') {
      this.log.info({ subnet: formatPrefix4(subnet), leaseId: useId, freshLease: fresh }, 'reusing our existing subnet, value rewritten');
      return { ...held, leaseId: useId };
    }
    if (fresh) await this.rpc.revokeUnused(useId);
    return null;
  }

  // ---- watching and lifecycle ----------------------------------------------------------------

  /** See SubnetWatch.start: changes after `fromRevision`, a resync after a compaction. */
  watchSubnets(fromRevision: string, handler: SubnetWatchHandler): void {
    this.assertOpen();
    this.watch.start(fromRevision, handler);
  }

  /**
   * Stops renewing and watching and closes the client. Our etcd lease is NOT revoked: the key
   * stays until its TTL runs out, so a restart finds and reuses it without other hosts noticing.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.keeper.close();
    await this.watch.stop();
    this.client.close();
    this.log.debug({}, 'etcd registry closed');
  }

  private assertOpen(): void {
    if (this.closed) throw new SubnetError('ERR_ETCD', 'etcd registry is closed');
  }

  private emitSafe<E extends keyof EtcdRegistryEvents>(event: E, ...args: EtcdRegistryEvents[E]): void {
    try {
      (this.emit as (e: E, ...a: EtcdRegistryEvents[E]) => boolean)(event, ...args);
    } catch (err) {
      this.log.error({ err, event }, 'registry event listener threw');
    }
  }
}
