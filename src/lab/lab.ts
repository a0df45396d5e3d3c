// The one-machine lab: hosts are network namespaces on an underlay bridge, etcd runs in the
// underlay namespace, every host runs its own twilld. State (namespaces, PIDs, files) is
// recorded in <dir>/lab.json so `down` removes exactly what `up` created, from any process.
// etcd also listens on a unix socket in the lab dir: tools in the root namespace reach it
// without any address or route being added there.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeFileAtomicSync } from '../base/atomic-write';
import { EtcdAdmin } from '../subnet/etcd-admin';
import { deleteNetns, inNetns, netnsRemoveCommand } from '../netns/netns';
import { isRunning, sleep, stopProc, type SpawnedProc } from './procs';
import { Teardown } from './teardown';
import { spawn } from 'node:child_process';
import { BRIDGE_IP, buildHost, buildOutside, buildRouter, buildUnderlay, type Segment } from './topology';
import type { LabHost, LabPod, LabState } from './lab-state';
import { addPod, removePod } from './pods';
import { CNI_NODE_PLUGIN_PATH, TWILLD_ENV, TWILLD_NODE_FLAGS } from '../install/layout';
import { stopWireguardGo } from '../backends/wireguard/wireguard-go';
import { createHash } from 'node:crypto';

export const DEFAULT_NETWORK_CONFIG = '{"Network":"10.244.0.0/16","SubnetLen":24,"Backend":{"Type":"vxlan","VNI":1,"Port":8472}}';

export type LabBackend = 'vxlan' | 'host-gw' | 'wireguard';
export const LAB_BACKENDS: readonly LabBackend[] = ['vxlan', 'host-gw', 'wireguard'];

/** The lab's network config for a backend (vxlan: optionally with DirectRouting). */
export function labNetworkConfig(backend: LabBackend, directRouting = false): string {
  if (backend === 'host-gw') return '{"Network":"10.244.0.0/16","SubnetLen":24,"Backend":{"Type":"host-gw"}}';
  // A keepalive makes the host that learns a peer last send at once, so first contact never waits
  // out a handshake initiation sent before the peer knew our key (REKEY_TIMEOUT, 5 s).
  if (backend === 'wireguard') return '{"Network":"10.244.0.0/16","SubnetLen":24,"Backend":{"Type":"wireguard","ListenPort":51820,"PersistentKeepaliveInterval":25}}';
  return directRouting ? '{"Network":"10.244.0.0/16","SubnetLen":24,"Backend":{"Type":"vxlan","VNI":1,"Port":8472,"DirectRouting":true}}' : DEFAULT_NETWORK_CONFIG;
}
export const ETCD_PREFIX = '/coreos.com/network';

export type { LabHost, LabPod, LabState } from './lab-state';

export interface LabOptions {
  name?: string;
  dir?: string;
  mtu?: number;
  networkConfig?: string;
  /** See LabState.installRoot. */
  installRoot?: string;
}

const ROOT = path.resolve(__dirname, '..', '..', '..');
// The bundled daemon (scripts/bundle-daemon.mjs): same code, faster start than dist/src/cmd/twilld.js.
export const TWILLD = path.join(ROOT, 'dist', 'src', 'cmd', 'twilld-bundle.js');

/** twill-wg-<6 hex of lab/host>: 15 bytes, unique per lab host, a name twill owns. */
export function labWireguardDevice(lab: string, host: string): string {
  return `twill-wg-${createHash('sha256').update(`${lab}/${host}`).digest('hex').slice(0, 6)}`;
}

export function defaultLabDir(name: string): string {
  return path.join('/run/twill-lab', name);
}

export class Lab {
  private constructor(readonly state: LabState) {}

  get dir(): string {
    return this.state.dir;
  }

  /** Endpoint for tools in the root namespace (unix socket; see the note at the top). */
  get etcdLocalEndpoint(): string {
    return `unix://${path.join(this.state.dir, 'etcd.sock:0')}`;
  }

  /** Endpoint for the hosts, over the underlay. */
  get etcdEndpoint(): string {
    return `http://${BRIDGE_IP}:2379`;
  }

  static load(dir: string): Lab | undefined {
    try {
      return new Lab(JSON.parse(fs.readFileSync(path.join(dir, 'lab.json'), 'utf8')) as LabState);
    } catch {
      return undefined;
    }
  }

