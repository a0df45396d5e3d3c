// This host's health summary (src/probe/summary.ts) in etcd, at <prefix>/health/<subnet key>,
// outside flannel's subnets/ folder (flannel never reads it).
//
// etcd load proportional to change: a write when the summary's content changes (coalesced: at
// most one per probe round, between 1 and 5 s apart — a cluster starting at once judges all
// its peers within the first round, and each host then writes a handful of times, not once
// per peer), otherwise one heartbeat per minute. The summary is built when a write may be due,
// from the latest offer, not at each offer (SummarySink). The key is attached to its own etcd
// lease with a TTL of three heartbeats, so a host that stops (or is cut off) disappears from
// the view by itself. Each heartbeat grants a fresh lease, puts the key on it and revokes the
// previous one (which then holds no key): three small requests a minute, no keepalive stream.
// At 1,000 hosts: ~17 puts/s + ~33 lease grants/revokes/s cluster-wide when nothing changes,
// ~200 KB of summaries in total; a host going down makes each of the others write once.
//
// It shares the registry's etcd connection (EtcdRegistry.sharedClient) and is the only other
// user of etcd3's API: kept apart so the registry's own lease logic stays untouched.
import type { Etcd3 } from 'etcd3';
import { parsePrefix4 } from '../ip/ipv4';
import type { SummarySink } from '../probe/peer-probing';
import { encodeSummary, healthKey, sameContent, type HealthSummary } from '../probe/summary';

export const HEALTH_HEARTBEAT_S = 60;
export const HEALTH_TTL_S = 3 * HEALTH_HEARTBEAT_S;
const MIN_WRITE_GAP_MS = 1000;
const MAX_WRITE_GAP_MS = 5000;

/** Time between two writes of changed content: one probe round, within 1..5 s. */
export function writeGapMs(s: HealthSummary): number {
  return Math.min(MAX_WRITE_GAP_MS, Math.max(MIN_WRITE_GAP_MS, s.roundS * 1000));
}

export interface HealthStoreLogger {
  warn(o: object, m: string): void;
  debug(o: object, m: string): void;
}

export class EtcdHealthStore implements SummarySink {
  private written: HealthSummary | undefined;
  private writtenAt = 0;
  /** How to build the summary, offered since the last write (or kept for a retry). */
  private pending: (() => HealthSummary) | undefined;
  private leaseId: string | undefined;
  private leaseAt = 0;
  private timer: NodeJS.Timeout | undefined;
  private writing = false;
  private closed = false;
  private lastError = '';

  constructor(
    private readonly client: Etcd3,
    private readonly prefix: string,
    private readonly log: HealthStoreLogger,
    private readonly heartbeatS = HEALTH_HEARTBEAT_S,
  ) {}

  offer(build: () => HealthSummary): void {
    if (this.closed) return;
    this.pending = build;
    this.schedule(Math.max(0, this.writtenAt + (this.written ? writeGapMs(this.written) : 0) - Date.now()));
  }

  private schedule(ms: number): void {
    if (this.timer || this.writing || this.closed) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.flush();
    }, ms);
    this.timer.unref();
  }

  private async flush(): Promise<void> {
    const build = this.pending;
    if (!build || this.closed) return;
    this.pending = undefined;
    const s = build();
    const changed = !this.written || !sameContent(this.written, s);
    const due = Date.now() - this.writtenAt >= this.heartbeatS * 1000;
    if (!changed && !due) return;
    this.writing = true;
    try {
      await this.write(s);
      this.written = s;
      this.writtenAt = Date.now();
      this.lastError = '';
    } catch (err) {
      const msg = (err as Error).message;
      if (msg !== this.lastError) this.log.warn({ err: msg }, 'cannot publish the health summary to etcd; retrying');
      this.lastError = msg;
      this.leaseId = undefined; // it may be gone: the next attempt starts a fresh one
      this.pending ??= build; // retried, unless a newer offer came meanwhile
    } finally {
      this.writing = false;
    }
    if (this.pending) this.schedule(this.lastError ? MAX_WRITE_GAP_MS : writeGapMs(this.written ?? s));
  }

  private async write(s: HealthSummary): Promise<void> {
    const key = healthKey(this.prefix, parsePrefix4(s.subnet));
    const renew = !this.leaseId || Date.now() - this.leaseAt >= this.heartbeatS * 1000;
    const old = renew ? this.leaseId : undefined;
    if (renew) {
      const g = await this.client.leaseClient.leaseGrant({ TTL: this.heartbeatS * 3, ID: 0 });
      this.leaseId = g.ID;
      this.leaseAt = Date.now();
    }
    await this.client.put(key).value(encodeSummary(s)).lease(this.leaseId!);
    if (old) {
      await this.client.leaseClient.leaseRevoke({ ID: old }).catch((err: Error) => this.log.debug({ err: err.message }, 'old health lease not revoked; it expires by itself'));
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
  }
}
