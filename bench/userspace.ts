// Issue 6 benchmark: the userspace VXLAN datapath against the kernel's, measured in the same
// run on the same machine, printed as ratios.
//
// Four hosts (network namespaces) on one underlay bridge, MTU 1500 (overlay 1450), built with
// the lab's own topology code: k1, k2 run the kernel dataplane (the kernel VXLAN driver: VXLAN device
// + flannel's three entries per peer), u1, u2 the userspace one (the userspace driver: TAP +
// forwarder threads). All dataplanes run in this process (the forwarder is native threads;
// the JS thread only waits), every host knows every other (so k1↔u1 works too).
//
// Measured, interleaved per run: host→host <subnet>.0 TCP throughput (iperf3, 1 stream),
// ping RTT p50, and small-packet rate (iperf3 UDP, 64-byte payload, unlimited rate), kernel
// pair vs userspace pair. The forwarder's counters give frames/s and syscalls per frame,
// /proc gives its threads' CPU time.
//
// Usage (root): node dist/bench/userspace.js [--runs 5] [--time 10] [--offloads 0|1]
import * as fs from 'node:fs';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { parseNetworkConfig } from '../src/config/network';
import { computeDesired } from '../src/backends/plan';
import { vxlanBackend } from '../src/backends/vxlan/backend';
import type { VxlanData } from '../src/backends/vxlan/codec';
import { kernelVxlanDriver } from '../src/backends/vxlan/drivers';
import { Reconciler, type Dataplane } from '../src/dataplane/reconciler';
import { formatIp4, parseIp4, parsePrefix4 } from '../src/ip/ipv4';
import { buildHost, buildUnderlay } from '../src/lab/topology';
import { NetlinkHandle } from '../src/netlink/handle';
import { deleteNetns, inNetns, netnsExists } from '../src/netns/netns';
import type { Lease } from '../src/subnet/lease';
import { userspaceVxlanDriver, type UserspaceDriver } from '../src/userspace/dataplane';
import type { NativeStats } from '../src/userspace/native';
import { fmt, median, table } from './stats';

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : def;
}
const RUNS = arg('runs', 5);
const TIME = arg('time', 10);
const OFFLOADS = arg('offloads', 1) !== 0;
const quiet = { info() {}, warn() {}, error: (o: object, m: string) => process.stderr.write(`${m} ${JSON.stringify(o)}\n`), debug() {} };

interface BenchHost {
  name: string;
  ns: string;
  ip: string;
  lease: Lease<VxlanData>;
  h: NetlinkHandle;
  dp: Dataplane;
  kind: 'kernel' | 'userspace';
}

const tag = `twb${process.pid % 100000}`;
const underlayNs = `${tag}-ul`;
const config = parseNetworkConfig('{"Network":"10.244.0.0/16","SubnetLen":24,"Backend":{"Type":"vxlan","VNI":1,"Port":8472}}');
const children = new Set<ChildProcess>();

function spawnIn(ns: string, cmd: string, args: string[]): ChildProcess {
  const child = inNetns(`/run/netns/${ns}`, () => spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] }));
  children.add(child);
  child.on('exit', () => children.delete(child));
  return child;
}