  /** Creates (or resumes) the underlay, etcd and the network config. Idempotent. */
  static async create(opts: LabOptions = {}): Promise<Lab> {
    const name = opts.name ?? 'lab';
    if (!/^[a-z0-9]{1,10}$/.test(name)) throw new Error(`lab name must be 1-10 lowercase letters/digits: ${name}`);
    const dir = opts.dir ?? defaultLabDir(name);
    fs.mkdirSync(dir, { recursive: true });
    const existing = Lab.load(dir);
    const lab =
      existing ??
      new Lab({
        name,
        dir,
        underlayNs: `twl-${name}-ul`,
        mtu: opts.mtu ?? 1500,
        hosts: [],
        pods: [],
        networkConfig: opts.networkConfig ?? DEFAULT_NETWORK_CONFIG,
      });
    if (opts.installRoot !== undefined) lab.state.installRoot = opts.installRoot;
    // A resumed lab takes a new network config when one is given (the daemons converge to it on restart).
    if (opts.networkConfig !== undefined) lab.state.networkConfig = opts.networkConfig;
    lab.save();
    buildUnderlay(lab.state.underlayNs, lab.state.mtu);
    lab.state.outsideNs ??= `twl-${name}-out`;
    lab.save();
    buildOutside(lab.state.underlayNs, lab.state.outsideNs, lab.state.mtu, lab.state.routerNs !== undefined);
    await lab.startEtcd();
    const admin = await lab.admin();
    try {
      // An existing lab keeps the network config it has in etcd (someone may have changed it on
      // purpose) unless one is given; a new lab, or one whose config is gone, gets ours.
      const key = `${ETCD_PREFIX}/config`;
      const current = existing && opts.networkConfig === undefined ? await admin.get(key) : null;
      if (current === null) {
        if (opts.networkConfig !== undefined) lab.state.networkConfig = opts.networkConfig;
        await admin.put(key, lab.state.networkConfig);
      } else if (current !== lab.state.networkConfig) {
        lab.state.networkConfig = current;
      }
      lab.save();
    } finally {
      admin.close();
    }
    return lab;
  }

  save(): void {
    // Not durable: the lab lives under /run and is rebuilt by `up`.
    writeFileAtomicSync(path.join(this.state.dir, 'lab.json'), JSON.stringify(this.state, null, 2), { mode: 0o644, durable: false });
  }

  async admin(): Promise<EtcdAdmin> {
    return EtcdAdmin.connect([this.etcdLocalEndpoint]);
  }

  private async startEtcd(): Promise<void> {
    if (this.state.etcd && isRunning(this.state.etcd)) return;
    const dataDir = path.join(this.state.dir, 'etcd');
    fs.rmSync(path.join(this.state.dir, 'etcd.sock:0'), { force: true });
    const args = [
      '--name', 'lab',
      '--data-dir', dataDir,
      '--listen-client-urls', `http://${BRIDGE_IP}:2379,unix://etcd.sock:0`,
      '--advertise-client-urls', `http://${BRIDGE_IP}:2379`,
      '--listen-peer-urls', 'http://127.0.0.1:2380',
      '--initial-advertise-peer-urls', 'http://127.0.0.1:2380',
      '--initial-cluster', 'lab=http://127.0.0.1:2380',
      '--log-outputs', 'stderr',
    ];
    this.state.etcd = this.spawnIn(this.state.underlayNs, '/usr/bin/etcd', args, path.join(this.state.dir, 'etcd.log'), 'etcd', this.state.dir);
    this.save();
    const deadline = Date.now() + 20_000;
    for (;;) {
      if (!isRunning(this.state.etcd)) throw new Error(`etcd exited; see ${path.join(this.state.dir, 'etcd.log')}`);
      if (fs.existsSync(path.join(this.state.dir, 'etcd.sock:0'))) {
        try {
          const a = await EtcdAdmin.connect([this.etcdLocalEndpoint]);
          try {
            await a.get('/health-probe');
            return;
          } finally {
            a.close();
          }
        } catch {
          /* not yet */
        }
      }
      if (Date.now() > deadline) throw new Error('etcd did not become healthy within 20 s');
      await sleep(100);
    }
  }

