// Issue 13: the control plane at fan-out, on one machine. One etcd (127.0.0.1, its own data
// dir and ports), many simulated hosts (bench/controlplane-host.ts: the daemon's registry and
// planning code, no kernel), spread over several worker processes. Per cluster size:
//  - fan-out: the coordinator puts a probe lease; p50/p99 over the probes of the time from the
//    put to the LAST stable host having planned it (decoded, judged, entries diffed);
//  - etcd: gRPC messages received per second (requests, keepalives, watch creates) and the
//    watch count, from etcd's /metrics, and etcd's CPU;
//  - per simulated host: worker CPU per planned lease event (gRPC decode included);
//  while churners join (acquire, list, watch) and leave (delete) at --churn per second and
//  every host renews its TTL lease.
// Usage: node dist/bench/controlplane.js [--sizes 100,1000,2000] [--procs 4] [--probes 100] [--churn 5] [--ttl 30]
import { fork, spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Etcd3 } from 'etcd3';
import { sleep } from '../src/lab/procs';
import { NETWORK_CONFIG, PREFIX, type FromWorker, type ToWorker } from './controlplane-host';
import { arg, fmt, percentile, table } from './stats';

const sizesAt = process.argv.indexOf('--sizes');
const SIZES = (sizesAt > 0 ? process.argv[sizesAt + 1]! : '100,1000').split(',').map(Number);
const PROCS = arg('procs', 4);
const PROBES = arg('probes', 100);
const CHURN = arg('churn', 5);
const TTL = arg('ttl', 30);
const PORT = 23790 + (process.pid % 200) * 2;

interface Etcd {
  proc: ChildProcess;
  endpoint: string;
  dir: string;
}

async function startEtcd(): Promise<Etcd> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'twill-cp-etcd-'));
  const endpoint = `http://127.0.0.1:${PORT}`;
  const peer = `http://127.0.0.1:${PORT + 1}`;
  const proc = spawn('/usr/bin/etcd', [
    '--name', 'cp', '--data-dir', dir,
    '--listen-client-urls', endpoint, '--advertise-client-urls', endpoint,
    '--listen-peer-urls', peer, '--initial-advertise-peer-urls', peer, '--initial-cluster', `cp=${peer}`,
    '--log-level', 'error',
  ], { stdio: ['ignore', 'ignore', fs.openSync(path.join(dir, 'etcd.log'), 'a')] });
  for (let i = 0; i < 100; i++) {
    try {
      if ((await fetch(`${endpoint}/health`)).ok) return { proc, endpoint, dir };
    } catch {
      /* not up yet */
    }
    await sleep(100);
  }
  proc.kill('SIGTERM');
  throw new Error('etcd did not come up');
}

async function stopEtcd(e: Etcd): Promise<void> {
  e.proc.kill('SIGTERM');
  await new Promise((r) => e.proc.once('exit', r));
  fs.rmSync(e.dir, { recursive: true, force: true });
}

