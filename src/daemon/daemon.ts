// twilld's main loop: wires the etcd registry, the pure desired-state computation, the kernel
// reconciler, the subnet file and the observability endpoints.
//
// Order at start, chosen so a restart never disturbs working pods:
//   underlay facts → VTEP MAC (persisted) → network config (waits, never crashes on bad
//   config) → first full list of leases → our subnet chosen → first desired state to the
//   reconciler (nothing in the kernel is touched before this), peers programmed while the
//   lease is granted and written → lease held → device address → subnet file → READY=1.
//   Then the watch streams changes; events only recompute desired state.
//   The etcd reads (config, listing) are sent first and answered while the local facts are
//   gathered (registry.prefetch): same order of use, fewer round trips on the clock.
// The control plane being unhappy (etcd down, lease renewals failing, bad leases) never
// removes kernel state: the last desired state stays programmed.
import type { DaemonConfig } from '../config/daemon';
import { saveCodeCacheNow } from '../launch/code-cache';
import { NetworkConfigError, parseNetworkConfig, type NetworkConfig } from '../config/network';
import type { PeerConflict } from '../backends/plan';
import type { PlanDelta, PlanIndex } from '../backends/plan-index';
import { PeerState } from './peer-state';
import { backendFor, ownedByAnyBackend, retireInactive, type Registered } from '../backends/registry';
import type { HostIdentity } from '../backends/types';
import { loadOrCreateWireguardKey, type WireguardKey } from '../backends/wireguard/key-store';
import type { DriverMode } from '../dataplane/driver';
import { Reconciler, type Dataplane } from '../dataplane/reconciler';
import { firstHost, formatIp4, formatPrefix4, parseIp4, parsePrefix4, type Prefix4 } from '../ip/ipv4';
import { randomLocalMac } from '../ip/mac';
import { NetlinkEventSocket, type NetlinkEvent } from '../netlink/events';
import { NetlinkHandle } from '../netlink/handle';
import { startHttpServer, type HttpServerHandle } from '../observe/http';
import { child, type Logger } from '../observe/log';
import { createDaemonMetrics, Metrics, type DaemonMetrics } from '../observe/metrics';
import { createNotifier, type Notifier } from '../observe/notify';
import { native } from '../netns/native';
import { EtcdRegistry, type SubnetListing } from '../subnet/etcd-registry';
import { decodeLease, type Lease } from '../subnet/lease';
import { loadOrCreateVtepMac } from '../subnet/state';
import { formatSubnetFile, parseSubnetEnv, readSubnetFile } from '../subnet/subnet-file';
import { SubnetFileKeeper } from './subnet-file-keeper';
import { ConfigChangeWatch } from './config-change';
import { checkStartup } from './preflight';
import { PeerLog } from './peer-log';
import { coalesced } from './coalesce';
import {
  errorLine,
  etcdBlocker,
  invalidConfigBlocker,
  lostLeaseBlocker,
  missingConfigBlocker,
  readinessOf,
  stepBlocker,
  subnetFileBlocker,
  type Blocker,
  type Readiness,
} from './readiness';
import { resolveUnderlay, sameUnderlay, type Underlay } from './underlay';
import { TwillError } from '../base/twill-error';
import { FirewallDriver } from '../firewall/driver';
import { enableIpForwarding } from '../firewall/forwarding';
import { registerFirewallMetrics } from '../firewall/metrics';
import { Nft } from '../firewall/nft';
import { PeerProbing } from '../probe/peer-probing';
import { EtcdHealthStore } from '../subnet/health-store';
import type { UnderlayChoice } from './underlay-select';
import { PeerReach } from './peer-reach';
import { BurstCollector } from './burst-collector';

const CONFIG_POLL_MS = 2000;
const RETRY_MS = 5000;
/** The nftables table is checked at least this often (drift events make it faster). */
const FIREWALL_CHECK_MAX_MS = 10_000;
const CONFIG_CHANGE_POLL_MAX_MS = 30_000;

/** The VTEP MAC label of the lease metric: empty for a backend without one. */
function vtepMacOf(l: Lease): string {
  const d = l.backendData as { vtepMac?: unknown } | undefined;
  return typeof d?.vtepMac === 'string' ? d.vtepMac : '';
}

