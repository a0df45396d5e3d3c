// What one /metrics scrape costs twilld at 10,000 peers: the registry as the daemon builds it
// (createDaemonMetrics + the probe metrics, the real classes), every peer judged, so the four
// per-peer gauges carry 40,000 series. Timed: render(), collectors included (that is what a
// scrape runs). No root, no kernel.
//
// The reference, measured in the same run and interleaved: joining the same body from its lines
// already formatted (one array join of the exact output lines). It is the floor of any render
// that produces this text, and it moves with the machine's speed, so the ratio is what to
// compare across machines and runs.
//
// Memory (issue 13): the heap the registry holds between scrapes, after a render (with the label
// texts a render makes and keeps on the peer records), against the heap of the records it
// describes (the prober's peer map: a record and its health per peer); and what one scrape
// leaves in V8's old generation (promoted past young-generation collections, there until a full
// one), streamed as the daemon serves it (renderTo) against built as one string (render()).
// Measured by forced collections in the same run, under the daemon's node flags (TWILLD_NODE_FLAGS:
// --expose-gc, and its young generation size, which decides what is promoted): the bench
// re-runs itself with them.
//
// Usage: node dist/bench/metrics-render.js [--peers 10000] [--runs 15]
import { spawnSync } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import * as v8 from 'node:v8';
import { formatIp4 } from '../src/ip/ipv4';
import { Metrics, createDaemonMetrics } from '../src/observe/metrics';
import { registerProbeMetrics } from '../src/probe/metrics';
import { newPeerHealth, type PeerHealth } from '../src/probe/health';
import { newProbePeer, type ProbePeer } from '../src/probe/peer';
import { TWILLD_NODE_FLAGS } from '../src/install/layout';
import { arg, fmt, median, table } from './stats';

const PEERS = arg('peers', 10_000);
const RUNS = arg('runs', 15);

/** The prober's peer map as it stands with every peer judged (records made as the prober makes them). */
function peerState(n: number): Map<string, ProbePeer> {
  const peers = new Map<string, ProbePeer>();
  const now = Date.now();
  for (let i = 0; i < n; i++) {
    const key = `10.${128 + (i >> 8)}.${i & 255}.0/24`;
    const mtuOk = i % 50 !== 0;
    const health: PeerHealth = Object.assign(newPeerHealth(now), { status: mtuOk ? 'ok' : 'mtu', reachable: true, mtuOk, rttMs: 0.2 + (i % 97) / 100, lastSuccess: now - (i % 30) * 1000 });
    peers.set(key, newProbePeer({ key, overlay: 0, publicIp: (172 << 24) | (16 << 16) | (i + 2) }, health));
  }
  return peers;
}

/** Old generation (and large objects) one scrape leaves behind, per scrape over 5, or NaN without --expose-gc. */
function oldGenPerScrape(scrape: () => void): number {
  const gc = (globalThis as { gc?: (o?: { type: 'minor' | 'major' }) => void }).gc;
  if (!gc) return NaN;
  const old = (): number => v8.getHeapSpaceStatistics().filter((x) => x.space_name === 'old_space' || x.space_name === 'large_object_space').reduce((a, x) => a + x.space_used_size, 0);
  gc();
  const before = old();
  for (let i = 0; i < 5; i++) {
    scrape();
    gc({ type: 'minor' });
  }
  return (old() - before) / 5;
}

/** Heap in use after a full collection, or NaN without --expose-gc. */
function heapAfterGc(): number {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) return NaN;
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}

