// Plain key/value access to etcd for tools that manage a twill network (twillctl, the lab,
// tests, benchmarks): writing the config, listing or removing leases, compaction in fault
// tests. The daemon uses the registry (etcd-registry.ts) instead.
import { Etcd3 } from 'etcd3';
import { baseOptions, type EtcdTls } from './etcd-client';

export class EtcdAdmin {
  private constructor(private readonly client: Etcd3) {}

  static async connect(endpoints: string[], tls?: EtcdTls): Promise<EtcdAdmin> {
    return new EtcdAdmin(new Etcd3(baseOptions(endpoints, tls)));
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