export class Daemon {
  private readonly log: Logger;
  private readonly metricsRegistry = new Metrics();
  readonly metrics: DaemonMetrics;
  private readonly h: NetlinkHandle;
  private events: NetlinkEventSocket | undefined;
  private registry: EtcdRegistry | undefined;
  private reconciler: Dataplane | undefined;
  /** twill's nftables table: masquerade, forward accepts, VXLAN source filter (src/firewall). */
  private firewall: FirewallDriver | undefined;
  /** The active driver's mode (kernel or userspace), once the dataplane started. */
  private driverMode: DriverMode | undefined;
  /** The active backend: chosen by the network config. */
  private backend: Registered | undefined;
  /** How peers' PublicIPs are reached, for backends that ask (host-gw, DirectRouting). */
  private readonly reach: PeerReach;
  private reachScheduled: NodeJS.Immediate | undefined;
  private hasDevice = false;
  /** Paths the peers gauge has a series for (set to 0 when no peer takes them any more). */
  private readonly paths = new Set<string>();
  private http: HttpServerHandle | undefined;
  private notifier: Notifier;
  private underlay: Underlay | undefined;
  private config: NetworkConfig | undefined;
  private own: Lease | undefined;
  /** The lease being written at a cold start, until `own` is set. */
  private planned: Lease | undefined;
  /** The listing the dataplane started from. */
  private listing: SubnetListing | undefined;
  /** What the peers' index was last built for (own lease, reachability, underlay): a change rebuilds it. */
  private builtFor = '';
  /**
   * The VXLAN source filter's set: every programmed peer's PublicIP, with how many peers name
   * each. Every programmed peer, not only those we encapsulate to: with DirectRouting the paths
   * may differ by direction (a peer that reaches us directly sends VXLAN when it does not see
   * us as on-link, and the reverse).
   */
  private fwPeers = new Set<string>();
  private readonly fwRefs = new Map<string, number>();
  private recomputeScheduled: NodeJS.Immediate | undefined;
  /** The next recompute checks the peers' index against a full plan (PeerState.verify) and rebuilds it only if they differ. */
  private verifyPeers = false;
  private vtepMac = '';
  /** The network config text the daemon runs with (a change needs a restart). */
  private configText = '';
  private configWatch: ConfigChangeWatch | undefined;
  private peerLog: PeerLog;
  /** This host's WireGuard key (wireguard backend only); the private half never leaves the driver. */
  private wgKey: WireguardKey | undefined;
  /** Every lease key's value and, once the first full recompute ran, the peers' plans (updated per event). */
  private readonly peers = new PeerState();
  private readonly warned = new Map<string, string>();
  private pendingEventTimes: number[] = [];
  private readonly subnetFile: SubnetFileKeeper;
  /** The error that currently stands in the way, and the step that set it. */
  private blocker: { step: string; b: Blocker } | undefined;
  private everConverged = false;
  private leaseHeld = false;
  private stopping = false;
  private readonly timers = new Set<NodeJS.Timeout>();
  /** Peer probes (src/probe); never part of readiness. */
  private probing: PeerProbing | undefined;
  /** One full GC after each full convergence or index rebuild, and when the heap grew past the last one's (src/daemon/burst-collector.ts). */
  private readonly collector = new BurstCollector(() => this.peers.compact());

  constructor(readonly cfg: DaemonConfig, log: Logger) {
    this.log = log;
    this.metrics = createDaemonMetrics(this.metricsRegistry);
    this.h = NetlinkHandle.open();
    this.reach = new PeerReach(this.h);
    this.notifier = createNotifier((s) => native().sdNotify(s));
    this.peerLog = new PeerLog(child(log, 'peers'));
    this.subnetFile = new SubnetFileKeeper(cfg.subnetFile, child(log, 'subnet-file'), {
      checkIntervalMs: Math.min(cfg.resyncInterval * 1000, 5000),
      onChange: (inSync) => {
        if (inSync) {
          this.clearBlocker('subnet file');
          // Written by the keeper's own retry: readiness (and READY=1) follow now, not at the
          // next convergence.
          if (this.own) void this.afterConverged();
        }
        this.metrics.ready.set({}, this.readiness().ok ? 1 : 0);
      },
      onRepaired: () => this.metrics.driftRepaired.inc({ kind: 'subnet-file' }),
      onWriteFailed: (err) => this.setBlocker('subnet file', subnetFileBlocker(cfg.subnetFile, err)),
    });
  }

  readiness(): Readiness {
    return readinessOf({
      leaseHeld: this.leaseHeld,
      everConverged: this.everConverged,
      converging: Boolean(this.reconciler && !this.reconciler.converged),
      subnetFileInSync: this.subnetFile.inSync,
      subnetFile: this.cfg.subnetFile,
      blocker: this.blocker?.b,
    });
  }

  private setBlocker(step: string, b: Blocker): void {
    this.blocker = { step, b };
  }

  private clearBlocker(step: string): void {
    if (this.blocker?.step === step) this.blocker = undefined;
  }

  /** An etcd failure blocks on the endpoints; anything else on the step that failed. */
  private blockerFor(step: string, err: unknown): Blocker {
    return (err as { code?: unknown }).code === 'ERR_ETCD' ? etcdBlocker(this.cfg.etcdEndpoints, err) : stepBlocker(step, err);
  }

