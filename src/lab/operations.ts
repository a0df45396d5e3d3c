// The operations behind `twill-lab up|status|exec|down`. `up` converges: every step is
// idempotent (namespaces, veths, etcd, daemons, pods are reused when present), so running it
// again on an existing lab repairs what is missing and changes nothing else.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { install, ownPackageRoot } from '../install/install';
import { BIN_DIR } from '../install/layout';
import { leaseRows } from '../ctl/leases';
import type { DaemonStatus } from '../ctl/status';
import { inNetns, netnsPath } from '../netns/netns';
import { subnetsPrefix } from '../subnet/lease';
import { LabError } from './errors';
import { cleanEnv, defaultLabDir, ETCD_PREFIX, Lab, labNetworkConfig, type LabBackend, type LabHost } from './lab';
import { gatherPrereqFacts, prereqProblems } from './prereq';
import { probeMatrix } from './probe';
import { probeOutside } from './outside-probe';
import { sleep } from './procs';
import type { HostLine, LabReport, PodLine } from './report';
import { BRIDGE_IP, OUTSIDE_IP } from './topology';

export interface LabLocation {
  name: string;
  /** Explicit state directory; default /run/twill-lab/<name>. */
  dir?: string;
}

export interface UpOptions extends LabLocation {
  /** undefined: as many as the existing lab has, or 3 for a new one. */
  hosts?: number;
  /** Per host; undefined: as many as the existing lab has, or 2 for a new one. */
  pods?: number;
  /** The network config's backend; absent: what the lab has (vxlan for a new one). */
  backend?: LabBackend;
  directRouting?: boolean;
  /** How many of the hosts (the last ones) sit on segment B, behind a router. */
  routed?: number;
  /** Progress lines for the person waiting. */
  progress?: (line: string) => void;
}

const LAB_NAME = /^[a-z0-9]{1,10}$/;

export function labDir(loc: LabLocation): string {
  if (!LAB_NAME.test(loc.name)) throw new LabError('ERR_LAB_NAME', `lab name must be 1-10 lowercase letters/digits: ${loc.name}`);
  return path.resolve(loc.dir ?? defaultLabDir(loc.name));
}

export function loadLab(loc: LabLocation): Lab {
  const dir = labDir(loc);
  const lab = Lab.load(dir);
  if (!lab) throw new LabError('ERR_LAB_NOT_FOUND', `no lab at ${dir}; start one with \`twill-lab up${loc.name === 'lab' ? '' : ` --name ${loc.name}`}\``);
  return lab;
}

export async function labUp(o: UpOptions): Promise<{ lab: Lab; report: LabReport; notes: string[] }> {
  const say = o.progress ?? (() => undefined);
  const problems = prereqProblems(gatherPrereqFacts(ownPackageRoot(), o.backend === 'wireguard'));
  if (problems.length > 0) throw new LabError('ERR_LAB_PREREQ', 'the lab cannot start on this machine', { problems });
  const dir = labDir(o);
  const notes: string[] = [];
  // An existing lab keeps its size unless told otherwise (`up` never removes anything anyway).
  const existing = Lab.load(dir);
  const size = existingSize(existing);
  const nHosts = o.hosts ?? size?.hosts ?? DEFAULT_HOSTS;
  const nPods = o.pods ?? size?.pods ?? DEFAULT_PODS;

  say(`underlay, etcd and network config in ${dir}`);
  const installRoot = path.join(dir, 'root');
  const before = Lab.load(dir)?.state.networkConfig;
  const networkConfig = o.backend !== undefined ? labNetworkConfig(o.backend, o.directRouting) : undefined;
  const lab = await Lab.create({ name: o.name, dir, installRoot, ...(networkConfig !== undefined ? { networkConfig } : {}) });
  // A changed backend: running daemons restart to converge to it (and sweep the old one).
  if (before !== undefined && networkConfig !== undefined && before !== networkConfig) {
    notes.push('the network config changed: daemons were restarted to converge to it');
    for (const h of lab.state.hosts) await lab.stopDaemon(h);
  }

  // The operators' install path, into the lab's root: daemons and the CNI plugin run from it.
  say(`twillctl install --root ${installRoot}`);
  await install({ root: installRoot, etcdEndpoints: `http://${BRIDGE_IP}:2379` });

  const hosts: LabHost[] = [];
  const routedFrom = nHosts - (o.routed ?? 0);
  for (let i = 1; i <= nHosts; i++) hosts.push(lab.addHost(`h${i}`, i > routedFrom ? 'b' : 'a'));
  const extra = lab.state.hosts.filter((h) => !hosts.includes(h));
  if (extra.length > 0) notes.push(`the lab also has ${extra.map((h) => h.name).join(', ')} from an earlier \`up\`; \`up\` never removes hosts (run \`down\` first)`);

  say(`twilld on ${lab.state.hosts.map((h) => h.name).join(', ')}`);
  // A daemon started now must log "ready" after its start, not an earlier run's line.
  const since = new Map(lab.state.hosts.map((h) => [h.name, lab.daemonRunning(h) ? 0 : lab.logSize(h)]));
  for (const h of lab.state.hosts) lab.startDaemon(h);
  // And twill-cni's `twill serve`, so the installed front-end answers without starting Node.
  for (const h of lab.state.hosts) lab.startCniServer(h);
  for (const h of lab.state.hosts) await lab.waitReady(h, 30_000, since.get(h.name) ?? 0);
  for (const h of lab.state.hosts) await lab.waitCniServer(h);

  say(`pods via the twill CNI plugin (${nPods} per host)`);
  for (const h of hosts) for (let k = 1; k <= nPods; k++) await lab.addPod(h, `${h.name}-p${k}`);

  // Every daemon must have seen every other lease before the matrix means anything.
  say('waiting until every host has programmed its peers');
  const deadline = Date.now() + 15_000;
  let lines = await hostLines(lab);
  while (!lines.every((l) => l.daemon === 'ready' && l.peers === lab.state.hosts.length - 1) && Date.now() < deadline) {
    await sleep(300);
    lines = await hostLines(lab);
  }
  say('probing pod × pod');
  return { lab, report: await labReport(lab, lines), notes };
}

