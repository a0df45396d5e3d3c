// Probe scheduling: the rate bound holds at 10,000 peers, every peer is probed once per
// round, first probes and reschedules are spread (jitter), peers come and go.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ProbeSchedule } from '../../src/probe/schedule';
import { TokenBucket } from '../../src/probe/token-bucket';

function seeded(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

const keys = (n: number): string[] => Array.from({ length: n }, (_, i) => `10.${(i >> 8) & 255}.${i & 255}.0/24`);

test('10,000 peers at 100 probes/s: never over the rate, every peer probed about once per 200 s round', () => {
  const opts = { intervalMs: 10_000, maxProbesPerSecond: 100, probesPerPeer: 2, jitter: 0.2 };
  const s = new ProbeSchedule(opts, 0, seeded(1));
  s.setPeers(keys(10_000), 0);
  assert.equal(s.roundMs(), 200_000, 'round stretched by the rate: 10,000 × 2 / 100 per s');
  const perSecond = new Map<number, number>();
  const times = new Map<string, number[]>();
  const tick = 50;
  for (let now = 0; now <= 1_000_000; now += tick) {
    for (const k of s.take(now)) {
      const sec = Math.floor(now / 1000);
      perSecond.set(sec, (perSecond.get(sec) ?? 0) + 2);
      const t = times.get(k) ?? [];
      t.push(now);
      times.set(k, t);
    }
  }
  const maxPerSecond = Math.max(...perSecond.values());
  assert.ok(maxPerSecond <= 100 + 10, `at most rate + burst per second (saw ${maxPerSecond})`);
  assert.equal(times.size, 10_000, 'every peer was probed');
  const gaps: number[] = [];
  for (const t of times.values()) for (let i = 1; i < t.length; i++) gaps.push(t[i]! - t[i - 1]!);
  gaps.sort((a, b) => a - b);
  const median = gaps[gaps.length >> 1]!;
  assert.ok(median > 150_000 && median < 260_000, `median gap ~ one round (saw ${median} ms)`);
  assert.ok(gaps[gaps.length - 1]! < 400_000, `no peer starved (max gap ${gaps[gaps.length - 1]} ms)`);
});

test('a few peers are probed at the interval, with jitter, starting at spread-out times', () => {
  const s = new ProbeSchedule({ intervalMs: 1000, maxProbesPerSecond: 100, probesPerPeer: 2, jitter: 0.2 }, 0, seeded(7));
  s.setPeers(keys(20), 0);
  assert.equal(s.roundMs(), 1000);
  const first = new Map<string, number>();
  const gaps: number[] = [];
  const last = new Map<string, number>();
  for (let now = 0; now <= 60_000; now += 10) {
    for (const k of s.take(now)) {
      if (!first.has(k)) first.set(k, now);
      const l = last.get(k);
      if (l !== undefined) gaps.push(now - l);
      last.set(k, now);
    }
  }
  const firsts = [...first.values()];
  assert.ok(Math.max(...firsts) - Math.min(...firsts) > 500, 'first probes spread over the round');
  assert.ok(Math.min(...gaps) >= 800 - 10 && Math.max(...gaps) <= 1200 + 10, 'gaps within interval ± 20 %');
  assert.ok(new Set(gaps).size > 5, 'gaps vary (jitter)');
});

test('removed peers are no longer probed; added ones are; nextDueIn says when to wake', () => {
  const s = new ProbeSchedule({ intervalMs: 1000, maxProbesPerSecond: 1000, probesPerPeer: 2, jitter: 0 }, 0, () => 0.5);
  assert.equal(s.nextDueIn(0), Infinity);
  s.setPeers(['a', 'b'], 0);
  assert.equal(s.nextDueIn(0), 500);
  assert.deepEqual(s.take(500).sort(), ['a', 'b']);
  s.setPeers(['b', 'c'], 600);
  const seen = new Set<string>();
  for (let now = 600; now < 5000; now += 10) for (const k of s.take(now)) seen.add(k);
  assert.deepEqual([...seen].sort(), ['b', 'c']);
  assert.equal(s.size, 2);
});

test('token bucket: rate and burst on an injected clock', () => {
  const b = new TokenBucket(10, 5, 0);
  let n = 0;
  while (b.take(0)) n++;
  assert.equal(n, 5, 'burst');
  assert.equal(b.take(50), false);
  assert.equal(b.take(100), true, 'one token per 100 ms');
  assert.throws(() => new TokenBucket(0, 1, 0), RangeError);
});

test('peers removed from anywhere in the schedule, many times over: the rest still come due in order, none lost or left behind', () => {
  const rnd = seeded(3);
  const s = new ProbeSchedule({ intervalMs: 1000, maxProbesPerSecond: 100_000, probesPerPeer: 2, jitter: 0.2 }, 0, rnd);
  const all = keys(300);
  let now = 0;
  let current: string[] = [];
  for (let round = 0; round < 50; round++) {
    current = all.filter(() => rnd() < 0.5);
    s.setPeers(current, now);
    assert.equal(s.size, current.length);
    const seen = new Set<string>();
    let lastDue = -Infinity;
    for (const until = now + 1300; now < until; now += 5) {
      const due = s.nextDueIn(now);
      if (current.length > 0) assert.ok(Number.isFinite(due));
      for (const k of s.take(now)) {
        assert.ok(current.includes(k), `${k} was removed but came due`);
        seen.add(k);
      }
      assert.ok(now >= lastDue);
      lastDue = now;
    }
    assert.equal(seen.size, current.length, 'every current peer came due within a round (+ jitter)');
  }
  s.setPeers([], now);
  assert.equal(s.nextDueIn(now), Infinity);
});

test('peers added and removed one at a time (lease events) are probed, or no longer, like a whole new set', () => {
  const s = new ProbeSchedule({ intervalMs: 1000, maxProbesPerSecond: 100_000, probesPerPeer: 2, jitter: 0.2 }, 0, seeded(5));
  s.setPeers(keys(50), 0);
  const gone = keys(50).filter((_, i) => i % 3 === 0);
  for (const k of gone) s.remove(k);
  s.remove('not-there');
  const added = ['192.168.1.0/24', '192.168.2.0/24'];
  for (const k of added) s.add(k, 0);
  s.add(added[0]!, 0); // already there: no second slot
  const want = [...keys(50).filter((k) => !gone.includes(k)), ...added].sort();
  assert.equal(s.size, want.length);
  const seen = new Map<string, number>();
  for (let now = 0; now <= 1300; now += 5) for (const k of s.take(now)) seen.set(k, (seen.get(k) ?? 0) + 1);
  assert.deepEqual([...seen.keys()].sort(), want);
  assert.ok([...seen.values()].every((n) => n <= 2), 'each at most once per round (+ jitter)');
});