  async start(): Promise<void> {
    checkStartup(this.cfg, this.h); // a typo in --iface or a TLS path: exit 2 now, not retry forever
    this.enableForwarding();
    // Listening starts now; awaited below, after the first etcd requests are on their way.
    const http = startHttpServer(
      this.cfg.httpAddr,
      { ready: () => this.readiness(), metrics: (write) => this.metricsRegistry.renderTo(write) },
      child(this.log, 'http'),
    );
    http.catch(() => undefined); // its failure is thrown by the await below
    this.registry = await this.retry('etcd client', () => EtcdRegistry.create(
      {
        endpoints: this.cfg.etcdEndpoints,
        prefix: this.cfg.etcdPrefix,
        ...(this.cfg.etcdCafile ? { caFile: this.cfg.etcdCafile } : {}),
        ...(this.cfg.etcdCertfile ? { certFile: this.cfg.etcdCertfile } : {}),
        ...(this.cfg.etcdKeyfile ? { keyFile: this.cfg.etcdKeyfile } : {}),
      },
      child(this.log, 'registry'),
    ));
    this.wireRegistryEvents(this.registry);
    // The config and the subnet listing (10,000 keys in a large cluster) are read while the
    // local facts below are gathered: etcd's answers are then in, or nearly, when needed.
    this.registry.prefetch({ grantTtlSeconds: this.cfg.subnetLeaseTtl });
    this.http = await http;

    this.underlay = await this.retry('underlay', () => resolveUnderlay(this.h, this.underlayChoice()));
    this.log.info({ underlay: this.underlay }, 'underlay interface');

    const mac = await this.retry('VTEP MAC state', () => loadOrCreateVtepMac(this.cfg.stateDir, () => randomLocalMac()));
    this.vtepMac = mac.mac;
    if (mac.replacedCorrupt) this.log.warn({ stateDir: this.cfg.stateDir, mac: mac.mac }, 'VTEP MAC file was corrupt; a new MAC was generated');
    else if (mac.created) this.log.info({ mac: mac.mac }, 'generated VTEP MAC (kept in the state dir from now on)');

    this.config = await this.waitForConfig(this.registry);
    this.startProbing(this.config);
    const backend = (this.backend = backendFor(this.config));
    if (this.config.backend.type === 'wireguard') await this.loadWireguardKey();
    const retired = retireInactive(this.config.backend.type, { stateDir: this.cfg.stateDir, identity: this.identity() });
    if (retired.length > 0) this.log.info({ stopped: retired }, 'stopped what an earlier backend ran');
    const preferred = await this.subnetFromFile();
    const underlay = this.underlay;
    const lease = await this.retry(
      'acquire lease',
      () =>
        this.registry!.acquire({
          config: this.config!,
          publicIp: parseIp4(underlay.publicIp),
          codec: backend.backend.codec,
          backendData: backend.backend.ownData({ config: this.config!, ...this.identity() }),
          ...(preferred ? { preferred } : {}),
          ttlSeconds: this.cfg.subnetLeaseTtl,
          renewMarginSeconds: this.cfg.subnetLeaseRenewMargin * 60,
          onPlanned: (planned, listing) => this.startDataplane(planned, listing),
        }),
      'acquire',
    );
    this.own = lease;
    this.leaseHeld = true;
    this.metrics.setLease({ subnet: formatPrefix4(lease.subnet), publicIp: formatIp4(lease.publicIp), vtepMac: vtepMacOf(lease) });
    this.log.info({ subnet: formatPrefix4(lease.subnet), publicIp: formatIp4(lease.publicIp), backend: lease.backendType, data: backend.backend.codec.describe(lease.backendData) }, 'subnet lease held');
    // The listing the lease was chosen from, which the dataplane started from. Our own write
    // came after its revision and arrives through the watch (decoded as ourselves, skipped).
    const listed = this.registry.takeAcquireListing() ?? (await this.retry('list leases', () => this.registry!.listSubnets(), 'list'));
    if (listed !== this.listing) this.startDataplane(lease, listed);
    else this.recompute(); // the device gets its address now
    this.listing = undefined; // its values live on in this.peers; nothing else reads it
    this.registry.watchSubnets(listed.revision, {
      put: (key, value) => this.onLeaseEvent(key, value),
      delete: (key) => this.onLeaseEvent(key, undefined),
      resync: (entries) => this.onLeaseResync(entries),
    });
    this.notifier.startWatchdog();
    const reg = this.registry;
    this.configWatch = new ConfigChangeWatch(this.configText, () => reg.getConfigText(), `${reg.prefix}/config`, child(this.log, 'config'));
    // One small read per host per period: at 10,000 hosts and 30 s, ~330 reads/s for etcd.
    this.configWatch.start(Math.min(this.cfg.resyncInterval * 1000, CONFIG_CHANGE_POLL_MAX_MS));
  }

  private identity(): HostIdentity {
    return {
      vtepMac: this.vtepMac,
      wireguardDevice: this.cfg.wireguardDevice,
      ...(this.wgKey ? { wireguardPublicKey: this.wgKey.publicKey } : {}),
    };
  }

