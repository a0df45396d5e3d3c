// The native datapath's header check must be exactly the TS codec's (same datagram, same
// verdict on every host of a mixed cluster and in every counter): a differential fuzz of
// usClassify against decodeVxlan. Plus the handle's contract without root: argument checks
// with stable codes, counters from zero, idempotent close.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { decodeVxlan, encapsulate, DECODE_RESULTS } from '../../src/userspace/vxlan-codec';
import { hasUserspaceNative, userspaceNative, RX_DROP_REASONS, TX_DROP_REASONS } from '../../src/userspace/native';

const skip = hasUserspaceNative() ? false : 'native addon built without native/userspace.c';

test('usClassify agrees with decodeVxlan on 200k random, truncated and mutated datagrams', { skip }, () => {
  const a = userspaceNative();
  const pool = randomBytes(2 * 1024 * 1024);
  let disagreements = 0;
  const seen = new Set<string>();
  for (let i = 0; i < 200_000; i++) {
    const vni = i % 2 ? 1 : pool[i % pool.length]! << 16 | pool[(i + 5) % pool.length]!;
    const off = (i * 131) % (pool.length - 2000);
    let d: Uint8Array;
    if (i % 3 === 0) d = pool.subarray(off, off + (pool[off]! % 40));
    else {
      d = encapsulate(i % 5 ? vni : vni ^ 1, pool.subarray(off, off + (i % 30)));
      if (i % 3 === 2) d[pool[off]! % 8] ^= 1 << (i % 8);
    }
    const want = decodeVxlan(d, vni);
    const got = DECODE_RESULTS[a.usClassify(d, vni)];
    const wantLabel = want.ok ? 'ok' : want.reason;
    seen.add(wantLabel);
    if (got !== wantLabel && disagreements++ < 5) assert.fail(`${Buffer.from(d).toString('hex')} vni ${vni}: native ${got}, ts ${wantLabel}`);
  }
  assert.equal(disagreements, 0);
  assert.deepEqual([...seen].sort(), [...DECODE_RESULTS].sort());
});

test('handle: counters start at zero, bad arguments throw with a code, close is idempotent', { skip }, () => {
  const a = userspaceNative();
  const mac = Buffer.from([0x0e, 0, 0, 0, 0, 1]);
  for (const bad of [() => a.usCreate(-1, 8472, mac, 1450), () => a.usCreate(1, 0, mac, 1450), () => a.usCreate(1, 8472, Buffer.alloc(5), 1450), () => a.usCreate(0x1000000, 8472, mac, 1450)]) {
    assert.throws(bad, { code: 'EINVAL' });
  }
  const h = a.usCreate(1, 8472, mac, 1450);
  const s = a.usStats(h);
  assert.equal(s.running, false);
  assert.equal(s.txFrames + s.rxFrames + s.txBytes + s.rxBytes, 0);
  assert.deepEqual(Object.keys(s.drops.tx).sort(), [...TX_DROP_REASONS].sort(), 'native and TS agree on tx drop reasons');
  assert.deepEqual(Object.keys(s.drops.rx).sort(), [...RX_DROP_REASONS].sort(), 'native and TS agree on rx drop reasons');
  assert.throws(() => a.usSetTable(h, Buffer.alloc(11)), { code: 'EINVAL' }, 'entries are 10 bytes each');
  a.usSetTable(h, Buffer.alloc(30));
  a.usSetTable(h, Buffer.alloc(0));
  a.usSetConfig(h, 2, 4789, mac, 1400);
  assert.throws(() => a.usSetConfig(h, 2, 70000, mac, 1400), { code: 'EINVAL' });
  // Without a TAP no thread starts, whatever the socket.
  a.usSetFds(h, -1, false, -1);
  assert.equal(a.usStats(h).running, false);
  a.usClose(h);
  a.usClose(h);
  assert.equal(a.usStats(h).running, false, 'counters stay readable after close');
  assert.throws(() => a.usSetTable(h, Buffer.alloc(0)), { code: 'EINVAL' }, 'a closed handle takes no more work');
});

test('usOpenUdp: address and port are validated; errors carry errno codes', { skip }, () => {
  const a = userspaceNative();
  assert.throws(() => a.usOpenUdp('not-an-ip', 8472, 0), { code: 'EINVAL' });
  assert.throws(() => a.usOpenUdp('127.0.0.1', 0, 0), { code: 'EINVAL' });
  // 192.0.2.1 (TEST-NET-1) is on no interface here: bind fails with the kernel's errno.
  assert.throws(() => a.usOpenUdp('192.0.2.1', 40000 + (process.pid % 20000), 0), (e: unknown) => (e as { code?: string; errno?: number }).code === 'EADDRNOTAVAIL' && typeof (e as { errno?: number }).errno === 'number');
});