/** Sums of etcd's counters and gauges that matter here. */
async function etcdFacts(e: Etcd): Promise<{ msgs: number; watchers: number; streams: number; cpuMs: number }> {
  const text = await (await fetch(`${e.endpoint}/metrics`)).text();
  const sum = (name: string): number => {
    let n = 0;
    for (const m of text.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'gm'))) n += Number(m[1]);
    return n;
  };
  const stat = fs.readFileSync(`/proc/${e.proc.pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return { msgs: sum('grpc_server_msg_received_total'), watchers: sum('etcd_debugging_mvcc_watcher_total'), streams: sum('etcd_debugging_mvcc_watch_stream_total'), cpuMs: (Number(stat[11]) + Number(stat[12])) * 10 };
}

interface Row {
  hosts: number;
  fanout: number[];
  lost: number;
  msgsPerS: number;
  watchers: number;
  streams: number;
  etcdCpuPct: number;
  cpuPerEventUs: number;
  eventsPerHost: number;
  joins: number;
  leaves: number;
  readyS: number;
}

async function runSize(hosts: number): Promise<Row> {
  const etcd = await startEtcd();
  const admin = new Etcd3({ hosts: etcd.endpoint });
  const workers: ChildProcess[] = [];
  try {
    await admin.put(`${PREFIX}/config`).value(NETWORK_CONFIG);
    const procs = Math.min(PROCS, hosts);
    const planned = new Map<string, Array<{ hosts: number; lastAt: number }>>();
    const stats: Array<Extract<FromWorker, { type: 'stats' }>> = [];
    let ready = 0;
    let wake: (() => void) | undefined;
    const t0 = performance.now();
    for (let w = 0; w < procs; w++) {
      const child = fork(path.join(__dirname, 'controlplane-host.js'), ['--worker'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
      workers.push(child);
      child.on('message', (m: FromWorker) => {
        if (m.type === 'ready') ready++;
        else if (m.type === 'planned') {
          const l = planned.get(m.key) ?? [];
          l.push({ hosts: m.hosts, lastAt: m.lastAt });
          planned.set(m.key, l);
        } else if (m.type === 'stats') stats.push(m);
        else if (m.type === 'error') process.stderr.write(`worker ${w}: ${m.message}\n`);
        wake?.();
      });
      const stable = Math.floor(hosts / procs) + (w < hosts % procs ? 1 : 0);
      const firstIndex = 1 + w * 100_000;
      child.send({ type: 'start', endpoint: etcd.endpoint, stable, firstIndex, ttlSeconds: TTL, churnPerS: CHURN / procs } satisfies ToWorker);
    }
    const until = async (cond: () => boolean, ms: number): Promise<boolean> => {
      const end = performance.now() + ms;
      while (!cond()) {
        if (performance.now() > end) return false;
        await Promise.race([new Promise<void>((r) => (wake = r)), sleep(100)]);
      }
      return true;
    };
    if (!(await until(() => ready === procs, 20 * 60_000))) throw new Error(`only ${ready}/${procs} workers ready`);
    const readyS = (performance.now() - t0) / 1000;
    process.stderr.write(`${hosts} hosts up in ${fmt(readyS)} s; measuring\n`);
    await sleep(2000);
    for (const w of workers) w.send({ type: 'window', on: true } satisfies ToWorker);
    const e0 = await etcdFacts(etcd);
    const w0 = performance.now();
    const fanout: number[] = [];
    let lost = 0;
    for (let i = 0; i < PROBES; i++) {
      const key = `${PREFIX}/subnets/10.255.${i % 256}.0-24`;
      const value = `{"PublicIP":"172.31.255.${(i % 250) + 1}","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"0e:77:00:00:${(i % 256).toString(16).padStart(2, '0')}:01"}}`;
      const putAt = performance.timeOrigin + performance.now();
      await admin.put(key).value(value);
      if (await until(() => (planned.get(key)?.length ?? 0) === procs, 10_000)) fanout.push(Math.max(...planned.get(key)!.map((p) => p.lastAt)) - putAt);
      else lost++;
      planned.delete(key);
      await admin.delete().key(key);
      await sleep(50);
    }
    const e1 = await etcdFacts(etcd);
    const wallS = (performance.now() - w0) / 1000;
    for (const w of workers) w.send({ type: 'window', on: false } satisfies ToWorker);
    await until(() => stats.length === procs, 10_000);
    const cpuMs = stats.reduce((a, s) => a + s.cpuMs, 0);
    const events = stats.reduce((a, s) => a + s.events, 0);
    return {
      hosts,
      fanout,
      lost,
      msgsPerS: (e1.msgs - e0.msgs) / wallS,
      watchers: e1.watchers,
      streams: e1.streams,
      etcdCpuPct: ((e1.cpuMs - e0.cpuMs) / 1000 / wallS) * 100,
      cpuPerEventUs: (cpuMs * 1000) / events,
      eventsPerHost: events / hosts,
      joins: stats.reduce((a, s) => a + s.joins, 0),
      leaves: stats.reduce((a, s) => a + s.leaves, 0),
      readyS,
    };
  } finally {
    for (const w of workers) if (w.connected) w.send({ type: 'stop' } satisfies ToWorker);
    await Promise.all(workers.map((w) => (w.exitCode !== null ? undefined : Promise.race([new Promise((r) => w.once('exit', r)), sleep(15_000).then(() => w.kill('SIGKILL'))]))));
    admin.close();
    await stopEtcd(etcd);
  }
}

async function main(): Promise<void> {
  const rows: Row[] = [];
  for (const n of SIZES) {
    const r = await runSize(n);
    rows.push(r);
    process.stderr.write(`${n} hosts: fan-out p50 ${fmt(percentile(r.fanout, 50))} ms, p99 ${fmt(percentile(r.fanout, 99))} ms\n`);
  }
  console.log(`\ntwill control-plane simulation (${PROCS} worker processes, ${PROBES} probe joins, churn ${CHURN} joins+leaves/s, TTL ${TTL} s, ${os.cpus().length} CPUs)\n`);
  console.log(table([
    ['hosts', 'up in', 'fan-out p50', 'fan-out p99', 'probes lost', 'etcd msgs/s', 'watchers', 'etcd CPU', 'CPU/event/host', 'events/host', 'churn joins/leaves'],
    ...rows.map((r) => [
      String(r.hosts), `${fmt(r.readyS)} s`, `${fmt(percentile(r.fanout, 50))} ms`, `${fmt(percentile(r.fanout, 99))} ms`, String(r.lost), fmt(r.msgsPerS, 0), String(r.watchers), `${fmt(r.etcdCpuPct, 0)} %`,
      `${fmt(r.cpuPerEventUs, 0)} µs`, fmt(r.eventsPerHost, 0), `${r.joins}/${r.leaves}`,
    ]),
  ]));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