export const DEFAULT_HOSTS = 3;
export const DEFAULT_PODS = 2;

/** Hosts, and pods on the fullest host, of an existing lab; undefined for none or an empty one. */
export function existingSize(lab: Lab | undefined): { hosts: number; pods: number } | undefined {
  if (!lab || lab.state.hosts.length === 0) return undefined;
  const perHost = lab.state.hosts.map((h) => lab.state.pods.filter((p) => p.host === h.name).length);
  return { hosts: lab.state.hosts.length, pods: Math.max(1, ...perHost) };
}

/** Builds the report from what is actually there now (etcd leases, daemon status, probes). */
export async function labReport(lab: Lab, hosts?: HostLine[]): Promise<LabReport> {
  const hostInfo = hosts ?? (await hostLines(lab));
  const pods: PodLine[] = lab.state.pods
    .map((p) => ({ name: p.name, host: p.host, ns: p.ns, address: p.ip ?? null }))
    .sort((a, b) => a.name.localeCompare(b.name, 'en', { numeric: true }));
  const endpoints = pods.filter((p) => p.address !== null && fs.existsSync(netnsPath(p.ns))).map((p) => ({ name: p.name, nsPath: netnsPath(p.ns), ip: p.address!.split('/')[0]! }));
  const probed = await probeMatrix(endpoints);
  // Pods without an address (or namespace) still get their row and column, as failures.
  const matrix = pods.flatMap((from) =>
    pods.map((to) => probed.find((m) => m.from === from.name && m.to === to.name) ?? { from: from.name, to: to.name, ok: false, rttMs: null, error: 'pod has no address or no namespace' }),
  );
  const outsideNs = lab.state.outsideNs;
  const reached = outsideNs && fs.existsSync(netnsPath(outsideNs)) ? await probeOutside(endpoints, { nsPath: netnsPath(outsideNs), ip: OUTSIDE_IP }) : undefined;
  const outside = reached && pods.map((p) => reached.find((o) => o.from === p.name) ?? { from: p.name, ok: false, seenSource: null, rttMs: null, error: 'pod has no address or no namespace' });
  return { name: lab.state.name, dir: lab.dir, etcd: lab.etcdEndpoint, underlayNs: lab.state.underlayNs, hosts: hostInfo, pods, matrix, ...(outside ? { outside } : {}) };
}

async function hostLines(lab: Lab): Promise<HostLine[]> {
  const admin = await lab.admin();
  let leases: ReturnType<typeof leaseRows> = [];
  try {
    leases = leaseRows(ETCD_PREFIX, [...(await admin.list(subnetsPrefix(ETCD_PREFIX)))].map(([key, value]) => ({ key, value, ttlSeconds: null })));
  } catch {
    /* etcd down: the table shows '-' */
  } finally {
    admin.close();
  }
  return lab.state.hosts.map((h) => {
    const lease = leases.find((l) => l.publicIp === h.ip);
    const running = lab.daemonRunning(h);
    const st = running ? daemonStatusIn(lab, h) : null;
    return {
      name: h.name,
      ns: h.ns,
      underlayIp: h.ip,
      subnet: lease?.subnet ?? null,
      identity: lease?.identity ?? null,
      daemon: !running ? 'stopped' : st === null || st.reachable === false ? 'unreachable' : st.ready ? 'ready' : 'not ready',
      pid: running ? h.daemon!.pid : null,
      peers: st?.peers ?? null,
    };
  });
}

