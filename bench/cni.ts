// CNI plugin latency: twill as installed (`twillctl install` into a temp root) against Debian's
// reference `bridge` + `host-local` plugins, in the same host namespace, in the same run,
// interleaved (the order rotates every iteration so neither side systematically runs on a
// warmer machine). ADD and DEL p50/p99 over ≥ 50 pods each, printed with ratios to the
// reference. twill variants:
//  - twill: the runtime-facing plugin, opt/cni/bin/twill (native front-end), with `twill serve`
//    running in the host namespace, as the twill-cni unit keeps it on a real host;
//  - node plugin: opt/twill/libexec/twill-cni, the bundled Node plugin with its V8 code cache,
//    which is what the front-end runs when no server answers.
// Then where the time goes: process start-up (VERSION of each), and the work the server
// reports per call.
//
// Runs as root. The outer process creates the throwaway namespaces and re-runs itself inside
// the host namespace (`--inner`), so every plugin is spawned directly, as a runtime would,
// without an `ip netns exec` per call. Children get only PATH and CNI_* variables: no
// NODE_EXTRA_CA_CERTS (it adds ~80 ms to every node start and runtimes do not pass it).
// Usage: node dist/bench/cni.js [--pods 60] [--warmup 3] [--startup-runs 30]   (build first)
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { install } from '../src/install/install';
import { CNI_NODE_PLUGIN_PATH, CNI_PLUGIN_PATH } from '../src/install/layout';
import { fmt, median, percentile, table } from './stats';

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : def;
}
const PODS = arg('pods', 60);
const WARMUP = arg('warmup', 3);
const STARTUP_RUNS = arg('startup-runs', 30);
const PARALLEL = 10;

const CNI_PATH = '/usr/lib/cni';
const ENV_PATH = '/usr/sbin:/usr/bin:/sbin:/bin';

interface Variant {
  key: string;
  label: string;
  argv: string[];
  conf: Record<string, unknown>;
  env?: Record<string, string>;
}

interface Setup {
  host: string;
  pods: Record<string, string[]>; // variant key → pod namespace names
  tmp: string;
  /** The install root (twillctl install --root). */
  root: string;
}

function variants(setup: Pick<Setup, 'tmp' | 'root'>): Variant[] {
  const { tmp, root } = setup;
  const twillConf = { cniVersion: '1.0.0', name: 'benchnet', type: 'twill', subnetFile: path.join(tmp, 'subnet.env'), dataDir: path.join(tmp, 'twill') };
  return [
    {
      key: 'ref',
      label: 'bridge+host-local',
      argv: [path.join(CNI_PATH, 'bridge')],
      conf: {
        cniVersion: '1.0.0',
        name: 'refnet',
        type: 'bridge',
        bridge: 'cni-ref0',
        isGateway: true,
        ipMasq: false,
        mtu: 1450,
        ipam: { type: 'host-local', ranges: [[{ subnet: '10.245.4.0/22' }]], routes: [{ dst: '0.0.0.0/0' }], dataDir: path.join(tmp, 'host-local') },
      },
    },
    { key: 'twill', label: 'twill (front-end + twill serve)', argv: [path.join(root, CNI_PLUGIN_PATH)], conf: twillConf },
    // Same network as above: one bridge and one address pool, as on a host where the server stops.
    { key: 'node', label: 'twill Node plugin (no server)', argv: [path.join(root, CNI_NODE_PLUGIN_PATH)], conf: twillConf, env: { TWILL_CNI_CODE_CACHE: path.join(tmp, 'code-cache') } },
  ];
}

// ---- inner: runs inside the host namespace ----

