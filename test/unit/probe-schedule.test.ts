// Probe scheduling: the rate bound holds at 10,000 peers, every peer is probed once per
// round, first probes and reschedules are spread (jitter), peers come and go. The schedule
// holds the caller's records (here {key, due, pos}, one per key and test, as the prober's).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ProbeSchedule, type ScheduleSlot } from '../../src/probe/schedule';
import { TokenBucket } from '../../src/probe/token-bucket';

function seeded(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

const keys = (n: number): string[] => Array.from({ length: n }, (_, i) => `10.${(i >> 8) & 255}.${i & 255}.0/24`);

interface Rec extends ScheduleSlot {
  key: string;
}

/** Each key's one record (the caller owns them), and the keys of what `take` returned. */
function records(): { of: (ks: string[]) => Rec[]; one: (k: string) => Rec; names: (rs: Rec[]) => string[] } {
  const all = new Map<string, Rec>();
  const one = (k: string): Rec => {
    let r = all.get(k);
    if (!r) all.set(k, (r = { key: k, due: 0, pos: -1 }));
    return r;
  };
  return { of: (ks) => ks.map(one), one, names: (rs) => rs.map((r) => r.key) };
}

test('10,000 peers at 100 probes/s: never over the rate, every peer probed about once per 200 s round', () => {
  const opts = { intervalMs: 10_000, maxProbesPerSecond: 100, probesPerPeer: 2, jitter: 0.2 };
  const s = new ProbeSchedule<Rec>(opts, 0, seeded(1));
  const r = records();
  s.setPeers(r.of(keys(10_000)), 0);
  assert.equal(s.roundMs(), 200_000, 'round stretched by the rate: 10,000 × 2 / 100 per s');
  const perSecond = new Map<number, number>();
  const times = new Map<string, number[]>();
  const tick = 50;
  for (let now = 0; now <= 1_000_000; now += tick) {
    for (const k of r.names(s.take(now))) {
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
  const s = new ProbeSchedule<Rec>({ intervalMs: 1000, maxProbesPerSecond: 100, probesPerPeer: 2, jitter: 0.2 }, 0, seeded(7));
  const r = records();
  s.setPeers(r.of(keys(20)), 0);
  assert.equal(s.roundMs(), 1000);
  const first = new Map<string, number>();
  const gaps: number[] = [];
  const last = new Map<string, number>();
  for (let now = 0; now <= 60_000; now += 10) {
    for (const k of r.names(s.take(now))) {
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
  const s = new ProbeSchedule<Rec>({ intervalMs: 1000, maxProbesPerSecond: 1000, probesPerPeer: 2, jitter: 0 }, 0, () => 0.5);
  const r = records();
  assert.equal(s.nextDueIn(0), Infinity);
  s.setPeers(r.of(['a', 'b']), 0);
  assert.equal(s.nextDueIn(0), 500);
  assert.deepEqual(r.names(s.take(500)).sort(), ['a', 'b']);
  s.setPeers(r.of(['b', 'c']), 600);
  assert.equal(r.one('a').pos, -1, 'a removed record is marked out of the heap');
  assert.equal(s.has(r.one('a')), false);
  const seen = new Set<string>();
  for (let now = 600; now < 5000; now += 10) for (const k of r.names(s.take(now))) seen.add(k);
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
  const s = new ProbeSchedule<Rec>({ intervalMs: 1000, maxProbesPerSecond: 100_000, probesPerPeer: 2, jitter: 0.2 }, 0, rnd);
  const r = records();
  const all = keys(300);
  let now = 0;
  let current: string[] = [];
  for (let round = 0; round < 50; round++) {
    current = all.filter(() => rnd() < 0.5);
    s.setPeers(r.of(current), now);
    assert.equal(s.size, current.length);
    const seen = new Set<string>();
    let lastDue = -Infinity;
    for (const until = now + 1300; now < until; now += 5) {
      const due = s.nextDueIn(now);
      if (current.length > 0) assert.ok(Number.isFinite(due));
      for (const k of r.names(s.take(now))) {
        assert.ok(current.includes(k), `${k} was removed but came due`);
        seen.add(k);
      }
      assert.ok(now >= lastDue);
      lastDue = now;
    }
    assert.equal(seen.size, current.length, 'every current peer came due within a round (+ jitter)');
    for (const k of all) assert.equal(r.one(k).pos >= 0, current.includes(k), `${k}: in the heap exactly when current`);
  }
  s.setPeers([], now);
  assert.equal(s.nextDueIn(now), Infinity);
});

test('peers added and removed one at a time (lease events) are probed, or no longer, like a whole new set', () => {
  const s = new ProbeSchedule<Rec>({ intervalMs: 1000, maxProbesPerSecond: 100_000, probesPerPeer: 2, jitter: 0.2 }, 0, seeded(5));
  const r = records();
  s.setPeers(r.of(keys(50)), 0);
  const gone = keys(50).filter((_, i) => i % 3 === 0);
  for (const k of gone) s.remove(r.one(k));
  s.remove(r.one('not-there'));
  s.remove(r.one(gone[0]!)); // removed already: nothing
  // A record that claims a position it does not hold (another schedule's): nothing either.
  s.remove({ key: 'foreign', due: 0, pos: 0 });
  const added = ['192.168.1.0/24', '192.168.2.0/24'];
  for (const k of added) s.add(r.one(k), 0);
  s.add(r.one(added[0]!), 0); // already there: not a second time
  const want = [...keys(50).filter((k) => !gone.includes(k)), ...added].sort();
  assert.equal(s.size, want.length);
  const seen = new Map<string, number>();
  for (let now = 0; now <= 1300; now += 5) for (const k of r.names(s.take(now))) seen.set(k, (seen.get(k) ?? 0) + 1);
  assert.deepEqual([...seen.keys()].sort(), want);
  assert.ok([...seen.values()].every((n) => n <= 2), 'each at most once per round (+ jitter)');
});

test('records removed and added back at random: positions stay a valid heap, every scheduled record comes due, no removed one', () => {
  const rnd = seeded(11);
  const s = new ProbeSchedule<Rec>({ intervalMs: 1000, maxProbesPerSecond: 100_000, probesPerPeer: 2, jitter: 0.2 }, 0, rnd);
  const r = records();
  const all = r.of(keys(200));
  s.setPeers(all, 0);
  for (let i = 0; i < 2000; i++) {
    const p = all[Math.floor(rnd() * all.length)]!;
    if (s.has(p)) s.remove(p);
    else s.add(p, i);
  }
  const inHeap = all.filter((p) => p.pos >= 0);
  assert.equal(s.size, inHeap.length);
  assert.equal(new Set(inHeap.map((p) => p.pos)).size, inHeap.length, 'distinct positions');
  assert.deepEqual(inHeap.map((p) => p.pos).sort((a, b) => a - b), inHeap.map((_, i) => i), 'positions 0..size-1');
  const atPos = new Map(inHeap.map((p) => [p.pos, p]));
  for (const p of inHeap) if (p.pos > 0) assert.ok(atPos.get((p.pos - 1) >> 1)!.due <= p.due, 'no record due before its parent');
  // Each scheduled record comes due by its due time, and no removed one ever does.
  const seen = new Set<Rec>();
  const latest = Math.max(...inHeap.map((p) => p.due));
  for (let now = 0; now <= latest; now += 1) {
    for (const p of s.take(now)) {
      assert.ok(inHeap.includes(p), `${p.key} was removed but came due`);
      seen.add(p);
    }
  }
  assert.equal(seen.size, inHeap.length, 'every scheduled record came due');
});