  private async loadWireguardKey(): Promise<void> {
    const k = (this.wgKey = await this.retry('WireGuard key state', () => loadOrCreateWireguardKey(this.cfg.stateDir)));
    if (k.replacedCorrupt) this.log.warn({ stateDir: this.cfg.stateDir, publicKey: k.publicKey }, 'WireGuard key file did not hold a key; a new key was generated');
    else if (k.created) this.log.info({ publicKey: k.publicKey }, 'generated a WireGuard key (kept in the state dir from now on)');
    else this.log.info({ publicKey: k.publicKey }, 'WireGuard key loaded');
  }

  /**
   * The first full list is in and our subnet chosen: from here on the dataplane is ours to
   * converge. Peers' entries are programmed now, while the lease is still being granted and
   * written: they do not depend on it (a 10,000-peer cold start gains the two etcd round trips).
   * The device gets its address once the lease is held. Called again, with a new listing, if
   * the chosen subnet was lost to another host's race.
   */
  private startDataplane(planned: Lease, listing: SubnetListing): void {
    this.planned = planned;
    this.listing = listing;
    this.peers.replaceAll(listing.entries);
    if (this.reconciler) {
      this.recompute();
      return;
    }
    const backend = this.backend!;
    const wgKey = this.wgKey;
    const choice = backend.driver({
      dataplane: this.cfg.dataplane,
      h: this.h,
      ...(wgKey ? { wireguard: { stateDir: this.cfg.stateDir, privateKey: () => wgKey.privateKey, log: child(this.log, 'wireguard') } } : {}),
    });
    this.log.info({ backend: backend.backend.type, dataplane: choice.mode, reason: choice.reason, subnet: formatPrefix4(planned.subnet) }, 'dataplane starting; the subnet lease is being written');
    const driver = choice.driver;
    this.reconciler = new Reconciler(this.h, child(this.log, 'dataplane'), { resyncIntervalMs: this.cfg.resyncInterval * 1000, ownsLink: ownedByAnyBackend }, driver);
    choice.registerMetrics?.(this.metricsRegistry);
    this.wireReconcilerEvents(this.reconciler);
    this.driverMode = choice.mode;
    this.startFirewall();
    this.events = new NetlinkEventSocket();
    this.events.on('event', (e) => this.onKernelEvent(e));
    this.events.on('overflow', () => {
      this.log.debug({}, 'kernel event queue overflowed; full resync');
      this.reconciler?.requestResync('netlink overflow');
    });
    this.events.on('error', (err) => this.log.error({ err }, 'netlink event socket error'));
    this.recompute();
    this.reconciler.start();
  }

  /**
   * One etcd change. With the peers' index built, only this lease is decoded and planned (with
   * the peers whose verdict it can change) and only its entries are written: no walk over all
   * peers (src/backends/plan-index.ts). Before the first full recompute, or after a re-list,
   * the change is kept and a full recompute runs at the end of the tick.
   */
  private onLeaseEvent(key: string, value: string | undefined): void {
    if (value === undefined) this.warned.delete(key);
    const delta = this.peers.apply(key, value);
    if (delta) {
      this.applyDelta(delta);
      return;
    }
    if (this.peers.index) return; // the same value again
    this.pendingEventTimes.push(performance.now());
    this.scheduleRecompute();
  }

  private onLeaseResync(entries: Map<string, string>): void {
    this.peers.replaceAll(entries);
    this.metrics.resyncs.inc({ reason: 'etcd relist' });
    this.pendingEventTimes.push(performance.now());
    this.scheduleRecompute();
  }

  private scheduleRecompute(): void {
    if (this.recomputeScheduled || this.stopping) return;
    this.recomputeScheduled = setImmediate(() => {
      this.recomputeScheduled = undefined;
      this.recompute();
    });
  }

  /** The lease a key's value holds, or null if it is invalid (warned once per distinct value). */
  private decode(key: string, value: string, own: Lease, config: NetworkConfig): Lease | null {
    const res = decodeLease(key, value, { prefix: this.registry!.prefix, config, own, codec: this.backend!.backend.codec });
    if (res.ok) {
      this.warned.delete(key);
      return res.lease;
    }
    if (this.warned.get(key) !== value) {
      // One warning and one count per distinct bad value, not per recompute.
      this.warned.set(key, value);
      this.metrics.leasesSkipped.inc({ reason: res.reason });
      this.log.warn({ key, reason: res.reason, detail: res.detail }, 'skipping invalid lease');
    }
    return null;
  }

