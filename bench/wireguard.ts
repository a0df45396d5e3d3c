// Issue 12 benchmark: TCP through twill's wireguard backend (wireguard-go here: this kernel
// has no WireGuard) against the same implementation configured by hand between the same two
// lab hosts, against twill's vxlan and against the underlay, in one run, rounds interleaved.
//
// Paths (two lab hosts = network namespaces on one underlay bridge, MTU 1500):
//   underlay   host h1 → host h2 over eth0
//   wg-hand    host h1 → host h2 through a second wireguard-go pair made here with `wg` and
//              `ip` (MTU 1440, one peer each, its own port): the reference
//   wg-host    host h1 → h2's twill-wg address: the same shape as wg-hand, through twill's device
//   wg-pod     pod → pod through twill's wireguard (what a workload gets)
//   vxlan-pod  pod → pod in a second lab on twill's vxlan backend
// Per round every path in turn (the first path rotates), iperf3 1 stream; ratios per round,
// then the median.
//
// Usage (root): node dist/bench/wireguard.js [--rounds 3] [--time 3]
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { Lab, labNetworkConfig, type LabBackend, type LabHost } from '../src/lab/lab';
import { fmt, median, table } from './stats';

const argOf = (name: string, def: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : def;
};
const ROUNDS = argOf('rounds', 3);
const TIME = argOf('time', 3);
const HAND_PORT = 51899;

interface Route { name: string; fromNs: string; toNs: string; to: string }
const procs = new Set<ChildProcess>();

