// Issue 14 benchmark: what peer probing costs at 10,000 peers.
//
// Two namespaces joined by a veth: "a" runs twilld's Prober (the daemon's code, in this
// process) against 10,000 peer overlay addresses 10.200.x.0; "b" accepts the whole
// 10.200.0.0/16 as local (one `local` route) and runs one ProbeResponder (the daemon's code) in
// a child process. So every probe crosses a real kernel path both ways and every peer answers.
// Measured per phase: probes sent and replies per second, the prober's CPU (this process) and
// the responder's (the child, from /proc), peers judged ok, and the time to render /metrics
// with 10,000 peers' series; then what `twillctl check` costs at 1,000 hosts. Phase 1 runs at the default bound (100 probes/s: a 200 s round),
// phase 2 at 1,000 probes/s (a 20 s round, so every peer gets judged within the run).
//
// Usage (root): node dist/bench/probe.js [--time 30] [--peers 10000]
import * as fs from 'node:fs';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { formatIp4, parseIp4 } from '../src/ip/ipv4';
import { inNetns } from '../src/netns/netns';
import { Metrics } from '../src/observe/metrics';
import { registerProbeMetrics } from '../src/probe/metrics';
import type { ProbeTarget } from '../src/probe/peer';
import { Prober } from '../src/probe/prober';
import { ProbeResponder } from '../src/probe/responder';
import { openDfSocket } from '../src/probe/socket';
import { fmt, arg, table } from './stats';
import { renderCheck } from '../src/ctl/check';
import { buildCheckReport } from '../src/probe/cluster-view';
import { newPeerHealth, type PeerHealth } from '../src/probe/health';
import { buildSummary, decodeSummary, encodeSummary, type HealthSummary } from '../src/probe/summary';

const TIME = arg('time', 30);
const PEERS = arg('peers', 10_000);
const PORT = 18476;
const A = '10.199.0.1';
const B = '10.199.0.2';

