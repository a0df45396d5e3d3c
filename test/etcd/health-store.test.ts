// The health-summary store against a real etcd: written on change (coalesced), not rewritten
// while nothing changes until the heartbeat, the key on its own TTL lease, each heartbeat
// moving it to a fresh lease and revoking the old one, the key gone once the store stops.
import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { EtcdRegistry } from '../../src/subnet/etcd-registry';
import { EtcdHealthStore } from '../../src/subnet/health-store';
import { newPeerHealth, type PeerHealth } from '../../src/probe/health';
import { buildSummary, decodeSummary, type HealthSummary } from '../../src/probe/summary';
import { etcdGetKv, etcdLeaseIds, leaseTimeToLive, startEtcd, type TestEtcd } from '../support/etcd';

let etcd: TestEtcd;
const quiet = { info() {}, warn() {}, error() {}, debug() {} };
const PREFIX = '/hs/network';
const KEY = `${PREFIX}/health/10.244.1.0-24`;

before(async () => {
  etcd = await startEtcd();
});
after(async () => {
  await etcd?.stop();
});

function summary(peerStatus: PeerHealth['status'], roundMs = 1000): HealthSummary {
  return buildSummary({ name: 'h1', publicIp: '172.30.0.11', subnet: '10.244.1.0/24', mtu: 1450 }, [{ key: '10.244.2.0/24', health: { ...newPeerHealth(0), status: peerStatus } }], roundMs, Date.now());
}

test('written on change, coalesced; heartbeats move the key to a fresh TTL lease; it expires after stop', { timeout: 60_000 }, async () => {
  const reg = EtcdRegistry.create({ endpoints: [etcd.endpoint], prefix: PREFIX }, quiet);
  const store = new EtcdHealthStore(reg.sharedClient, PREFIX, quiet, 2); // heartbeat 2 s, TTL 6 s
  try {
    store.offer(() => summary('unknown'));
    let kv = await waitForKv();
    assert.equal(decodeSummary(kv.value).unknown, 1);
    const firstRev = kv.modRevision;
    const ttl = await leaseTimeToLive(etcd.endpoint, kv.lease);
    assert.equal(ttl.grantedTtl, 6);

    // Three changes in quick succession: coalesced into one write of the last, built once.
    let builds = 0;
    const counted = (st: PeerHealth['status']) => (): HealthSummary => {
      builds++;
      return summary(st);
    };
    store.offer(counted('ok'));
    store.offer(counted('mtu'));
    store.offer(counted('unreachable'));
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(builds, 1, 'only the last offer is built, when its write is due');
    kv = (await etcdGetKv(etcd.endpoint, KEY))!;
    assert.equal(decodeSummary(kv.value).bad[0]!.kind, 'unreachable');
    assert.equal(Number(kv.modRevision), Number(firstRev) + 1, 'one write for three changes');

    // The same content again before the heartbeat: nothing written.
    const rev = kv.modRevision;
    store.offer(() => summary('unreachable'));
    await new Promise((r) => setTimeout(r, 1200));
    assert.equal((await etcdGetKv(etcd.endpoint, KEY))!.modRevision, rev);

    // After the heartbeat: rewritten on a new lease, the old lease revoked.
    await new Promise((r) => setTimeout(r, 1000));
    const oldLease = kv.lease;
    store.offer(() => summary('unreachable'));
    await new Promise((r) => setTimeout(r, 1200));
    kv = (await etcdGetKv(etcd.endpoint, KEY))!;
    assert.notEqual(kv.lease, oldLease);
    assert.ok(!(await etcdLeaseIds(etcd.endpoint)).includes(oldLease), 'the previous lease was revoked');

    await store.close();
    const t0 = Date.now();
    while ((await etcdGetKv(etcd.endpoint, KEY)) !== null) {
      assert.ok(Date.now() - t0 < 10_000, 'key expires within its TTL after the store stops');
      await new Promise((r) => setTimeout(r, 250));
    }
  } finally {
    await store.close();
    await reg.close();
  }
});

async function waitForKv(): Promise<{ value: string; lease: string; modRevision: string }> {
  for (let i = 0; i < 40; i++) {
    const kv = await etcdGetKv(etcd.endpoint, KEY);
    if (kv) return kv;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('summary never written');
}