  /**
   * Desired state from the leases, our lease and the underlay, handed to the reconciler. The
   * peers' index (30,000 entries at 10,000 peers) is rebuilt only after a re-list or when what
   * every plan depends on changed — our lease, the underlay, how peers are reached; lease
   * events update it one peer at a time (onLeaseEvent). The device spec is set every time.
   */
  private recompute(): void {
    const own = this.own ?? this.planned;
    const backend = this.backend?.backend;
    const config = this.config;
    if (!config || !own || !this.underlay || !this.reconciler || !backend) return;
    // Never plan a backend that asks how peers are reached without knowing it.
    if (!this.reach.lookup && backend.needsReach(config)) this.readReach();
    const underlay = { index: this.underlay.index, ip: this.underlay.ip, mtu: this.underlay.mtu };
    // Decoding judges overlap with our subnet, plans use our VTEP MAC, the underlay and reachability.
    const builtFor = `${formatPrefix4(own.subnet)}/${own.publicIp}/${backend.codec.describe(own.backendData as never)}/${this.reach.signature}/${underlay.index}/${underlay.ip}`;
    let index = this.peers.index;
    const reach = this.reach.lookup;
    const judge = { backend, input: { config, own, underlay, ...(reach ? { reach } : {}) }, decode: (key: string, value: string) => this.decode(key, value, own, config) };
    let rebuilt = !index || builtFor !== this.builtFor;
    if (!rebuilt && this.verifyPeers) {
      const diff = this.peers.verify(judge);
      if (diff !== undefined) {
        this.log.warn({ difference: diff }, 'the per-event peer state differs from a full plan; rebuilding it');
        this.metrics.resyncs.inc({ reason: 'plan mismatch' });
        rebuilt = true;
      }
    }
    this.verifyPeers = false;
    if (!index || rebuilt) {
      index = this.peers.rebuild(judge);
      this.builtFor = builtFor;
      this.collector.burstDone();
      this.warnSkipped(index.conflicts(), backend.codec.describe);
      this.peerLog.update(index.programmed(), this.loggedIndex?.programmed());
      this.loggedIndex = index;
      // Probed: exactly the peers the dataplane programs (not our own lease, not skipped ones).
      this.setProbePeers();
    }
    const device = backend.device({ config, own, ownHeld: own === this.own, underlay, identity: this.identity() });
    this.hasDevice = device !== undefined;
    this.setPeerGauges(index);
    // Before the reconciler: a peer's VXLAN is accepted no later than its entries exist.
    const filterPort = this.driverMode ? backend.sourceFilterPort?.(config, this.driverMode) : undefined;
    if (rebuilt) {
      this.fwRefs.clear();
      this.fwPeers = new Set();
      this.fwChange(index.programmed(), []);
    }
    const fwSpec = { network: formatPrefix4(config.network), podSubnet: formatPrefix4(own.subnet), ipMasq: this.cfg.ipMasq, vxlan: filterPort === undefined ? null : { port: filterPort, peers: this.fwPeers } };
    const fwShape = `${fwSpec.network}/${fwSpec.podSubnet}/${fwSpec.ipMasq}/${filterPort}`;
    if (rebuilt || fwShape !== this.fwShape) this.firewall?.setDesired(fwSpec);
    this.fwShape = fwShape;
    this.reconciler.setDesired({ device, tables: index.tables });
  }

  private fwShape = '';
  /** The index whose peers the peer log last saw in full (compared at the next full recompute). */
  private loggedIndex: PlanIndex<unknown> | undefined;

  /** One lease event's share: the firewall's peer set, then the entries, then logs, gauges and probes. */
  private applyDelta(d: PlanDelta<unknown>): void {
    const index = this.peers.index;
    if (!index || !this.reconciler) return;
    if (d.entries.length > 0) this.pendingEventTimes.push(performance.now());
    const fw = this.fwChange([...d.joined, ...d.changed], [...d.left, ...d.replaced]);
    this.firewall?.peersChanged(fw.added, fw.removed);
    this.reconciler.changeEntries(d.entries);
    if (this.backend) this.warnSkippedDelta(d, this.backend.backend.codec.describe);
    this.metrics.peersUnreachable.set({}, index.reasons.get('not-directly-reachable') ?? 0);
    this.peerLog.apply(d, this.setPeerGauges(index));
    if (d.joined.length + d.left.length + d.changed.length > 0) this.probing?.peersChanged([...d.joined, ...d.changed], [...d.left, ...d.replaced]);
  }

  /** Counts peers' PublicIPs in and out; additions first, so an address passed from one peer to another stays. */
  private fwChange(added: Iterable<Lease>, removed: Iterable<Lease>): { added: string[]; removed: string[] } {
    const out = { added: [] as string[], removed: [] as string[] };
    for (const l of added) {
      const ip = formatIp4(l.publicIp);
      const n = (this.fwRefs.get(ip) ?? 0) + 1;
      this.fwRefs.set(ip, n);
      if (n === 1) {
        this.fwPeers.add(ip);
        out.added.push(ip);
      }
    }
    for (const l of removed) {
      const ip = formatIp4(l.publicIp);
      const n = (this.fwRefs.get(ip) ?? 0) - 1;
      if (n > 0) this.fwRefs.set(ip, n);
      else {
        this.fwRefs.delete(ip);
        this.fwPeers.delete(ip);
        out.removed.push(ip);
      }
    }
    return out;
  }