function sh(...args: string[]): void {
  const r = spawnSync(args[0]!, args.slice(1), { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${args.join(' ')}: ${r.stderr}`);
}

/** Child mode: the responder, in namespace b, until killed. */
async function responderMain(): Promise<void> {
  // One process stands for 10,000 peers behind one address: no per-source bound here.
  const r = new ProbeResponder({ port: PORT, policy: { allowed: () => true, self: () => parseIp4(B) }, ratePerSecond: 1_000_000, perSourceRate: 1_000_000, onError: (e) => process.stderr.write(`${e.message}\n`) });
  await r.start();
  process.stdout.write('ready\n');
  setInterval(() => undefined, 1 << 30);
}

function cpuOf(pid: number): number {
  const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(f[11]) + Number(f[12])) / 100; // utime + stime, clock ticks of 10 ms
}

async function phase(rate: number, targets: ProbeTarget[], child: ChildProcess): Promise<string[]> {
  const metrics = new Metrics();
  let ok = 0;
  const prober = new Prober({
    port: PORT,
    intervalMs: 10_000,
    maxProbesPerSecond: rate,
    failures: 3,
    onTransition: (_t, tr) => {
      if (tr.to === 'ok') ok++;
      else if (tr.from === 'ok') ok--;
    },
    onError: (e) => process.stderr.write(`prober: ${e.message}\n`),
    onRtt: (ms) => rttObserve(ms),
    openSocket: (ip, port) => inNetns(nsPath('a'), () => openDfSocket(ip, port)),
  });
  const { observeRtt: rttObserve } = registerProbeMetrics(metrics, { peers: () => prober.peers().values(), proberStats: () => prober.stats, responderStats: () => undefined });
  prober.setTargets(targets);
  prober.setSelf(parseIp4(A), 1450);
  const settle = 2000;
  await new Promise((r) => setTimeout(r, settle));
  const s0 = { ...prober.stats };
  const c0 = process.cpuUsage();
  const r0 = cpuOf(child.pid!);
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, TIME * 1000));
  const secs = (performance.now() - t0) / 1000;
  const c1 = process.cpuUsage(c0);
  const r1 = cpuOf(child.pid!);
  const sent = prober.stats.sentSmall + prober.stats.sentFull - s0.sentSmall - s0.sentFull;
  const replies = prober.stats.replies - s0.replies;
  const m0 = performance.now();
  const body = metrics.render();
  const renderMs = performance.now() - m0;
  prober.stop();
  return [
    String(rate),
    fmt(prober.roundMs() / 1000, 0),
    fmt(sent / secs, 0),
    fmt(replies / secs, 0),
    fmt(((c1.user + c1.system) / 1e6 / secs) * 100, 2),
    fmt(((r1 - r0) / secs) * 100, 2),
    `${ok}/${targets.length}`,
    `${fmt(renderMs, 0)} ms / ${fmt(body.length / 1e6, 1)} MB`,
  ];
}

/**
 * `twillctl check` at `n` hosts, without etcd: the summaries every host would publish (all
 * healthy but one host cut off, so every other host lists it), their total size, and the time
 * to decode, aggregate and render them — what check does after its one range read.
 */
function checkAtScale(n: number): string {
  const hosts = Array.from({ length: n }, (_, i) => ({ name: `host${i}`, publicIp: `172.16.${i >> 8}.${i & 255}`, subnet: `10.${64 + (i >> 8)}.${i & 255}.0/24`, mtu: 1450 }));
  const broken = hosts[n - 1]!.subnet;
  const values = hosts.map((h) => {
    const peers: Array<{ key: string; health: PeerHealth }> = hosts.filter((p) => p !== h).map((p) => ({ key: p.subnet, health: { ...newPeerHealth(0), status: p.subnet === broken ? 'unreachable' : 'ok' } }));
    return encodeSummary(buildSummary(h, peers, 20_000, Date.now()));
  });
  const bytes = values.reduce((a, v) => a + v.length, 0);
  const t0 = performance.now();
  const summaries = new Map<string, HealthSummary>();
  for (const v of values) {
    const s = decodeSummary(v);
    summaries.set(s.subnet, s);
  }
  const report = buildCheckReport({ leases: hosts.map((h) => ({ subnet: h.subnet, publicIp: h.publicIp })), summaries, nowS: Math.floor(Date.now() / 1000), staleAfterS: 180 });
  const text = renderCheck(report, Math.floor(Date.now() / 1000));
  const ms = performance.now() - t0;
  return `check at ${n} hosts, one cut off: ${fmt(bytes / 1024, 0)} KB of summaries (${fmt(bytes / n, 0)} B per host), decode + aggregate + render ${fmt(ms, 0)} ms, ${report.problems.length} problems, likely cause ${report.suspects.map((x) => x.host.name).join(',')}, ${text.split('\n').length} lines\n`;
}

const tag = randomBytes(2).toString('hex');
const nsName = (x: string): string => `twpb-${tag}-${x}`;
const nsPath = (x: string): string => `/run/netns/${nsName(x)}`;

async function main(): Promise<void> {
  if (process.argv.includes('--responder')) return responderMain();
  sh('ip', 'netns', 'add', nsName('a'));
  sh('ip', 'netns', 'add', nsName('b'));
  let child: ChildProcess | undefined;
  try {
    sh('ip', '-n', nsName('a'), 'link', 'add', 'v0', 'type', 'veth', 'peer', 'name', 'v1', 'netns', nsName('b'));
    sh('ip', '-n', nsName('a'), 'addr', 'add', `${A}/24`, 'dev', 'v0');
    sh('ip', '-n', nsName('b'), 'addr', 'add', `${B}/24`, 'dev', 'v1');
    for (const x of ['a', 'b']) sh('ip', '-n', nsName(x), 'link', 'set', 'lo', 'up');
    sh('ip', '-n', nsName('a'), 'link', 'set', 'v0', 'up');
    sh('ip', '-n', nsName('b'), 'link', 'set', 'v1', 'up');
    sh('ip', '-n', nsName('a'), 'route', 'add', '10.200.0.0/16', 'via', B);
    sh('ip', '-n', nsName('b'), 'route', 'add', 'local', '10.200.0.0/16', 'dev', 'lo');
    const env = { ...process.env };
    delete env['NODE_EXTRA_CA_CERTS'];
    child = inNetns(nsPath('b'), () => spawn(process.execPath, [__filename, '--responder'], { stdio: ['ignore', 'pipe', 'inherit'], env }));
    await new Promise<void>((resolve, reject) => {
      child!.stdout!.once('data', () => resolve());
      child!.once('exit', (c) => reject(new Error(`responder exited ${c}`)));
    });
    const targets: ProbeTarget[] = [];
    for (let i = 0; i < PEERS; i++) targets.push({ key: `10.200.${i >> 8}.${i & 255}/32`, overlay: parseIp4(`10.200.${i >> 8}.${i & 255}`), publicIp: parseIp4(B) });
    const rows = [['probes/s bound', 'round s', 'sent/s', 'replies/s', 'prober CPU %', 'responder CPU %', 'peers ok', '/metrics render']];
    for (const rate of [100, 1000]) rows.push(await phase(rate, targets, child));
    process.stdout.write(`peer probing, ${PEERS} peers, ${TIME} s per phase (after 2 s settling), one core = 100 %\n${table(rows)}\n`);
    process.stdout.write(`node ${process.version}; responder answers from ${formatIp4(parseIp4(B))}\n`);
    process.stdout.write(checkAtScale(1000));
  } finally {
    if (child?.pid) child.kill('SIGTERM');
    for (const x of ['a', 'b']) spawnSync('ip', ['netns', 'del', nsName(x)]);
  }
}

main().catch((err: Error) => {
  process.stderr.write(`${err.stack ?? err.message}\n`);
  process.exit(1);
});