/** `twill serve` in this (the host) namespace; resolves once it listens. */
async function startServer(root: string): Promise<{ proc: ChildProcess; log: () => string }> {
  let log = '';
  const proc = spawn(path.join(root, CNI_NODE_PLUGIN_PATH), ['serve'], { env: { PATH: ENV_PATH }, stdio: ['ignore', 'ignore', 'pipe'] });
  proc.stderr!.on('data', (d: Buffer) => (log += d));
  const deadline = Date.now() + 15_000;
  while (!log.includes('"msg":"serving CNI calls"')) {
    if (proc.exitCode !== null || Date.now() > deadline) throw new Error(`twill serve did not start: ${log}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return { proc, log: () => log };
}

/** Milliseconds the server spent on each successful call of `command` (its own log lines). */
function serverMs(log: string, command: string): number[] {
  return log
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as { msg?: string; command?: string; ms?: number; containerId?: string })
    .filter((l) => l.msg === 'CNI call' && l.command === command && l.containerId?.startsWith('pod-'))
    .map((l) => l.ms!);
}

function run(v: Variant, command: string, id: string, netns: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const p = spawn(v.argv[0]!, v.argv.slice(1), {
      env: { PATH: ENV_PATH, CNI_COMMAND: command, CNI_CONTAINERID: id, CNI_NETNS: netns, CNI_IFNAME: 'eth0', CNI_PATH, ...v.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d));
    p.stderr.on('data', (d: Buffer) => (out += d));
    p.on('error', reject);
    p.on('close', (code) => {
      const ms = performance.now() - t0;
      if (code !== 0) reject(new Error(`${v.key} ${command} ${id}: exit ${code}: ${out}`));
      else resolve(ms);
    });
    p.stdin.end(JSON.stringify(v.conf));
  });
}

/** Interleaved process start-up timings (round-robin, so load drift hits every entry alike). */
function startups(cases: Record<string, { argv: string[]; env: Record<string, string>; input: string }>): Record<string, number[]> {
  const out: Record<string, number[]> = Object.fromEntries(Object.keys(cases).map((k) => [k, []]));
  for (let i = 0; i < STARTUP_RUNS; i++) {
    for (const [k, c] of Object.entries(cases)) {
      const t0 = performance.now();
      const r = spawnSync(c.argv[0]!, c.argv.slice(1), { env: { PATH: ENV_PATH, ...c.env }, input: c.input });
      out[k]!.push(performance.now() - t0);
      if (r.status !== 0) throw new Error(`${c.argv.join(' ')} exited ${r.status}: ${r.stdout}${r.stderr}`);
    }
  }
  return out;
}

async function inner(setup: Setup): Promise<void> {
  const vs = variants(setup);
  const server = await startServer(setup.root);
  const add: Record<string, number[]> = {};
  const del: Record<string, number[]> = {};
  const addRatio: Record<string, number[]> = {};
  const delRatio: Record<string, number[]> = {};
  for (const v of vs) {
    add[v.key] = [];
    del[v.key] = [];
    addRatio[v.key] = [];
    delRatio[v.key] = [];
  }
  const nsPath = (name: string) => `/run/netns/${name}`;

  // Warm-up: first calls create the bridges and fill the page cache; not measured.
  for (let i = 0; i < WARMUP; i++) {
    for (const v of vs) {
      const pod = setup.pods[v.key]![PODS + PARALLEL + i]!;
      await run(v, 'ADD', `warm-${v.key}-${i}`, nsPath(pod));
      await run(v, 'DEL', `warm-${v.key}-${i}`, nsPath(pod));
    }
  }

  for (const phase of ['ADD', 'DEL'] as const) {
    for (let i = 0; i < PODS; i++) {
      const order = vs.map((_, k) => vs[(k + i) % vs.length]!);
      const t: Record<string, number> = {};
      for (const v of order) t[v.key] = await run(v, phase, `pod-${v.key}-${i}`, nsPath(setup.pods[v.key]![i]!));
      for (const v of vs) {
        (phase === 'ADD' ? add : del)[v.key]!.push(t[v.key]!);
        (phase === 'ADD' ? addRatio : delRatio)[v.key]!.push(t[v.key]! / t['ref']!);
      }
    }
  }

  // 10 ADDs at once per plugin (whole batch), then their DELs.
  const batch: Record<string, number> = {};
  for (const v of vs) {
    const pods = setup.pods[v.key]!.slice(PODS, PODS + PARALLEL);
    const t0 = performance.now();
    await Promise.all(pods.map((p, i) => run(v, 'ADD', `par-${v.key}-${i}`, nsPath(p))));
    batch[v.key] = performance.now() - t0;
    await Promise.all(pods.map((p, i) => run(v, 'DEL', `par-${v.key}-${i}`, nsPath(p))));
  }

  // Where the time goes: process start-up (VERSION of each) and the server's own time per call.
  const versionIn = '{"cniVersion":"1.0.0"}';
  const byKey = Object.fromEntries(vs.map((v) => [v.key, v]));
  const st = startups({
    bare: { argv: [process.execPath, '-e', ''], env: {}, input: '' },
    refVersion: { argv: byKey['ref']!.argv, env: { CNI_COMMAND: 'VERSION' }, input: versionIn },
    twillVersion: { argv: byKey['twill']!.argv, env: { CNI_COMMAND: 'VERSION' }, input: versionIn },
    nodeVersion: { argv: byKey['node']!.argv, env: { CNI_COMMAND: 'VERSION', ...byKey['node']!.env }, input: versionIn },
  });
  const serverAdd = serverMs(server.log(), 'ADD');
  const serverDel = serverMs(server.log(), 'DEL');
  server.proc.kill('SIGTERM');
  if (serverAdd.length !== PODS || serverDel.length !== PODS) throw new Error(`twill serve answered ${serverAdd.length} ADDs and ${serverDel.length} DELs of ${PODS}: the front-end fell back?`);

  process.stdout.write(JSON.stringify({ add, del, addRatio, delRatio, batch, ...st, serverAdd, serverDel, labels: Object.fromEntries(vs.map((v) => [v.key, v.label])) }));
}

// ---- outer: namespaces, re-exec, report ----

function ip(...args: string[]): void {
  execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

function report(r: any): void { // eslint-disable-line @typescript-eslint/no-explicit-any
  const keys = Object.keys(r.add as Record<string, number[]>);
  const rows = [['plugin', 'ADD p50', 'ADD p99', 'DEL p50', 'DEL p99', 'ADD ×ref p50/p99 (per-iter median)', 'DEL ×ref p50/p99 (per-iter median)', `${PARALLEL} ADDs parallel`]];
  for (const k of keys) {
    const a = r.add[k] as number[];
    const d = r.del[k] as number[];
    const ra = r.add['ref'] as number[];
    const rd = r.del['ref'] as number[];
    rows.push([
      r.labels[k],
      `${fmt(median(a))} ms`,
      `${fmt(percentile(a, 99))} ms`,
      `${fmt(median(d))} ms`,
      `${fmt(percentile(d, 99))} ms`,
      `${fmt(median(a) / median(ra), 2)} / ${fmt(percentile(a, 99) / percentile(ra, 99), 2)} (${fmt(median(r.addRatio[k]), 2)})`,
      `${fmt(median(d) / median(rd), 2)} / ${fmt(percentile(d, 99) / percentile(rd, 99), 2)} (${fmt(median(r.delRatio[k]), 2)})`,
      `${fmt(r.batch[k])} ms`,
    ]);
  }
  const load = os.loadavg().map((x) => x.toFixed(2)).join(' ');
  console.log(`CNI ADD/DEL latency, ${(r.add['ref'] as number[]).length} pods per plugin, interleaved, one host namespace (${os.cpus().length} CPUs, load average ${load} at the end)`);
  console.log(table(rows));
  const ms = (xs: number[]) => `${fmt(median(xs))} ms`;
  console.log('\nWhere the time goes (medians):');
  const b: string[][] = [['', 'process start (VERSION)', 'ADD', 'DEL']];
  b.push(['bridge (Go)', ms(r.refVersion), ms(r.add['ref']), ms(r.del['ref'])]);
  b.push(['twill front-end', `${ms(r.twillVersion)} (incl. a server round trip)`, ms(r.add['twill']), ms(r.del['twill'])]);
  b.push(['  inside twill serve', '-', ms(r.serverAdd), ms(r.serverDel)]);
  b.push(['twill Node plugin', `${ms(r.nodeVersion)} (node -e '' alone: ${ms(r.bare)})`, ms(r.add['node']), ms(r.del['node'])]);
  console.log(table(b));
  console.log(`\nnode start-up alone is ${fmt(median(r.bare) / median(r.add['ref']), 2)}× the reference's whole ADD.`);
}

async function outer(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('bench/cni needs root (network namespaces)');
  const tag = `${process.pid.toString(36)}${Math.floor(Math.random() * 1296).toString(36)}`;
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'twill-bench-cni-'));
  fs.writeFileSync(path.join(tmp, 'subnet.env'), 'FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.4.1/22\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=false\n');
  const host = `twt-cnib-${tag}`;
  const created: string[] = [];
  // Installed exactly as operators do; later builds of this tree cannot change it mid-run.
  const root = path.join(tmp, 'root');
  await install({ root });
  const setup: Setup = { host, pods: {}, tmp, root };
  try {
    ip('netns', 'add', host);
    created.push(host);
    ip('-n', host, 'link', 'set', 'lo', 'up');
    for (const v of variants(setup)) {
      setup.pods[v.key] = [];
      for (let i = 0; i < PODS + PARALLEL + WARMUP; i++) {
        const name = `twt-cnib-${tag}-${v.key.slice(0, 2)}${i}`;
        ip('netns', 'add', name);
        created.push(name);
        setup.pods[v.key]!.push(name);
      }
    }
    const env = { ...process.env };
    delete env['NODE_EXTRA_CA_CERTS'];
    const out = execFileSync('ip', ['netns', 'exec', host, process.execPath, __filename, '--inner', JSON.stringify(setup), ...process.argv.slice(2)], {
      env,
      encoding: 'utf8',
      maxBuffer: 64 * 1024 * 1024,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    report(JSON.parse(out));
  } finally {
    for (const n of created.reverse()) {
      try {
        ip('netns', 'del', n);
      } catch {
        // already gone
      }
    }
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

const innerAt = process.argv.indexOf('--inner');
(innerAt > 0 ? inner(JSON.parse(process.argv[innerAt + 1]!) as Setup) : outer()).catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