  /** Sets the peers gauges; returns how many peers are programmed. */
  private setPeerGauges(index: PlanIndex<unknown>): number {
    let programmed = 0;
    for (const path of index.paths.keys()) this.paths.add(path);
    for (const path of this.paths) {
      const n = index.paths.get(path) ?? 0;
      programmed += n;
      this.metrics.peerPaths.set({ path }, n);
    }
    this.metrics.peers.set({}, programmed);
    return programmed;
  }

  private setProbePeers(): void {
    const index = this.peers.index;
    if (index) this.probing?.setPeers(index.programmed());
  }

  /** One warning and one count per peer and distinct reason, not per recompute. */
  private warnSkipped(conflicts: Array<PeerConflict<unknown>>, describe: (d: never) => string): void {
    const now = new Set<string>();
    for (const c of conflicts) now.add(this.warnConflict(c, describe));
    // A peer programmed again (reachable once more) is warned again if it is skipped later.
    for (const key of [...this.warned.keys()]) if (key.startsWith('conflict:') && !now.has(key)) this.warned.delete(key);
    let unreachable = 0;
    for (const c of conflicts) if (c.reason === 'not-directly-reachable') unreachable++;
    this.metrics.peersUnreachable.set({}, unreachable);
  }

  private warnSkippedDelta(d: PlanDelta<unknown>, describe: (d: never) => string): void {
    for (const l of d.unskipped) this.warned.delete(`conflict:${formatPrefix4(l.subnet)}`);
    for (const c of d.skipped) this.warnConflict(c, describe);
  }

  private warnConflict(c: PeerConflict<unknown>, describe: (d: never) => string): string {
    const key = `conflict:${formatPrefix4(c.lease.subnet)}`;
    const sig = `${c.reason}:${formatIp4(c.lease.publicIp)}:${describe(c.lease.backendData as never)}`;
    if (this.warned.get(key) === sig) return key;
    this.warned.set(key, sig);
    this.metrics.leasesSkipped.inc({ reason: c.reason });
    this.log.warn({ subnet: formatPrefix4(c.lease.subnet), publicIp: formatIp4(c.lease.publicIp), reason: c.reason, detail: c.detail }, 'peer not programmed');
    return key;
  }

  /**
   * Re-reads the main table when the active backend asks how peers are reached (host-gw,
   * VXLAN DirectRouting). Peers are re-planned only if a route that decides it changed.
   */
  private refreshReach(): void {
    if (this.readReach()) this.recompute();
  }