function run(ns: string, ...args: string[]): string {
  const r = spawnSync('ip', ['netns', 'exec', ns, ...args], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${args.join(' ')} in ${ns}: ${r.stderr}`);
  return r.stdout;
}

/** `detached`: a session of its own, as wireguard-go has when it daemonizes (and twill's has). */
function background(ns: string, args: string[], detached = false): ChildProcess {
  const c = spawn('ip', ['netns', 'exec', ns, ...args], { stdio: 'ignore', detached });
  procs.add(c);
  c.on('exit', () => procs.delete(c));
  return c;
}

async function lab2(name: string, backend: LabBackend, base: string): Promise<{ lab: Lab; hosts: LabHost[]; pods: Array<{ ns: string; ip: string }> }> {
  const lab = await Lab.create({ name: `w${process.pid % 100000}${name}`, dir: path.join(base, name), networkConfig: labNetworkConfig(backend) });
  const hosts = [lab.addHost('h1'), lab.addHost('h2')];
  for (const h of hosts) lab.startDaemon(h);
  for (const h of hosts) await lab.waitReady(h, 60_000);
  const pods = [];
  for (const h of hosts) {
    const p = await lab.addPod(h);
    pods.push({ ns: p.ns, ip: p.ip!.split('/')[0]! });
  }
  return { lab, hosts, pods };
}

/** A wireguard-go pair made by hand (the reference): 10.99.0.1 on h1, 10.99.0.2 on h2. */
async function handWireguard(hosts: LabHost[], base: string): Promise<void> {
  const dev = `wgb${process.pid % 100000}`;
  const keys = hosts.map(() => spawnSync('wg', ['genkey'], { encoding: 'utf8' }).stdout.trim());
  const pubs = keys.map((k) => spawnSync('wg', ['pubkey'], { input: `${k}\n`, encoding: 'utf8' }).stdout.trim());
  for (const [i, h] of hosts.entries()) {
    const name = `${dev}${i}`;
    // In a session of its own like twill's (and like wireguard-go daemonized by hand): with the
    // scheduler's autogroups, a session is what CPU time is shared between.
    background(h.ns, ['wireguard-go', '-f', name], true);
    for (let t = 0; t < 100 && !fs.existsSync(`/var/run/wireguard/${name}.sock`); t++) await new Promise((r) => setTimeout(r, 20));
    const keyFile = path.join(base, `hand-${i}.key`);
    fs.writeFileSync(keyFile, `${keys[i]}\n`, { mode: 0o600 });
    const other = hosts[1 - i]!;
    run(h.ns, 'wg', 'set', name, 'private-key', keyFile, 'listen-port', String(HAND_PORT), 'peer', pubs[1 - i]!, 'endpoint', `${other.ip}:${HAND_PORT}`, 'allowed-ips', `10.99.0.${2 - i}/32`);
    run(h.ns, 'ip', 'addr', 'add', `10.99.0.${i + 1}/32`, 'dev', name);
    run(h.ns, 'ip', 'link', 'set', name, 'mtu', '1440', 'up');
    run(h.ns, 'ip', 'route', 'add', `10.99.0.${2 - i}/32`, 'dev', name);
  }
}

async function iperf(r: Route): Promise<number> {
  const srv = background(r.toNs, ['iperf3', '-s', '-1', '-B', r.to]);
  await new Promise((res) => setTimeout(res, 300));
  try {
    const out = run(r.fromNs, 'iperf3', '-c', r.to, '-t', String(TIME), '-J', '--connect-timeout', '3000');
    return (JSON.parse(out) as { end: { sum_received: { bits_per_second: number } } }).end.sum_received.bits_per_second;
  } finally {
    if (srv.exitCode === null) srv.kill('SIGTERM');
  }
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('run as root (network namespaces)');
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'twill-wgbench-'));
  const labs: Lab[] = [];
  try {
    const wg = await lab2('g', 'wireguard', base);
    labs.push(wg.lab);
    const vx = await lab2('v', 'vxlan', base);
    labs.push(vx.lab);
    const [h1, h2] = wg.hosts as [LabHost, LabHost];
    await handWireguard(wg.hosts, base);
    const h2Wg = fs.readFileSync(wg.lab.subnetFile(h2), 'utf8').match(/FLANNEL_SUBNET=(\d+\.\d+\.\d+)\./)![1] + '.0';
    const routes: Route[] = [
      { name: 'underlay', fromNs: h1.ns, toNs: h2.ns, to: h2.ip },
      { name: 'wg-hand', fromNs: h1.ns, toNs: h2.ns, to: '10.99.0.2' },
      { name: 'wg-host', fromNs: h1.ns, toNs: h2.ns, to: h2Wg },
      { name: 'wg-pod', fromNs: wg.pods[0]!.ns, toNs: wg.pods[1]!.ns, to: wg.pods[1]!.ip },
      { name: 'vxlan-pod', fromNs: vx.pods[0]!.ns, toNs: vx.pods[1]!.ns, to: vx.pods[1]!.ip },
    ];
    for (const r of routes) run(r.fromNs, 'ping', '-c', '1', '-W', '2', r.to);
    const bps: Record<string, number[]> = Object.fromEntries(routes.map((r) => [r.name, []]));
    for (let round = 0; round < ROUNDS; round++) {
      for (let i = 0; i < routes.length; i++) {
        const r = routes[(i + round) % routes.length]!;
        bps[r.name]!.push(await iperf(r));
      }
      process.stderr.write(`round ${round + 1}/${ROUNDS}: ${routes.map((r) => `${r.name} ${fmt(bps[r.name]!.at(-1)! / 1e9, 2)}`).join(', ')} Gbit/s\n`);
    }
    const ratio = (a: string, b: string): string => `${fmt(median(bps[a]!.map((x, i) => x / bps[b]![i]!)), 3)}x`;
    const rows = [['path', '1 stream (median)', 'vs underlay', 'vs wg-hand', 'vs vxlan-pod']];
    for (const r of routes) rows.push([r.name, `${fmt(median(bps[r.name]!) / 1e9, 2)} Gbit/s`, ratio(r.name, 'underlay'), ratio(r.name, 'wg-hand'), ratio(r.name, 'vxlan-pod')]);
    console.log(`\ntwill wireguard benchmark: ${ROUNDS} interleaved rounds x ${TIME} s, iperf3 1 TCP stream, underlay MTU 1500\n`);
    console.log(table(rows));
    console.log(`\ntwill adds nothing to wireguard-go: wg-host vs wg-hand ${ratio('wg-host', 'wg-hand')} (target >= 0.95); pods: wg-pod vs wg-hand ${ratio('wg-pod', 'wg-hand')}, vs twill vxlan ${ratio('wg-pod', 'vxlan-pod')}`);
  } finally {
    for (const c of procs) c.kill('SIGTERM');
    for (const lab of labs) await lab.down().catch((err: Error) => process.stderr.write(`lab down: ${err.message}\n`));
    fs.rmSync(base, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
