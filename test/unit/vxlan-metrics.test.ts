// /metrics for the userspace datapath: cumulative native counters become Prometheus counters,
// every drop reason has a series from the start, and a new native handle (counters back to
// zero) never makes a counter go down.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Metrics } from '../../src/observe/metrics';
import { registerUserspaceMetrics } from '../../src/userspace/metrics';
import { RX_DROP_REASONS, TX_DROP_REASONS, type NativeStats } from '../../src/userspace/native';

function stats(over: Partial<NativeStats> = {}, txDrops: Partial<Record<string, number>> = {}, rxDrops: Partial<Record<string, number>> = {}): NativeStats {
  const zero = (names: readonly string[], given: Partial<Record<string, number>>) => Object.fromEntries(names.map((n) => [n, given[n] ?? 0]));
  return {
    txFrames: 0, txBytes: 0, tapReads: 0, udpSendCalls: 0, txGsoFrames: 0, tapReadErrors: 0,
    rxFrames: 0, rxBytes: 0, udpRecvCalls: 0, tapWrites: 0, rxMergedFrames: 0, udpRecvErrors: 0,
    udpGso: true, running: true,
    ...over,
    drops: { tx: zero(TX_DROP_REASONS, txDrops), rx: zero(RX_DROP_REASONS, rxDrops) } as NativeStats['drops'],
  };
}

const sample = (text: string, series: string): number => {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  assert.ok(line, `${series} present`);
  return Number(line.slice(series.length + 1));
};

test('every drop reason and both directions have a 0 series before any traffic', () => {
  const m = new Metrics();
  registerUserspaceMetrics(m, () => undefined);
  const text = m.render();
  for (const d of ['tx', 'rx']) {
    assert.equal(sample(text, `twill_userspace_frames_total{direction="${d}"}`), 0);
    assert.equal(sample(text, `twill_userspace_bytes_total{direction="${d}"}`), 0);
  }
  for (const r of TX_DROP_REASONS) assert.equal(sample(text, `twill_userspace_drops_total{direction="tx",reason="${r}"}`), 0);
  for (const r of RX_DROP_REASONS) assert.equal(sample(text, `twill_userspace_drops_total{direction="rx",reason="${r}"}`), 0);
  assert.match(text, /^# TYPE twill_userspace_drops_total counter$/m);
});

test('native counters are sampled at scrape time and stay monotonic across a handle reset', () => {
  const m = new Metrics();
  let cur: NativeStats | undefined = stats({ txFrames: 10, txBytes: 15000, rxFrames: 7, rxBytes: 700, tapReads: 3, udpSendCalls: 2, txGsoFrames: 1 }, { 'unknown-mac': 2 }, { 'wrong-vni': 5 });
  registerUserspaceMetrics(m, () => cur);
  let text = m.render();
  assert.equal(sample(text, 'twill_userspace_frames_total{direction="tx"}'), 10);
  assert.equal(sample(text, 'twill_userspace_bytes_total{direction="tx"}'), 15000);
  assert.equal(sample(text, 'twill_userspace_frames_total{direction="rx"}'), 7);
  assert.equal(sample(text, 'twill_userspace_drops_total{direction="tx",reason="unknown-mac"}'), 2);
  assert.equal(sample(text, 'twill_userspace_drops_total{direction="rx",reason="wrong-vni"}'), 5);
  assert.equal(sample(text, 'twill_userspace_syscalls_total{op="udp_send"}'), 2);
  assert.equal(sample(text, 'twill_userspace_offload_total{kind="tso"}'), 1);

  cur = stats({ txFrames: 25, rxFrames: 7 }, { 'unknown-mac': 3 }, { 'wrong-vni': 5 });
  text = m.render();
  assert.equal(sample(text, 'twill_userspace_frames_total{direction="tx"}'), 25);
  assert.equal(sample(text, 'twill_userspace_drops_total{direction="tx",reason="unknown-mac"}'), 3);

  // A new native handle starts from zero: its counts are added, nothing goes down.
  cur = stats({ txFrames: 4 }, {}, { short: 1 });
  text = m.render();
  assert.equal(sample(text, 'twill_userspace_frames_total{direction="tx"}'), 29);
  assert.equal(sample(text, 'twill_userspace_drops_total{direction="rx",reason="short"}'), 1);
  assert.equal(sample(text, 'twill_userspace_drops_total{direction="rx",reason="wrong-vni"}'), 5);

  cur = undefined;
  assert.equal(sample(m.render(), 'twill_userspace_frames_total{direction="tx"}'), 29, 'no stats (stopped): unchanged');
});
