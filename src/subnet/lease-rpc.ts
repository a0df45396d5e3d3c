// The etcd requests on lease keys and etcd leases that acquiring and keeping a subnet lease
// make, each wrapped so a failure is a SubnetError ('ERR_ETCD', the client's error as cause).
// The raw lease RPCs are used, not etcd3's high-level `client.lease()`: its keepalive loop and
// teardown are not ours to steer, it revokes on close, and it cannot adopt the lease a previous
// run left behind (see etcd-registry.ts).
import type { Etcd3, IKeyValue } from 'etcd3';
import { CALL_TIMEOUT_MS, type RegistryLogger } from './etcd-client';
import { etcdError, SubnetError } from './errors';

export class LeaseRpc {
  constructor(
    private readonly client: Etcd3,
    private readonly log: RegistryLogger,
  ) {}

  async grant(ttlSeconds: number): Promise<string> {
    try {
      const res = await this.client.leaseClient.leaseGrant({ TTL: ttlSeconds, ID: 0 });
      return res.ID;
    } catch (err) {
      throw etcdError('lease grant', err);
    }
  }

  /** The key's current state (null: absent). */
  async get(key: string): Promise<IKeyValue | null> {
    try {
      return (await this.client.get(key).exec()).kvs[0] ?? null;
    } catch (err) {
      throw etcdError('get own lease', err);
    }
  }

  /** An etcd lease's remaining and granted TTL in seconds. */
  async timeToLive(leaseId: string): Promise<{ ttl: number; grantedTtl: number }> {
    try {
      const info = await this.client.leaseClient.leaseTimeToLive({ ID: leaseId });
      return { ttl: Number(info.TTL), grantedTtl: Number(info.grantedTTL) };
    } catch (err) {
      throw etcdError('lease time-to-live', err);
    }
  }

  /**
   * Puts key=value attached to leaseId, if the key is absent (modRevision null) or still at
   * modRevision. Returns 'ok', or the key's current state when the condition failed.
   */
  async putIf(key: string, value: string, leaseId: string, modRevision: string | null): Promise<'ok' | { kv: IKeyValue | null }> {
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

  async deleteIfUnchanged(key: string, modRevision: string): Promise<void> {
    try {
      await this.client.if(key, 'Mod', '==', modRevision).then(this.client.delete().key(key)).commit();
    } catch (err) {
      throw etcdError('delete stale lease', err);
    }
  }

  /** Revokes a lease we granted that holds no key (so revoking cannot delete anything). */
  async revokeUnused(leaseId: string): Promise<void> {
    try {
      await this.client.leaseClient.leaseRevoke({ ID: leaseId });
    } catch (err) {
      // Harmless: it holds nothing and expires by itself.
      this.log.debug({ leaseId, err }, 'could not revoke an unused etcd lease');
    }
  }

  /** One keepalive on the raw stream; resolves to the TTL etcd reports (0: lease gone). */
  async keepaliveOnce(leaseId: string): Promise<number> {
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
}
