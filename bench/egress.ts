// Issue 15 benchmark: what masquerade costs, measured in the lab in one run.
//
// A lab of two hosts (twilld each, default --ip-masq), a pod on each, and the lab's outside
// namespace (an address on the underlay beyond the cluster network, no route to any pod).
//   (1) TCP throughput, 1 stream (iperf3), interleaved per round (order rotated): pod h1 →
//       outside (masqueraded to h1's underlay IP) against pod h1 → pod h2 (VXLAN, no NAT), same
//       hosts; and, as a reference for NAT alone, the same pod → outside path not NATed: a
//       bench-only table in h1 marks that flow with kube-proxy's masquerade bit (twill's
//       postrouting then returns, as it must for kube-proxy's traffic) and the outside gets a
//       route back to h1's pods for the run. Same path, same rules traversed, minus the NAT.
//   (2) 10,000 short TCP connections (connect, read one byte, close; 64 in flight) from the pod
//       on h1 to a server in the outside, with masquerade: total time (bounded), rate, connect-
//       to-byte latency p50/p99, and how many failed (target 0).
// Usage (root): node dist/bench/egress.js [--runs 5] [--time 5] [--conns 10000] [--bound 120]
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cleanEnv, Lab, type LabPod } from '../src/lab/lab';
import { sleep } from '../src/lab/procs';
import type { LabHost } from '../src/lab/lab';
import { OUTSIDE_IP } from '../src/lab/topology';
import { probeOutside } from '../src/lab/outside-probe';
import { NetlinkHandle, req } from '../src/netlink/handle';
import { inNetns, netnsPath } from '../src/netns/netns';
import { arg, fmt, median, percentile, table } from './stats';

const RUNS = arg('runs', 5);
const TIME = arg('time', 5);
const CONNS = arg('conns', 10_000);
const BOUND_S = arg('bound', 120);
const INFLIGHT = 64;
const SHORT_PORT = 7100;
const children = new Set<ChildProcess>();

function spawnIn(nsPath: string, cmd: string, args: string[]): ChildProcess {
  const child = inNetns(nsPath, () => spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: cleanEnv() }));
  children.add(child);
  child.on('exit', () => children.delete(child));
  return child;
}

function runIn(nsPath: string, cmd: string, args: string[], timeoutMs: number): string {
  const r = inNetns(nsPath, () => spawnSync(cmd, args, { encoding: 'utf8', timeout: timeoutMs, env: cleanEnv(), maxBuffer: 16 * 1024 * 1024 }));
  if (r.status !== 0) throw new Error(`${cmd} ${args.slice(0, 3).join(' ')}… in ${nsPath}: ${r.stderr || r.error?.message || `exit ${r.status}`}`);
  return r.stdout;
}

/** iperf3 from `fromNs` to a server bound at `to` in `toNs`: bits per second received. */
async function iperf(fromNs: string, toNs: string, to: string): Promise<number> {
  const srv = spawnIn(toNs, 'iperf3', ['-s', '-1', '-B', to]);
  await sleep(300);
  try {
    const out = JSON.parse(runIn(fromNs, 'iperf3', ['-c', to, '-t', String(TIME), '-J', '--connect-timeout', '3000'], (TIME + 20) * 1000)) as { end: { sum_received: { bits_per_second: number } } };
    return out.end.sum_received.bits_per_second;
  } finally {
    if (srv.exitCode === null) srv.kill('SIGTERM');
  }
}

const SERVER = `require('net').createServer((s)=>{s.on('error',()=>{});s.end('x')}).listen(${SHORT_PORT},process.argv[1],()=>process.stdout.write('listening\\n'))`;

const CLIENT = `
const net=require('net');const [host,port,n,inflight,boundMs]=process.argv.slice(1).map((x,i)=>i?Number(x):x);
let started=0,done=0,fail=0;const lat=[];const t0=process.hrtime.bigint();
const finish=()=>{const s=Number(process.hrtime.bigint()-t0)/1e9;process.stdout.write(JSON.stringify({n,done,fail:fail+(n-done),seconds:s,lat}));process.exit(0)};
setTimeout(finish,boundMs).unref();
function one(){if(started>=n)return;started++;const c0=process.hrtime.bigint();let ok=false;
const s=net.connect({host,port});s.setTimeout(5000);
s.on('data',()=>{ok=true;lat.push(Number(process.hrtime.bigint()-c0)/1e6);s.end()});
s.on('timeout',()=>s.destroy());s.on('error',()=>{});
s.on('close',()=>{if(!ok)fail++;done++;if(done===n)finish();else one()})}
for(let i=0;i<inflight;i++)one();`;

async function shortConnections(pod: LabPod, outsideNs: string): Promise<{ done: number; fail: number; seconds: number; lat: number[] }> {
  const srv = spawnIn(outsideNs, process.execPath, ['-e', SERVER, OUTSIDE_IP]);
  await new Promise<void>((resolve, reject) => {
    srv.stdout!.once('data', () => resolve());
    srv.once('exit', (c) => reject(new Error(`short-connection server exited ${c}`)));
  });
  try {
    const out = runIn(netnsPath(pod.ns), process.execPath, ['-e', CLIENT, OUTSIDE_IP, String(SHORT_PORT), String(CONNS), String(INFLIGHT), String(BOUND_S * 1000)], (BOUND_S + 30) * 1000);
    return JSON.parse(out) as { done: number; fail: number; seconds: number; lat: number[] };
  } finally {
    srv.kill('SIGTERM');
  }
}

