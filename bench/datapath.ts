// Issue 11 benchmark: pod ↔ pod through each twill backend against the underlay and against a
// hand-built VXLAN with flannel's three entries, measured in the same run, interleaved.
//
// Paths (all between two hosts = network namespaces on one underlay bridge, MTU 1500):
//   underlay   host eth0 → host eth0 (the hand-built pair's underlay)
//   hand-built pod → pod: a VXLAN device and flannel's route + neighbour + FDB entry per peer,
//              bridge and pod veths at 1450, all made with `ip`/`bridge` here (the reference)
//   hand-gw    pod → pod on the same two hosts through a plain route via the peer's underlay
//              IP, bridge and pods at 1500 (the reference for host-gw and direct routing)
//   vxlan      twill lab, Backend vxlan: pod → pod
//   vxlan-dr   twill lab, Backend vxlan with DirectRouting (the hosts share a link: direct route)
//   host-gw    twill lab, Backend host-gw
//   vxlan+masq twill lab, Backend vxlan with twilld's default --ip-masq=true
// Each twill path is a lab of its own (etcd, one twilld per host, pods through the CNI
// plugin), so the daemons, not this process, program what is measured.
//
// The targets compare like with like: the hand-built references forward and do not NAT, so the
// three target rows run twilld with --ip-masq=false (its forward chain and VXLAN source filter
// stay). --ip-masq's nat chain makes the kernel track every connection (conntrack) on both
// hosts, a cost flannel's masquerade rules pay the same way; the vxlan+masq row shows it.
//
// Per round, every path in turn (the starting path rotates): iperf3 TCP with 1 and 2 streams,
// ping RTT p50 (200 pings). Ratios are per round against that round's underlay, then the median.
//
// Usage (root): node dist/bench/datapath.js [--rounds 5] [--time 5]
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { Lab, labNetworkConfig, type LabBackend } from '../src/lab/lab';
import { buildHost, buildUnderlay } from '../src/lab/topology';
import { deleteNetns, netnsExists } from '../src/netns/netns';
import { fmt, median, table } from './stats';

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : def;
}
const ROUNDS = arg('rounds', 5);
const TIME = arg('time', 5);

interface End {
  ns: string;
  ip: string;
}
interface Path {
  name: string;
  from: End;
  to: End;
}

const tag = `twd${process.pid % 100000}`;
const children = new Set<ChildProcess>();
const handBuilt = { ul: `${tag}-ul`, hosts: [`${tag}-a`, `${tag}-b`], pods: [`${tag}-pa`, `${tag}-pb`], gwPods: [`${tag}-ga`, `${tag}-gb`] };