  async stopEtcd(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    if (this.state.etcd) await stopProc(this.state.etcd, signal);
  }

  async restartEtcd(): Promise<void> {
    await this.startEtcd();
  }

  /** Spawns a program inside a lab namespace; recorded by PID. */
  spawnIn(ns: string, cmd: string, args: string[], logFile: string, marker: string, cwd?: string, env?: NodeJS.ProcessEnv): SpawnedProc {
    const fd = fs.openSync(logFile, 'a');
    try {
      // Forked synchronously while this thread is in the namespace: the child lives there.
      const child = inNetns(`/run/netns/${ns}`, () =>
        spawn(cmd, args, { cwd, env: env ?? cleanEnv(), detached: true, stdio: ['ignore', fd, fd] }),
      );
      if (child.pid === undefined) throw new Error(`could not start ${cmd} in ${ns}`);
      // While this process lives, remember how it ended: "exited" alone says too little.
      const pid = child.pid;
      child.on('exit', (code, signal) => exits.set(pid, signal ? `signal ${signal}` : `exit code ${code}`));
      child.unref();
      return { pid: child.pid, marker };
    } finally {
      fs.closeSync(fd);
    }
  }

  host(name: string): LabHost {
    const h = this.state.hosts.find((x) => x.name === name);
    if (!h) throw new Error(`no such lab host: ${name}`);
    return h;
  }

  /**
   * Adds host h<N> (namespace + underlay veth) on segment `segment` ('b': behind the router,
   * which is built with the first such host). Idempotent per name; a host keeps its segment.
   */
  addHost(name?: string, segment: Segment = 'a'): LabHost {
    const n = name ?? `h${this.state.hosts.length + 1}`;
    const existing = this.state.hosts.find((x) => x.name === n);
    const index = existing ? this.state.hosts.indexOf(existing) + 1 : this.state.hosts.length + 1;
    const seg = existing?.segment ?? segment;
    if (seg === 'b') this.ensureRouter();
    const ns = `twl-${this.state.name}-${n}`;
    const { ip } = buildHost(this.state.underlayNs, ns, index, this.state.mtu, seg, this.state.routerNs !== undefined);
    if (existing) return existing;
    const dir = path.join(this.state.dir, n);
    fs.mkdirSync(dir, { recursive: true });
    const host: LabHost = { name: n, ns, ip, dir, ...(seg === 'b' ? { segment: seg } : {}) };
    this.state.hosts.push(host);
    this.save();
    return host;
  }

  /** Segment B and its router; hosts already on A learn the way to B. */
  private ensureRouter(): void {
    const first = this.state.routerNs === undefined;
    this.state.routerNs ??= `twl-${this.state.name}-rt`;
    buildRouter(this.state.underlayNs, this.state.routerNs, this.state.mtu);
    this.save();
    if (!first) return;
    this.state.hosts.forEach((h, i) => {
      if ((h.segment ?? 'a') === 'a') buildHost(this.state.underlayNs, h.ns, i + 1, this.state.mtu, 'a', true);
    });
    if (this.state.outsideNs) buildOutside(this.state.underlayNs, this.state.outsideNs, this.state.mtu, true);
  }

  subnetFile(host: LabHost): string {
    return path.join(host.dir, 'subnet.env');
  }

  /**
   * The host's WireGuard device name. wireguard-go's UAPI socket is /var/run/wireguard/<name>.sock
   * on the one filesystem every lab host shares: a name per host (and per lab) keeps them apart.
   */
  wireguardDevice(host: LabHost): string {
    return labWireguardDevice(this.state.name, host.name);
  }

  /** The host's daemon state dir (keys, wireguard-go's PID file). */
  stateDir(host: LabHost): string {
    return path.join(host.dir, 'state');
  }

  daemonLog(host: LabHost): string {
    return path.join(host.dir, 'twilld.log');
  }

