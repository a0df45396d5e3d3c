// EtcdRegistry against a real etcd (started by test/support/etcd.ts on 127.0.0.1).
// Each test uses its own key prefix, so tests do not see each other's leases.
import { after, afterEach, before, describe, test } from 'node:test';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as assert from 'node:assert/strict';
import { once } from 'node:events';
import { parseNetworkConfig, type NetworkConfig } from '../../src/config/network';
import { formatPrefix4, parseIp4, parsePrefix4, prefixContains } from '../../src/ip/ipv4';
import { randomLocalMac } from '../../src/ip/mac';
import { EtcdRegistry, renewIntervalMs, type AcquireRequest, type RegistryLogger, type SubnetWatchHandler } from '../../src/subnet/etcd-registry';
import { SubnetError } from '../../src/subnet/errors';
import { encodeLeaseValue, subnetKey, type Lease as AnyLease } from '../../src/subnet/lease';
import { vxlanCodec, type VxlanData } from '../../src/backends/vxlan/codec';
import { vxlanBackend } from '../../src/backends/vxlan/backend';

type Lease = AnyLease<VxlanData>;
import { compact, etcdDel, etcdGet, etcdGetKv, etcdKeys, etcdLeaseIds, etcdPut, leaseTimeToLive, makeTestPki, revokeLease, startEtcd, type TestEtcd, type TestPki } from '../support/etcd';
import { Teardown } from '../../src/lab/teardown';

interface LogEntry {
  level: string;
  o: object;
  m: string;
}

function memoryLog(): RegistryLogger & { entries: LogEntry[] } {
  const entries: LogEntry[] = [];
  const at = (level: string) => (o: object, m: string) => {
    entries.push({ level, o, m });
  };
  return { entries, info: at('info'), warn: at('warn'), error: at('error'), debug: at('debug') };
}

let etcd: TestEtcd;
let seq = 0;
const registries: EtcdRegistry[] = [];

function newPrefix(): string {
  return `/twill-test/${process.pid}-${++seq}/network`;
}

function registry(prefix: string, log: RegistryLogger = memoryLog()): EtcdRegistry {
  const r = EtcdRegistry.create({ endpoints: [etcd.endpoint], prefix }, log);
  registries.push(r);
  return r;
}