function runIn(ns: string, cmd: string, args: string[], timeoutMs: number): string {
  const r = inNetns(`/run/netns/${ns}`, () => spawnSync(cmd, args, { encoding: 'utf8', timeout: timeoutMs }));
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} in ${ns}: ${r.stderr || r.error?.message || `exit ${r.status}`}`);
  return r.stdout;
}

function waitConverged(dp: Dataplane): Promise<void> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('dataplane did not converge within 10 s')), 10_000);
    dp.once('converged', () => {
      clearTimeout(t);
      resolve();
    });
  });
}

async function buildHosts(): Promise<BenchHost[]> {
  buildUnderlay(underlayNs, 1500);
  const specs: Array<[string, 'kernel' | 'userspace']> = [['k1', 'kernel'], ['k2', 'kernel'], ['u1', 'userspace'], ['u2', 'userspace']];
  const hosts: BenchHost[] = specs.map(([name, kind], i) => {
    const ns = `${tag}-${name}`;
    const { nsPath, ip } = buildHost(underlayNs, ns, i + 1, 1500);
    const h = NetlinkHandle.open({ netns: nsPath });
    const lease: Lease<VxlanData> = { subnet: parsePrefix4(`10.244.${i + 1}.0/24`), publicIp: parseIp4(ip), publicIpv6: null, backendType: 'vxlan', backendData: { vni: 1, vtepMac: `0e:00:00:00:00:0${i + 1}` } };
    const driver = kind === 'kernel' ? kernelVxlanDriver() : userspaceVxlanDriver({ netns: nsPath, offloads: OFFLOADS });
    const dp: Dataplane = new Reconciler(h, quiet, { resyncIntervalMs: 600_000 }, driver);
    return { name, ns, ip, lease, h, dp, kind };
  });
  await Promise.all(
    hosts.map((host) => {
      const eth0 = host.h.getLink('eth0')!;
      const { desired } = computeDesired(vxlanBackend, { config, own: host.lease, ownHeld: true, peers: hosts.map((x) => x.lease), underlay: { index: eth0.index, ip: host.ip, mtu: eth0.mtu } });
      const done = waitConverged(host.dp);
      host.dp.setDesired(desired);
      return done;
    }),
  );
  return hosts;
}

const target = (h: BenchHost): string => formatIp4(h.lease.subnet.ip);

async function iperf(from: BenchHost, to: BenchHost, extra: string[]): Promise<Record<string, any>> {
  const srv = spawnIn(to.ns, 'iperf3', ['-s', '-1', '-B', target(to)]);
  await new Promise((r) => setTimeout(r, 300));
  try {
    const out = runIn(from.ns, 'iperf3', ['-c', target(to), '-t', String(TIME), '-J', '--connect-timeout', '3000', ...extra], (TIME + 20) * 1000);
    return JSON.parse(out) as Record<string, any>;
  } finally {
    if (srv.exitCode === null) srv.kill('SIGTERM');
  }
}

function pingP50(from: BenchHost, to: BenchHost): number {
  const out = runIn(from.ns, 'ping', ['-n', '-c', '200', '-i', '0.005', target(to)], 30_000);
  const times = [...out.matchAll(/time=([\d.]+) ms/g)].map((m) => Number(m[1]));
  return median(times);
}

/** CPU seconds of this process's forwarder threads, by thread name. */
function forwarderCpu(): Map<string, number> {
  const hz = 100;
  const out = new Map<string, number>();
  for (const tid of fs.readdirSync('/proc/self/task')) {
    try {
      const stat = fs.readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      if (!comm.startsWith('twill-vxlan')) continue;
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out.set(`${comm}#${tid}`, (Number(f[11]) + Number(f[12])) / hz);
    } catch {
      /* thread gone */
    }
  }
  return out;
}

function cpuDelta(a: Map<string, number>, b: Map<string, number>): number[] {
  return [...b].map(([k, v]) => v - (a.get(k) ?? 0)).sort((x, y) => y - x);
}