  startDaemon(host: LabHost, extraArgs: string[] = [], extraEnv: NodeJS.ProcessEnv = {}): SpawnedProc {
    if (host.daemon && isRunning(host.daemon)) return host.daemon;
    // TWILL_LAB_NODE_ARGS: extra node flags for the daemons (e.g. --cpu-prof) when profiling.
    const extraNodeArgs = (process.env['TWILL_LAB_NODE_ARGS'] ?? '').split(' ').filter(Boolean);
    const nodeArgs = [...TWILLD_NODE_FLAGS, ...extraNodeArgs];
    const args = [
      ...nodeArgs,
      TWILLD,
      '--etcd-endpoints', this.etcdEndpoint,
      '--subnet-file', this.subnetFile(host),
      '--state-dir', this.stateDir(host),
      '--http-addr', '127.0.0.1:9464',
      '--node-name', host.name,
      '--wireguard-device', this.wireguardDevice(host),
      ...extraArgs,
    ];
    // The V8 code cache of the bundled daemon stays inside the lab: an installed daemon keeps it
    // under its install root (src/install/root-of.ts); one run from a checkout is told here.
    const cache = this.state.installRoot ? {} : { TWILL_DAEMON_CODE_CACHE: path.join(this.state.dir, 'cache', 'twilld') };
    // The installed wrapper exports TWILLD_ENV itself; node started directly gets it here.
    const env = { ...cleanEnv(), ...TWILLD_ENV, ...cache, ...extraEnv };
    // From an install root: its wrapper, which execs node on the installed bundle (same PID;
    // the marker 'twilld' matches both the wrapper's shell before the exec and node after it).
    // Node flags such as --cpu-prof are refused in NODE_OPTIONS, so with those node runs the
    // installed script directly.
    const root = this.state.installRoot;
    let cmd = process.execPath;
    let cmdArgs = args;
    if (root && extraNodeArgs.length === 0) {
      cmd = path.join(root, 'usr', 'local', 'bin', 'twilld');
      cmdArgs = args.slice(nodeArgs.length + 1); // the wrapper passes the node flags itself
    } else if (root) {
      cmdArgs = [...nodeArgs, path.join(root, 'opt', 'twill', 'current', 'dist', 'src', 'cmd', path.basename(TWILLD)), ...args.slice(nodeArgs.length + 1)];
    }
    host.daemon = this.spawnIn(host.ns, cmd, cmdArgs, this.daemonLog(host), root ? 'twilld' : path.basename(TWILLD), undefined, env);
    host.daemonArgs = extraArgs;
    this.save();
    return host.daemon;
  }

  /**
   * Starts `twill serve` in the host's namespace, as the twill-cni unit does on a real host:
   * the installed front-end then hands CNI calls to it instead of starting Node.js.
   */
  startCniServer(host: LabHost): SpawnedProc {
    if (host.cniServer && isRunning(host.cniServer)) return host.cniServer;
    const root = this.state.installRoot;
    const log = path.join(host.dir, 'twill-cni.log');
    // waitCniServer reads what this server logs, not an earlier one's lines.
    this.cniLogFrom.set(host.name, fileSize(log));
    host.cniServer = root
      ? this.spawnIn(host.ns, path.join(root, CNI_NODE_PLUGIN_PATH), ['serve'], log, 'twill-cni')
      : this.spawnIn(host.ns, process.execPath, [path.join(ROOT, 'dist', 'src', 'cmd', 'twill.js'), 'serve'], log, 'twill.js');
    this.save();
    return host.cniServer;
  }

  async stopCniServer(host: LabHost): Promise<void> {
    if (host.cniServer) await stopProc(host.cniServer);
  }

  private readonly cniLogFrom = new Map<string, number>();

  /** Waits until the host's CNI server listens (it logs so once bound). */
  async waitCniServer(host: LabHost, timeoutMs = 15_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const log = path.join(host.dir, 'twill-cni.log');
    const from = this.cniLogFrom.get(host.name) ?? 0;
    for (;;) {
      if (readFrom(log, from).includes('"msg":"serving CNI calls"')) return;
      if (host.cniServer && !isRunning(host.cniServer)) throw new Error(`twill serve on ${host.name} exited; see ${log}`);
      if (Date.now() > deadline) throw new Error(`twill serve on ${host.name} not listening within ${timeoutMs} ms; see ${log}`);
      await sleep(25);
    }
  }

  async stopDaemon(host: LabHost, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    if (host.daemon) await stopProc(host.daemon, signal);
  }

  daemonRunning(host: LabHost): boolean {
    return host.daemon !== undefined && isRunning(host.daemon);
  }