function request(config: NetworkConfig, publicIp: string, extra: Partial<AcquireRequest> = {}): AcquireRequest {
  return { config, publicIp: parseIp4(publicIp), codec: vxlanCodec, backendData: vxlanBackend.ownData({ config, vtepMac: randomLocalMac() }), ttlSeconds: 86400, renewMarginSeconds: 3600, ...extra };
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

async function eventually(what: string, check: () => Promise<boolean> | boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.fail(`timed out waiting for ${what}`);
}

/** A watch handler that records what it is told. */
function recorder(): SubnetWatchHandler & { puts: Array<[string, string]>; deletes: string[]; resyncs: Array<{ entries: Map<string, string>; revision: string }> } {
  const puts: Array<[string, string]> = [];
  const deletes: string[] = [];
  const resyncs: Array<{ entries: Map<string, string>; revision: string }> = [];
  return {
    puts,
    deletes,
    resyncs,
    put: (k, v) => void puts.push([k, v]),
    delete: (k) => void deletes.push(k),
    resync: (entries, revision) => void resyncs.push({ entries, revision }),
  };
}

const net16 = parseNetworkConfig('{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan"}}');

describe('EtcdRegistry against a real etcd', () => {
  before(async () => {
    etcd = await startEtcd();
  });

  // Each test's registries are closed before the next test starts (and so before the outage
  // test stops etcd).
  afterEach(async () => {
    await Promise.all(registries.splice(0).map((r) => r.close()));
  });

  after(async () => {
    await etcd?.stop();
  });

  test('getConfigText returns the raw config, or null when absent', async () => {
    const prefix = newPrefix();
    const r = registry(prefix);
    assert.equal(await r.getConfigText(), null);
    const text = '{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan"}}';
    await etcdPut(etcd.endpoint, `${prefix}/config`, text);
    assert.equal(await r.getConfigText(), text);
  });

  test('three hosts get three distinct subnets, written in flannel layout', async () => {
    const prefix = newPrefix();
    const ips = ['192.168.50.11', '192.168.50.12', '192.168.50.13'];
    const reqs = ips.map((ip) => request(net16, ip));
    const leases: Lease[] = [];
    for (const req of reqs) leases.push((await registry(prefix).acquire(req)) as Lease);

    const names = leases.map((l) => formatPrefix4(l.subnet));
    assert.equal(new Set(names).size, 3, names.join(' '));
    for (const [i, l] of leases.entries()) {
      assert.equal(l.subnet.len, 24);
      assert.ok(prefixContains(net16.network, l.subnet));
      assert.ok(l.subnet.ip >= net16.subnetMin && l.subnet.ip <= net16.subnetMax);
      assert.equal(l.publicIp, reqs[i]!.publicIp);
      assert.deepEqual(l.backendData, reqs[i]!.backendData);
      assert.equal((l as Lease).backendData.vni, 1);
      assert.equal(await etcdGet(etcd.endpoint, subnetKey(prefix, l.subnet)), encodeLeaseValue(l as Lease, vxlanCodec));
    }
    const listed = await registry(prefix).listSubnets();
    assert.equal(listed.entries.size, 3);
    assert.ok(BigInt(listed.revision) > 0n);
    for (const l of leases) assert.equal(listed.entries.get(subnetKey(prefix, l.subnet)), encodeLeaseValue(l as Lease, vxlanCodec));
  });

  test('the lease key carries an etcd lease with the requested TTL', async () => {
    const prefix = newPrefix();
    const l = await registry(prefix).acquire(request(net16, '192.168.50.21'));
    const kv = await etcdGetKv(etcd.endpoint, subnetKey(prefix, l.subnet));
    assert.ok(kv);
    assert.notEqual(kv.lease, '0');
    const ttl = await leaseTimeToLive(etcd.endpoint, kv.lease);
    assert.equal(ttl.grantedTtl, 86400);
    assert.ok(ttl.ttl > 86000 && ttl.ttl <= 86400, String(ttl.ttl));
  });

  test('restart: the same PublicIP gets the same subnet back; close() does not revoke', async () => {
    const prefix = newPrefix();
    const first = registry(prefix);
    const req = request(net16, '192.168.50.31');
    const l1 = await first.acquire(req);
    const key = subnetKey(prefix, l1.subnet);
    const kv1 = await etcdGetKv(etcd.endpoint, key);
    await first.close();

    // The key and its etcd lease survive close().
    const kvAfterClose = await etcdGetKv(etcd.endpoint, key);
    assert.deepEqual(kvAfterClose, kv1);
    assert.ok((await leaseTimeToLive(etcd.endpoint, kv1!.lease)).ttl > 0);

    // Same MAC: the key is reused untouched (same etcd lease, same revision).
    const l2 = await registry(prefix).acquire(req);
    assert.equal(formatPrefix4(l2.subnet), formatPrefix4(l1.subnet));
    assert.deepEqual(await etcdGetKv(etcd.endpoint, key), kv1);

    // New VTEP MAC (device recreated): same subnet, value rewritten, etcd lease adopted.
    const req3 = { ...req, vtepMac: randomLocalMac() };
    const l3 = await registry(prefix).acquire(req3);
    assert.equal(formatPrefix4(l3.subnet), formatPrefix4(l1.subnet));
    const kv3 = await etcdGetKv(etcd.endpoint, key);
    assert.equal(kv3!.value, encodeLeaseValue(l3 as Lease, vxlanCodec));
    assert.equal(kv3!.lease, kv1!.lease);

    // A different TTL cannot be adopted: fresh etcd lease with the new TTL.
    const l4 = await registry(prefix).acquire({ ...req3, ttlSeconds: 3600 });
    assert.equal(formatPrefix4(l4.subnet), formatPrefix4(l1.subnet));
    const kv4 = await etcdGetKv(etcd.endpoint, key);
    assert.notEqual(kv4!.lease, kv1!.lease);
    assert.equal((await leaseTimeToLive(etcd.endpoint, kv4!.lease)).grantedTtl, 3600);

    assert.equal((await etcdKeys(etcd.endpoint, `${prefix}/subnets/`)).length, 1);
  });

  test('onPlanned gets the chosen subnet and its listing before the write; an early grant carries the key, an unneeded one is revoked', async () => {
    const prefix = newPrefix();
    const peerKey = `${prefix}/subnets/10.244.9.0-24`;
    await etcdPut(etcd.endpoint, peerKey, '{"PublicIP":"192.168.50.9","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"0e:00:00:00:09:09"}}');
    const before = new Set(await etcdLeaseIds(etcd.endpoint));
    const ours = async () => (await etcdLeaseIds(etcd.endpoint)).filter((id) => !before.has(id));

    const r = registry(prefix);
    r.prefetch({ grantTtlSeconds: 86400 });
    const plans: Array<{ subnet: string; keys: string[] }> = [];
    const req = request(net16, '192.168.50.41');
    const lease = await r.acquire({ ...req, onPlanned: (l, listing) => void plans.push({ subnet: formatPrefix4(l.subnet), keys: [...listing.entries.keys()] }) });
    assert.deepEqual(plans, [{ subnet: formatPrefix4(lease.subnet), keys: [peerKey] }], 'planned once, from the listing without our key');
    const kv = await etcdGetKv(etcd.endpoint, subnetKey(prefix, lease.subnet));
    assert.deepEqual(await ours(), [kv!.lease], 'the early grant holds the key; no second etcd lease');
    await r.close();

    // A restart adopts our live etcd lease: the early grant is given back.
    const r2 = registry(prefix);
    r2.prefetch({ grantTtlSeconds: 86400 });
    const again = await r2.acquire(req);
    assert.equal(formatPrefix4(again.subnet), formatPrefix4(lease.subnet));
    await eventually('the unneeded early grant revoked', async () => (await ours()).length === 1);
    assert.deepEqual(await ours(), [kv!.lease]);
  });

  test('a stale own lease that no longer fits the config is deleted and a new one taken', async () => {
    const prefix = newPrefix();
    const staleKey = `${prefix}/subnets/10.244.0.0-24`; // below SubnetMin
    await etcdPut(etcd.endpoint, staleKey, encodeLeaseValue({ subnet: parsePrefix4('10.244.0.0/24'), publicIp: parseIp4('192.168.50.41'), publicIpv6: null, backendType: 'vxlan', backendData: { vni: 1, vtepMac: '0e:00:00:00:00:41' } }, vxlanCodec));
    const l = await registry(prefix).acquire(request(net16, '192.168.50.41'));
    assert.notEqual(formatPrefix4(l.subnet), '10.244.0.0/24');
    assert.equal(await etcdGet(etcd.endpoint, staleKey), null);
    assert.deepEqual(await etcdKeys(etcd.endpoint, `${prefix}/subnets/`), [subnetKey(prefix, l.subnet)]);
  });

  test('preferred subnet is used when free, skipped when taken or unfit', async () => {
    const prefix = newPrefix();
    const preferred = parsePrefix4('10.244.42.0/24');
    const a = await registry(prefix).acquire(request(net16, '192.168.50.51', { preferred }));
    assert.equal(formatPrefix4(a.subnet), '10.244.42.0/24');

    const b = await registry(prefix).acquire(request(net16, '192.168.50.52', { preferred }));
    assert.notEqual(formatPrefix4(b.subnet), '10.244.42.0/24');

    const c = await registry(prefix).acquire(request(net16, '192.168.50.53', { preferred: parsePrefix4('10.244.43.0/25') }));
    assert.equal(c.subnet.len, 24);

    // Our own key (by PublicIP) wins over the preferred subnet.
    const a2 = await registry(prefix).acquire(request(net16, '192.168.50.51', { preferred: parsePrefix4('10.244.77.0/24') }));
    assert.equal(formatPrefix4(a2.subnet), '10.244.42.0/24');
  });

  test('out of subnets on a tiny network', async () => {
    const prefix = newPrefix();
    const tiny = parseNetworkConfig('{"Network":"10.9.0.0/28"}'); // SubnetLen 30: 10.9.0.4, .8, .12
    assert.equal(tiny.subnetLen, 30);
    const got: string[] = [];
    for (let i = 1; i <= 3; i++) got.push(formatPrefix4((await registry(prefix).acquire(request(tiny, `192.168.60.${i}`))).subnet));
    assert.deepEqual(got.sort(), ['10.9.0.12/30', '10.9.0.4/30', '10.9.0.8/30']);
    await assert.rejects(registry(prefix).acquire(request(tiny, '192.168.60.4')), (err: unknown) => {
      assert.ok(err instanceof SubnetError);
      assert.equal(err.code, 'ERR_OUT_OF_SUBNETS');
      assert.match(err.message, /out of subnets/);
      return true;
    });
    // A host that already holds one still gets it back.
    const again = await registry(prefix).acquire(request(tiny, '192.168.60.2'));
    assert.equal(again.subnet.len, 30);
  });

  test('20 registries acquiring at once on a small network never share a subnet', async () => {
    const prefix = newPrefix();
    const small = parseNetworkConfig('{"Network":"10.7.0.0/24","SubnetLen":29}'); // 31 candidates
    const leases = await Promise.all(Array.from({ length: 20 }, (_, i) => registry(prefix).acquire(request(small, `192.168.70.${i + 1}`))));
    const names = leases.map((l) => formatPrefix4(l.subnet));
    assert.equal(new Set(names).size, 20, names.join(' '));
    const keys = await etcdKeys(etcd.endpoint, `${prefix}/subnets/`);
    assert.equal(keys.length, 20);
    // Every key in etcd names the host that believes it holds it.
    for (const l of leases) assert.equal(await etcdGet(etcd.endpoint, subnetKey(prefix, l.subnet)), encodeLeaseValue(l as Lease, vxlanCodec));
  });

  test('renewal refreshes the etcd lease and emits renewed', async () => {
    const prefix = newPrefix();
    const r = registry(prefix);
    const l = await r.acquire(request(net16, '192.168.50.61', { ttlSeconds: 4, renewMarginSeconds: 2 }));
    const [lease, ttl] = (await withTimeout(once(r, 'renewed'), 8000, 'renewed')) as [Lease, number];
    assert.equal(formatPrefix4(lease.subnet), formatPrefix4(l.subnet));
    assert.ok(ttl >= 3, String(ttl));
    // Well past the original TTL, the key is still there.
    await new Promise((res) => setTimeout(res, 4500));
    assert.equal(await etcdGet(etcd.endpoint, subnetKey(prefix, l.subnet)), encodeLeaseValue(l as Lease, vxlanCodec));
  });

  test('a revoked etcd lease is noticed at renewal and the key put back under a new lease', async () => {
    const prefix = newPrefix();
    const r = registry(prefix);
    const l = await r.acquire(request(net16, '192.168.50.71', { ttlSeconds: 6, renewMarginSeconds: 3 }));
    const key = subnetKey(prefix, l.subnet);
    const before = await etcdGetKv(etcd.endpoint, key);
    await revokeLease(etcd.endpoint, before!.lease);
    assert.equal(await etcdGet(etcd.endpoint, key), null);

    const [again] = (await withTimeout(once(r, 'reacquired'), 10_000, 'reacquired')) as [Lease];
    assert.equal(formatPrefix4(again.subnet), formatPrefix4(l.subnet));
    const now = await etcdGetKv(etcd.endpoint, key);
    assert.equal(now!.value, encodeLeaseValue(l as Lease, vxlanCodec));
    assert.notEqual(now!.lease, before!.lease);
    assert.equal((await leaseTimeToLive(etcd.endpoint, now!.lease)).grantedTtl, 6);
  });

  test('with a watch running, a deleted own key is put back at once (not at the next renewal)', async () => {
    const prefix = newPrefix();
    const r = registry(prefix);
    const l = await r.acquire(request(net16, '192.168.50.72')); // 24 h TTL: renewal is hours away
    const { revision } = await r.listSubnets();
    r.watchSubnets(revision, recorder());
    const key = subnetKey(prefix, l.subnet);
    const leaseId = (await etcdGetKv(etcd.endpoint, key))!.lease;
    const reacquired = once(r, 'reacquired');
    await etcdDel(etcd.endpoint, key);
    await withTimeout(reacquired, 5000, 'reacquired');
    const now = await etcdGetKv(etcd.endpoint, key);
    assert.equal(now!.value, encodeLeaseValue(l as Lease, vxlanCodec));
    assert.equal(now!.lease, leaseId, 'the etcd lease was still alive, so it is kept');
  });

  test('our subnet taken by another host: lost is emitted and renewal stops', async () => {
    const prefix = newPrefix();
    const r = registry(prefix);
    const l = await r.acquire(request(net16, '192.168.50.73'));
    const { revision } = await r.listSubnets();
    r.watchSubnets(revision, recorder());
    const key = subnetKey(prefix, l.subnet);
    const intruder = encodeLeaseValue({ ...(l as Lease), publicIp: parseIp4('192.168.50.99'), backendData: { vni: 1, vtepMac: '0e:99:99:99:99:99' } }, vxlanCodec);
    const lost = once(r, 'lost');
    await etcdPut(etcd.endpoint, key, intruder);
    const [info] = (await withTimeout(lost, 5000, 'lost')) as [{ lease: Lease; holderValue: string }];
    assert.equal(formatPrefix4(info.lease.subnet), formatPrefix4(l.subnet));
    assert.equal(info.holderValue, intruder);
    assert.equal(r.ownLease, null);
    assert.equal(await etcdGet(etcd.endpoint, key), intruder, 'the other host keeps it');
  });

  test('watch delivers put and delete, including changes made right after the list', async () => {
    const prefix = newPrefix();
    const r = registry(prefix);
    const { revision, entries } = await r.listSubnets();
    assert.equal(entries.size, 0);
    const k1 = `${prefix}/subnets/10.244.5.0-24`;
    const k2 = `${prefix}/subnets/10.244.6.0-24`;
    await etcdPut(etcd.endpoint, k1, 'v1'); // before the watch starts: must still be seen
    const h = recorder();
    r.watchSubnets(revision, h);
    await etcdPut(etcd.endpoint, k2, 'v2');
    await etcdPut(etcd.endpoint, `${prefix}/config`, '{}'); // outside subnets/: not delivered
    await etcdDel(etcd.endpoint, k1);
    await eventually('put and delete events', () => h.puts.length >= 2 && h.deletes.length >= 1);
    assert.deepEqual(h.puts, [
      [k1, 'v1'],
      [k2, 'v2'],
    ]);
    assert.deepEqual(h.deletes, [k1]);
    assert.equal(h.resyncs.length, 0);
  });

  test('watching from a compacted revision resyncs with a full snapshot, then keeps watching', async () => {
    const prefix = newPrefix();
    const r = registry(prefix);
    const watchErrors: string[] = [];
    r.on('watch-error', (_err, phase) => void watchErrors.push(phase));
    const { revision: old } = await r.listSubnets();
    const keys = [5, 6, 7].map((n) => `${prefix}/subnets/10.244.${n}.0-24`);
    for (const k of keys) await etcdPut(etcd.endpoint, k, `value-${k}`);
    await etcdDel(etcd.endpoint, keys[0]!);
    const compactedAt = await compact(etcd.endpoint);

    const h = recorder();
    r.watchSubnets(old, h);
    await eventually('resync', () => h.resyncs.length >= 1);
    const snap = h.resyncs[0]!;
    assert.deepEqual(
      [...snap.entries.entries()].sort(),
      keys.slice(1).map((k) => [k, `value-${k}`]),
    );
    assert.ok(BigInt(snap.revision) >= BigInt(compactedAt));
    assert.deepEqual(h.puts, [], 'compacted history is not replayed as events');
    assert.ok(watchErrors.includes('canceled'));

    // The new watch continues after the snapshot.
    const k8 = `${prefix}/subnets/10.244.8.0-24`;
    await etcdPut(etcd.endpoint, k8, 'v8');
    await etcdDel(etcd.endpoint, keys[1]!);
    await eventually('events after resync', () => h.puts.length >= 1 && h.deletes.length >= 1);
    assert.deepEqual(h.puts, [[k8, 'v8']]);
    assert.deepEqual(h.deletes, [keys[1]]);
    assert.equal(h.resyncs.length, 1);
  });

  test('a throwing watch handler does not break the watch', async () => {
    const prefix = newPrefix();
    const log = memoryLog();
    const r = registry(prefix, log);
    const { revision } = await r.listSubnets();
    const seen: string[] = [];
    r.watchSubnets(revision, {
      put: (k) => {
        seen.push(k);
        throw new Error('handler bug');
      },
      delete: () => undefined,
      resync: () => undefined,
    });
    await etcdPut(etcd.endpoint, `${prefix}/subnets/10.244.1.0-24`, 'a');
    await etcdPut(etcd.endpoint, `${prefix}/subnets/10.244.2.0-24`, 'b');
    await eventually('both puts', () => seen.length === 2);
    assert.ok(log.entries.some((e) => e.level === 'error'));
  });

  test('acquire validates its request and fails cleanly after close', async () => {
    const prefix = newPrefix();
    const r = registry(prefix);
    assert.throws(() => vxlanBackend.ownData({ config: net16, vtepMac: '01:00:5e:00:00:01' }), (err: unknown) => (err as { code?: string }).code === 'ERR_INVALID_MAC');
    await assert.rejects(r.acquire(request(net16, '192.168.50.81', { ttlSeconds: 0 })), RangeError);
    await r.close();
    await assert.rejects(r.acquire(request(net16, '192.168.50.81')), (err: unknown) => err instanceof SubnetError && err.code === 'ERR_ETCD');
    await assert.rejects(r.listSubnets(), (err: unknown) => err instanceof SubnetError && err.code === 'ERR_ETCD');
  });

  test('etcd unreachable: acquire rejects with ERR_ETCD', async () => {
    const r = EtcdRegistry.create({ endpoints: ['http://127.0.0.1:1'], prefix: newPrefix() }, memoryLog());
    registries.push(r);
    await assert.rejects(withTimeout(r.acquire(request(net16, '192.168.50.91')), 30_000, 'acquire to fail'), (err: unknown) => {
      assert.ok(err instanceof SubnetError);
      assert.equal(err.code, 'ERR_ETCD');
      assert.ok(err.cause instanceof Error);
      return true;
    });
  });

  test('an etcd outage: renewals fail and are retried, then succeed again', async () => {
    const prefix = newPrefix();
    const r = registry(prefix);
    const h = recorder();
    const l = await r.acquire(request(net16, '192.168.50.95', { ttlSeconds: 10, renewMarginSeconds: 8 }));
    const { revision } = await r.listSubnets();
    r.watchSubnets(revision, h);
    const failed = once(r, 'renew-failed');
    await etcd.pause();
    try {
      const [err] = (await withTimeout(failed, 15_000, 'renew-failed')) as [SubnetError];
      assert.ok(err instanceof SubnetError);
      assert.equal(err.code, 'ERR_ETCD');
    } finally {
      await etcd.resume();
    }
    await withTimeout(Promise.race([once(r, 'renewed'), once(r, 'reacquired')]), 20_000, 'renewal after the outage');
    assert.equal(await etcdGet(etcd.endpoint, subnetKey(prefix, l.subnet)), encodeLeaseValue(l as Lease, vxlanCodec));
    // The watch survived the outage too.
    const k = `${prefix}/subnets/10.244.99.0-24`;
    await etcdPut(etcd.endpoint, k, 'after-outage');
    await eventually('watch event after the outage', () => h.puts.some(([key]) => key === k), 20_000);
  });
});

test('renewIntervalMs: TTL minus margin, at least 1 s, at most half the TTL', () => {
  assert.equal(renewIntervalMs(86400, 3600), 43_200_000);
  assert.equal(renewIntervalMs(86400, 80000), 6_400_000);
  assert.equal(renewIntervalMs(10, 8), 2000);
  assert.equal(renewIntervalMs(6, 3), 3000);
  assert.equal(renewIntervalMs(4, 10), 1000);
  assert.equal(renewIntervalMs(1, 0), 1000);
});

describe('EtcdRegistry over TLS with client certificates', () => {
  let pki: TestPki;
  let tlsEtcd: TestEtcd;
  const opened: EtcdRegistry[] = [];

  before(async () => {
    pki = makeTestPki();
    tlsEtcd = await startEtcd({ pki });
  });

  after(async () => {
    // Every step runs whatever failed before it (a registry that will not close must not
    // leave etcd running); the failures are thrown together at the end.
    const t = new Teardown();
    for (const r of opened) await t.step('a TLS registry', '-', () => r.close());
    await t.step('TLS etcd', 'kill -9 <its pid>', () => tlsEtcd?.stop());
    if (pki) await t.step(pki.dir, `rm -rf ${pki.dir}`, () => fs.rmSync(pki.dir, { recursive: true, force: true }));
    t.finish('registry TLS teardown');
  });

  test('acquires over TLS, and warns once about a group/world-readable key file', async () => {
    fs.chmodSync(pki.clientKeyFile, 0o644);
    const log = memoryLog();
    const opts = { endpoints: [tlsEtcd.endpoint], prefix: '/tls/network', caFile: pki.caFile, certFile: pki.clientCertFile, keyFile: pki.clientKeyFile };
    const r = EtcdRegistry.create(opts, log);
    opened.push(r);
    const l = await r.acquire(request(net16, '192.168.80.1'));
    assert.equal(l.subnet.len, 24);
    assert.equal((await r.listSubnets()).entries.size, 1);
    const warnings = log.entries.filter((e) => e.level === 'warn' && /key file/.test(e.m));
    assert.equal(warnings.length, 1);
    assert.equal((warnings[0]!.o as { keyFile?: string }).keyFile, pki.clientKeyFile);
    // Nothing secret in the logs: no PEM material.
    assert.ok(!JSON.stringify(log.entries).includes('PRIVATE KEY'));

    const log2 = memoryLog();
    const r2 = EtcdRegistry.create(opts, log2);
    opened.push(r2);
    assert.equal(log2.entries.filter((e) => e.level === 'warn').length, 0, 'warned only once per process');
  });

  test('without a client certificate etcd refuses, reported as ERR_ETCD', async () => {
    const r = EtcdRegistry.create({ endpoints: [tlsEtcd.endpoint], prefix: '/tls/network', caFile: pki.caFile }, memoryLog());
    opened.push(r);
    await assert.rejects(withTimeout(r.listSubnets(), 30_000, 'listSubnets to fail'), (err: unknown) => err instanceof SubnetError && err.code === 'ERR_ETCD');
  });

  test('create() checks its TLS options', () => {
    assert.throws(
      () => EtcdRegistry.create({ endpoints: [tlsEtcd.endpoint], prefix: '/p', certFile: pki.clientCertFile }, memoryLog()),
      (err: unknown) => err instanceof SubnetError && err.code === 'ERR_ETCD',
    );
    assert.throws(
      () => EtcdRegistry.create({ endpoints: [tlsEtcd.endpoint], prefix: '/p', caFile: path.join(pki.dir, 'missing.crt') }, memoryLog()),
      (err: unknown) => err instanceof SubnetError && err.code === 'ERR_ETCD' && (err.cause as NodeJS.ErrnoException).code === 'ENOENT',
    );
    assert.throws(
      () => EtcdRegistry.create({ endpoints: [], prefix: '/p' }, memoryLog()),
      (err: unknown) => err instanceof SubnetError && err.code === 'ERR_ETCD',
    );
  });
});