/** `twillctl status --json`, run inside the host's namespace where its daemon listens. */
function daemonStatusIn(lab: Lab, h: LabHost): (DaemonStatus & { reachable?: boolean }) | null {
  const root = lab.state.installRoot;
  const [cmd, args] = root
    ? [path.join(root, BIN_DIR, 'twillctl'), []]
    : [process.execPath, [path.resolve(__dirname, '..', 'cmd', 'twillctl.js')]];
  // spawnSync keeps this thread in the namespace until the child exits; nothing else runs then.
  const r = inNetns(netnsPath(h.ns), () =>
    spawnSync(cmd, [...args, 'status', '--json', '--http-addr', '127.0.0.1:9464', '--settings', '/dev/null'], { encoding: 'utf8', env: cleanEnv(), timeout: 10_000 }),
  );
  try {
    return JSON.parse(r.stdout) as DaemonStatus;
  } catch {
    return null;
  }
}

/** The namespace a name of the lab stands for: a host, a pod, or the underlay. */
export function resolveTarget(lab: Lab, target: string): string {
  const host = lab.state.hosts.find((h) => h.name === target || h.ns === target);
  if (host) return host.ns;
  const pod = lab.state.pods.find((p) => p.name === target || p.ns === target);
  if (pod) return pod.ns;
  if (target === 'underlay' || target === 'etcd' || target === lab.state.underlayNs) return lab.state.underlayNs;
  if (lab.state.outsideNs && (target === 'outside' || target === lab.state.outsideNs)) return lab.state.outsideNs;
  const names = [...lab.state.hosts.map((h) => h.name), ...lab.state.pods.map((p) => p.name), 'underlay', ...(lab.state.outsideNs ? ['outside'] : [])];
  throw new LabError('ERR_LAB_TARGET', `no host or pod "${target}" in lab ${lab.state.name} (have: ${names.join(', ')})`);
}

/**
 * Runs the user's command inside a lab namespace with this terminal; resolves to its exit
 * status. Unlike `ip netns exec` it does not remount /sys, so /sys/class/net still shows the
 * root namespace's devices: use netlink tools (ip, ss) inside.
 */
export function labExec(lab: Lab, target: string, argv: string[]): Promise<number> {
  const ns = resolveTarget(lab, target);
  const child = inNetns(netnsPath(ns), () => spawn(argv[0]!, argv.slice(1), { stdio: 'inherit', env: labExecEnv(lab) }));
  // The terminal's ^C reaches the child too; this process just waits for it to finish.
  const ignore = (): void => undefined;
  process.on('SIGINT', ignore);
  process.on('SIGTERM', ignore);
  return new Promise((resolve) => {
    const done = (code: number): void => {
      process.off('SIGINT', ignore);
      process.off('SIGTERM', ignore);
      resolve(code);
    };
    child.on('error', (err) => {
      process.stderr.write(`twill-lab: cannot run ${argv[0]}: ${err.message}\n`);
      done(127);
    });
    child.on('exit', (code, signal) => done(code ?? (signal ? 128 + (signalNumber(signal) ?? 0) : 1)));
  });
}

/**
 * Inside the lab, the lab's tools: its install's bin directory first on PATH, so `twillctl`
 * is the lab's, which reads the lab's settings file (src/install/root-of.ts).
 */
export function labExecEnv(lab: Lab, base: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const root = lab.state.installRoot;
  if (!root) return cleanEnv();
  const bin = path.join(root, BIN_DIR);
  return cleanEnv({ PATH: [bin, ...(base['PATH'] ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin').split(':').filter((d) => d !== '' && d !== bin)].join(':') });
}

function signalNumber(signal: NodeJS.Signals): number | undefined {
  return os.constants.signals[signal];
}

/** Removes the lab; also its parent /run/twill-lab when that is left empty. False: no lab there. */
export async function labDown(loc: LabLocation): Promise<boolean> {
  const dir = labDir(loc);
  const lab = Lab.load(dir);
  if (!lab) return false;
  await lab.down();
  if (loc.dir === undefined) {
    try {
      fs.rmdirSync(path.dirname(dir)); // only succeeds when empty
    } catch {
      /* other labs still there */
    }
  }
  return true;
}