/** The outside gets a route to h1's pods (bench only: the lab's outside has none). */
function routeBack(outsideNs: string, podIp: string, h1: LabHost): void {
  const nl = NetlinkHandle.open({ netns: outsideNs });
  try {
    const podNet = `${podIp.split('.').slice(0, 3).join('.')}.0`;
    nl.do(req.routeReplace({ dst: podNet, dstLen: 24, gateway: h1.ip, oif: nl.getLink('eth0')!.index, protocol: 4 }));
  } finally {
    nl.close();
  }
}

/** Runs `fn` with the pod's flow to the outside marked with kube-proxy's bit (not NATed) if `plain`. */
async function withoutNat<T>(h1: LabHost, podIp: string, plain: boolean, fn: () => Promise<T>): Promise<T> {
  if (!plain) return fn();
  const ns = netnsPath(h1.ns);
  const nft = (script: string) => inNetns(ns, () => spawnSync('nft', ['-f', '-'], { input: script, encoding: 'utf8' }));
  const r = nft(`table ip twbench { chain pre { type filter hook prerouting priority mangle; ip saddr ${podIp} ip daddr ${OUTSIDE_IP} meta mark set mark or 0x4000; }\n}\n`);
  if (r.status !== 0) throw new Error(`bench table: ${r.stderr}`);
  try {
    return await fn();
  } finally {
    nft('delete table ip twbench\n');
  }
}

async function main(): Promise<void> {
  const name = `b${randomBytes(3).toString('hex')}`;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `twill-bench-egress-`));
  const lab = await Lab.create({ name, dir });
  const cleanup = async () => {
    for (const c of children) c.kill('SIGKILL');
    await lab.down();
  };
  process.on('SIGINT', () => void cleanup().then(() => process.exit(130)));
  try {
    const h1 = lab.addHost();
    const h2 = lab.addHost();
    for (const h of [h1, h2]) lab.startDaemon(h);
    for (const h of [h1, h2]) await lab.waitReady(h);
    const p1 = await lab.addPod(h1, 'h1-p1');
    const p2 = await lab.addPod(h2, 'h2-p1');
    await sleep(1000); // peers programmed
    const outsideNs = netnsPath(lab.state.outsideNs!);
    const ip = (p: LabPod) => p.ip!.split('/')[0]!;

    process.stderr.write(`${CONNS} short connections pod → outside…\n`);
    const sc = await shortConnections(p1, outsideNs);

    routeBack(outsideNs, ip(p1), h1);
    // The two outside paths are what they claim: the outside sees h1's address, or the pod's.
    const outside = { nsPath: outsideNs, ip: OUTSIDE_IP };
    const pod = [{ name: p1.name, nsPath: netnsPath(p1.ns), ip: ip(p1) }];
    const natSeen = (await probeOutside(pod, outside))[0]!.seenSource;
    const plainSeen = (await withoutNat(h1, ip(p1), true, () => probeOutside(pod, outside)))[0]!.seenSource;
    if (natSeen !== h1.ip || plainSeen !== ip(p1)) throw new Error(`outside saw ${natSeen} (NAT) and ${plainSeen} (not NATed); expected ${h1.ip} and ${ip(p1)}`);
    const res: Record<'nat' | 'pod' | 'plain', number[]> = { nat: [], pod: [], plain: [] };
    const ratios: number[] = [];
    const natCost: number[] = [];
    const order = ['nat', 'pod', 'plain'] as const;
    for (let r = 0; r < RUNS; r++) {
      const got: Partial<Record<(typeof order)[number], number>> = {};
      for (let k = 0; k < order.length; k++) {
        const which = order[(r + k) % order.length]!;
        if (which === 'pod') got.pod = await iperf(netnsPath(p1.ns), netnsPath(p2.ns), ip(p2));
        else got[which] = await withoutNat(h1, ip(p1), which === 'plain', () => iperf(netnsPath(p1.ns), outsideNs, OUTSIDE_IP));
      }
      for (const k of order) res[k].push(got[k]!);
      ratios.push(got.nat! / got.pod!);
      natCost.push(got.nat! / got.plain!);
      process.stderr.write(`round ${r + 1}: pod→outside NAT ${fmt(got.nat! / 1e9, 2)}, pod→pod ${fmt(got.pod! / 1e9, 2)}, pod→outside no NAT ${fmt(got.plain! / 1e9, 2)} Gbit/s\n`);
    }

    const g = (v: number[]) => `${fmt(median(v) / 1e9, 2)} Gbit/s`;
    process.stdout.write(
      '\n' +
        table([
          ['measure (median of ' + RUNS + ' rounds, iperf3 1 stream, ' + TIME + ' s)', 'value'],
          ['pod → outside, masqueraded (TCP)', g(res.nat)],
          ['pod → pod across hosts, VXLAN (TCP), same rounds', g(res.pod)],
          ['  masqueraded outside / pod→pod (median of per-round ratios)', `${fmt(median(ratios), 2)}x`],
          ['pod → outside, same path not NATed (same rounds)', g(res.plain)],
          ['  masqueraded / not NATed (median of per-round ratios)', `${fmt(median(natCost), 2)}x`],
          [`${CONNS} short connections pod → outside (${INFLIGHT} in flight)`, `${fmt(sc.seconds, 2)} s (bound ${BOUND_S} s), ${fmt(sc.done / sc.seconds, 0)} conn/s`],
          ['  failed', String(sc.fail)],
          ['  connect → first byte p50 / p99', `${fmt(percentile(sc.lat, 50), 2)} / ${fmt(percentile(sc.lat, 99), 2)} ms`],
        ]) +
        '\n',
    );
  } finally {
    await cleanup();
  }
}

main().catch((err: Error) => {
  process.stderr.write(`bench egress: ${err.stack ?? err.message}\n`);
  process.exit(1);
});