  /** Waits until the daemon logs "ready" after `sinceBytes` of its log. */
  async waitReady(host: LabHost, timeoutMs = 30_000, sinceBytes = 0): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const log = readFrom(this.daemonLog(host), sinceBytes);
      if (log.split('\n').some((l) => l.includes('"msg":"ready"'))) return;
      if (host.daemon && !isRunning(host.daemon)) throw new Error(`twilld on ${host.name} exited (${exitOf(host.daemon)}); log:\n${log.slice(-2000)}`);
      if (Date.now() > deadline) throw new Error(`twilld on ${host.name} not ready within ${timeoutMs} ms; log:\n${log.slice(-2000)}`);
      await sleep(50);
    }
  }

  logSize(host: LabHost): number {
    return fileSize(this.daemonLog(host));
  }

  /** Adds a pod on `host` through the CNI plugin, as a runtime does (see pods.ts). Idempotent per name. */
  addPod(host: LabHost, name?: string): Promise<LabPod> {
    return addPod(this, host, name);
  }

  /** CNI DEL, then the pod's namespace. */
  removePod(name: string): Promise<void> {
    return removePod(this, name);
  }

  pod(name: string): LabPod {
    const p = this.state.pods.find((x) => x.name === name);
    if (!p) throw new Error(`no such lab pod: ${name}`);
    return p;
  }

  /**
   * Removes everything the lab created: pods (CNI DEL), processes by PID, namespaces, its
   * directory. Never stops at the first error: every process is stopped and every namespace
   * removed that can be; then what is left is thrown (ERR_LAB_TEARDOWN, with commands), and the
   * directory with lab.json is kept so `down` can be run again.
   */
  async down(): Promise<void> {
    const t = new Teardown();
    // Pods first and through CNI DEL, as a runtime tears them down. A failing DEL is no
    // leftover (the host namespace goes below); a pod namespace that stays is reported below.
    for (const p of [...this.state.pods]) await removePod(this, p.name, { bestEffort: true }).catch(() => undefined);
    for (const h of this.state.hosts) await t.stop(`twilld on ${h.name}`, h.daemon);
    for (const h of this.state.hosts) await t.stop(`twill serve on ${h.name}`, h.cniServer);
    // wireguard-go outlives its daemon by design (and its namespace's deletion): by its PID.
    for (const h of this.state.hosts) {
      const pidFile = path.join(this.stateDir(h), `${this.wireguardDevice(h)}.wireguard-go.pid`);
      await t.step(`wireguard-go of ${h.name}`, `kill -9 $(cat ${pidFile})`, () => stopWireguardGo(this.stateDir(h), this.wireguardDevice(h)));
    }
    await t.stop('etcd', this.state.etcd);
    const namespaces = [...this.state.pods.map((p) => p.ns), ...this.state.hosts.map((h) => h.ns), this.state.outsideNs, this.state.routerNs, this.state.underlayNs];
    for (const ns of namespaces) {
      if (ns !== undefined) await t.step(`namespace ${ns}`, netnsRemoveCommand(ns), () => deleteNetns(ns));
    }
    if (t.problems.length === 0) await t.step(`directory ${this.state.dir}`, `rm -rf ${this.state.dir}`, () => fs.rmSync(this.state.dir, { recursive: true, force: true }));
    t.finish(`lab "${this.state.name}" (state kept in ${this.state.dir})`);
  }
}

/** How processes this process spawned ended (pid → "exit code N" / "signal S"). */
const exits = new Map<number, string>();

export function exitOf(p: SpawnedProc): string {
  return exits.get(p.pid) ?? 'not a child of this process, or not reaped yet';
}

function fileSize(file: string): number {
  try {
    return fs.statSync(file).size;
  } catch {
    return 0;
  }
}

function readFrom(file: string, offset: number): string {
  try {
    const fd = fs.openSync(file, 'r');
    try {
      const size = fs.fstatSync(fd).size;
      if (size <= offset) return '';
      const buf = Buffer.alloc(size - offset);
      fs.readSync(fd, buf, 0, buf.length, offset);
      return buf.toString('utf8');
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return '';
  }
}

/** The environment lab processes get: ours minus what only slows Node down. */
export function cleanEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env = { ...process.env, ...extra };
  delete env['NODE_EXTRA_CA_CERTS'];
  delete env['NOTIFY_SOCKET'];
  return env;
}