  /** Whether the reachability of peers may have changed (false: same routes, or not asked). */
  private readReach(): boolean {
    const backend = this.backend?.backend;
    const u = this.underlay;
    if (!backend || !this.config || !u || !backend.needsReach(this.config)) return false;
    try {
      return this.reach.read(u.index);
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'cannot read the routing table; keeping the last reachability');
      return false;
    }
  }

  private scheduleReachRefresh(): void {
    if (this.reachScheduled || this.stopping) return;
    this.reachScheduled = setImmediate(() => {
      this.reachScheduled = undefined;
      this.refreshReach();
    });
  }

  private wireReconcilerEvents(r: Dataplane): void {
    r.on('converged', ({ full }) => {
      if (full) this.collector.burstDone();
      const now = performance.now();
      for (const t of this.pendingEventTimes) this.metrics.programmingLatency.observe({}, (now - t) / 1000);
      this.pendingEventTimes = [];
      for (const [kind, n] of Object.entries(r.counts())) this.metrics.programmedEntries.set({ kind }, n);
      this.metrics.programmedEntries.set({ kind: 'device' }, this.hasDevice ? 1 : 0);
      this.metrics.programmedEntries.set({ kind: 'address' }, this.hasDevice ? 1 : 0);
      void this.afterConverged();
    });
    r.on('drift', ({ kind }) => this.metrics.driftRepaired.inc({ kind }));
    r.on('resync', ({ reason }) => {
      this.metrics.resyncs.inc({ reason });
      // The periodic resync checks every peer's plan too: a safety net under the per-event path.
      if (reason === 'periodic') {
        this.verifyPeers = true;
        this.scheduleRecompute();
      }
    });
    r.on('failed', ({ kind }) => this.metrics.dataplaneErrors.inc({ kind }));
  }

  private wireRegistryEvents(reg: EtcdRegistry): void {
    reg.on('renewed', () => {
      this.metrics.leaseRenewals.inc({ result: 'ok' });
      this.clearBlocker('lease renewal');
    });
    reg.on('renew-failed', (err) => {
      this.metrics.leaseRenewals.inc({ result: 'failed' });
      this.metrics.etcdErrors.inc({ op: 'renew' });
      this.setBlocker('lease renewal', this.blockerFor('lease renewal', err));
      this.log.warn({ err: errorLine(err), endpoints: this.cfg.etcdEndpoints }, 'lease renewal failed; retrying (dataplane untouched)');
    });
    reg.on('reacquired', (lease) => {
      this.leaseHeld = true; // also after 'lost': the subnet was free again and is ours once more
      this.clearBlocker('lease renewal');
      this.clearBlocker('lease lost');
      this.metrics.leaseRenewals.inc({ result: 'reacquired' });
      this.log.info({ subnet: formatPrefix4(lease.subnet) }, 'etcd lease was lost; our key was put back under a new lease');
    });
    reg.on('lost', ({ lease, holderValue }) => {
      this.leaseHeld = false;
      this.metrics.leaseRenewals.inc({ result: 'lost' });
      this.setBlocker('lease lost', lostLeaseBlocker(formatPrefix4(lease.subnet), holderValue));
      // Keep programming what we have: tearing down would cut every pod on this host.
      this.log.error({ subnet: formatPrefix4(lease.subnet), holder: holderValue }, 'another host took our subnet; not ready, kernel state kept');
    });
    reg.on('watch-error', (err, phase) => {
      this.metrics.etcdErrors.inc({ op: `watch-${phase}` });
      this.log.warn({ err: errorLine(err), endpoints: this.cfg.etcdEndpoints, phase }, 'etcd watch interrupted; it resumes by itself');
    });
  }

  private onKernelEvent(e: NetlinkEvent): void {
    this.reconciler?.onEvent(e);
    const u = this.underlay;
    if (!u) return;
    // Links going down take their routes with them silently: any link, address or foreign
    // route change may change how peers are reached.
    if (this.reach.lookup && PeerReach.concerns(e)) this.scheduleReachRefresh();
    const touchesUnderlay = (e.kind === 'link' && e.link.index === u.index) || (e.kind === 'addr' && e.addr.index === u.index);
    if (!touchesUnderlay) return;
    try {
      // Without a choice of interface, the one picked at start stays (not whichever holds the default route now).
      const choice = this.underlayChoice();
      const given = choice.iface.length > 0 || choice.ifaceRegex.length > 0 || choice.ifaceCanReach !== undefined;
      const next = resolveUnderlay(this.h, given ? choice : { ...choice, iface: [u.name] });
      if (!sameUnderlay(u, next)) {
        this.log.info({ before: u, after: next }, 'underlay changed');
        this.underlay = next;
        this.recompute();
        this.scheduleReachRefresh();
      }
    } catch (err) {
      // Interface briefly without address during a network restart: keep the last facts.
      this.log.warn({ err: (err as Error).message }, 'underlay unreadable; keeping the last known facts');
    }
  }

  private notifiedReady = false;
  /** Serialised: a burst of convergences writes the subnet file once, never concurrently. */
  private readonly afterConverged = coalesced(() => this.afterConvergedOnce(), () => this.stopping);

  private async afterConvergedOnce(): Promise<void> {
    if (!this.own || !this.config || !this.underlay || !this.backend) return;
    const mtu = this.backend.backend.podMtu(this.config, this.underlay.mtu);
    const text = formatSubnetFile({
      network: formatPrefix4(this.config.network),
      subnet: `${formatIp4(firstHost(this.own.subnet))}/${this.own.subnet.len}`,
      mtu,
      ipMasq: this.cfg.ipMasq,
    });
    const changed = text !== this.subnetFile.text;
    try {
      await this.subnetFile.set(text); // a failure is logged, and blocks readiness, in the keeper
    } catch {
      return;
    }
    if (changed) this.log.info({ path: this.cfg.subnetFile, mtu }, 'subnet file written');
    this.everConverged = true;
    this.probing?.setSelf(this.own, mtu);
    const ready = this.readiness().ok;
    this.metrics.ready.set({}, ready ? 1 : 0);
    if (ready && !this.notifiedReady) {
      this.notifiedReady = true;
      this.notifier.ready();
      this.log.info({ backend: this.config.backend.type, peers: this.reconciler?.counts().route ?? 0 }, 'ready');
      // Started from the bundle without a usable code cache: its launcher saves one now, when
      // the whole cold-start path has been compiled (src/daemon/launcher.ts).
      setImmediate(saveCodeCacheNow);
      this.collector.burstDone(); // the cold start ends here: after READY=1 and the code cache
      this.collector.watchHeap();
    }
  }
  /** IPv4 forwarding on, as flanneld needs it too; a read-only /proc/sys is reported, not fatal. */
  private enableForwarding(): void {
    try {
      if (enableIpForwarding().wasOff) this.log.info({}, 'IPv4 forwarding was off; turned it on');
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'cannot turn IPv4 forwarding on');
    }
  }

  /** The nftables driver (src/firewall/); the source filter's port is the backend's (Backend.sourceFilterPort). */
  private startFirewall(): void {
    this.firewall = new FirewallDriver(new Nft(), child(this.log, 'nftables'), { checkIntervalMs: Math.min(this.cfg.resyncInterval * 1000, FIREWALL_CHECK_MAX_MS) });
    registerFirewallMetrics(this.metricsRegistry, this.metrics, this.firewall);
    this.firewall.start();
  }

  private startProbing(config: NetworkConfig): void {
    if (this.cfg.probePort === 0 || this.probing) return;
    this.probing = new PeerProbing({
      port: this.cfg.probePort,
      intervalS: this.cfg.probeInterval,
      rate: this.cfg.probeRate,
      nodeName: this.cfg.nodeName,
      network: config.network,
      log: child(this.log, 'probe'),
      metrics: this.metricsRegistry,
      ...(this.registry ? { sink: new EtcdHealthStore(this.registry.sharedClient, this.registry.prefix, child(this.log, 'health')) } : {}),
    });
    this.probing.start();
  }

  private underlayChoice(): UnderlayChoice {
    return { iface: this.cfg.iface, ifaceRegex: this.cfg.ifaceRegex, ifaceCanReach: this.cfg.ifaceCanReach, publicIp: this.cfg.publicIp };
  }

  private async subnetFromFile(): Promise<Prefix4 | undefined> {
    try {
      const rec = await readSubnetFile(this.cfg.subnetFile);
      if (!rec) return undefined;
      const env = parseSubnetEnv(rec);
      return parsePrefix4(env.subnet);
    } catch (err) {
      this.log.warn({ err: (err as Error).message, path: this.cfg.subnetFile }, 'ignoring unreadable subnet file');
      return undefined;
    }
  }

  private async waitForConfig(reg: EtcdRegistry): Promise<NetworkConfig> {
    const key = `${reg.prefix}/config`;
    let lastProblem = '';
    for (;;) {
      this.throwIfStopping();
      let problem: string;
      try {
        const text = await reg.getConfigText();
        if (text === null) {
          problem = 'missing';
          this.setBlocker('network config', missingConfigBlocker(key));
          if (problem !== lastProblem) this.log.info({ key }, 'waiting for network config in etcd');
        } else {
          const cfg = parseNetworkConfig(text);
          this.clearBlocker('network config');
          this.configText = text;
          this.log.info({ network: formatPrefix4(cfg.network), subnetLen: cfg.subnetLen, backend: cfg.backend }, 'network config');
          return cfg;
        }
      } catch (err) {
        if (err instanceof NetworkConfigError) {
          problem = `invalid network config: ${err.message}`;
          this.setBlocker('network config', invalidConfigBlocker(key, err));
          if (problem !== lastProblem) this.log.error({ key, field: err.field, err: err.message }, 'invalid network config in etcd; fix it, retrying');
        } else {
          problem = `etcd: ${errorLine(err)}`;
          this.setBlocker('network config', etcdBlocker(this.cfg.etcdEndpoints, err));
          this.metrics.etcdErrors.inc({ op: 'get-config' });
          if (problem !== lastProblem) this.log.warn({ err: errorLine(err), endpoints: this.cfg.etcdEndpoints }, 'cannot read network config from etcd; retrying');
        }
      }
      lastProblem = problem;
      await this.sleep(CONFIG_POLL_MS);
    }
  }

  /**
   * Retries `fn` until it succeeds (or the daemon stops), logging each distinct failure once;
   * meanwhile the failure is what blocks readiness.
   */
  private async retry<T>(what: string, fn: () => T | Promise<T>, etcdOp?: string): Promise<T> {
    let last = '';
    for (;;) {
      this.throwIfStopping();
      try {
        const v = await fn();
        this.clearBlocker(what);
        return v;
      } catch (err) {
        const b = this.blockerFor(what, err);
        this.setBlocker(what, b);
        if (etcdOp) this.metrics.etcdErrors.inc({ op: etcdOp });
        if (b.error !== last) this.log.error({ err: b.error, subject: b.subject, next: b.next, code: (err as { code?: string }).code }, `${what} failed; retrying`);
        last = b.error;
        await this.sleep(RETRY_MS);
      }
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.timers.delete(t);
        resolve();
      }, ms);
      this.timers.add(t);
    });
  }

  private throwIfStopping(): void {
    if (this.stopping) throw new DaemonStopping();
  }

  /** Stop cleanly, leaving kernel state and the etcd lease in place. */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    this.notifier.stopping();
    this.notifier.stopWatchdog();
    for (const t of this.timers) clearTimeout(t);
    if (this.recomputeScheduled) clearImmediate(this.recomputeScheduled);
    if (this.reachScheduled) clearImmediate(this.reachScheduled);
    this.collector.stop();
    this.reconciler?.stop();
    this.firewall?.stop();
    await this.probing?.stop().catch(() => undefined);
    this.subnetFile.stop();
    this.configWatch?.stop();
    this.events?.close();
    await this.registry?.close().catch(() => undefined);
    await this.http?.close().catch(() => undefined);
    this.metrics.stop();
    this.h.close();
  }
}

export class DaemonStopping extends TwillError<'ERR_STOPPING'> {
  constructor() {
    super('ERR_STOPPING', 'daemon is stopping');
    this.name = 'DaemonStopping';
  }
}
