// Shared pieces of the fault suite (test/e2e/faults-*.test.ts, issue 5): the figures file every
// case writes its measured figure to, the summary table, a continuous-ping oracle, a counter of
// netlink delete events for twill-owned kernel objects, /metrics parsing, and a direct etcd
// client for the lab (create revisions and lease IDs, which EtcdAdmin does not expose).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import { Etcd3 } from 'etcd3';
import { NetlinkEventSocket, type NetlinkEvent } from '../../src/netlink/events';
import type { Lab, LabHost } from '../../src/lab/lab';
import { ETCD_PREFIX } from '../../src/lab/lab';
import { Teardown } from '../../src/lab/teardown';
import { httpGetInNs } from './lab';
import { ipJson } from './netns';

// ---- figures ------------------------------------------------------------------------------

export const FIGURES_FILE = process.env['TWILL_FAULT_FIGURES'] ?? path.join(os.tmpdir(), 'twill-fault-figures.json');

export interface Figure {
  /** "1".."9" (issue 5's case numbers); sub-figures use "3a", "3b", ... */
  id: string;
  case: string;
  figure: string;
  goal: string;
  pass: boolean;
  /** The node --test runner process that ran the case: figures of one run share it. */
  runner: number;
  at: string;
}

function readFigures(): Record<string, Figure> {
  try {
    return JSON.parse(fs.readFileSync(FIGURES_FILE, 'utf8')) as Record<string, Figure>;
  } catch {
    return {};
  }
}

/** Records (or replaces) one case's figure. Test files run one at a time, so no locking. */
export function recordFigure(f: Omit<Figure, 'runner' | 'at'>): void {
  const all = readFigures();
  all[f.id] = { ...f, runner: process.ppid, at: new Date().toISOString() };
  const tmp = `${FIGURES_FILE}.${process.pid}`;
  fs.writeFileSync(tmp, JSON.stringify(all, null, 2));
  fs.renameSync(tmp, FIGURES_FILE);
  console.log(`[fault figure] ${f.id} ${f.case}: ${f.figure} (goal ${f.goal}) ${f.pass ? 'PASS' : 'FAIL'}`);
}

export function loadFigures(): Figure[] {
  const byId = (a: Figure, b: Figure): number => a.id.localeCompare(b.id, 'en', { numeric: true });
  return Object.values(readFigures()).sort(byId);
}

/** The table as Markdown: case, figure, goal, pass. */
export function figuresTable(figs: Figure[], currentRunner?: number): string {
  const esc = (s: string): string => s.replace(/\|/g, '\\|');
  const lines = ['| # | case | figure | goal | pass |', '|---|---|---|---|---|'];
  for (const f of figs) {
    const stale = currentRunner !== undefined && f.runner !== currentRunner && f.runner !== -1 ? ' (earlier run)' : '';
    lines.push(`| ${f.id} | ${esc(f.case)} | ${esc(f.figure)} | ${esc(f.goal)} | ${f.pass ? 'yes' : '**no**'}${stale} |`);
  }
  return lines.join('\n');
}

// ---- time ---------------------------------------------------------------------------------

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export function ms(n: number): string {
  return n < 10 ? `${n.toFixed(2)} ms` : `${Math.round(n)} ms`;
}

// ---- continuous ping ----------------------------------------------------------------------

export interface PingStats {
  transmitted: number;
  received: number;
  lost: number;
  duplicates: number;
  errors: number;
  raw: string;
}

export interface RunningPing {
  done: Promise<PingStats>;
  /** SIGINT: ping prints its statistics and exits. */
  stop(): void;
}

/**
 * `ip netns exec <ns> ping -i <interval> -c <count> -w <deadline> <target>`: the traffic oracle.
 * Bounded: count packets of 64 bytes, and a deadline.
 */