function statsOf(h: BenchHost): NativeStats {
  return ((h.dp as Reconciler).driver as UserspaceDriver).stats()!;
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('run as root (network namespaces)');
  const hosts = await buildHosts();
  const [k1, k2, u1, u2] = hosts as [BenchHost, BenchHost, BenchHost, BenchHost];
  try {
    // Sanity: every pair that the results compare, plus the mixed pairs.
    for (const [a, b] of [[k1, k2], [u1, u2], [k1, u1], [u2, k2]] as const) pingP50(a, b);

    const kTcp: number[] = [], uTcp: number[] = [], ratios: number[] = [];
    const kPing: number[] = [], uPing: number[] = [];
    const kPps: number[] = [], uPps: number[] = [];
    const txRates: number[] = [], rxRates: number[] = [], perSend: number[] = [], perWrite: number[] = [], cpuTop: number[][] = [];
    const mixed: number[] = [];
    for (let r = 0; r < RUNS; r++) {
      const kj = await iperf(k1, k2, []);
      const s0 = statsOf(u1), r0 = statsOf(u2), c0 = forwarderCpu();
      const t0 = performance.now();
      const uj = await iperf(u1, u2, []);
      const secs = (performance.now() - t0) / 1000;
      const s1 = statsOf(u1), r1 = statsOf(u2), c1 = forwarderCpu();
      const kb = kj.end.sum_received.bits_per_second as number;
      const ub = uj.end.sum_received.bits_per_second as number;
      kTcp.push(kb);
      uTcp.push(ub);
      ratios.push(ub / kb);
      txRates.push((s1.txFrames - s0.txFrames) / secs);
      rxRates.push((r1.rxFrames - r0.rxFrames) / secs);
      perSend.push((s1.txFrames - s0.txFrames) / Math.max(1, s1.udpSendCalls - s0.udpSendCalls));
      perWrite.push((r1.rxFrames - r0.rxFrames) / Math.max(1, r1.tapWrites - r0.tapWrites));
      cpuTop.push(cpuDelta(c0, c1).slice(0, 2).map((x) => (x / secs) * 100));
      kPing.push(pingP50(k1, k2));
      uPing.push(pingP50(u1, u2));
      const ku = await iperf(k1, u1, []);
      mixed.push(ku.end.sum_received.bits_per_second as number);
      const kp = await iperf(k1, k2, ['-u', '-b', '0', '-l', '64']);
      const up = await iperf(u1, u2, ['-u', '-b', '0', '-l', '64']);
      kPps.push((kp.end.sum.packets - kp.end.sum.lost_packets) / kp.end.sum.seconds);
      uPps.push((up.end.sum.packets - up.end.sum.lost_packets) / up.end.sum.seconds);
      process.stderr.write(
        `run ${r + 1}/${RUNS}: tcp kernel ${fmt(kb / 1e9, 2)} Gbit/s, userspace ${fmt(ub / 1e9, 2)} Gbit/s (${fmt(ub / kb, 2)}x); ` +
          `ping ${fmt(kPing.at(-1)!, 3)} / ${fmt(uPing.at(-1)!, 3)} ms; 64B UDP ${fmt(kPps.at(-1)! / 1e3, 0)} / ${fmt(uPps.at(-1)! / 1e3, 0)} kpps; ` +
          `kernel->userspace ${fmt(mixed.at(-1)! / 1e9, 2)} Gbit/s\n`,
      );
    }
    const pRatio = uPing.map((u, i) => u / kPing[i]!);
    const ppsRatio = uPps.map((u, i) => u / kPps[i]!);
    console.log(`\ntwill userspace datapath benchmark (${RUNS} runs x ${TIME} s, offloads ${OFFLOADS ? 'on' : 'off'}, MTU 1500/1450, host -> host <subnet>.0)\n`);
    console.log(table([
      ['measure (median)', 'kernel VXLAN', 'userspace', 'ratio', 'target'],
      ['TCP, 1 stream (iperf3)', `${fmt(median(kTcp) / 1e9, 2)} Gbit/s`, `${fmt(median(uTcp) / 1e9, 2)} Gbit/s`, `${fmt(median(ratios), 2)}x`, '>= 0.30x'],
      ['ping RTT p50', `${fmt(median(kPing), 3)} ms`, `${fmt(median(uPing), 3)} ms`, `${fmt(median(pRatio), 2)}x`, ''],
      ['UDP 64-byte payload, received', `${fmt(median(kPps) / 1e3, 0)} kpps`, `${fmt(median(uPps) / 1e3, 0)} kpps`, `${fmt(median(ppsRatio), 2)}x`, ''],
      ['TCP kernel host -> userspace host', '', `${fmt(median(mixed) / 1e9, 2)} Gbit/s`, '', ''],
    ]));
    console.log(`\nuserspace loop during the TCP runs (median): tx ${fmt(median(txRates) / 1e3, 0)} kframes/s (${fmt(median(perSend), 1)} datagrams per sendmmsg), ` +
      `rx ${fmt(median(rxRates) / 1e3, 0)} kframes/s (${fmt(median(perWrite), 1)} frames per TAP write); ` +
      `busiest forwarder threads ${cpuTop.map((c) => c.map((x) => fmt(x, 0) + '%').join('+')).join(', ')} of a core`);
    console.log(`frames = MTU-sized VXLAN datagrams on the wire; u1 tx ${JSON.stringify(statsOf(u1).drops.tx)}, u2 rx ${JSON.stringify(statsOf(u2).drops.rx)}`);
  } finally {
    for (const c of children) c.kill('SIGTERM');
    for (const host of hosts) {
      host.dp.stop();
      host.h.close();
    }
    for (const host of hosts) if (netnsExists(host.ns)) deleteNetns(host.ns);
    if (netnsExists(underlayNs)) deleteNetns(underlayNs);
  }
}

process.on('SIGINT', () => {
  for (const c of children) c.kill('SIGTERM');
  for (const n of ['k1', 'k2', 'u1', 'u2', 'ul']) if (netnsExists(`${tag}-${n}`)) deleteNetns(`${tag}-${n}`);
  process.exit(130);
});

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