/** A pod namespace on bridge `bridge` (created here) of host namespace `host`, with `sub`.2/24. */
function handPod(host: string, pod: string, bridge: string, sub: string, mtu: string): void {
  sh(['ip', 'netns', 'add', pod]);
  inNs(host, 'ip', 'link', 'add', bridge, 'mtu', mtu, 'type', 'bridge');
  inNs(host, 'ip', 'addr', 'add', `${sub}.1/24`, 'dev', bridge);
  inNs(host, 'ip', 'link', 'set', bridge, 'up');
  inNs(host, 'ip', 'link', 'add', `v${bridge}`, 'mtu', mtu, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', pod);
  inNs(host, 'ip', 'link', 'set', `v${bridge}`, 'master', bridge, 'up');
  inNs(pod, 'ip', 'link', 'set', 'lo', 'up');
  inNs(pod, 'ip', 'addr', 'add', `${sub}.2/24`, 'dev', 'eth0');
  inNs(pod, 'ip', 'link', 'set', 'eth0', 'up');
  inNs(pod, 'ip', 'route', 'add', 'default', 'via', `${sub}.1`);
}

function sh(args: string[]): string {
  const r = spawnSync(args[0]!, args.slice(1), { encoding: 'utf8', timeout: (TIME + 30) * 1000 });
  if (r.status !== 0) throw new Error(`${args.join(' ')}: ${r.stderr || r.error?.message || `exit ${r.status}`}`);
  return r.stdout;
}
const inNs = (ns: string, ...args: string[]): string => sh(['ip', 'netns', 'exec', ns, ...args]);

/** flannel's VXLAN by hand: device, bridge, one pod, and the three entries to the other host. */
function buildHandBuilt(): Path[] {
  buildUnderlay(handBuilt.ul, 1500);
  const hosts = handBuilt.hosts.map((ns, i) => ({ ns, ip: buildHost(handBuilt.ul, ns, i + 1, 1500).ip, sub: `10.245.${i + 1}`, gwSub: `10.246.${i + 1}`, mac: `0e:00:00:00:aa:0${i + 1}` }));
  for (const [i, h] of hosts.entries()) {
    inNs(h.ns, 'ip', 'link', 'add', 'flannel.1', 'address', h.mac, 'mtu', '1450', 'type', 'vxlan', 'id', '1', 'local', h.ip, 'dev', 'eth0', 'dstport', '8472', 'nolearning');
    inNs(h.ns, 'ip', 'addr', 'add', `${h.sub}.0/32`, 'dev', 'flannel.1');
    inNs(h.ns, 'ip', 'link', 'set', 'flannel.1', 'up');
    handPod(h.ns, handBuilt.pods[i]!, 'cni0', h.sub, '1450');
    handPod(h.ns, handBuilt.gwPods[i]!, 'cni1', h.gwSub, '1500');
  }
  for (const [i, h] of hosts.entries()) {
    const peer = hosts[1 - i]!;
    inNs(h.ns, 'ip', 'route', 'add', `${peer.sub}.0/24`, 'via', `${peer.sub}.0`, 'dev', 'flannel.1', 'onlink');
    inNs(h.ns, 'ip', 'neigh', 'add', `${peer.sub}.0`, 'lladdr', peer.mac, 'dev', 'flannel.1', 'nud', 'permanent');
    inNs(h.ns, 'bridge', 'fdb', 'add', peer.mac, 'dev', 'flannel.1', 'dst', peer.ip, 'self', 'permanent');
    inNs(h.ns, 'ip', 'route', 'add', `${peer.gwSub}.0/24`, 'via', peer.ip, 'dev', 'eth0');
  }
  return [
    { name: 'underlay', from: { ns: hosts[0]!.ns, ip: hosts[0]!.ip }, to: { ns: hosts[1]!.ns, ip: hosts[1]!.ip } },
    { name: 'hand-built', from: { ns: handBuilt.pods[0]!, ip: `${hosts[0]!.sub}.2` }, to: { ns: handBuilt.pods[1]!, ip: `${hosts[1]!.sub}.2` } },
    { name: 'hand-gw', from: { ns: handBuilt.gwPods[0]!, ip: `${hosts[0]!.gwSub}.2` }, to: { ns: handBuilt.gwPods[1]!, ip: `${hosts[1]!.gwSub}.2` } },
  ];
}

/** A two-host twill lab with one pod per host; the path is pod → pod. */
async function buildTwill(name: string, backend: LabBackend, directRouting: boolean, ipMasq: boolean, base: string): Promise<{ lab: Lab; path: Path }> {
  const lab = await Lab.create({ name: `d${process.pid % 100000}${name}`, dir: path.join(base, name), networkConfig: labNetworkConfig(backend, directRouting) });
  const hosts = [lab.addHost('h1'), lab.addHost('h2')];
  for (const h of hosts) lab.startDaemon(h, [`--ip-masq=${ipMasq}`]);
  for (const h of hosts) await lab.waitReady(h, 60_000);
  const pods = [await lab.addPod(hosts[0]!), await lab.addPod(hosts[1]!)];
  const end = (i: number): End => ({ ns: pods[i]!.ns, ip: pods[i]!.ip!.split('/')[0]! });
  return { lab, path: { name: `${directRouting ? 'vxlan-dr' : backend}${ipMasq ? '+masq' : ''}`, from: end(0), to: end(1) } };
}

function spawnIn(ns: string, args: string[]): ChildProcess {
  const child = spawn('ip', ['netns', 'exec', ns, ...args], { stdio: 'ignore' });
  children.add(child);
  child.on('exit', () => children.delete(child));
  return child;
}

async function iperf(p: Path, streams: number): Promise<number> {
  const srv = spawnIn(p.to.ns, ['iperf3', '-s', '-1', '-B', p.to.ip]);
  await new Promise((r) => setTimeout(r, 300));
  try {
    const out = inNs(p.from.ns, 'iperf3', '-c', p.to.ip, '-t', String(TIME), '-P', String(streams), '-J', '--connect-timeout', '3000');
    return (JSON.parse(out) as { end: { sum_received: { bits_per_second: number } } }).end.sum_received.bits_per_second;
  } finally {
    if (srv.exitCode === null) srv.kill('SIGTERM');
  }
}

function pingP50(p: Path): number {
  const out = inNs(p.from.ns, 'ping', '-n', '-c', '200', '-i', '0.005', p.to.ip);
  return median([...out.matchAll(/time=([\d.]+) ms/g)].map((m) => Number(m[1])));
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('run as root (network namespaces)');
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'twill-datapath-'));
  const labs: Lab[] = [];
  try {
    const paths = buildHandBuilt();
    for (const [name, backend, dr, masq] of [['v', 'vxlan', false, false], ['d', 'vxlan', true, false], ['g', 'host-gw', false, false], ['m', 'vxlan', false, true]] as const) {
      const t = await buildTwill(name, backend, dr, masq, base);
      labs.push(t.lab);
      paths.push(t.path);
    }
    for (const p of paths) if (!Number.isFinite(pingP50(p))) throw new Error(`${p.name}: no ping reply`);

    const r: Record<string, { one: number[]; two: number[]; ping: number[] }> = {};
    for (const p of paths) r[p.name] = { one: [], two: [], ping: [] };
    for (let round = 0; round < ROUNDS; round++) {
      const order = paths.map((_, i) => paths[(i + round) % paths.length]!);
      for (const p of order) {
        r[p.name]!.one.push(await iperf(p, 1));
        r[p.name]!.two.push(await iperf(p, 2));
        r[p.name]!.ping.push(pingP50(p));
      }
      process.stderr.write(`round ${round + 1}/${ROUNDS}: ${paths.map((p) => `${p.name} ${fmt(r[p.name]!.one.at(-1)! / 1e9, 1)}/${fmt(r[p.name]!.two.at(-1)! / 1e9, 1)} Gbit/s ${fmt(r[p.name]!.ping.at(-1)!, 3)} ms`).join('; ')}\n`);
    }
    const ratio = (a: number[], b: number[]): number => median(a.map((x, i) => x / b[i]!));
    const u = r['underlay']!;
    const hb = r['hand-built']!;
    const hg = r['hand-gw']!;
    // The hand-built equivalent: VXLAN for twill vxlan, the plain route for the direct paths.
    const reference: Record<string, { one: number[]; two: number[]; ping: number[] } | undefined> = { vxlan: hb, 'vxlan-dr': hg, 'host-gw': hg, 'vxlan+masq': hb };
    const rows = [['path', '1 stream', 'vs underlay', '2 streams', 'vs underlay', 'ping p50', 'vs hand-built equivalent (1 / 2 streams / ping)']];
    for (const p of paths) {
      const x = r[p.name]!;
      const ref = reference[p.name];
      const vsRef = ref ? `${fmt(ratio(x.one, ref.one), 3)}x / ${fmt(ratio(x.two, ref.two), 3)}x / ${fmt(ratio(x.ping, ref.ping), 2)}x` : '';
      rows.push([p.name, `${fmt(median(x.one) / 1e9, 2)} Gbit/s`, `${fmt(ratio(x.one, u.one), 3)}x`, `${fmt(median(x.two) / 1e9, 2)} Gbit/s`, `${fmt(ratio(x.two, u.two), 3)}x`, `${fmt(median(x.ping), 3)} ms`, vsRef]);
    }
    console.log(`\ntwill datapath benchmark: ${ROUNDS} interleaved rounds x ${TIME} s, MTU 1500, pod -> pod between two hosts`);
    console.log('(vxlan, vxlan-dr, host-gw: twilld --ip-masq=false, like the references; vxlan+masq: the default, with conntrack)\n');
    console.log(table(rows));
    const v = r['vxlan']!;
    console.log(`\ntwill vxlan vs hand-built, 1 stream: ${fmt(ratio(v.one, hb.one), 3)}x (target >= 0.98); ` +
      `vxlan-dr vs underlay ${fmt(ratio(r['vxlan-dr']!.one, u.one), 3)}x, host-gw vs underlay ${fmt(ratio(r['host-gw']!.one, u.one), 3)}x (targets >= 0.90; the plain route itself: ${fmt(ratio(hg.one, u.one), 3)}x); ` +
      `ping p50 vs the hand-built equivalent: vxlan ${fmt(ratio(v.ping, hb.ping), 2)}x, vxlan-dr ${fmt(ratio(r['vxlan-dr']!.ping, hg.ping), 2)}x, host-gw ${fmt(ratio(r['host-gw']!.ping, hg.ping), 2)}x (targets <= 1.1)`);
  } finally {
    for (const c of children) c.kill('SIGTERM');
    for (const lab of labs) await lab.down().catch((err: Error) => process.stderr.write(`lab down: ${err.message}\n`));
    for (const ns of [...handBuilt.pods, ...handBuilt.gwPods, ...handBuilt.hosts, handBuilt.ul]) if (netnsExists(ns)) deleteNetns(ns);
    fs.rmSync(base, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