export function startPing(ns: string, target: string, opts: { intervalS?: number; count: number; deadlineS?: number }): RunningPing {
  const interval = opts.intervalS ?? 0.01;
  const deadline = opts.deadlineS ?? Math.ceil(opts.count * interval * 1.5 + 10);
  const p = spawn('ip', ['netns', 'exec', ns, 'ping', '-n', '-q', '-i', String(interval), '-c', String(opts.count), '-W', '1', '-w', String(deadline), target], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  p.stdout.on('data', (d: Buffer) => (out += d.toString()));
  p.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const done = new Promise<PingStats>((resolve, reject) => {
    p.on('error', reject);
    p.on('close', () => {
      const m = /(\d+) packets transmitted, (\d+) received(?:, \+(\d+) duplicates)?(?:, \+(\d+) errors)?/.exec(out);
      if (!m) return reject(new Error(`ping ${ns} -> ${target}: no statistics in output: ${out}`));
      const transmitted = Number(m[1]);
      const received = Number(m[2]);
      resolve({ transmitted, received, lost: transmitted - received, duplicates: Number(m[3] ?? 0), errors: Number(m[4] ?? 0), raw: out.trim() });
    });
  });
  return {
    done,
    stop: () => {
      if (p.exitCode === null && p.pid) {
        try {
          process.kill(p.pid, 'SIGINT');
        } catch {
          /* gone */
        }
      }
    },
  };
}

// ---- netlink events on a host -------------------------------------------------------------

export interface OwnedEvent {
  at: number;
  kind: NetlinkEvent['kind'];
  action: 'new' | 'del';
  what: string;
}

/**
 * Listens to a host namespace's kernel change notifications and keeps the ones about objects
 * twill owns: the device twill.<VNI>, its addresses, protocol-113 routes (or routes out of the
 * device), neighbours and FDB entries on the device.
 */
export class OwnedEventLog {
  readonly events: OwnedEvent[] = [];
  private readonly sock: NetlinkEventSocket;
  private devIndex: number;
  private waiters: Array<{ pred: (e: OwnedEvent) => boolean; resolve: (e: OwnedEvent) => void }> = [];

  constructor(readonly ns: string, readonly dev = 'twill.1') {
    this.devIndex = deviceIndex(ns, dev);
    this.sock = new NetlinkEventSocket(`/run/netns/${ns}`);
    this.sock.on('event', (e) => this.onEvent(e));
    this.sock.on('overflow', () => this.push({ at: performance.now(), kind: 'link', action: 'new', what: 'OVERFLOW' }));
    this.sock.on('error', () => undefined);
  }

  private onEvent(e: NetlinkEvent): void {
    let what: string | undefined;
    switch (e.kind) {
      case 'link':
        if (e.link.name === this.dev) {
          if (e.action === 'new') this.devIndex = e.link.index;
          what = `link ${e.link.name} mtu ${e.link.mtu} ${e.link.up ? 'up' : 'down'}`;
        }
        break;
      case 'addr':
        if (e.addr.index === this.devIndex) what = `addr ${e.addr.ip}/${e.addr.prefixLen}`;
        break;
      case 'route':
        if (e.route.protocol === 113 || (this.devIndex && e.route.oif === this.devIndex)) what = `route ${e.route.dst}/${e.route.dstLen} via ${e.route.gateway ?? '-'} proto ${e.route.protocol}`;
        break;
      case 'neigh':
        if (e.neigh.index === this.devIndex) what = `neigh ${e.neigh.ip} ${e.neigh.mac ?? ''} state ${e.neigh.state}`;
        break;
      case 'fdb':
        if (e.fdb.index === this.devIndex) what = `fdb ${e.fdb.mac} dst ${e.fdb.dst ?? '-'}`;
        break;
    }
    if (what !== undefined) this.push({ at: performance.now(), kind: e.kind, action: e.action, what });
  }

  private push(e: OwnedEvent): void {
    this.events.push(e);
    const still: typeof this.waiters = [];
    for (const w of this.waiters) (w.pred(e) ? w.resolve(e) : still.push(w));
    this.waiters = still;
  }

  /** The next event (after now) matching `pred`. */
  next(pred: (e: OwnedEvent) => boolean, timeoutMs: number, what: string): Promise<OwnedEvent> {
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w.resolve !== done);
        reject(new Error(`no ${what} event on ${this.ns} within ${timeoutMs} ms; seen: ${this.events.slice(-10).map((e) => `${e.action} ${e.what}`).join('; ')}`));
      }, timeoutMs);
      const done = (e: OwnedEvent): void => {
        clearTimeout(t);
        resolve(e);
      };
      this.waiters.push({ pred, resolve: done });
    });
  }

  dels(sinceIndex = 0): OwnedEvent[] {
    return this.events.slice(sinceIndex).filter((e) => e.action === 'del');
  }

  close(): void {
    this.sock.close();
  }
}

export function deviceIndex(ns: string, dev = 'twill.1'): number {
  try {
    const [l] = ipJson<{ ifindex: number }>(ns, 'link', 'show', 'dev', dev);
    return l?.ifindex ?? 0;
  } catch {
    return 0;
  }
}

export function deviceMtu(ns: string, dev = 'twill.1'): number {
  const [l] = ipJson<{ mtu: number }>(ns, 'link', 'show', 'dev', dev);
  return l?.mtu ?? 0;
}

// ---- metrics ------------------------------------------------------------------------------

/** Samples of one metric from a host's /metrics, keyed by the label set text ('' for none). */
export function metricSamples(ns: string, name: string): Map<string, number> {
  const r = httpGetInNs(ns, 9464, '/metrics');
  if (r.status !== 200) throw new Error(`/metrics on ${ns}: ${r.status} ${r.body}`);
  const out = new Map<string, number>();
  for (const line of r.body.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$/.exec(line);
    if (m && m[1] === name) out.set(m[2] ?? '', Number(m[3]));
  }
  return out;
}

export function metricValue(ns: string, name: string, labels = ''): number {
  return metricSamples(ns, name).get(labels) ?? 0;
}