function main(): void {
  const heap0 = heapAfterGc();
  const peers = peerState(PEERS);
  const heapRecords = heapAfterGc();
  const m = new Metrics();
  const daemon = createDaemonMetrics(m);
  daemon.peers.set(PEERS);
  daemon.setLease({ subnet: '10.244.0.0/24', publicIp: '172.16.0.1', vtepMac: '02:00:00:00:00:01' });
  const probe = registerProbeMetrics(m, {
    peers: () => peers.values(),
    proberStats: () => ({ sentSmall: 1, sentFull: 1, replies: 2, unmatched: 0, sendErrors: 0 }),
    responderStats: () => undefined,
  });
  for (let i = 0; i < 1000; i++) probe.observeRtt(0.1 + i / 1000);

  const heapRegistry = heapAfterGc();
  const first = performance.now();
  let body = m.render();
  const firstMs = performance.now() - first;
  const bodyLength = body.length;
  body = '';
  // Held between scrapes: what the registry keeps once a render's output is gone. The least of
  // three (a full collection now and then leaves a few MB of V8's own caches behind).
  let held = heapAfterGc() - heapRegistry;
  for (let i = 0; i < 2; i++) {
    m.renderTo(() => undefined);
    held = Math.min(held, heapAfterGc() - heapRegistry);
  }
  const lines = m.render().split('\n');
  const records = heapRecords - heap0;
  const ours: number[] = [];
  const refs: number[] = [];
  const churned: number[] = [];
  const churn = [...peers.values()].at(PEERS >> 1)!;
  let sink = 0;
  for (let i = 0; i < 3; i++) sink += m.render().length + lines.join('\n').length; // warm-up
  for (let i = 0; i < RUNS; i++) {
    const t0 = performance.now();
    sink += m.render().length;
    const t1 = performance.now();
    sink += lines.join('\n').length;
    const t2 = performance.now();
    ours.push(t1 - t0);
    refs.push(t2 - t1);
    // One peer leaves (or comes back, a new record as the prober makes it, label text not made yet).
    if (i % 2 === 0) peers.delete(churn.key);
    else peers.set(churn.key, newProbePeer(churn, churn.health));
    const t3 = performance.now();
    sink += m.render().length;
    churned.push(performance.now() - t3);
  }
  daemon.stop();
  let streamed = 0;
  const oldStreamed = oldGenPerScrape(() => m.renderTo((c) => (streamed += c.length)));
  const oldWhole = oldGenPerScrape(() => (sink += m.render().length));
  if (streamed === 0) sink = 0;
  const ratios = ours.map((o, i) => o / refs[i]!);
  const samples = lines.filter((l) => l !== '' && !l.startsWith('#')).length;
  console.log(`/metrics render, ${PEERS} peers (${samples} samples, ${fmt(bodyLength / 1e6, 2)} MB), ${RUNS} runs; first peer ip ${formatIp4(peers.values().next().value!.publicIp)}`);
  console.log(
    table([
      ['measure', 'twill render()', 'reference (join of the same lines)', 'ratio (median of per-run)'],
      ['first render', `${fmt(firstMs, 1)} ms`, '', ''],
      ['render, median', `${fmt(median(ours), 1)} ms`, `${fmt(median(refs), 2)} ms`, `${fmt(median(ratios), 1)}x`],
      ['render after a peer left/returned, median', `${fmt(median(churned), 1)} ms`, '', `${fmt(median(churned) / median(refs), 1)}x`],
      ['render, max', `${fmt(Math.max(...ours), 1)} ms`, `${fmt(Math.max(...refs), 2)} ms`, ''],
      ['old generation left per scrape, streamed (renderTo, as served)', `${fmt(oldStreamed / 1048576, 2)} MB`, `${fmt(oldWhole / 1048576, 2)} MB (render(): one string)`, `${fmt(oldStreamed / oldWhole, 2)}x`],
      ['heap held between scrapes (after a render)', `${fmt(held / 1048576, 2)} MB`, `${fmt(records / 1048576, 2)} MB (the peer records it describes)`, `${fmt(held / records, 2)}x`],
    ]),
  );
  if (sink === 0) console.log('');
}

if (TWILLD_NODE_FLAGS.every((f) => process.execArgv.includes(f))) main();
else process.exit(spawnSync(process.execPath, [...TWILLD_NODE_FLAGS, ...process.execArgv, __filename, ...process.argv.slice(2)], { stdio: 'inherit' }).status ?? 1);
