// Keeping the subnet lease we hold: renew its etcd lease before the TTL runs out, put the key
// back when it vanished (lease expired or revoked, key deleted), notice when another host took
// the subnet ('lost') and take it back once it is free again. Acquiring and maintenance are
// serialised here (serial()): both read-modify-write the same key.
//
// Never revoke the etcd lease that holds our key (see etcd-registry.ts): close() only stops.
// During an outage writes fail fast (BrokenCircuitError from the client's circuit breaker);
// renewal keeps retrying every few seconds, reporting 'renew-failed' each time.
import { EtcdLeaseInvalidError, type IKeyValue } from 'etcd3';
import { formatPrefix4 } from '../ip/ipv4';
import type { RegistryLogger } from './etcd-client';
import { etcdError, SubnetError } from './errors';
import { leaseValuePublicIp, type Lease } from './lease';
import type { LeaseRpc } from './lease-rpc';
import type { EmitRegistryEvent } from './registry-types';

/** Conflicts tolerated per acquire or put-back before giving up (flannel uses the same bound). */
export const RACE_RETRIES = 10;
const RETRY_MAX_MS = 5_000;

/** The lease we hold: its key and value in etcd and the etcd lease it is attached to. */
export interface Held {
  lease: Lease;
  key: string;
  value: string;
  leaseId: string;
  ttlSeconds: number;
  renewMarginSeconds: number;
}

/**
 * How long to wait between renewals: TTL minus the margin, but at least 1 s and at most half
 * the TTL, so that even a renewal that fails leaves half a TTL of retries before expiry.
 */
export function renewIntervalMs(ttlSeconds: number, renewMarginSeconds: number): number {
  const upper = Math.max(1, ttlSeconds / 2);
  return Math.round(1000 * Math.min(upper, Math.max(1, ttlSeconds - renewMarginSeconds)));
}

function retryIntervalMs(renewMs: number): number {
  return Math.min(RETRY_MAX_MS, Math.max(500, Math.round(renewMs / 2)));
}

export class LeaseKeeper {
  private closed = false;
  private chain: Promise<unknown> = Promise.resolve();
  private current: Held | null = null;
  /** The lease another host took from us ('lost'): taken back as soon as its key is free again. */
  private lostHeld: Held | null = null;
  private renewTimer: NodeJS.Timeout | null = null;
  private maintenanceQueued = false;

  constructor(
    private readonly rpc: LeaseRpc,
    private readonly log: RegistryLogger,
    private readonly emit: EmitRegistryEvent,
  ) {}

  get held(): Held | null {
    return this.current;
  }

  /** The key whose changes matter to us: the lease we hold, or the one we lost. */
  get ownKey(): string | null {
    return (this.current ?? this.lostHeld)?.key ?? null;
  }

  /** Runs `f` after everything queued before it, whether that failed or not. */
  serial<T>(f: () => Promise<T>): Promise<T> {
    const run = this.chain.then(f, f);
    this.chain = run.catch(() => undefined);
    return run;
  }

  /** Starts keeping `h` (just acquired), replacing whatever was kept before. */
  hold(h: Held): void {
    this.stopRenewing();
    this.current = h;
    this.scheduleRenew(renewIntervalMs(h.ttlSeconds, h.renewMarginSeconds));
  }

  /** Stops renewing; the etcd lease is left to live out its TTL. */
  close(): void {
    this.closed = true;
    this.stopRenewing();
    this.current = null;
    this.lostHeld = null;
  }

  private scheduleRenew(ms: number): void {
    if (this.closed || !this.current) return;
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
    if (this.closed || !this.current || this.maintenanceQueued) return;
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
    const h = this.current;
    if (!h || this.closed) return;
    const renewMs = renewIntervalMs(h.ttlSeconds, h.renewMarginSeconds);
    try {
      let ttl: number;
      try {
        ttl = await this.rpc.keepaliveOnce(h.leaseId);
      } catch (err) {
        // etcd 3.4 answers an unknown lease with TTL 0, but "lease not found" means the same.
        if (!(err instanceof EtcdLeaseInvalidError)) throw etcdError('lease keepalive', err);
        ttl = 0;
      }
      if (ttl > 0) {
        const kv = await this.rpc.get(h.key);
        if (kv && kv.lease === h.leaseId && kv.value.toString('utf8') === h.value) {
          this.log.debug({ subnet: formatPrefix4(h.lease.subnet), ttl }, 'subnet lease renewed');
          this.emit('renewed', h.lease, ttl);
          this.scheduleRenew(renewMs);
          return;
        }
        await this.reput(h, h.leaseId, kv);
      } else {
        this.log.warn({ subnet: formatPrefix4(h.lease.subnet), leaseId: h.leaseId }, 'etcd lease expired or was revoked, granting a new one');
        await this.reput(h, null, undefined);
      }
    } catch (err) {
      if (this.closed || this.current !== h) return;
      const e = etcdError('renew', err);
      this.log.warn({ err: e, subnet: formatPrefix4(h.lease.subnet) }, 'subnet lease renewal failed, will retry');
      this.emit('renew-failed', e);
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
      if (kv === undefined) kv = await this.rpc.get(h.key);
      if (kv && leaseValuePublicIp(kv.value.toString('utf8')) !== h.lease.publicIp) {
        const holderValue = kv.value.toString('utf8');
        this.log.error({ subnet: formatPrefix4(h.lease.subnet), holderValue }, 'our subnet is now held by another host');
        this.current = null;
        this.lostHeld = h;
        this.stopRenewing();
        if (fresh) await this.rpc.revokeUnused(fresh);
        this.emit('lost', { lease: h.lease, holderValue });
        return;
      }
      const leaseId = liveLeaseId ?? (fresh ??= await this.rpc.grant(h.ttlSeconds));
      const res = await this.rpc.putIf(h.key, h.value, leaseId, kv ? kv.mod_revision : null);
      if (res === 'ok') {
        if (this.current === h) {
          h.leaseId = leaseId;
          this.log.warn({ subnet: formatPrefix4(h.lease.subnet), leaseId }, 'subnet lease put back');
          this.emit('reacquired', h.lease);
          this.scheduleRenew(renewIntervalMs(h.ttlSeconds, h.renewMarginSeconds));
        }
        return;
      }
      kv = res.kv;
    }
    if (fresh) await this.rpc.revokeUnused(fresh);
    throw new SubnetError('ERR_LEASE_CONFLICT', `could not put back the lease for ${formatPrefix4(h.lease.subnet)}: the key kept changing`);
  }

  /** Called when the watch shows our key deleted or rewritten: check at once, not at the next renewal. */
  onOwnKeyEvent(key: string, value: string | null): void {
    const h = this.current ?? this.lostHeld;
    if (!h || key !== h.key) return;
    if (value !== null && value === h.value) return;
    if (!this.current) {
      // Lost to another host: our pods still use this subnet, so take it back once it is free
      // (maintain() re-creates the key only if it is absent or names our PublicIP).
      if (value !== null && leaseValuePublicIp(value) !== h.lease.publicIp) return;
      this.log.info({ subnet: formatPrefix4(h.lease.subnet) }, 'the subnet we lost is free again, taking it back');
      this.current = h;
      this.lostHeld = null;
    }
    this.log.info({ subnet: formatPrefix4(h.lease.subnet), deleted: value === null }, 'our lease key changed in etcd, checking it now');
    this.stopRenewing();
    this.queueMaintenance();
  }
}