// ---- etcd with revisions ------------------------------------------------------------------

export interface KvInfo {
  key: string;
  value: string;
  lease: string;
  createRevision: string;
  modRevision: string;
}

/** A raw etcd3 client on the lab's unix socket (test code may import etcd3 directly). */
export function labEtcd(lab: Lab): Etcd3 {
  return new Etcd3({ hosts: [lab.etcdLocalEndpoint] });
}

export async function leaseKvs(lab: Lab): Promise<Map<string, KvInfo>> {
  const c = labEtcd(lab);
  try {
    const res = await c.getAll().prefix(`${ETCD_PREFIX}/subnets/`).exec();
    return new Map(
      res.kvs.map((kv) => {
        const key = kv.key.toString();
        return [key, { key, value: kv.value.toString(), lease: kv.lease, createRevision: kv.create_revision, modRevision: kv.mod_revision }];
      }),
    );
  } finally {
    c.close();
  }
}

export async function leaseTtl(lab: Lab, leaseId: string): Promise<number> {
  const c = labEtcd(lab);
  try {
    const r = await c.leaseClient.leaseTimeToLive({ ID: leaseId });
    return Number(r.TTL);
  } finally {
    c.close();
  }
}

/** The lease key of `host` (by PublicIP) and its subnet "a.b.c.d/len". */
export function ownKey(kvs: Map<string, KvInfo>, host: LabHost): { key: string; subnet: string; mac: string; kv: KvInfo } {
  for (const kv of kvs.values()) {
    try {
      const v = JSON.parse(kv.value) as { PublicIP?: string; BackendData?: { VtepMAC?: string } };
      if (v.PublicIP === host.ip) {
        const subnet = kv.key.slice(`${ETCD_PREFIX}/subnets/`.length).replace('-', '/');
        return { key: kv.key, subnet, mac: v.BackendData?.VtepMAC ?? '', kv };
      }
    } catch {
      /* not a lease value */
    }
  }
  throw new Error(`no lease for ${host.name} (${host.ip})`);
}

export function leaseValue(publicIp: string, mac: string, vni = 1): string {
  return JSON.stringify({ PublicIP: publicIp, PublicIPv6: null, BackendType: 'vxlan', BackendData: { VNI: vni, VtepMAC: mac } });
}

export function subnetKeyOf(subnet: string): string {
  return `${ETCD_PREFIX}/subnets/${subnet.replace('/', '-')}`;
}

/** Protocol-113 route destinations on a host ("10.244.5.0/24"). */
export function twillRoutes(ns: string): string[] {
  return ipJson<{ dst: string }>(ns, 'route', 'show', 'proto', '113').map((r) => (r.dst.includes('/') ? r.dst : `${r.dst}/32`)).sort();
}

// ---- logs ---------------------------------------------------------------------------------

/**
 * Copies the lab's logs (etcd, every twilld) to <tmpdir>/twill-fault-logs/<tag>/ before
 * lab.down() removes the lab dir, so a failed case can be diagnosed afterwards.
 */
export function preserveLogs(lab: Lab, tag: string): string {
  const dest = path.join(os.tmpdir(), 'twill-fault-logs', tag);
  fs.rmSync(dest, { recursive: true, force: true });
  fs.mkdirSync(dest, { recursive: true });
  const copy = (src: string, name: string): void => {
    try {
      fs.copyFileSync(src, path.join(dest, name));
    } catch {
      /* absent */
    }
  };
  copy(path.join(lab.dir, 'etcd.log'), 'etcd.log');
  for (const h of lab.state.hosts) copy(lab.daemonLog(h), `twilld-${h.name}.log`);
  return dest;
}

/**
 * A fault suite's after-hook: `o.first` steps, the logs kept under `tag` (with `o.keep`, more
 * files of the lab's directory), the lab down, `o.last` steps. Every step runs whatever failed
 * before it; the failures are thrown together at the end.
 */
export async function tearDownFaultLab(lab: Lab | undefined, tag: string, o: { first?: Step[]; keep?: string[]; last?: Step[] } = {}): Promise<void> {
  const t = new Teardown();
  for (const [what, fix, fn] of o.first ?? []) await t.step(what, fix, fn);
  if (lab) {
    await t.step(`keep the logs of ${tag}`, '-', () => {
      const dest = preserveLogs(lab, tag);
      for (const f of o.keep ?? []) if (fs.existsSync(path.join(lab.dir, f))) fs.copyFileSync(path.join(lab.dir, f), path.join(dest, f));
    });
    await t.step(`lab ${lab.state.name}`, `node dist/src/cmd/twill-lab.js down --name ${lab.state.name} --dir ${lab.dir}`, () => lab.down());
  }
  for (const [what, fix, fn] of o.last ?? []) await t.step(what, fix, fn);
  t.finish(`faults-${tag} teardown`);
}

export type Step = [what: string, fix: string, fn: () => unknown];
